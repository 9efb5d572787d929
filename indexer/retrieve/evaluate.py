"""Retrieval quality of an index on a query set: recall@k, complete@10, MRR and nDCG@10 per search mode.

A query set is JSONL, one object per line:

    {"id": "q1", "question": "夫妻一方经营个体工商户所欠债务，谁偿还？", "relevant": ["707"]}

`question` may be spelled `query`; `id` is optional (default: the line number); `relevant` lists
passage keys (a JSONL library's ids are its keys) or numeric passage ids. The STARD benchmark in
the shared data (`eval/stard/queries.jsonl`) is in this format.

Definitions (binary relevance; one ranked list of depth max(max(ks), 10) per query and mode,
every k-metric computed on a prefix of it):

    recall@k   |relevant ∩ top k| / |relevant|, computed per query, then averaged over the scored
               queries (macro average, the usual definition; a query with 3 relevant articles of
               which 2 are in the top 10 contributes 0.667)
    complete@10  1 if every relevant passage is in the top 10, else 0; averaged (a question that
               needs two articles is answered only when both are there: recall@10 gives it 0.5)
    MRR        1 / rank of the first relevant passage within the top max(ks), 0 if none; averaged
    nDCG@10    DCG = Σ_{rank r ≤ 10, relevant} 1 / log2(r + 1); ideal DCG puts min(|relevant|, 10)
               relevant passages at ranks 1..; nDCG = DCG / ideal DCG; averaged

Relevance is matched on the passage key, and, for an item that is no key of the index but a
number, on the numeric passage id. Relevant items the index does not hold cannot be found by any
mode, so they are left out of a query's relevant set (a query with 2 of 3 items present is scored
against those 2); a query with none present is skipped from every average. Both are counted in
the report (`skipped`, `partial`, `missing_relevant`), never silently dropped. A query the index
refuses (QueryError: too long, ...) stays in the averages with an empty ranking (scores 0) and is
counted in the mode's `failed`.

Modes: dense | questions | hybrid (Index.search) and hop (Index.hop_search, mode="similarity",
n_hop rounds). `questions` needs LLM pseudo-queries: on an index without them it is skipped, with
the reason in `report.skipped_modes`. Each mode gets one untimed warm-up query (model load, BM25
build), then every query is searched once (its text embedded once per mode); seconds and
queries/s are the wall time of that loop (CPU seconds of the process beside them).

Public API:
    EvalQuery(id, question, relevant)
    load_queries(path) -> list[EvalQuery]              QueryFileError (a ValueError) names file and line
    split_queries(queries, part) -> list[EvalQuery]     part "dev" | "test" | "all": a fixed half split by
                                                        the sha256 of each query id (tune on dev, report on test)
    evaluate(index, queries, modes=("dense", "hybrid", "hop"), ks=(1, 5, 10, 20), n_hop=2,
             progress=None, keep_rankings=False) -> EvalReport
    EvalReport.to_dict(), ModeResult
    format_table(report) -> str                         Markdown: modes × metrics, deltas vs dense
    recall_at(ranked, relevant, k), complete_at(ranked, relevant, k), reciprocal_rank(ranked, relevant, depth),
    ndcg_at(ranked, relevant, k)
    MODES, DEFAULT_KS, NDCG_K, COMPLETE_K

Query sets live in eval_queries.py, the metrics in eval_metrics.py, the report and its table in
eval_report.py; all of the above stay importable from here. This module runs an evaluation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

import numpy as np

from .eval_metrics import COMPLETE_K, NDCG_K, complete_at, dedupe, ndcg_at, recall_at, reciprocal_rank
from .eval_queries import SPLITS, EvalQuery, QueryFileError, load_queries, split_queries
from .eval_report import EvalReport, ModeResult, format_table

__all__ = [
    "EvalQuery",
    "QueryFileError",
    "load_queries",
    "split_queries",
    "SPLITS",
    "evaluate",
    "EvalReport",
    "ModeResult",
    "format_table",
    "recall_at",
    "complete_at",
    "reciprocal_rank",
    "ndcg_at",
    "MODES",
    "DEFAULT_KS",
    "NDCG_K",
    "COMPLETE_K",
]

MODES = ("dense", "questions", "hybrid", "bm25", "hop")
DEFAULT_KS = (1, 5, 10, 20)
_MAX_ERRORS = 5  # error messages kept per mode


def _index_facts(index, st) -> dict:
    from ..store.graph import EDGE_KINDS

    fp = index.fingerprint
    counts = np.bincount(st.edges["kind"].astype(int), minlength=len(EDGE_KINDS)) if len(st.edges) else None
    edges = {kind: int(counts[i]) if counts is not None else 0 for i, kind in enumerate(EDGE_KINDS)}
    return {
        "generation": st.generation,
        "embedder": fp.name if fp else None,
        "passages": len(st.info),
        "vectors": len(st.ids),
        "pseudo_queries_in": int(st.q_in.ntotal),
        "pseudo_queries_out": len(st.q_out_row),
        "edges": edges,
    }


def evaluate(
    index,
    queries: Sequence[EvalQuery],
    modes: Sequence[str] = ("dense", "hybrid", "hop"),
    ks: Sequence[int] = DEFAULT_KS,
    n_hop: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
    keep_rankings: bool = False,
) -> EvalReport:
    """Search every query in every mode and average recall@k, MRR and nDCG@10 (see the module doc).

    progress(stage, done, total) is called with stage "eval <mode>"; keep_rankings=True keeps each
    query's ranked keys and scores in ModeResult.per_query (for analysis; to_dict(rankings=True))."""
    from ..errors import QueryError

    modes = list(dict.fromkeys(modes))
    if not modes:
        raise ValueError("no modes to evaluate")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown mode {unknown[0]!r}: choose from {', '.join(MODES)}")
    ks = tuple(sorted(set(int(k) for k in ks)))
    max_k = index.settings.max_k
    if not ks or ks[0] < 1 or ks[-1] > max_k:
        raise ValueError(f"ks must be between 1 and {max_k}")
    if not queries:
        raise ValueError("no queries")
    progress = progress or (lambda *a: None)
    depth = max(ks[-1], NDCG_K) if max_k >= NDCG_K else ks[-1]

    st = index.retriever.state()
    key_of = {pid: v.key for pid, v in st.info.items()}

    def resolve(item: str) -> int | None:
        if item in st.by_key:
            return st.by_key[item]
        if item.lstrip("-").isdigit() and int(item) in key_of:
            return int(item)
        return None

    scored: list[tuple[EvalQuery, frozenset[int]]] = []
    skipped, partial, missing = [], 0, 0
    for q in queries:
        found = [p for p in (resolve(r) for r in q.relevant) if p is not None]
        missing += len(q.relevant) - len(found)
        if not found:
            skipped.append(q.id)
            continue
        partial += len(found) < len(q.relevant)
        scored.append((q, frozenset(found)))

    skipped_modes: dict[str, str] = {}
    if "questions" in modes and st.q_in.ntotal == 0:
        skipped_modes["questions"] = "the index has no pseudo-queries: build it with --llm"

    def run(mode: str, text: str):
        if mode == "hop":
            return index.hop_search(text, k=depth, n_hop=n_hop, mode="similarity")
        return index.search(text, k=depth, mode=mode)

    results: dict[str, ModeResult] = {}
    for mode in modes:
        if mode in skipped_modes:
            continue
        stage = f"eval {mode}"
        if scored:
            with contextlib.suppress(QueryError):  # untimed: model load, BM25 index, first-call costs
                run(mode, scored[0][0].question)
        progress(stage, 0, len(scored))
        sums = {k: 0.0 for k in ks}
        rr_sum = ndcg_sum = complete_sum = 0.0
        failed = 0
        errors: list[str] = []
        per_query: list[dict] | None = [] if keep_rankings else None
        start, cpu_start = time.perf_counter(), time.process_time()
        for n, (q, rel) in enumerate(scored, 1):
            try:
                ranked = [h.passage_id for h in run(mode, q.question)]
            except QueryError as exc:
                failed += 1
                if len(errors) < _MAX_ERRORS:
                    errors.append(f"{q.id}: {exc}")
                ranked = []
            ranked = dedupe(ranked)
            recalls = {k: recall_at(ranked, rel, k) for k in ks}
            rr = reciprocal_rank(ranked, rel, ks[-1])
            nd = ndcg_at(ranked, rel, NDCG_K)
            for k in ks:
                sums[k] += recalls[k]
            rr_sum += rr
            ndcg_sum += nd
            complete_sum += complete_at(ranked, rel, COMPLETE_K)
            if per_query is not None:
                per_query.append(
                    {
                        "id": q.id,
                        "ranked": [key_of.get(p, str(p)) for p in ranked],
                        "rr": rr,
                        "ndcg": nd,
                        "recall": {str(k): v for k, v in recalls.items()},
                    }
                )
            progress(stage, n, len(scored))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        n = len(scored)
        results[mode] = ModeResult(
            mode=mode,
            queries=n,
            recall={k: (sums[k] / n if n else 0.0) for k in ks},
            mrr=rr_sum / n if n else 0.0,
            ndcg=ndcg_sum / n if n else 0.0,
            seconds=seconds,
            queries_per_second=n / seconds if seconds > 0 else 0.0,
            cpu_seconds=cpu,
            failed=failed,
            errors=errors,
            per_query=per_query,
            complete=complete_sum / n if n else 0.0,
        )
    return EvalReport(
        ks=ks,
        n_hop=n_hop,
        queries_total=len(queries),
        queries_scored=len(scored),
        skipped=skipped,
        partial=partial,
        missing_relevant=missing,
        modes=results,
        skipped_modes=skipped_modes,
        index=_index_facts(index, st),
    )
