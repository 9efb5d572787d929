"""Local-LLM benchmark: the portable llama.cpp build of `scripts/local_llm.sh` against the native
(-march=native) one, on the same machine, model and prompts, in one run.

Each build is a venv made by `scripts/local_llm.sh install` (HOPRAG_LOCAL_LLM_BUILD=portable |
native, each in its own HOPRAG_LOCAL_LLM_DIR). For each round, each build in turn (alternating,
one server at a time on the machine's cores) serves Qwen2.5-Coder-1.5B Q4_K_M on loopback and
answers, for each of the 著作權法 articles below, the build's real pseudo-query request (prompt,
worked example, json_object+schema: grammar-constrained decoding):

  prompt tokens/s    prompt_tokens / wall time of the same request with max_tokens=1 (prompt
                     evaluation, one token); a nonce opens the system prompt, so no prompt prefix
                     is reused from the previous request
  tokens/s           generated tokens / time from the first streamed token to the last
  call seconds       the whole streamed request (prompt evaluation and generation), as a build waits

Medians over articles and rounds. Also which SIMD the library was compiled with (AMX tile
instructions counted in libggml-cpu.so: 0 in the portable build).

Run (from the repository root, in the project venv, on a quiet machine; ~17 minutes on 2 cores):

    HOPRAG_LOCAL_LLM_DIR=~/.cache/hoprag/local-llm-portable HOPRAG_LOCAL_LLM_BUILD=portable scripts/local_llm.sh install
    HOPRAG_LOCAL_LLM_DIR=~/.cache/hoprag/local-llm-native HOPRAG_LOCAL_LLM_BUILD=native scripts/local_llm.sh install
    python bench/bench_local_llm.py --portable-dir ~/.cache/hoprag/local-llm-portable \
        --native-dir ~/.cache/hoprag/local-llm-native --out bench/results/local-llm-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import machine_facts, write_result  # noqa: E402

from indexer.build.pseudo_queries import prompt_for, response_schema  # noqa: E402

DATA = Path(os.environ.get("HOPRAG_DATA", ROOT.parent / "shared" / "data"))
ARTICLES = ("22", "65", "87", "91", "93")


def requests_for() -> list[dict]:
    law = json.loads((DATA / "laws" / "2024-10-11" / "J0070017.json").read_text(encoding="utf-8-sig"))
    by_label = {a["條號"]: a["條文內容"] for a in law["法規內容"] if "條號" in a}
    out = []
    for n in ARTICLES:
        ask = prompt_for(law["法規名稱"], f"第{n}條", by_label[f"第 {n} 條"])
        messages = [{"role": "system", "content": ask.system}]
        for user, reply in ask.examples:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        messages.append({"role": "user", "content": ask.prompt})
        out.append(
            {
                "model": "qwen",
                "temperature": 0,
                "max_tokens": 768,
                "messages": messages,
                "response_format": {"type": "json_object", "schema": response_schema()},
            }
        )
    return out


def with_nonce(body: dict) -> dict:
    messages = [dict(m) for m in body["messages"]]
    messages[0]["content"] = f"[{uuid.uuid4().hex[:8]}] " + messages[0]["content"]
    return body | {"messages": messages}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def amx_instructions(venv: Path) -> int | None:
    libs = list(venv.glob("lib/python*/site-packages/llama_cpp/lib/libggml-cpu.so"))
    if not libs:
        return None
    dump = subprocess.run(["objdump", "-d", str(libs[0])], capture_output=True, text=True).stdout
    return sum(1 for line in dump.splitlines() if "ldtilecfg" in line or "tdpb" in line)


class Server:
    def __init__(self, home: Path, threads: int) -> None:
        self.home, self.threads, self.port = home, threads, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Server:
        model = next(self.home.glob("*.gguf"))
        self.proc = subprocess.Popen(
            [
                str(self.home / "venv" / "bin" / "python"),
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--model_alias",
                "qwen",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "4096",
                "--n_threads",
                str(self.threads),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server in {self.home} exited with {self.proc.returncode}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/docs", timeout=2)
                return self
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError("no server after 120 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def measure(url: str, body: dict, client: httpx.Client) -> dict:
    t0 = time.perf_counter()
    r = client.post(f"{url}/chat/completions", json=with_nonce(body) | {"max_tokens": 1})
    r.raise_for_status()
    prompt_s = time.perf_counter() - t0
    prompt_tokens = r.json()["usage"]["prompt_tokens"]
    first = last = None
    tokens = 0
    t1 = time.perf_counter()
    with client.stream("POST", f"{url}/chat/completions", json=with_nonce(body) | {"stream": True}) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {})
            if delta.get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1
    gen_s = (last - first) if first and last and tokens > 1 else float("nan")
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_s": round(prompt_s, 3),
        "prompt_tokens_per_s": round(prompt_tokens / prompt_s, 1),
        "generated_tokens": tokens,
        "tokens_per_s": round((tokens - 1) / gen_s, 2) if tokens > 1 else None,
        "call_s": round(time.perf_counter() - t1, 2),  # the whole request, as a build's call waits for it
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portable-dir", type=Path, required=True)
    ap.add_argument("--native-dir", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    machine = machine_facts()  # the tree as it was measured, before anything else can change it
    builds = {"portable": args.portable_dir.expanduser(), "native": args.native_dir.expanduser()}
    flags = {name: (home / "venv" / "hoprag-build.txt").read_text().strip() for name, home in builds.items()}
    bodies = requests_for()
    runs: dict[str, list[dict]] = {name: [] for name in builds}
    with httpx.Client(timeout=600) as client:
        for rnd in range(args.rounds):
            for name, home in builds.items():
                with Server(home, args.threads) as server:
                    measure(server.url, bodies[0], client)  # warm-up: page the model in
                    for n, body in zip(ARTICLES, bodies):
                        row = measure(server.url, body, client) | {"round": rnd, "article": n}
                        runs[name].append(row)
                        print(name, row, flush=True)
    summary = {}
    for name, rows in runs.items():
        summary[name] = {
            "prompt_tokens_per_s_median": statistics.median(r["prompt_tokens_per_s"] for r in rows),
            "tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in rows if r["tokens_per_s"]),
            "call_s_median": statistics.median(r["call_s"] for r in rows),
            "amx_instructions": amx_instructions(builds[name] / "venv"),
            "build": flags[name],
        }
    ratios = {
        "prompt_portable_over_native": round(
            summary["portable"]["prompt_tokens_per_s_median"] / summary["native"]["prompt_tokens_per_s_median"], 3
        ),
        "call_native_over_portable": round(
            summary["native"]["call_s_median"] / summary["portable"]["call_s_median"], 3
        ),
        "generation_portable_over_native": round(
            summary["portable"]["tokens_per_s_median"] / summary["native"]["tokens_per_s_median"], 3
        ),
    }
    cpu_flags = Path("/proc/cpuinfo").read_text()
    result = {
        "benchmark": "local-llm builds",
        "machine": machine,
        "cpu_has": {f: f in cpu_flags for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")},
        "model": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        "threads": args.threads,
        "rounds": args.rounds,
        "articles": [f"著作權法第{n}條" for n in ARTICLES],
        "summary": summary,
        "ratios": ratios,
        "runs": runs,
    }
    print(json.dumps({"summary": summary, "ratios": ratios}, ensure_ascii=False, indent=2))
    write_result(args.out, result)


if __name__ == "__main__":
    main()
