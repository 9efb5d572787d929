"""Point-in-time law on the bundled data: what keeping every version costs, and how fast the law
as of a date answers, against today's law on the same index.

  1. builds      2022-01-07 into an empty home, then 2024-10-11 on it (the update embeds only what
                 changed), and the same two in the reverse order into another home; the diff of the
                 two dates must come out the same from both.
  2. storage     article versions kept vs passages of today; database size of each home.
  3. diff        `Index.diff(2022 date, 2024 date)`: seconds and counts.
  4. as of       the first query as of 2022-06-01 (its state: versions, cached vectors, BM25,
                 citation edges) and then p50/p90 per query as of that date vs today, for dense,
                 hybrid and bm25, over bench_service's 54 questions, 3 passes each, interleaved.

    python bench/bench_history.py --out bench/results/history-cpu-2core.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_service import QUESTIONS  # noqa: E402
from bench_store import machine_facts, write_result  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from indexer.index import Index  # noqa: E402
from storage.models import ArticleVersionRow, PassageRow  # noqa: E402

LAWS = Path(os.environ.get("HOPRAG_DATA", "/work/shared/data")) / "laws"
OLD, NEW = LAWS / "2022-01-07", LAWS / "2024-10-11"
AS_OF = "2022-06-01"
MODES = ("dense", "hybrid", "bm25")
PASSES = 3
EMBEDDER = "use-multilingual"


def _timed_build(home: Path, library: Path) -> dict:
    with Index(home) as idx:
        t0 = time.perf_counter()
        r = idx.build(library, embedder=EMBEDDER)
        return {"library": library.name, "as_of": r.as_of, "history_only": r.history_only,
                "embedded": r.embedded, "cache_hits": r.cache_hits, "seconds": time.perf_counter() - t0,
                "generation": r.generation}


def _count(idx: Index, model) -> int:
    with idx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    load_before = os.getloadavg()
    result: dict = {"benchmark": "history", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "embedder": EMBEDDER, "as_of": AS_OF, "questions": len(QUESTIONS), "passes": PASSES}
    with tempfile.TemporaryDirectory(prefix="bench-history-") as t:
        fwd, bwd = Path(t) / "forward", Path(t) / "backward"
        result["forward"] = [_timed_build(fwd, OLD), _timed_build(fwd, NEW)]
        result["backward"] = [_timed_build(bwd, NEW), _timed_build(bwd, OLD)]
        d_old, d_new = result["forward"][0]["as_of"], result["forward"][1]["as_of"]
        with Index(fwd) as a, Index(bwd) as b:
            t0 = time.perf_counter()
            diff = a.diff(d_old, d_new)
            diff_s = time.perf_counter() - t0
            same = diff == b.diff(d_old, d_new)
            result["diff"] = {"from": d_old, "to": d_new, "seconds": diff_s, "counts": diff["counts"],
                              "renamed_laws": diff["renamed_laws"], "same_in_both_orders": same}
            result["storage"] = {"passages": _count(a, PassageRow), "article_versions": _count(a, ArticleVersionRow),
                                 "forward_db_bytes": (fwd / "index.db").stat().st_size,
                                 "backward_db_bytes": (bwd / "index.db").stat().st_size}
        with Index(fwd) as idx:
            idx.search(QUESTIONS[0], k=10)                       # today's state and the model, loaded
            t0 = time.perf_counter()
            idx.search(QUESTIONS[0], k=10, as_of=AS_OF)
            first = time.perf_counter() - t0
            times: dict[str, dict[str, list[float]]] = {m: {"now": [], "as_of": []} for m in MODES}
            for _ in range(PASSES):
                for q in QUESTIONS:
                    for mode in MODES:
                        for which, as_of in (("now", None), ("as_of", AS_OF)):
                            t0 = time.perf_counter()
                            idx.search(q, k=10, mode=mode, as_of=as_of)
                            times[mode][which].append(time.perf_counter() - t0)
        result["first_as_of_query_seconds"] = first
        result["latency_ms"] = {
            m: {w: {"p50": 1000 * statistics.median(v), "p90": 1000 * _percentile(v, 0.9)} for w, v in ws.items()}
            | {"ratio_p50": statistics.median(ws["as_of"]) / statistics.median(ws["now"])}
            for m, ws in times.items()
        }
    result["machine"] = machine_facts() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    f, b = result["forward"], result["backward"]
    print(f"builds forward: {f[0]['embedded']} then {f[1]['embedded']} texts embedded "
          f"({f[0]['seconds']:.1f} s, {f[1]['seconds']:.1f} s); backward: {b[0]['embedded']} then "
          f"{b[1]['embedded']} (history only: {b[1]['history_only']})")
    print(f"diff {d_old} → {d_new}: {result['diff']['counts']} in {result['diff']['seconds']:.2f} s; "
          f"same in both orders: {result['diff']['same_in_both_orders']}")
    st = result["storage"]
    print(f"versions kept {st['article_versions']} for {st['passages']} passages")
    print(f"first query as of {AS_OF}: {first:.2f} s")
    for m, r in result["latency_ms"].items():
        print(f"{m:7s} p50 now {r['now']['p50']:.1f} ms, as of {r['as_of']['p50']:.1f} ms, ratio {r['ratio_p50']:.2f}")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
