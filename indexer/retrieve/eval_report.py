"""What an evaluation found: per-mode averages (ModeResult), the whole report (EvalReport, its JSON
form with deltas against dense) and its Markdown table.

Public API:
    ModeResult(mode, queries, recall, mrr, ndcg, seconds, queries_per_second, ...)
        .metric(name) -> float          'recall@10', 'complete@10', 'mrr' or 'ndcg@10'
        .to_dict(rankings=False) -> dict
    EvalReport(ks, n_hop, queries_total, queries_scored, skipped, partial, missing_relevant, modes,
               skipped_modes, index)
        .metrics() -> list[str]   .delta(mode, metric, baseline="dense") -> float | None
        .to_dict(rankings=False) -> dict
    format_table(report: EvalReport) -> str     Markdown: modes x metrics, deltas vs dense
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .eval_metrics import COMPLETE_K, NDCG_K

__all__ = ["ModeResult", "EvalReport", "format_table"]


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
