"""HopRAG edge matching: every outgoing question of a passage meets the incoming questions of the
other passages in one batched FAISS search; the best matches become edges.

All arrays, no Python loop over pairs: one search (exact inner product up to `exact_limit`
incoming questions, an IVF index above), then masks, a per-passage rank and a global cap.

Public API:
    EdgeParams                  top_k, threshold, max_per_passage, keyword_weight, exact_limit
    QuestionEdges               parallel arrays: source, target, out_q, in_q, score
    match_questions(out_ids, out_owner, out_vecs, in_ids, in_owner, in_vecs, params, keywords=None) -> QuestionEdges
    total_cap(n_passages) -> int     n·log n edges at most
    keyword_set(text) -> frozenset   jieba keywords without Traditional Chinese stop words
    keywords_for({qid: text}) -> (qid -> frozenset)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = ["EdgeParams", "QuestionEdges", "match_questions", "total_cap", "keyword_set", "keywords_for"]


@dataclass(frozen=True)
class EdgeParams:
    top_k: int = 2                  # matches kept per outgoing question
    threshold: float = 0.5          # minimum score of an edge
    max_per_passage: int = 8        # outgoing question edges per passage
    keyword_weight: float = 0.0     # 0: dense cosine only; w: (1-w)·cosine + w·keyword Jaccard
    exact_limit: int = 50_000       # above this many incoming questions, search an IVF index


@dataclass
class QuestionEdges:
    source: np.ndarray              # passage ids (int64)
    target: np.ndarray
    out_q: np.ndarray               # pseudo-query ids (int64)
    in_q: np.ndarray
    score: np.ndarray               # float32

    def __len__(self) -> int:
        return int(self.source.shape[0])

    def take(self, keep: np.ndarray) -> "QuestionEdges":
        return QuestionEdges(self.source[keep], self.target[keep], self.out_q[keep], self.in_q[keep], self.score[keep])

    @classmethod
    def empty(cls) -> "QuestionEdges":
        z = np.zeros(0, np.int64)
        return cls(z, z, z, z, np.zeros(0, np.float32))


def total_cap(n_passages: int) -> int:
    return max(1, int(n_passages * math.log(max(n_passages, 2))))


def _search(in_vecs: np.ndarray, out_vecs: np.ndarray, k: int, exact_limit: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss
    d = in_vecs.shape[1]
    n = in_vecs.shape[0]
    if n <= exact_limit:
        index = faiss.IndexFlatIP(d)
    else:
        # ~4·sqrt(n) lists. On the real question vectors of the 30 laws, 16 probes found 94.6% of
        # the exact edges, 32 found 97.6%, 64 98.7% (bench/bench_graph.py): probe at least 32.
        nlist = int(4 * math.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = in_vecs[rng.choice(n, size=min(n, nlist * 40), replace=False)]
        index.train(sample)
        index.nprobe = max(32, nlist // 20)
    index.add(in_vecs)
    return index.search(out_vecs, k)


def _rank_within(groups: np.ndarray, order_score: np.ndarray) -> np.ndarray:
    """Rank of each element inside its group, best score first (0 = best)."""
    order = np.lexsort((-order_score, groups))
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    ranks_sorted = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    return ranks


def match_questions(out_ids: np.ndarray, out_owner: np.ndarray, out_vecs: np.ndarray,
                    in_ids: np.ndarray, in_owner: np.ndarray, in_vecs: np.ndarray,
                    params: EdgeParams = EdgeParams(),
                    keywords: Callable[[int], frozenset] | None = None) -> QuestionEdges:
    """Edges from each outgoing question to the best incoming questions of other passages."""
    if len(out_ids) == 0 or len(in_ids) == 0:
        return QuestionEdges.empty()
    # A passage's own incoming questions can take up to this many of the top slots.
    own = int(np.bincount(np.unique(in_owner, return_inverse=True)[1]).max())
    k = min(len(in_ids), params.top_k + own)
    scores, pos = _search(np.ascontiguousarray(in_vecs, np.float32), np.ascontiguousarray(out_vecs, np.float32),
                          k, params.exact_limit)
    valid = pos >= 0
    safe = np.where(valid, pos, 0)
    target = in_owner[safe]
    ok = valid & (target != out_owner[:, None]) & (scores >= params.threshold)
    ok &= np.cumsum(ok, axis=1) <= params.top_k
    rows, cols = np.nonzero(ok)
    edges = QuestionEdges(out_owner[rows].astype(np.int64), target[rows, cols].astype(np.int64),
                          out_ids[rows].astype(np.int64), in_ids[safe[rows, cols]].astype(np.int64),
                          scores[rows, cols].astype(np.float32))
    if params.keyword_weight > 0 and keywords is not None and len(edges):
        jac = np.array([_jaccard(keywords(int(a)), keywords(int(b))) for a, b in zip(edges.out_q, edges.in_q)],
                       dtype=np.float32)
        edges.score = (1 - params.keyword_weight) * edges.score + params.keyword_weight * jac
        edges = edges.take(edges.score >= params.threshold)
    if not len(edges):
        return edges
    edges = edges.take(_rank_within(edges.source, edges.score) < params.max_per_passage)
    cap = total_cap(len(np.unique(np.concatenate([out_owner, in_owner]))))
    if len(edges) > cap:
        edges = edges.take(np.sort(np.argsort(-edges.score, kind="stable")[:cap]))
    return edges


def _jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# Function words of Traditional Chinese legal questions that say nothing about the topic.
_STOP = frozenset("""
的 之 與 及 或 和 是 否 在 於 為 以 由 對 如 何 如何 什麼 哪些 哪 嗎 呢 可 可以 能 能否 應 應該 得 是否 有 無 其 此 該
所 者 等 時 後 前 中 上 下 被 把 將 就 都 也 又 並 而 但 若 如果 則 即 依 依據 根據 關於 規定 條 項 款 法 本法 相關
哪些人 誰 多少 何種 何時 怎麼 怎樣 情形 情況 要 需要 須 必須 會 一 二 三 這 那 這些 那些
""".split())


@lru_cache(maxsize=200_000)
def keyword_set(text: str) -> frozenset:
    import jieba
    jieba.setLogLevel(60)
    return frozenset(t for t in jieba.lcut(text) if t.strip() and t not in _STOP and not _is_punct(t))


def _is_punct(token: str) -> bool:
    return all(not (c.isalnum()) for c in token)


def keywords_for(texts: dict[int, str]) -> Callable[[int], frozenset]:
    """Keyword lookup by question id, computed lazily (only for candidate pairs)."""
    return lambda qid: keyword_set(texts[qid])

