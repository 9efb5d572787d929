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
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .library.jsonl import json_objects

__all__ = [
    "EvalQuery",
    "QueryFileError",
    "load_queries",
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
NDCG_K = 10
COMPLETE_K = 10
_MAX_ERRORS = 5  # error messages kept per mode


@dataclass(frozen=True)
class EvalQuery:
    id: str
    question: str
    relevant: tuple[str, ...]


class QueryFileError(ValueError):
    """A query file could not be read. The message names the file (and the line)."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None):
        self.path, self.reason, self.line = str(path), reason, line
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


def load_queries(path: str | Path) -> list[EvalQuery]:
    """Read a JSONL query set ({question | query, relevant: [keys or ids], id?} per line)."""
    from storage.files import RegularFileError, read_regular

    path = Path(path)
    try:  # never a FIFO (it would hang the CLI) or a device; 64 MB is ~300k queries
        raw = read_regular(path, 64 * 2**20)
    except RegularFileError as exc:
        raise QueryFileError(path, exc.reason) from None
    queries: list[EvalQuery] = []
    seen: dict[str, int] = {}
    for lineno, obj in json_objects(
        raw, lambda reason, line: QueryFileError(path, reason, line), "question and relevant"
    ):
        text = obj.get("question", obj.get("query"))
        if not isinstance(text, str) or not text.strip():
            raise QueryFileError(path, "missing or empty question (or query)", lineno)
        rel = obj.get("relevant")
        if not isinstance(rel, list) or not rel:
            raise QueryFileError(path, "relevant must be a non-empty list of passage keys or ids", lineno)
        items: list[str] = []
        for r in rel:
            if isinstance(r, bool) or not isinstance(r, (str, int)) or not str(r).strip():
                raise QueryFileError(path, f"relevant item {r!r} is not a passage key or id", lineno)
            if str(r).strip() not in items:
                items.append(str(r).strip())
        qid = obj.get("id", lineno)
        if isinstance(qid, bool) or not isinstance(qid, (str, int)) or not str(qid).strip():
            raise QueryFileError(path, f"id {qid!r} must be a string or a number", lineno)
        qid = str(qid).strip()
        if qid in seen:
            raise QueryFileError(path, f"id {qid!r} already used on line {seen[qid]}", lineno)
        seen[qid] = lineno
        queries.append(EvalQuery(id=qid, question=text.strip(), relevant=tuple(items)))
    if not queries:
        raise QueryFileError(path, "no queries")
    return queries


SPLITS = ("all", "dev", "test")


def split_queries(queries: Sequence[EvalQuery], part: str) -> list[EvalQuery]:
    """The dev or test half of a query set. A query's half depends on its id alone (the parity of
    the first byte of sha256(id)): fixed across runs, machines and orderings of the file, and
    about half of any query set each."""
    if part not in SPLITS:
        raise ValueError(f"unknown split {part!r}: {', '.join(SPLITS)}")
    if part == "all":
        return list(queries)
    want = 0 if part == "dev" else 1
    return [q for q in queries if hashlib.sha256(q.id.encode("utf-8")).digest()[0] % 2 == want]


# ---------------------------------------------------------------- metrics (one query)
def _dedupe(ranked: Iterable[Hashable]) -> list:
    return list(dict.fromkeys(ranked))


def recall_at(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """Share of `relevant` among the first k of `ranked` (a repeated item counts once, in its first place)."""
    rel = set(relevant)
    if not rel:
        raise ValueError("recall of a query without relevant items")
    return len(rel.intersection(_dedupe(ranked)[:k])) / len(rel)


def complete_at(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """1.0 if every one of `relevant` is among the first k of `ranked`, else 0.0."""
    return 1.0 if recall_at(ranked, relevant, k) == 1.0 else 0.0


def reciprocal_rank(ranked: Sequence[Hashable], relevant: Iterable[Hashable], depth: int | None = None) -> float:
    """1 / rank of the first relevant item within the first `depth` (all if None); 0 if none."""
    rel = set(relevant)
    for rank, item in enumerate(_dedupe(ranked)[:depth], 1):
        if item in rel:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int = NDCG_K) -> float:
    """Binary-relevance nDCG@k; the ideal ranking holds min(|relevant|, k) relevant items on top."""
    rel = set(relevant)
    if not rel:
        raise ValueError("nDCG of a query without relevant items")
    dcg = sum(1.0 / math.log2(r + 1) for r, item in enumerate(_dedupe(ranked)[:k], 1) if item in rel)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
    return dcg / ideal


# ---------------------------------------------------------------- report
@dataclass
class ModeResult:
    mode: str
    queries: int  # queries scored (averaged over)
    recall: dict[int, float]  # k -> mean recall@k
    mrr: float
    ndcg: float  # mean nDCG@NDCG_K
    seconds: float  # wall time of the timed loop
    queries_per_second: float
    cpu_seconds: float = 0.0  # CPU time of this process (all threads) in the loop
    failed: int = 0  # queries the index refused (scored 0)
    errors: list[str] = field(default_factory=list)
    per_query: list[dict] | None = None  # keep_rankings: {id, ranked keys, rr, ndcg, recall}
    complete: float = 0.0  # mean complete@COMPLETE_K

    def metric(self, name: str) -> float:
        """'recall@10', 'complete@10', 'mrr' or 'ndcg@10'."""
        if name == "mrr":
            return self.mrr
        if name == f"complete@{COMPLETE_K}":
            return self.complete
        if name == f"ndcg@{NDCG_K}":
            return self.ndcg
        if name.startswith("recall@"):
            return self.recall[int(name[7:])]
        raise KeyError(name)

    def to_dict(self, rankings: bool = False) -> dict:
        d = {
            "mode": self.mode,
            "queries": self.queries,
            "recall": {str(k): round(v, 6) for k, v in self.recall.items()},
            f"complete@{COMPLETE_K}": round(self.complete, 6),
            "mrr": round(self.mrr, 6),
            f"ndcg@{NDCG_K}": round(self.ndcg, 6),
            "seconds": round(self.seconds, 3),
            "queries_per_second": round(self.queries_per_second, 2),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "failed": self.failed,
            "errors": list(self.errors),
        }
        if rankings and self.per_query is not None:
            d["per_query"] = self.per_query
        return d


@dataclass
class EvalReport:
    ks: tuple[int, ...]
    n_hop: int
    queries_total: int
    queries_scored: int
    skipped: list[str]  # ids of queries with no relevant passage in the index
    partial: int  # scored queries with some relevant items missing
    missing_relevant: int  # relevant items (over all queries) not in the index
    modes: dict[str, ModeResult]
    skipped_modes: dict[str, str]  # mode -> why it was not run
    index: dict  # generation, embedder, passages, vectors, pseudo-queries, edges

    def metrics(self) -> list[str]:
        return [f"recall@{k}" for k in self.ks] + [f"complete@{COMPLETE_K}", "mrr", f"ndcg@{NDCG_K}"]

    def delta(self, mode: str, metric: str, baseline: str = "dense") -> float | None:
        if mode not in self.modes or baseline not in self.modes:
            return None
        return self.modes[mode].metric(metric) - self.modes[baseline].metric(metric)

    def to_dict(self, rankings: bool = False) -> dict:
        dense = self.modes.get("dense")
        return {
            "ks": list(self.ks),
            "ndcg_k": NDCG_K,
            "n_hop": self.n_hop,
            "queries_total": self.queries_total,
            "queries_scored": self.queries_scored,
            "skipped": len(self.skipped),
            "skipped_ids": self.skipped[:50],
            "partial": self.partial,
            "missing_relevant": self.missing_relevant,
            "modes": {m: r.to_dict(rankings) for m, r in self.modes.items()},
            "delta_vs_dense": {
                m: {x: round(r.metric(x) - dense.metric(x), 6) for x in self.metrics()}
                for m, r in self.modes.items()
                if m != "dense" and dense is not None
            },
            "skipped_modes": dict(self.skipped_modes),
            "index": dict(self.index),
        }


def format_table(report: EvalReport) -> str:
    """A Markdown table, one row per mode; other modes' cells carry their difference to dense."""
    metrics = report.metrics()
    names = {f"recall@{k}": f"R@{k}" for k in report.ks} | {
        f"complete@{COMPLETE_K}": f"C@{COMPLETE_K}",
        "mrr": "MRR",
        f"ndcg@{NDCG_K}": f"nDCG@{NDCG_K}",
    }
    lines = [
        "| mode | " + " | ".join(names[m] for m in metrics) + " | s | q/s |",
        "|---|" + "---:|" * (len(metrics) + 2),
    ]
    for mode, r in report.modes.items():
        label = f"hop (n_hop={report.n_hop})" if mode == "hop" else mode
        cells = []
        for m in metrics:
            d = report.delta(mode, m)
            cells.append(f"{r.metric(m):.3f}" + (f" ({d:+.3f})" if d is not None and mode != "dense" else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {r.seconds:.1f} | {r.queries_per_second:.1f} |")
    notes = [f"{report.queries_scored:,} of {report.queries_total:,} queries scored"]
    if report.skipped:
        notes.append(f"{len(report.skipped):,} skipped (no relevant passage in the index)")
    if report.partial:
        notes.append(
            f"{report.partial:,} scored against the part of their relevant passages the index holds "
            f"({report.missing_relevant:,} relevant items missing)"
        )
    failed = {m: r.failed for m, r in report.modes.items() if r.failed}
    if failed:
        notes.append("refused queries (scored 0): " + ", ".join(f"{m} {n}" for m, n in failed.items()))
    out = "\n".join(lines) + "\n\n" + "; ".join(notes) + "."
    if "dense" in report.modes and len(report.modes) > 1:
        out += " In parentheses: difference to dense."
    for mode, why in report.skipped_modes.items():
        out += f"\n{mode}: not run ({why})."
    return out


# ---------------------------------------------------------------- evaluation
def _index_facts(index, st) -> dict:
    from .graph import EDGE_KINDS

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
    from .errors import QueryError

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
            ranked = _dedupe(ranked)
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
