"""Citation edges: how many references the parser finds and resolves, on the 30 Taiwan laws
(Traditional Chinese, laws/2024-10-11) and on STARD's PRC corpus (Simplified Chinese, 1,445
articles of many laws in one JSONL file), and how long it takes; baseline: the time to read the
library, measured in the same run.

Run (from the repository root, in the virtualenv; seconds):

    python bench/bench_citations.py --out bench/results/citations-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import machine_facts, write_result  # noqa: E402

from indexer.library import read_library  # noqa: E402
from indexer.text.citations import resolve_citations  # noqa: E402

DATA = Path(os.environ.get("HOPRAG_DATA", ROOT.parent / "shared" / "data"))
LIBRARIES = {
    "taiwan-30-laws-2024": DATA / "laws" / "2024-10-11",
    "stard-prc-corpus": DATA / "eval" / "stard" / "corpus.jsonl",
}


def measure(path: Path) -> dict:
    t0 = time.perf_counter()
    lib = read_library(path)
    read_s = time.perf_counter() - t0
    report = resolve_citations(lib)
    return {
        "articles": sum(len(d.passages) for d in lib.documents),
        "read_seconds": round(read_s, 3),
        "resolve_seconds": round(report.seconds, 3),
        "references_resolved": report.resolved,
        "references_unresolved": report.unresolved,
        "edges": dict(report.edges_by_kind),
        "resolved_by_kind": dict(report.by_kind),
        "unresolved_by_reason": dict(report.unresolved_by_reason),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    machine = machine_facts()
    result = {"benchmark": "citation edges", "machine": machine,
              "libraries": {name: measure(path) for name, path in LIBRARIES.items()}}
    print(json.dumps(result["libraries"], ensure_ascii=False, indent=2))
    write_result(args.out, result)


if __name__ == "__main__":
    main()
