"""llm-mode hop search against an LLM that fails: every wait bounded, other queries unharmed.

The real service (`hoprag serve` in a subprocess, default settings: hop_llm_deadline_s 30,
hop_llm_queries 2, llm_timeout_s 120, llm_max_retries 5) over an index of 4 Taiwan laws
(laws/2024-10-11: 勞動基準法 and its 施行細則, 保險法, 著作權法) whose pseudo-queries came from a
fake OpenAI-compatible LLM on loopback (its questions name the article). Then the LLM endpoint
the service asks for hop choices is, in turn:

  closed     a port nobody listens on (connection refused)
  503        a server answering every request with HTTP 503
  hanging    a server that reads each request and never answers

  1. single   one llm-mode POST /hop-search (k 10, n_hop 2) per endpoint: status, seconds,
              deadline_hit, llm_calls; the goal is an answer within the deadline + 2 s.
  2. flood    against the hanging endpoint, 40 llm-mode requests in flight at once, while one
              client polls GET /healthz and another sends similarity POST /search (hybrid, k 10)
              back to back: their p50/p99 during the flood (goals: /healthz p99 < 100 ms,
              /search p99 < 200 ms), and how long the 40 took to be answered.
  Baseline for 2: the same /healthz and /search clients with no flood, in the same run.

Run (from the repository root, in the virtualenv; ~3 minutes on 2 cores):

    python bench/bench_hop_llm.py --out bench/results/hop-llm-bounds-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_service import Server  # noqa: E402
from bench_store import machine_facts, write_result  # noqa: E402

from indexer.index import Index  # noqa: E402
from indexer.settings import Settings  # noqa: E402
from tests.fakes.http_fake import Fault  # noqa: E402
from tests.fakes.legal_llm import legal_questions  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

DATA = Path(os.environ.get("HOPRAG_DATA", ROOT.parent / "shared" / "data"))
LAWS = ("N0030001", "N0030002", "G0390002", "J0070017")
QUERY = "雇主延長工作時間之工資如何計算"
SEARCHES = ["雇主延長工作時間之工資如何計算", "擅自重製他人著作的處罰", "保險契約的成立", "雇主資遣勞工的預告期間"]
FLOOD = 40


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 1) if xs else float("nan")


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def hop(url: str, timeout: float = 300) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/hop-search", json={"query": QUERY, "k": 10, "n_hop": 2, "mode": "llm"}, timeout=timeout)
    return time.perf_counter() - t0, r


class Probe:
    """Poll /healthz (every 50 ms) and send /search back to back, each from its own client, until
    stopped: their latencies."""

    def __init__(self, url: str) -> None:
        self.url, self.stop = url, threading.Event()
        self.seconds: dict[str, list[float]] = {"healthz": [], "search": []}
        self.threads = [threading.Thread(target=f) for f in (self._healthz, self._search)]

    def _healthz(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                assert c.get("/healthz").status_code == 200
                self.seconds["healthz"].append(time.perf_counter() - t0)
                self.stop.wait(0.05)

    def _search(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as c:
            i = 0
            while not self.stop.is_set():
                t0 = time.perf_counter()
                r = c.post("/search", json={"query": SEARCHES[i % len(SEARCHES)], "k": 10, "mode": "hybrid"})
                assert r.status_code == 200, r.text
                self.seconds["search"].append(time.perf_counter() - t0)
                i += 1

    def __enter__(self) -> Probe:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def summary(self) -> dict:
        out: dict = {}
        for k, v in self.seconds.items():
            out |= {f"{k}_p50_ms": pct(v, 0.5), f"{k}_p99_ms": pct(v, 0.99), f"{k}_n": len(v)}
        return out


def flood(url: str) -> dict:
    """FLOOD llm-mode requests at once, the probes running until the last is answered."""
    times: list[float] = []
    statuses: list[int] = []

    def one() -> None:
        s, resp = hop(url)
        times.append(s)
        statuses.append(resp.status_code)

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(FLOOD)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # all of them in flight before the probes start
    with Probe(url) as during:
        for t in threads:
            t.join()
    return during.summary() | {
        "requests": FLOOD,
        "statuses": sorted(set(statuses)),
        "slowest_answer_s": round(max(times), 2),
        "all_answered_s": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hop-llm-"))
    result: dict = {"benchmark": "llm-mode hop search bounds", "machine": machine_facts(), "laws": list(LAWS)}
    try:
        lib, home = tmp / "laws", tmp / "home"
        lib.mkdir()
        for pcode in LAWS:
            shutil.copy(DATA / "laws" / "2024-10-11" / f"{pcode}.json", lib)
        with FakeOpenAI() as builder_llm:
            builder_llm.responder = legal_questions
            with Index(settings=Settings(home=home, llm_base_url=builder_llm.url)) as idx:
                report = idx.build(lib, embedder="use-multilingual", llm="openai:fake")
        result["index"] = {"passages": report.passages, "question_edges": report.edges.get("question", 0)}
        defaults = Settings(home=home)
        result["settings"] = {
            k: getattr(defaults, k)
            for k in (
                "hop_llm_deadline_s",
                "hop_llm_queries",
                "llm_timeout_s",
                "llm_max_retries",
                "llm_breaker_failures",
                "hop_max_llm_calls",
                "serve_threads",
            )
        }
        deadline = defaults.hop_llm_deadline_s
        with FakeOpenAI() as failing, FakeOpenAI() as hanging:
            failing.push(*[Fault.status(503)] * 100_000)
            hanging.push(*[Fault.hang(3600)] * 100_000)
            endpoints = {"closed": closed_url(), "503": failing.url, "hanging": hanging.url}
            single = {}
            for name, llm_url in endpoints.items():
                env = {"HOPRAG_LLM_BASE_URL": llm_url}
                with Server(home, lib, tmp / f"serve-{name}.log", env=env) as server:
                    seconds, r = hop(server.url)
                    body = r.json()
                    single[name] = {
                        "status": r.status_code,
                        "seconds": round(seconds, 2),
                        "deadline_hit": body.get("deadline_hit"),
                        "llm_calls": body.get("llm_calls"),
                        "detail": body.get("detail"),
                        "within_deadline_plus_2s": seconds <= deadline + 2,
                    }
                    print(name, single[name], flush=True)
                    if name == "hanging":
                        with Probe(server.url) as baseline:
                            time.sleep(10)
                        result["baseline"] = baseline.summary()
                        print("baseline", result["baseline"], flush=True)
                        result["flood"] = flood(server.url)
                        print("flood", result["flood"], flush=True)
        result["single"] = single
        result["goals"] = {
            "each_endpoint_within_deadline_plus_2s": all(v["within_deadline_plus_2s"] for v in single.values()),
            "healthz_p99_under_100ms": result["flood"]["healthz_p99_ms"] < 100,
            "search_p99_under_200ms": result["flood"]["search_p99_ms"] < 200,
        }
        print(json.dumps({k: result[k] for k in ("single", "baseline", "flood", "goals")}, indent=2))
        write_result(args.out, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
