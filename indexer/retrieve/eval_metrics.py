"""Retrieval metrics of one query's ranking against its relevant items (binary relevance; the
definitions, and how they are averaged over a query set, are in evaluate.py's module doc).

Public API:
    recall_at(ranked, relevant, k) -> float
    complete_at(ranked, relevant, k) -> float              1.0 if all of relevant are in the top k
    reciprocal_rank(ranked, relevant, depth=None) -> float
    ndcg_at(ranked, relevant, k=NDCG_K) -> float
    dedupe(ranked) -> list                                 each item in its first place only
    NDCG_K, COMPLETE_K                                     the k of the reported nDCG and complete
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

__all__ = ["recall_at", "complete_at", "reciprocal_rank", "ndcg_at", "dedupe", "NDCG_K", "COMPLETE_K"]

NDCG_K = 10
COMPLETE_K = 10


def dedupe(ranked: Iterable[Hashable]) -> list:
    """`ranked` with each item in its first place only (a passage found twice counts once)."""
    return list(dict.fromkeys(ranked))


def recall_at(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """Share of `relevant` among the first k of `ranked` (a repeated item counts once, in its first place)."""
    rel = set(relevant)
    if not rel:
        raise ValueError("recall of a query without relevant items")
    return len(rel.intersection(dedupe(ranked)[:k])) / len(rel)


def complete_at(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """1.0 if every one of `relevant` is among the first k of `ranked`, else 0.0."""
    return 1.0 if recall_at(ranked, relevant, k) == 1.0 else 0.0


def reciprocal_rank(ranked: Sequence[Hashable], relevant: Iterable[Hashable], depth: int | None = None) -> float:
    """1 / rank of the first relevant item within the first `depth` (all if None); 0 if none."""
    rel = set(relevant)
    for rank, item in enumerate(dedupe(ranked)[:depth], 1):
        if item in rel:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int = NDCG_K) -> float:
    """Binary-relevance nDCG@k; the ideal ranking holds min(|relevant|, k) relevant items on top."""
    rel = set(relevant)
    if not rel:
        raise ValueError("nDCG of a query without relevant items")
    dcg = sum(1.0 / math.log2(r + 1) for r, item in enumerate(dedupe(ranked)[:k], 1) if item in rel)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
    return dcg / ideal
