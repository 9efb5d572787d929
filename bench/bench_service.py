"""Service benchmark: the HTTP API under load, during a build, and where one query's time goes.

On the real 30 Taiwan laws (laws/2024-10-11), indexed with the offline `use-multilingual` embedder
(no LLM, so no pseudo-queries: hybrid = dense + BM25) into a temporary home:

  1. HTTP load          the real service (`hoprag serve --home H --port P --library-root ROOT` in a
                        subprocess, uvicorn on 127.0.0.1) driven by httpx clients in this process,
                        one keep-alive connection per client thread: POST /search (dense, hybrid)
                        and POST /hop-search (n_hop=2, similarity), k=10, with 1 and with 8
                        concurrent clients, N requests per configuration over a fixed set of
                        Traditional-Chinese legal questions (cycled), after a warm-up. Latency
                        p50/p90/p99, throughput, errors, and the CPU the server process used
                        (from /proc: 1.0 = one core busy, 2.0 = both).
  2. during a build     POST /builds of a changed copy of the library (articles amended and a
                        new law added, a few hundred texts to embed) while 8 clients keep sending
                        /search (dense and hybrid alternately) until the job reports committed and
                        for a while after: latency and throughput during the build and after the
                        switch, errors (must be 0), generations seen. Then a second build of the
                        same size with no query load, to see what the load costs the build.
                        Then the same kind of build (its own amended articles and added law, so
                        just as many new texts) for each worker x load: the build in its own
                        process (the default) or in a thread of the server, under 2 and 8
                        clients: p50/p99 before and during each build, and how long it took.
  3. breakdown          in-process, no HTTP: per question, the time of the embedder lookup, the
                        query embedding, the state lookup, the vector search (numpy, as
                        `Retriever._dense` does it, and FAISS for comparison), BM25 (tokenize +
                        score), citation detection, and the whole `Index.search` (dense, hybrid) and
                        `Index.hop_search`; medians over the question set. Plus `Index.search` from
                        1 and 8 threads, to separate HTTP from the GIL.

Run (from the repository root, in the virtualenv, on a quiet machine; ~2 minutes on 2 cores):

    python bench/bench_service.py [--out bench/results/service-cpu-2core.json]
    python bench/bench_service.py --quick        # 4 laws, fewer requests: the smoke test

Prints a table and Markdown tables for the README; --out writes every number plus machine facts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import Clock, _hoprag, machine_facts, write_result

from indexer.index import Index
from indexer.settings import Settings

DATA = Path(os.environ.get("HOPRAG_DATA", "/work/shared/data")) / "laws"
VERSION = "2024-10-11"
QUICK_LAWS = ("N0030001", "N0030002", "I0020004", "J0070017")
K = 10
CLIENTS = (1, 8)

# What people ask: plain questions, article citations (勞基法第24條), short names. Cycled.
QUESTIONS = (
    "雇主延長工作時間之工資如何計算",
    "勞基法第24條",
    "公務員違法侵害人民權利國家如何賠償",
    "著作權法第三條",
    "勞工每七日中應有幾日休息作為例假",
    "雇主資遣勞工時資遣費如何計算",
    "雇主終止勞動契約應於多久前預告勞工",
    "勞工的特別休假天數如何計算",
    "勞工因職業災害受傷雇主應如何補償",
    "女性勞工分娩前後可以請幾週產假",
    "受僱者申請育嬰留職停薪的條件",
    "雇主應採取哪些措施防治職場性騷擾",
    "外國人在臺灣工作需要申請許可嗎",
    "就業服務法禁止哪些就業歧視",
    "非公務機關蒐集個人資料應符合哪些要件",
    "個人資料外洩時應如何通知當事人",
    "網路購物的商品可以在七日內解除契約嗎",
    "定型化契約條款顯失公平者其效力如何",
    "酒後駕車會受到什麼處罰",
    "道交條例第35條",
    "汽車駕駛人闖紅燈要罰多少錢",
    "機車在人行道上行駛如何處罰",
    "侵權行為損害賠償請求權的消滅時效",
    "民法184條",
    "出賣人對買賣標的物的瑕疵擔保責任",
    "限制行為能力人訂立契約需要法定代理人同意嗎",
    "遺產繼承人的順序為何",
    "夫妻離婚後未成年子女的監護權如何決定",
    "殺人罪要判幾年",
    "刑法第十條公務員的定義",
    "正當防衛不罰的要件",
    "詐欺取財罪如何處罰",
    "被告在偵查中有保持緘默的權利嗎",
    "法院羈押被告的要件",
    "人民被逮捕拘禁時如何聲請提審",
    "不服行政處分如何提起訴願",
    "訴願應於行政處分達到後多久內提起",
    "行政機關作成限制人民權利的處分前應給予陳述意見的機會",
    "行政罰的裁處權時效是幾年",
    "撤銷訴訟應於何時提起",
    "政府採購的招標方式有哪些",
    "公司負責人違反忠實義務應負什麼責任",
    "股份有限公司股東常會如何召集",
    "要保人訂立保險契約時的據實說明義務",
    "人壽保險的受益人如何指定或變更",
    "土地所有權移轉應辦理登記",
    "外國人申請歸化我國國籍的條件",
    "大陸地區人民來臺工作的規定",
    "外國人逾期停留會被強制出國嗎",
    "憲法保障人民的居住及遷徙自由",
    "總統副總統由人民直接選舉",
    "外國專業人才申請就業金卡",
    "民事訴訟由被告住所地的法院管轄",
    "勞動基準法施行細則關於平均工資的計算",
)

# (name, path, body without the query)
ENDPOINTS = (
    ("search dense", "/search", {"k": K, "mode": "dense"}),
    ("search hybrid", "/search", {"k": K, "mode": "hybrid"}),
    ("hop-search n_hop=2", "/hop-search", {"k": K, "n_hop": 2, "mode": "similarity"}),
)
NEW_LAW = ("Z9990001", "基準測試保險業務法")     # the added law: a renamed copy of 保險法 (G0390002)
NEW_LAW_NOLOAD = ("Z9990002", "基準測試保險業務法乙")
WORKERS = ("process", "thread")        # Settings.build_worker: where the service runs a build
MATRIX_CLIENTS = (2, 8)
# The second server: every BLAS call single-threaded (numpy's OpenBLAS and the embedder's forward pass).
VARIANTS = {"default": {}, "1 BLAS thread": {"OPENBLAS_NUM_THREADS": "1", "HOPRAG_CPU_THREADS": "1"}}


# ------------------------------------------------------------------ libraries
def _copy_laws(src: Path, dst: Path, laws: tuple[str, ...] | None) -> Path:
    dst.mkdir(parents=True)
    for f in sorted(src.glob("*.json")):
        if laws is None or f.stem in laws:
            shutil.copy(f, dst / f.name)
    return dst


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8-sig"))


def _write_json(path: Path, data: dict) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(data, ensure_ascii=False).encode("utf-8"))


def _amend(folder: Path, n_articles: int, marker: str) -> list[str]:
    """Append a sentence to n live articles, spread over the laws (two per law): they get new texts."""
    amended = []
    files = sorted(folder.glob("*.json"))
    per_law = 2
    for f in files:
        if len(amended) >= n_articles:
            break
        data = _read_json(f)
        arts = [a for a in data["法規內容"] if "條號" in a and "刪除" not in a.get("條文內容", "")
                and len(a.get("條文內容", "")) > 20]
        for a in arts[3:3 + per_law][: n_articles - len(amended)]:
            a["條文內容"] = a["條文內容"] + f"\r\n本條於{marker}修正，以供服務基準測試。"
            amended.append(f"{f.stem}:{a['條號']}")
        _write_json(f, data)
    return amended


def _add_law(folder: Path, template: Path, pcode: str, name: str) -> int:
    """A renamed copy of a real law under a new pcode: every one of its texts is new to the cache."""
    data = _read_json(template)
    data["法規名稱"] = name
    data["法規網址"] = f"https://law.moj.gov.tw/LawClass/LawAll.aspx?pcode={pcode}"
    data.pop("英文法規名稱", None)
    _write_json(folder / f"{pcode}.json", data)
    return sum(1 for a in data["法規內容"] if "條號" in a)


# ------------------------------------------------------------------ the server
class Server:
    """`hoprag serve` in a subprocess on a free loopback port; its log goes to a file."""

    def __init__(self, home: Path, root: Path, log_path: Path, env: dict[str, str] | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = _hoprag() + ["serve", "--home", str(home), "--port", str(self.port), "--library-root", str(root)]
        self.log_path = log_path
        self.env = dict(os.environ, **(env or {}))

    def __enter__(self) -> Server:
        self._log = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hoprag serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"hoprag serve did not answer /healthz:\n{self.log_tail()}")
            time.sleep(0.1)
        self.startup_seconds = time.perf_counter() - t0
        return self

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGINT)      # uvicorn: graceful shutdown
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log_tail(self, n: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")

    def cpu_seconds(self) -> float:
        """user + system seconds of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ load
