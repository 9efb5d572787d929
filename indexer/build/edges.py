"""HopRAG edge matching: every outgoing question of a passage meets the incoming questions of the
other passages in one batched FAISS search; the best matches become edges.

Arrays throughout (the one Python loop is the keyword Jaccard over the candidate pool, only when
keyword_weight > 0): drop the generic incoming questions (near-duplicates of questions of several
other passages), one search for a pool of `candidates` per outgoing question (exact inner product
up to `exact_limit` incoming questions, an IVF index above), re-score the pool (cosine, or
(1-w)·cosine + w·keyword Jaccard), then keep one match per (outgoing question, target passage),
the best `top_k` targets per question, one edge per (source, target) with the best score, the
best `max_per_passage` targets per source and n·ln n edges in all.

Public API:
    EdgeParams                  top_k, threshold, max_per_passage, keyword_weight, exact_limit,
                                candidates, generic_cosine, generic_passages; EdgeParams.from_settings(settings)
    QuestionEdges               parallel arrays: source, target, out_q, in_q, score
    match_questions(out_ids, out_owner, out_vecs, in_ids, in_owner, in_vecs, params, keywords=None) -> QuestionEdges
    generic_questions(in_owner, in_vecs, params) -> bool mask of the incoming questions left out
    total_cap(n_passages) -> int     n·log n edges at most
    top_inner_products(in_vecs, out_vecs, k, exact_limit, nprobe=None) -> (scores, positions)
                                     the search both use (bench_graph taps it)
    keyword_set(text) -> frozenset   jieba keywords without Traditional Chinese stop words
    keywords_for({qid: text}) -> (qid -> frozenset)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..store.edge_params import EdgeParams

__all__ = [
    "EdgeParams",
    "QuestionEdges",
    "match_questions",
    "generic_questions",
    "total_cap",
    "keyword_set",
    "keywords_for",
]


@dataclass
class QuestionEdges:
    source: np.ndarray  # passage ids (int64)
    target: np.ndarray
    out_q: np.ndarray  # pseudo-query ids (int64)
    in_q: np.ndarray
    score: np.ndarray  # float32

    def __len__(self) -> int:
        return int(self.source.shape[0])

    def take(self, keep: np.ndarray) -> QuestionEdges:
        return QuestionEdges(self.source[keep], self.target[keep], self.out_q[keep], self.in_q[keep], self.score[keep])

    @classmethod
    def empty(cls) -> QuestionEdges:
        z = np.zeros(0, np.int64)
        return cls(z, z, z, z, np.zeros(0, np.float32))


def total_cap(n_passages: int) -> int:
    return max(1, int(n_passages * math.log(max(n_passages, 2))))


def top_inner_products(
    in_vecs: np.ndarray, out_vecs: np.ndarray, k: int, exact_limit: int, nprobe: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products of out_vecs among in_vecs: exact up to exact_limit incoming vectors, IVF
    above. nprobe: lists probed by the IVF path; None (what match_questions and generic_questions
    pass) is the product's choice, max(32, nlist // 20). Only the benchmark sets it (bench_graph
    --probes), by wrapping this function: it is not part of EdgeParams, so the graph signature that
    index.py derives from EdgeParams is unchanged."""
    import faiss

    d = in_vecs.shape[1]
    n = in_vecs.shape[0]
    index: faiss.Index
    if n <= exact_limit:
        index = faiss.IndexFlatIP(d)
    else:
        # ~4·sqrt(n) lists. On the real question vectors of the 30 laws, 16 probes found 94.6% of
        # the exact edges, 32 found 97.6%, 64 98.7% (measured before edges were one per (source,
        # target); `bench/bench_graph.py --probes 16,32,64` re-measures): probe at least 32.
        nlist = max(1, min(int(4 * math.sqrt(n)), n))  # k-means needs a point per list
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = in_vecs[rng.choice(n, size=min(n, nlist * 40), replace=False)]
        ivf.train(sample)
        ivf.nprobe = max(32, nlist // 20) if nprobe is None else nprobe
        index = ivf
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


def _best_per_pair(a: np.ndarray, b: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Positions of the best-scored element of each distinct (a, b), in their original order."""
    order = np.lexsort((-score, b, a))
    first = np.r_[True, (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])]
    return np.sort(order[first])


def _max_per_owner(owner: np.ndarray) -> int:
    return int(np.bincount(np.unique(owner, return_inverse=True)[1]).max())


def generic_questions(in_owner: np.ndarray, in_vecs: np.ndarray, params: EdgeParams = EdgeParams()) -> np.ndarray:
    """Mask of the incoming questions with near-duplicates (cosine ≥ generic_cosine) among the
    questions of at least generic_passages other passages: "保險法第2條規定什麼？" embeds almost
    like 第3條's, so a match on it says nothing about which passage answers."""
    n, g = len(in_owner), params.generic_passages
    if g <= 0 or params.generic_cosine <= 0 or n <= g:
        return np.zeros(n, bool)
    vecs = np.ascontiguousarray(in_vecs, np.float32)
    # (g + 1)·own neighbours suffice: if all of them pass the cosine, at most `own` belong to
    # each passage, so g other passages are among them
    k = min(n, (g + 1) * _max_per_owner(in_owner))
    scores, pos = top_inner_products(vecs, vecs, k, params.exact_limit)
    none = int(in_owner.min()) - 1
    nb = np.where((pos >= 0) & (scores >= params.generic_cosine), in_owner[np.where(pos >= 0, pos, 0)], none)
    nb = np.where(nb == in_owner[:, None], none, nb)
    nb.sort(axis=1)
    distinct = (nb[:, 0] != none).astype(int) + ((nb[:, 1:] != nb[:, :-1]) & (nb[:, 1:] != none)).sum(axis=1)
    return distinct >= g


def match_questions(
    out_ids: np.ndarray,
    out_owner: np.ndarray,
    out_vecs: np.ndarray,
    in_ids: np.ndarray,
    in_owner: np.ndarray,
    in_vecs: np.ndarray,
    params: EdgeParams = EdgeParams(),
    keywords: Callable[[int], frozenset] | None = None,
) -> QuestionEdges:
    """One edge per (source, target) passage pair, from the outgoing question that best meets one
    of the target's incoming questions."""
    if len(out_ids) == 0 or len(in_ids) == 0:
        return QuestionEdges.empty()
    out_ids, out_owner = np.asarray(out_ids, np.int64), np.asarray(out_owner, np.int64)
    in_ids, in_owner = np.asarray(in_ids, np.int64), np.asarray(in_owner, np.int64)
    n_passages = len(np.unique(np.concatenate([out_owner, in_owner])))
    in_vecs = np.ascontiguousarray(in_vecs, np.float32)
    informative = ~generic_questions(in_owner, in_vecs, params)
    if not informative.all():
        in_ids, in_owner, in_vecs = in_ids[informative], in_owner[informative], in_vecs[informative]
    if len(in_ids) == 0:
        return QuestionEdges.empty()
    # The pool: `candidates` beyond the slots the source's own incoming questions may take.
    k = min(len(in_ids), params.candidates + _max_per_owner(in_owner))
    cos, pos = top_inner_products(in_vecs, np.ascontiguousarray(out_vecs, np.float32), k, params.exact_limit)
    valid = pos >= 0
    safe = np.where(valid, pos, 0)
    target = in_owner[safe]
    ok = valid & (target != out_owner[:, None])
    score = cos
    w = params.keyword_weight if keywords is not None else 0.0
    if keywords is not None and w > 0:
        # the whole pool is re-scored before choosing, so keywords can change the target; a pair
        # that misses the threshold even with a Jaccard of 1 is not worth the jieba lookup
        ok &= (1 - w) * cos + w >= params.threshold
        rows, cols = np.nonzero(ok)
        jac = np.fromiter(
            (
                _jaccard(keywords(int(out_ids[r])), keywords(int(in_ids[safe[r, c]])))
                for r, c in zip(rows.tolist(), cols.tolist())
            ),
            np.float32,
            len(rows),
        )
        score = cos.copy()
        score[rows, cols] = (1 - w) * cos[rows, cols] + w * jac
    ok &= score >= params.threshold
    rows, cols = np.nonzero(ok)
    if not len(rows):
        return QuestionEdges.empty()
    edges = QuestionEdges(
        out_owner[rows],
        target[rows, cols].astype(np.int64),
        out_ids[rows],
        in_ids[safe[rows, cols]],
        score[rows, cols].astype(np.float32),
    )
    # A passage with several matching incoming questions counts once per outgoing question ...
    edges = edges.take(_best_per_pair(edges.out_q, edges.target, edges.score))
    edges = edges.take(_rank_within(edges.out_q, edges.score) < params.top_k)
    # ... and a target two questions of the source lead to is one edge, scored by the better
    edges = edges.take(_best_per_pair(edges.source, edges.target, edges.score))
    edges = edges.take(_rank_within(edges.source, edges.score) < params.max_per_passage)
    cap = total_cap(n_passages)
    if len(edges) > cap:
        edges = edges.take(np.sort(np.argsort(-edges.score, kind="stable")[:cap]))
    return edges


def _jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# Function words of Traditional Chinese legal questions that say nothing about the topic.
_STOP = frozenset(
    [
        "的",
        "之",
        "與",
        "及",
        "或",
        "和",
        "是",
        "否",
        "在",
        "於",
        "為",
        "以",
        "由",
        "對",
        "如",
        "何",
        "如何",
        "什麼",
        "哪些",
        "哪",
        "嗎",
        "呢",
        "可",
        "可以",
        "能",
        "能否",
        "應",
        "應該",
        "得",
        "是否",
        "有",
        "無",
        "其",
        "此",
        "該",
        "所",
        "者",
        "等",
        "時",
        "後",
        "前",
        "中",
        "上",
        "下",
        "被",
        "把",
        "將",
        "就",
        "都",
        "也",
        "又",
        "並",
        "而",
        "但",
        "若",
        "如果",
        "則",
        "即",
        "依",
        "依據",
        "根據",
        "關於",
        "規定",
        "條",
        "項",
        "款",
        "法",
        "本法",
        "相關",
        "哪些人",
        "誰",
        "多少",
        "何種",
        "何時",
        "怎麼",
        "怎樣",
        "情形",
        "情況",
        "要",
        "需要",
        "須",
        "必須",
        "會",
        "一",
        "二",
        "三",
        "這",
        "那",
        "這些",
        "那些",
    ]
)


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
