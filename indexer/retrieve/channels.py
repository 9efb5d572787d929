"""The ranking channels of one state and their fusion: each a function of a `State` and the
query, so that search, hybrid and hop search score a passage in one and the same way.

Public API:
    check_query(text, k, settings)                           QueryError for an empty, long or bad-k query
    QueryEmbedder(settings).embed(text, st) -> np.ndarray    the query's vector, by the state's embedder
    dense(st, qv, k, allowed, laws=None) -> [(passage id, score)]     exact inner product
    questions(st, qv, k, allowed) -> [(passage id, score, question id)]          best incoming question
    bm25(st, text, n, allowed) -> [(passage id, score)]
    fusion(st, text, qv, depth, settings) -> np.ndarray  one score per passage of st.ids
    fused(st, text, qv, k, allowed, settings, depth=None) -> [(passage id, score)]

They run at the native pools of the caller's `query_threads` block (the Retriever's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EmbedderMismatch, QueryError
from ..settings import Settings
from ..text.ranks import desc_order
from .state import State, allowed_mask

__all__ = ["check_query", "QueryEmbedder", "dense", "questions", "bm25", "fusion", "fused"]


def check_query(text: str, k: int, settings: Settings) -> None:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query")
    if len(text) > settings.max_query_chars:
        raise QueryError(f"query longer than {settings.max_query_chars} characters")
    if not 1 <= k <= settings.max_k:
        raise QueryError(f"k must be between 1 and {settings.max_k}")


class QueryEmbedder:
    """Embeds queries with the embedder a state's vectors were made with, loaded once per
    fingerprint; refuses a name that now loads another model."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._embedders: dict[str, Any] = {}

    def embed(self, text: str, st: State) -> np.ndarray:
        emb = self._embedders.get(st.fingerprint.id)
        if emb is None:
            from ..embedders import get_embedder

            emb = get_embedder(st.fingerprint.name, self.settings)
            if emb.fingerprint != st.fingerprint:
                raise EmbedderMismatch(
                    f"the index holds vectors of {st.fingerprint.describe()}, but that name now "
                    f"loads {emb.fingerprint.describe()}; run `hoprag reembed --embedder {st.fingerprint.name}`"
                )
            self._embedders[st.fingerprint.id] = emb
        return emb.embed([text])


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n highest scores, best first, ties by position."""
    n = min(n, len(scores))
    if n <= 0:
        return np.empty(0, np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top], kind="stable")]


def dense(
    st: State, qv: np.ndarray, k: int, allowed: set[int] | None, laws: list[str] | None = None
) -> list[tuple[int, float]]:
    """Exact top-k by inner product: unfiltered, a half-precision pass proves the top k
    (halfscan.py), else one BLAS call against the in-memory matrix. A filter by law
    alone (`laws`) on a Milvus index is searched in Milvus, where the filter is an index scan;
    so is every unfiltered query on a Milvus IVF index (a library too large to scan exactly)."""
    if not len(st.ids) or (allowed is not None and not allowed):
        return []
    index = st.passage_index
    if getattr(index, "filters_by_law", False) and (laws or (allowed is None and index.approximate)):
        scores, ids = index.search(qv, k, laws=laws)
        return [(int(i), float(sc)) for i, sc in zip(ids[0], scores[0]) if i >= 0 and int(i) in st.info]
    if allowed is None:  # half the bytes read, the same exact answer (halfscan.py)
        proved = st.half_scan().top(qv[0], k)
        if proved is not None:
            return [(int(st.ids[i]), float(sc)) for i, sc in zip(*proved)]
    scores = st.matrix @ qv[0]
    if allowed is not None:
        scores = np.where(allowed_mask(st.ids, allowed), scores, -np.inf)
    return [(int(st.ids[i]), float(scores[i])) for i in _best(scores, k) if np.isfinite(scores[i])]


def questions(st: State, qv: np.ndarray, k: int, allowed: set[int] | None) -> list[tuple[int, float, int]]:
    """Best incoming question per passage: (passage id, score, question id)."""
    n = st.q_in.ntotal
    if n == 0:
        return []
    scores, ids = st.q_in.search(qv, min(n, max(4 * k, 50)))
    best: dict[int, tuple[float, int]] = {}
    for q, sc in zip(ids[0].tolist(), scores[0].tolist()):
        if q < 0:
            continue
        pid = st.q_owner.get(q)
        if pid is None or (allowed is not None and pid not in allowed) or pid not in st.info:
            continue
        if pid not in best:
            best[pid] = (sc, q)
    return sorted(((p, sc, q) for p, (sc, q) in best.items()), key=lambda t: -t[1])[:k]


def bm25(st: State, text: str, n: int, allowed: set[int] | None) -> list[tuple[int, float]]:
    """The lexical channel alone: passages with a positive BM25 score, best first."""
    _, ids = st.bm25()
    scores = st.bm25_scores(text)
    if allowed is not None:
        scores = np.where(allowed_mask(ids, allowed), scores, 0.0)
    top = desc_order(scores)[:n]
    return [(int(ids[i]), float(scores[i])) for i in top if scores[i] > 0]


def fusion(st: State, text: str, qv: np.ndarray, depth: int, settings: Settings) -> np.ndarray:
    """Reciprocal rank fusion over the whole library, one score per passage of `st.ids`: the
    dense rank and the BM25 rank of every passage, and the rank among the top `depth` incoming
    questions (× question_weight). Ranks over the whole library, not top-50 lists, so that hybrid
    search and hop search's SIM are one and the same score (on the STARD dev half this is worth
    +0.3 points recall@10 at rrf_k 30 and nothing at 60: consistency, not accuracy, is the why)."""
    rrf_k, q_weight = settings.rrf_k, settings.question_weight
    n = len(st.ids)
    scores = np.zeros(n)
    if not n:
        return scores
    ranks = np.empty(n, np.int64)
    similarity = st.matrix @ qv[0]
    ranks[desc_order(similarity)] = np.arange(n)
    scores += 1.0 / (rrf_k + ranks + 1)
    lexical = st.bm25_scores(text)
    pos = st.bm25_positions()
    matched = np.flatnonzero((lexical > 0) & (pos >= 0))
    order = matched[desc_order(lexical[matched])]
    scores[pos[order]] += 1.0 / (rrf_k + np.arange(len(order)) + 1)
    if st.q_in.ntotal and q_weight > 0:
        for rank, (pid, _, _) in enumerate(questions(st, qv, depth, None)):
            row = st.row_of.get(pid)
            if row is not None:
                scores[row] += q_weight / (rrf_k + rank + 1)
    return scores


def fused(
    st: State,
    text: str,
    qv: np.ndarray,
    k: int,
    allowed: set[int] | None,
    settings: Settings,
    depth: int | None = None,
) -> list[tuple[int, float]]:
    """The best max(k, depth) passages by `fusion`, within `allowed` (hybrid search)."""
    depth = depth or max(50, 5 * k)
    scores = fusion(st, text, qv, depth, settings)
    if allowed is not None:
        scores = np.where(allowed_mask(st.ids, allowed), scores, 0.0)
    return [(int(st.ids[i]), float(scores[i])) for i in _best(scores, max(k, depth)) if scores[i] > 0]