def drive(url: str, make, clients: int, n: int | None = None, until=None, records: list | None = None) -> list[dict]:
    """`clients` concurrent clients, each an httpx.AsyncClient with its own keep-alive connection
    sending one request after the other, take request numbers 0, 1, 2, ... from a shared counter
    until n are taken (or until() says stop); make(i) -> (tag, path, body). Each answer is appended
    to `records` as it arrives. One event loop in one thread: the load generator itself costs
    little CPU and no GIL convoy (threads with sync clients cost several times more per request)."""
    records = [] if records is None else records
    counter = iter(range(n if n is not None else 10 ** 9))

    async def client_loop(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:
            while not (until is not None and until()):
                i = next(counter, None)
                if i is None:
                    return
                tag, path, body = make(i)
                w0, t0 = time.time(), time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    status = r.status_code
                    gen = r.json().get("generation") if status == 200 else None
                    err = None if status == 200 else r.text[:200]
                except Exception as exc:     # recorded and counted as an error
                    status, gen, err = None, None, repr(exc)[:200]
                t1 = time.perf_counter()
                records.append({"i": i, "client": c, "tag": tag, "wall0": w0, "wall1": w0 + (t1 - t0), "t0": t0,
                                "t1": t1, "ms": (t1 - t0) * 1e3, "status": status, "generation": gen, "error": err})

    async def all_clients() -> None:
        await asyncio.gather(*(client_loop(c) for c in range(clients)))

    asyncio.run(all_clients())
    return records


def summarize(records: list[dict]) -> dict:
    if not records:
        return {"requests": 0, "errors": 0, "error_samples": [], "p50_ms": None, "p90_ms": None, "p99_ms": None,
                "mean_ms": None, "max_ms": None, "seconds": 0.0, "rps": None, "generations": {}}
    ms = np.array([r["ms"] for r in records])
    span = max(r["t1"] for r in records) - min(r["t0"] for r in records)
    errors = [r for r in records if r["status"] != 200]
    return {"requests": len(records), "errors": len(errors), "error_samples": [r["error"] for r in errors[:3]],
            "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "max_ms": float(ms.max()),
            "seconds": span, "rps": len(records) / span if span > 0 else None,
            "generations": dict(sorted(Counter(str(r["generation"]) for r in records).items()))}


def _request(path: str, body: dict, i: int, tag: str | None = None):
    return tag or path, path, dict(body, query=QUESTIONS[i % len(QUESTIONS)])


def bench_http(server: Server, n: int, variant: str) -> tuple[dict, list[dict]]:
    """Warm-up facts, then every endpoint with 1 and 8 clients."""
    warm = {}
    with httpx.Client(base_url=server.url, timeout=300) as c:
        t0 = time.perf_counter()
        r = c.post("/search", json={"query": QUESTIONS[0], "k": K, "mode": "dense"})
        r.raise_for_status()
        warm["first_dense_ms"] = (time.perf_counter() - t0) * 1e3    # model load + state load
        t0 = time.perf_counter()
        c.post("/search", json={"query": QUESTIONS[1], "k": K, "mode": "hybrid"}).raise_for_status()
        warm["first_hybrid_ms"] = (time.perf_counter() - t0) * 1e3   # builds BM25
        t0 = time.perf_counter()
        c.post("/hop-search", json={"query": QUESTIONS[2], "k": K, "n_hop": 2}).raise_for_status()
        warm["first_hop_ms"] = (time.perf_counter() - t0) * 1e3
        for _name, path, body in ENDPOINTS:           # a few of each, so the caches are warm
            for i in range(10):
                c.post(path, json=dict(body, query=QUESTIONS[(i * 7) % len(QUESTIONS)])).raise_for_status()
    rows = []
    for name, path, body in ENDPOINTS:
        for clients in CLIENTS:
            cpu0, pcpu0 = server.cpu_seconds(), time.process_time()
            records = drive(server.url, lambda i, p=path, b=body: _request(p, b, i), clients, n=n)
            s = summarize(records)
            server_cpu = server.cpu_seconds() - cpu0
            s.update(name=name, path=path, mode=body["mode"], clients=clients, variant=variant,
                     server_cpu_cores=server_cpu / s["seconds"], server_cpu_ms_per_request=server_cpu / n * 1e3,
                     client_cpu_cores=(time.process_time() - pcpu0) / s["seconds"])
            rows.append(s)
            print(f"  [{variant}] {name:<20} {clients} client(s): p50 {s['p50_ms']:7.1f} ms  "
                  f"p99 {s['p99_ms']:7.1f} ms  "
                  f"{s['rps']:6.1f} req/s  server CPU {s['server_cpu_cores']:.2f} cores  errors {s['errors']}",
                  flush=True)
    return warm, rows


def _poll_job(client: httpx.Client, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/builds/{job_id}").json()
        if job["status"] in ("committed", "failed"):
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"build {job_id} still {job['status']} after {timeout} s")
        time.sleep(0.2)


def _epoch(iso: str | None) -> float | None:
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


def bench_during_build(server: Server, library: Path, clients: int, after_new: int) -> dict:
    """8 clients of /search (dense and hybrid alternately) while the service builds `library`."""
    modes = ("dense", "hybrid")

    def make(i: int):
        mode = modes[i % 2]
        return mode, "/search", {"query": QUESTIONS[(i // 2) % len(QUESTIONS)], "k": K, "mode": mode}

    with httpx.Client(base_url=server.url, timeout=300) as c:
        old_gen = c.get("/healthz").json()["generation"]
        state = {"stop": False}
        records: list[dict] = []
        cpu0 = server.cpu_seconds()
        runner = threading.Thread(target=drive, args=(server.url, make, clients),
                                  kwargs={"until": lambda: state["stop"], "records": records}, daemon=True)
        runner.start()
        time.sleep(1.0)                       # the load is running before the build starts
        posted = time.time()
        r = c.post("/builds", json={"library": str(library)})
        assert r.status_code == 202, r.text
        job = _poll_job(c, r.json()["id"])
        seen_commit = time.time()
        assert job["status"] == "committed", job
        new_gen = job["report"]["generation"]
        # keep going until `after_new` answers came from the new generation (hybrid ones rebuild BM25)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(1 for r in list(records) if r["generation"] == new_gen) < after_new:
            time.sleep(0.2)
        state["stop"] = True
        runner.join()
        cpu = server.cpu_seconds() - cpu0
    started, finished = _epoch(job["started_at"]), _epoch(job["finished_at"])
    before = [r for r in records if r["wall1"] <= posted]
    during = [r for r in records if r["wall0"] >= started and r["wall1"] <= finished]
    after = [r for r in records if r["wall0"] >= finished]
    rep = job["report"]
    out = {"library": "changed copy", "clients": clients, "old_generation": old_gen, "new_generation": new_gen,
           "job_seconds": finished - started, "posted_to_seen_committed_seconds": seen_commit - posted,
           "report": {k: rep[k] for k in ("seconds", "stages", "embedded", "cache_hits", "added", "changed",
                                          "removed", "unchanged", "generation")},
           "server_cpu_cores_whole_run": cpu / (max(r["t1"] for r in records) - min(r["t0"] for r in records)),
           "before": summarize(before), "during": summarize(during), "after": summarize(after),
           "all": summarize(records),
           "during_by_mode": {m: summarize([r for r in during if r["tag"] == m]) for m in modes},
           "after_by_mode": {m: summarize([r for r in after if r["tag"] == m]) for m in modes},
           "first_new_generation": sorted(({"mode": r["tag"], "ms": r["ms"], "after_commit_s": r["wall0"] - finished}
                                           for r in records if r["generation"] == new_gen),
                                          key=lambda d: d["after_commit_s"])[:4],
           "old_generation_after_commit": sum(1 for r in records if r["wall0"] > finished + 0.5
                                              and r["generation"] == old_gen),
           "generations_seen": dict(sorted(Counter(str(r["generation"]) for r in records).items()))}
    return out


def bench_build_alone(server: Server, library: Path) -> dict:
    with httpx.Client(base_url=server.url, timeout=300) as c:
        r = c.post("/builds", json={"library": str(library)})
        assert r.status_code == 202, r.text
        job = _poll_job(c, r.json()["id"])
    assert job["status"] == "committed", job
    rep = job["report"]
    return {"job_seconds": _epoch(job["finished_at"]) - _epoch(job["started_at"]),
            "report": {k: rep[k] for k in ("seconds", "stages", "embedded", "cache_hits", "added", "changed",
                                           "removed", "unchanged", "generation")}}


# ------------------------------------------------------------------ in-process breakdown
def _time(fn, *a, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return (time.perf_counter() - t0) * 1e3, out


def bench_breakdown(idx: Index, reps: int) -> dict:
    """Median ms of each step of a query over the question set (each question `reps` times)."""
    from indexer.retrieve import channels
    from indexer.retrieve.named import cited_articles

    ret = idx.retriever
    st = ret.state()
    st.bm25()                                     # built once per generation; timed separately below
    emb = idx.builder.embedder(None)
    emb.embed(["暖機"])
    steps: dict[str, list[float]] = {}

    def add(name: str, ms: float) -> None:
        steps.setdefault(name, []).append(ms)

    for _ in range(reps):
        for q in QUESTIONS:
            ms, qv = _time(emb.embed, [q])
            add("embed the query (embedder.embed([q]))", ms)
            ms, _ = _time(ret.state)
            add("state lookup (Retriever.state(): generation query)", ms)
            ms, _ = _time(channels.dense, st, qv, K, None)
            add("vector search, numpy (channels.dense)", ms)
            ms, _ = _time(st.passage_index.search, qv, K)
            add("vector search, FAISS (passage_index.search)", ms)
            ms, toks = _time(st.lexicon.tokenize, q)
            add(f"BM25: tokenize ({st.lexicon.tokenizer})", ms)
            model, _ = st.bm25()
            ms, _ = _time(model.get_scores, toks)
            add("BM25: score all passages (get_scores)", ms)
            ms, _ = _time(channels.bm25, st, q, 50, None)
            add("BM25 ranked top 50 (tokenize + score + sort)", ms)
            ms, _ = _time(cited_articles, st, q, None)
            add("citation detection (cited_articles)", ms)
            ms, _ = _time(channels.fusion, st, q, qv, 50, idx.settings)
            add("hop: fusion scores over the library (no embedding)", ms)
    # whole calls, one kind at a time over the question set (as a server answering one mode would)
    for name, call in (("Index.search dense (whole call)", lambda q: idx.search(q, K, "dense")),
                       ("Index.search hybrid (whole call)", lambda q: idx.search(q, K, "hybrid")),
                       ("Index.hop_search n_hop=2 (whole call)", lambda q: idx.hop_search(q, K, 2))):
        for _ in range(reps):
            for q in QUESTIONS:
                add(name, _time(call, q)[0])
    out = {name: {"median_ms": statistics.median(v), "p90_ms": float(np.percentile(v, 90)), "n": len(v)}
           for name, v in steps.items()}
    # what the first query of a new generation pays: the state from the snapshot, then (hybrid) BM25
    idx.derived.forget()                          # as the serving index meets a new generation
    ms, _ = _time(ret.states.load)
    out["state load from the snapshot, BM25 included (first query of a generation)"] = {
        "median_ms": ms, "p90_ms": ms, "n": 1}
    return out



def bench_threads(idx: Index, n: int) -> list[dict]:
    """Index.search called from 1 and 8 threads in this process: throughput without HTTP."""
    rows = []
    for mode in ("dense", "hybrid"):
        for threads in CLIENTS:
            counter, lock, lat = iter(range(n)), threading.Lock(), []

            def worker(counter=counter, lock=lock, lat=lat, mode=mode) -> None:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    ms, _ = _time(idx.search, QUESTIONS[i % len(QUESTIONS)], K, mode)
                    with lock:
                        lat.append(ms)
            ts = [threading.Thread(target=worker) for _ in range(threads)]
            with Clock() as clock:
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
            rows.append({"mode": mode, "threads": threads, "calls": n, "seconds": clock.wall,
                         "calls_per_second": n / clock.wall, "cpu_cores": clock.cpu / clock.wall,
                         "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))})
    return rows


# ------------------------------------------------------------------ report
def _f(x: float | None, spec: str = ".1f") -> str:
    return "–" if x is None else format(x, spec)


def tables(r: dict) -> tuple[str, str]:
    head = ["endpoint", "clients", "requests", "p50 ms", "p90 ms", "p99 ms", "req/s", "CPU server / clients",
            "errors"]
    rows = [[x["name"] + ("" if x["variant"] == "default" else f" [{x['variant']}]"), str(x["clients"]),
             str(x["requests"]), f"{x['p50_ms']:.1f}", f"{x['p90_ms']:.1f}", f"{x['p99_ms']:.1f}", f"{x['rps']:.1f}",
             f"{x['server_cpu_cores']:.2f} / {x['client_cpu_cores']:.2f}", str(x["errors"])]
            for x in r["http"]]
    b = r["during_build"]
    for label, seg in (("/search during build", b["during"]), ("/search after commit", b["after"])):
        rows.append([label, str(b["clients"]), str(seg["requests"]), _f(seg["p50_ms"]), _f(seg["p90_ms"]),
                     _f(seg["p99_ms"]), _f(seg["rps"]),
                     "gen " + ", ".join(f"{g}: {c}" for g, c in seg["generations"].items()), str(seg["errors"])])
    for m in ("dense", "hybrid"):
        seg = b["during_by_mode"][m]
        rows.append([f"  of which {m}", "", str(seg["requests"]), _f(seg["p50_ms"]), _f(seg["p90_ms"]),
                     _f(seg["p99_ms"]), "", "", str(seg["errors"])])

    def render(head, rows, right):
        w = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(head)]

        def line(cells):
            return "  ".join(c.rjust(w[i]) if right[i] else c.ljust(w[i]) for i, c in enumerate(cells))
        return "\n".join([line(head)] + [line(x) for x in rows])

    def markdown(head, rows, right):
        return ("| " + " | ".join(head) + " |\n|" + "|".join("---:" if a else "---" for a in right) + "|\n"
                + "\n".join("| " + " | ".join(x) + " |" for x in rows))

    right = [False, True, True, True, True, True, True, False, True]
    human = [render(head, rows, right)]
    md = [markdown(head, rows, right)]

    bl, al = b, r["build_without_load"]
    build_rows = [
        ["build under 8-client /search load", f"{bl['job_seconds']:.2f} s",
         f"{bl['report']['embedded']} texts embedded; stages "
         + ", ".join(f"{k} {v:.2f}" for k, v in bl["report"]["stages"].items())],
        ["same-size build, no query load", f"{al['job_seconds']:.2f} s",
         f"{al['report']['embedded']} texts embedded; stages "
         + ", ".join(f"{k} {v:.2f}" for k, v in al["report"]["stages"].items())],
        ["first answers of the new generation", ", ".join(f"{x['ms']:.0f} ms" for x in bl["first_new_generation"]),
         "modes " + ", ".join(x["mode"] for x in bl["first_new_generation"]) + " (state reload with BM25 from the snapshot)"],
        ["warm-up: first dense / hybrid / hop request", f"{r['warmup']['first_dense_ms']:.0f} / "
         f"{r['warmup']['first_hybrid_ms']:.0f} / {r['warmup']['first_hop_ms']:.0f} ms",
         f"after the server answered /healthz ({r['server']['startup_seconds']:.1f} s after launch)"],
    ]
    h2 = ["measure", "value", "note"]
    human.append(render(h2, build_rows, [False, True, False]))
    md.append(markdown(h2, build_rows, [False, True, False]))
    h3 = ["build runs in", "clients", "/search p50 / p99 before, ms", "during, ms", "req/s before / during",
          "build s", "errors"]
    rows3 = [[x["worker"], str(x["clients"]), f"{_f(x['before']['p50_ms'])} / {_f(x['before']['p99_ms'])}",
              f"{_f(x['during']['p50_ms'])} / {_f(x['during']['p99_ms'])}",
              f"{_f(x['before']['rps'])} / {_f(x['during']['rps'])}", f"{x['job_seconds']:.1f}", str(x["errors"])]
             for x in r.get("build_matrix", [])]
    if rows3:
        right3 = [False, True, True, True, True, True, True]
        human.append(render(h3, rows3, right3))
        md.append(markdown(h3, rows3, right3))

    bd = r["breakdown"]
    h3 = ["in-process step (no HTTP)", "median ms", "p90 ms"]
    rows3 = [[name, f"{v['median_ms']:.2f}", f"{v['p90_ms']:.2f}"] for name, v in bd.items()]
    for t in r["inproc_threads"]:
        rows3.append([f"Index.search {t['mode']} from {t['threads']} thread(s): {t['calls_per_second']:.1f} calls/s, "
                      f"{t['cpu_cores']:.2f} cores", f"{t['p50_ms']:.2f}", f"p99 {t['p99_ms']:.1f}"])
    human.append(render(h3, rows3, [False, True, True]))
    md.append(markdown(h3, rows3, [False, True, True]))
    return "\n\n".join(human), "\n\n".join(md)


def other_benchmarks() -> list[str]:
    out = subprocess.run(["pgrep", "-fa", r"bench_(store|eval|graph)"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(os.getpid()) != line.split()[0]]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedder", default="use-multilingual")
    ap.add_argument("--out", type=Path, help="write all numbers as JSON here")
    ap.add_argument("--requests", type=int, help="requests per configuration (default 400; --quick 40)")
    ap.add_argument("--articles", type=int, help="articles amended for the build under load (default 20; --quick 4)")
    ap.add_argument("--reps", type=int, help="passes over the question set for the breakdown (default 3; --quick 1)")
    ap.add_argument("--quick", action="store_true", help=f"only {len(QUICK_LAWS)} laws, fewer requests (smoke test)")
    args = ap.parse_args(argv)
    n = args.requests or (40 if args.quick else 400)
    n_articles = args.articles or (4 if args.quick else 20)
    reps = args.reps or (1 if args.quick else 3)
    t_start = time.perf_counter()
    others = other_benchmarks()
    if others:
        print("warning: other benchmarks are running; the timings will be disturbed:\n  " + "\n  ".join(others))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as t:
        tmp = Path(t)
        root = tmp / "roots"
        base = _copy_laws(DATA / VERSION, root / "laws", QUICK_LAWS if args.quick else None)
        template = DATA / VERSION / ("N0030002.json" if args.quick else "G0390002.json")
        changed = _copy_laws(base, root / "changed", None)
        amended = _amend(changed, n_articles, "甲")
        new_articles = _add_law(changed, template, *NEW_LAW)
        noload = _copy_laws(changed, root / "changed-noload", None)   # same size again, other texts
        for f in noload.glob("*.json"):
            f.write_bytes(f.read_bytes().replace("於甲修正".encode(), "於乙修正".encode()))
        _add_law(noload, template, *NEW_LAW_NOLOAD)
        home = tmp / "home"
        settings = Settings(home=home)

        print(f"building {base} with {args.embedder} ...", flush=True)
        with Clock() as build_clock, Index(home, settings) as idx:
            report = idx.build(base, embedder=args.embedder)
        print(f"  {report.passages} passages, {report.embedded} embedded, {build_clock.wall:.1f} s", flush=True)

        print("in-process breakdown ...", flush=True)
        with Index(home, settings) as idx:
            breakdown = bench_breakdown(idx, reps)
            threads = bench_threads(idx, n)

        print("HTTP load (hoprag serve in a subprocess) ...", flush=True)
        variant = "1 BLAS thread"
        with Server(home, root, tmp / "server-1blas.log", env=VARIANTS[variant]) as server:
            _, http_1blas = bench_http(server, n, variant)
        with Server(home, root, tmp / "server.log") as server:
            warm, http_rows = bench_http(server, n, "default")
            print("during a build ...", flush=True)
            during = bench_during_build(server, changed, clients=max(CLIENTS), after_new=4 * max(CLIENTS))
            print(f"  build {during['job_seconds']:.1f} s, during: {during['during']['requests']} requests, "
                  f"errors {during['all']['errors']}, generations {during['generations_seen']}", flush=True)
            print("the same-size build without load ...", flush=True)
            alone = bench_build_alone(server, noload)
            startup = server.startup_seconds
            server_errors = [line for line in server.log_tail(200_000).splitlines()
                             if "Traceback" in line or " 500 " in line or "ERROR" in line]
        matrix = []
        for w, worker in enumerate(WORKERS):
            with Server(home, root, tmp / f"server-{worker}.log", env={"HOPRAG_BUILD_WORKER": worker}) as server:
                for c, clients in enumerate(MATRIX_CLIENTS):
                    marker, law = "丙丁戊己"[2 * w + c], (f"Z99901{w}{c}", f"基準測試保險業務法{w}{c}")
                    lib = _copy_laws(base, root / f"matrix-{worker}-{clients}", None)
                    _amend(lib, n_articles, marker)
                    _add_law(lib, template, *law)
                    with httpx.Client(base_url=server.url, timeout=60) as warm_client:  # load the state first
                        warm_client.post("/search", json={"query": QUESTIONS[0], "k": K, "mode": "hybrid"})
                    print(f"during a build: {worker} worker, {clients} clients ...", flush=True)
                    d = bench_during_build(server, lib, clients=clients, after_new=4 * clients)
                    matrix.append({"worker": worker, "clients": clients, "job_seconds": d["job_seconds"],
                                   "embedded": d["report"]["embedded"], "before": d["before"],
                                   "during": d["during"], "after": d["after"], "errors": d["all"]["errors"]})
                server_errors += [line for line in server.log_tail(200_000).splitlines()
                                  if "Traceback" in line or " 500 " in line or "ERROR" in line]
    result = {"benchmark": "service", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "embedder": args.embedder, "quick": args.quick, "k": K, "questions": list(QUESTIONS),
              "requests_per_configuration": n,
              "library": {"version": VERSION, "laws": list(QUICK_LAWS) if args.quick else "all 30",
                          "passages": report.passages, "embedded": report.embedded,
                          "build_seconds": build_clock.wall, "build_stages": report.stages},
              "changed_library": {"amended_articles": amended, "added_law": list(NEW_LAW),
                                  "added_law_articles": new_articles, "template": template.name},
              "machine": machine_facts() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                                            "other_benchmarks_at_start": others},
              "server": {"how": "hoprag serve subprocess (uvicorn, 1 worker, access log on, to a file)",
                         "startup_seconds": startup, "log_error_lines": server_errors[:20]},
              "variants": VARIANTS, "warmup": warm, "http": http_rows + http_1blas, "during_build": during,
              "build_without_load": alone, "build_matrix": matrix,
              "breakdown": breakdown, "inproc_threads": threads,
              "total_seconds": time.perf_counter() - t_start}
    human, md = tables(result)
    m = result["machine"]
    print(f"\nhoprag service benchmark: {args.embedder}{' (quick)' if args.quick else ''}, "
          f"{report.passages} passages, on {m['cpu']}, {m['cores']} cores, load {m['loadavg_before'][0]:.1f} -> "
          f"{m['loadavg_after'][0]:.1f}, {result['total_seconds']:.0f} s\n\n{human}\n\n{md}\n")
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
