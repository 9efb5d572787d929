"""Question-edge matching (indexer/edges.py) on small hand-made vectors, where every edge and score
can be worked out by hand.

Vectors are unit vectors built from orthonormal axes: `near(a, c, b)` = c·e_a + sqrt(1-c²)·e_b has
cosine c with e_a, and two of them that share e_a (with different b) have cosine c₁·c₂. An outgoing
question e_0 therefore meets each incoming question near(0, c, b) with score exactly c.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from indexer.build import edges as edges_mod
from indexer.build.edges import EdgeParams, generic_questions, keyword_set, keywords_for, match_questions, total_cap
from indexer.settings import Settings

pytestmark = pytest.mark.backend_free  # never opens an index

D = 48
# the generic filter is tested on its own; elsewhere it stays out of the way
P = EdgeParams(generic_passages=0)


def e(axis: int) -> np.ndarray:
    v = np.zeros(D, np.float32)
    v[axis] = 1.0
    return v


def near(axis: int, cos: float, other: int) -> np.ndarray:
    return (cos * e(axis) + math.sqrt(1.0 - cos * cos) * e(other)).astype(np.float32)


def mix(parts: dict[int, float], rest: int) -> np.ndarray:
    """Cosine parts[a] with e_a for each a, the remainder of the unit length on e_rest."""
    v = np.zeros(D, np.float32)
    for axis, c in parts.items():
        v[axis] = c
    v[rest] = math.sqrt(1.0 - sum(c * c for c in parts.values()))
    return v


def match(outs, ins, params=P, keywords=None, dim=D):
    """outs, ins: [(question id, owner passage id, vector)] -> sorted [(source, target, out_q, in_q, score)]."""
    def arrays(rows):
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        ids, owners, vecs = zip(*rows)
        return np.array(ids, np.int64), np.array(owners, np.int64), np.stack(vecs).astype(np.float32)
    qe = match_questions(*arrays(outs), *arrays(ins), params, keywords)
    assert qe.source.dtype == qe.target.dtype == qe.out_q.dtype == qe.in_q.dtype == np.int64
    assert qe.score.dtype == np.float32
    return sorted(zip(qe.source.tolist(), qe.target.tolist(), qe.out_q.tolist(), qe.in_q.tolist(),
                      qe.score.tolist()))


def approx_edges(*rows):
    return [(s, t, o, i, pytest.approx(score, abs=1e-6)) for s, t, o, i, score in rows]


# -- top_k, threshold, max_per_passage ---------------------------------------------------------

# passage 1 asks one outgoing question (id 100); passage 2 answers it twice (0.9 and 0.85),
# passages 3, 4 and 5 once each (0.8, 0.7, 0.5)
ONE_OUT = [(100, 1, e(0))]
LADDER = [(200, 2, near(0, 0.9, 1)), (201, 2, near(0, 0.85, 2)), (300, 3, near(0, 0.8, 3)),
          (400, 4, near(0, 0.7, 4)), (500, 5, near(0, 0.5, 5))]


def test_top_k_counts_distinct_target_passages_not_questions():
    # passage 2's two incoming questions are the two best matches, yet count as one target
    assert match(ONE_OUT, LADDER, EdgeParams(top_k=2, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.9), (1, 3, 100, 300, 0.8))
    assert match(ONE_OUT, LADDER, EdgeParams(top_k=1, generic_passages=0)) == approx_edges((1, 2, 100, 200, 0.9))
    assert match(ONE_OUT, LADDER, EdgeParams(top_k=3, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.9), (1, 3, 100, 300, 0.8), (1, 4, 100, 400, 0.7))


def test_threshold_drops_weak_pairs_and_keeps_a_score_equal_to_it():
    p = EdgeParams(top_k=10, generic_passages=0)
    # 0.5 = 0.5·1 exactly in float32: a score equal to the threshold is kept
    assert match(ONE_OUT, LADDER, p) == approx_edges(
        (1, 2, 100, 200, 0.9), (1, 3, 100, 300, 0.8), (1, 4, 100, 400, 0.7), (1, 5, 100, 500, 0.5))
    assert match(ONE_OUT, LADDER, EdgeParams(top_k=10, threshold=0.51, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.9), (1, 3, 100, 300, 0.8), (1, 4, 100, 400, 0.7))
    assert match(ONE_OUT, LADDER, EdgeParams(top_k=10, threshold=0.75, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.9), (1, 3, 100, 300, 0.8))
    # 0.85 is passage 2's second question: above the threshold, but passage 2 is already an edge
    assert match(ONE_OUT, LADDER, EdgeParams(top_k=10, threshold=0.82, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.9))
    assert match(ONE_OUT, LADDER, EdgeParams(top_k=10, threshold=0.95, generic_passages=0)) == []


def test_max_per_passage_caps_the_targets_of_each_source():
    # passage 1 asks two questions: e0 meets passages 2 (0.9) and 3 (0.8), e10 meets 4 (0.85) and
    # 5 (0.6); passage 6 asks e20, which meets passage 7 (0.7)
    outs = [(100, 1, e(0)), (101, 1, e(10)), (600, 6, e(20))]
    ins = [(200, 2, near(0, 0.9, 1)), (300, 3, near(0, 0.8, 2)), (400, 4, near(10, 0.85, 11)),
           (500, 5, near(10, 0.6, 12)), (700, 7, near(20, 0.7, 21))]
    every = [(1, 2, 100, 200, 0.9), (1, 3, 100, 300, 0.8), (1, 4, 101, 400, 0.85), (1, 5, 101, 500, 0.6),
             (6, 7, 600, 700, 0.7)]
    assert match(outs, ins, EdgeParams(max_per_passage=8, generic_passages=0)) == approx_edges(*every)
    # the best 3 of passage 1's four targets, whichever question found them
    assert match(outs, ins, EdgeParams(max_per_passage=3, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.9), (1, 3, 100, 300, 0.8), (1, 4, 101, 400, 0.85), (6, 7, 600, 700, 0.7))
    # per source: passage 6's only edge survives a cap of 1 although it scores below passage 1's
    assert match(outs, ins, EdgeParams(max_per_passage=1, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.9), (6, 7, 600, 700, 0.7))


# -- no self-edges, one edge per (source, target) ------------------------------------------------

def test_a_passage_never_matches_its_own_incoming_questions():
    # passage 1's outgoing question is word for word its own incoming one (cosine 1) and close to its
    # other one (0.95); passage 2's outgoing question meets passage 2's own incoming question at 0.8
    outs = [(100, 1, e(0)), (210, 2, e(1))]
    ins = [(110, 1, e(0)), (111, 1, near(0, 0.95, 5)), (200, 2, near(0, 0.6, 1))]
    expected = approx_edges((1, 2, 100, 200, 0.6))
    assert match(outs, ins) == expected
    # a pool of one candidate: the source's own incoming questions get slots of their own on top
    # (candidates + most questions of one passage), so they cannot crowd the other passages out
    assert match(outs, ins, EdgeParams(candidates=1, generic_passages=0)) == expected


def test_one_edge_per_source_target_pair_keeps_the_best_score():
    # two questions of passage 1 lead to passage 2 (0.7 via 200, 0.9 via 201): one edge, the 0.9 one,
    # with the question ids that made it; passage 3 (0.6) stays an edge of its own
    outs = [(100, 1, e(0)), (101, 1, e(10))]
    ins = [(200, 2, near(0, 0.7, 1)), (201, 2, near(10, 0.9, 11)), (300, 3, near(0, 0.6, 2))]
    assert match(outs, ins) == approx_edges((1, 2, 101, 201, 0.9), (1, 3, 100, 300, 0.6))


# -- keyword weight ------------------------------------------------------------------------------

KW_OUT = [(100, 1, e(0))]
KW_IN = [(200, 2, near(0, 0.9, 1)), (300, 3, near(0, 0.7, 2)), (400, 4, near(0, 0.8, 3)), (500, 5, near(0, 0.1, 4))]
KW = {100: frozenset({"工資", "加班"}),
      200: frozenset({"保險"}),            # Jaccard 0
      300: frozenset({"工資", "加班"}),     # Jaccard 1
      400: frozenset({"工資", "延長"}),     # Jaccard 1/3
      500: frozenset({"工資", "加班"})}     # Jaccard 1, but cosine 0.1


def test_keyword_weight_rescores_as_a_weighted_sum_and_can_change_the_target():
    looked_up: list[int] = []

    def keywords(qid: int) -> frozenset:
        looked_up.append(qid)
        return KW[qid]

    # w = 0.5: 2 -> 0.5·0.9 + 0 = 0.45, 3 -> 0.5·0.7 + 0.5·1 = 0.85, 4 -> 0.5·0.8 + 0.5/3 = 0.566667,
    # 5 -> 0.5·0.1 + 0.5 = 0.55
    p = EdgeParams(top_k=10, threshold=0.4, keyword_weight=0.5, generic_passages=0)
    assert match(KW_OUT, KW_IN, p, keywords) == approx_edges(
        (1, 2, 100, 200, 0.45), (1, 3, 100, 300, 0.85), (1, 4, 100, 400, 0.4 + 0.5 / 3), (1, 5, 100, 500, 0.55))
    # the best target is now passage 3, not the closest by cosine (passage 2)
    p1 = EdgeParams(top_k=1, threshold=0.4, keyword_weight=0.5, generic_passages=0)
    assert match(KW_OUT, KW_IN, p1, keywords) == approx_edges((1, 3, 100, 300, 0.85))
    # the threshold applies to the combined score: passage 2's cosine 0.9 is not enough at 0.5
    p2 = EdgeParams(top_k=10, threshold=0.5, keyword_weight=0.5, generic_passages=0)
    assert match(KW_OUT, KW_IN, p2, keywords) == approx_edges(
        (1, 3, 100, 300, 0.85), (1, 4, 100, 400, 0.4 + 0.5 / 3), (1, 5, 100, 500, 0.55))
    # w = 0.25: 2 -> 0.675, 3 -> 0.775, 4 -> 0.6 + 0.25/3 = 0.683333
    p3 = EdgeParams(top_k=2, threshold=0.4, keyword_weight=0.25, generic_passages=0)
    assert match(KW_OUT, KW_IN, p3, keywords) == approx_edges(
        (1, 3, 100, 300, 0.775), (1, 4, 100, 400, 0.6 + 0.25 / 3))
    # a pair that misses the threshold even with a Jaccard of 1 is never looked up:
    # at threshold 0.6 and w = 0.5, cosine 0.1 can reach 0.55 at most
    looked_up.clear()
    p4 = EdgeParams(top_k=10, threshold=0.6, keyword_weight=0.5, generic_passages=0)
    assert match(KW_OUT, KW_IN, p4, keywords) == approx_edges((1, 3, 100, 300, 0.85))
    assert 500 not in looked_up and {200, 300, 400} <= set(looked_up)


def test_keyword_weight_zero_or_no_keywords_is_cosine_only():
    cosine_only = approx_edges((1, 2, 100, 200, 0.9))
    assert match(KW_OUT, KW_IN, EdgeParams(top_k=1, generic_passages=0), KW.__getitem__) == cosine_only
    assert match(KW_OUT, KW_IN, EdgeParams(top_k=1, keyword_weight=0.5, generic_passages=0), None) == cosine_only


def test_keyword_set_drops_stop_words_and_punctuation():
    assert keyword_set("勞工的工資是否可以預扣？") == frozenset({"勞工", "工資", "預扣"})
    assert keyword_set("雇主延長工作時間之工資如何計算？") == frozenset({"雇主", "延長", "工作", "時間", "工資", "計算"})
    assert keyword_set("？！。") == frozenset()
    lookup = keywords_for({7: "勞工的工資是否可以預扣？", 8: "什麼？"})
    assert lookup(7) == frozenset({"勞工", "工資", "預扣"}) and lookup(8) == frozenset()
    with pytest.raises(KeyError):
        lookup(9)


# -- exact and IVF search ---------------------------------------------------------------------------

def _ivf_case():
    """400 random incoming questions of 200 passages (1000..1199), and 20 outgoing questions of
    passages 1..20, each a slightly perturbed copy of one incoming question: one clear match each."""
    dim = 32
    rng = np.random.default_rng(7)
    in_vecs = rng.standard_normal((400, dim)).astype(np.float32)
    in_vecs /= np.linalg.norm(in_vecs, axis=1, keepdims=True)
    pick = rng.choice(400, size=20, replace=False)
    out_vecs = in_vecs[pick] + 0.03 * rng.standard_normal((20, dim)).astype(np.float32)
    out_vecs /= np.linalg.norm(out_vecs, axis=1, keepdims=True)
    ins = [(5000 + j, 1000 + j // 2, in_vecs[j]) for j in range(400)]
    outs = [(100 + n, 1 + n, out_vecs[n]) for n in range(20)]
    expected = sorted((1 + n, 1000 + int(j) // 2, 100 + n, 5000 + int(j), float(out_vecs[n] @ in_vecs[j]))
                      for n, j in enumerate(pick))
    return outs, ins, expected, dim


def test_ivf_search_finds_the_same_edges_as_exact_search(monkeypatch):
    import faiss
    outs, ins, expected, dim = _ivf_case()
    # random 32-d vectors are far apart: only the perturbed copies pass 0.9
    assert all(score > 0.95 for *_, score in expected)
    built: list[int] = []
    real_ivf = faiss.IndexIVFFlat

    def counting_ivf(*args):
        built.append(args[2])   # nlist
        return real_ivf(*args)

    monkeypatch.setattr(faiss, "IndexIVFFlat", counting_ivf)
    exact = match(outs, ins, EdgeParams(threshold=0.9, generic_passages=0), dim=dim)
    assert built == []                                        # 400 incoming questions <= exact_limit
    ivf = match(outs, ins, EdgeParams(threshold=0.9, exact_limit=10, generic_passages=0), dim=dim)
    assert built == [int(4 * math.sqrt(400))]                 # the IVF index was searched
    want = [(s, t, o, i, pytest.approx(score, abs=1e-5)) for s, t, o, i, score in expected]
    assert exact == want and ivf == want
    # the generic filter searches through IVF too, and finds nothing generic among random vectors
    built.clear()
    assert match(outs, ins, EdgeParams(threshold=0.9, exact_limit=10), dim=dim) == want
    assert len(built) == 2


# -- generic questions ----------------------------------------------------------------------------

# "X法第N條規定什麼？" of passages 2..5: near-duplicates of one another (cosines c_i·c_j, 0.9555 to
# 0.97515), each passage also with a question of its own; passage 6's question is 0.7 from e0
G2, G3, G4, G5 = near(0, 0.99, 1), near(0, 0.985, 2), near(0, 0.98, 3), near(0, 0.975, 4)
GENERIC_IN = [(200, 2, G2), (201, 2, e(12)), (300, 3, G3), (301, 3, e(13)), (400, 4, G4), (401, 4, e(14)),
              (500, 5, G5), (501, 5, e(15)), (600, 6, near(0, 0.7, 30))]


def _generic(rows, params):
    _, owners, vecs = zip(*rows)
    return generic_questions(np.array(owners, np.int64), np.stack(vecs), params).tolist()


def test_generic_questions_are_near_duplicates_of_questions_of_enough_other_passages():
    defaults = EdgeParams()
    assert (defaults.generic_cosine, defaults.generic_passages) == (0.95, 3)
    # each of 200, 300, 400, 500 is within 0.95 of three other passages' questions
    assert _generic(GENERIC_IN, defaults) == [True, False, True, False, True, False, True, False, False]
    # four other passages needed: none is generic
    assert _generic(GENERIC_IN, EdgeParams(generic_passages=4)) == [False] * 9
    # at 0.96: 200 (0.975, 0.970, 0.965) and 300 (0.975, 0.965, 0.9604) still have three,
    # 400 (0.970, 0.965, 0.9555) and 500 (0.965, 0.9604, 0.9555) only two
    assert _generic(GENERIC_IN, EdgeParams(generic_cosine=0.96)) == [
        True, False, True, False, False, False, False, False, False]
    assert _generic(GENERIC_IN, EdgeParams(generic_passages=0)) == [False] * 9
    assert _generic(GENERIC_IN, EdgeParams(generic_cosine=0)) == [False] * 9


def test_near_duplicates_within_one_passage_do_not_make_a_question_generic():
    # three passages, one of them with two copies: 300 and 400 have near-duplicates in 3 questions
    # of only 2 other passages, so nothing is generic; a fourth passage makes all of them generic
    g2b = near(0, 0.99, 5)
    rows = [(200, 2, G2), (202, 2, g2b), (300, 3, G3), (400, 4, G4)]
    assert _generic(rows, EdgeParams()) == [False] * 4
    assert _generic(rows + [(500, 5, G5)], EdgeParams()) == [True] * 5


def test_generic_incoming_questions_are_not_matched():
    outs = [(100, 1, e(0))]
    # without the filter the near-duplicates win (0.99, 0.985) ...
    assert match(outs, GENERIC_IN, EdgeParams(top_k=2, generic_passages=0)) == approx_edges(
        (1, 2, 100, 200, 0.99), (1, 3, 100, 300, 0.985))
    # ... with it they are left out and the one informative match remains
    assert match(outs, GENERIC_IN, EdgeParams(top_k=2)) == approx_edges((1, 6, 100, 600, 0.7))
    # nothing but generic questions: no edges
    only_generic = [r for r in GENERIC_IN if r[0] in (200, 300, 400, 500)]
    assert match(outs, only_generic, EdgeParams(top_k=2)) == []


# -- the total cap, empty inputs, settings ------------------------------------------------------------

def test_total_cap_is_n_log_n():
    assert [total_cap(n) for n in (0, 1, 2, 3, 5, 10, 1000)] == [1, 1, 1, 3, 8, 23, 6907]


def test_total_cap_keeps_the_best_edges_of_the_whole_graph():
    # passages 1, 2, 3 ask about each other: six edges above the threshold
    ins = [(10, 1, e(0)), (20, 2, e(1)), (30, 3, e(2))]
    outs = [(11, 1, mix({1: 0.8, 2: 0.5}, 5)), (21, 2, mix({0: 0.7, 2: 0.55}, 6)), (31, 3, mix({0: 0.6, 1: 0.52}, 7))]
    all_six = [(1, 2, 11, 20, 0.8), (1, 3, 11, 30, 0.5), (2, 1, 21, 10, 0.7), (2, 3, 21, 30, 0.55),
               (3, 1, 31, 10, 0.6), (3, 2, 31, 20, 0.52)]
    # 3 passages: at most int(3·ln 3) = 3 edges, the best three
    assert match(outs, ins) == approx_edges((1, 2, 11, 20, 0.8), (2, 1, 21, 10, 0.7), (3, 1, 31, 10, 0.6))
    # two more passages (questions nobody meets) raise the cap to int(5·ln 5) = 8: all six
    more = ins + [(40, 4, e(3)), (50, 5, e(4))]
    assert match(outs, more) == approx_edges(*all_six)


def test_empty_inputs_give_no_edges():
    assert match([], LADDER) == []
    assert match(ONE_OUT, []) == []
    assert len(edges_mod.QuestionEdges.empty()) == 0


def test_edge_params_from_settings():
    s = Settings(edge_top_k=3, edge_threshold=0.6, edge_max_per_passage=4, edge_keyword_weight=0.25,
                 edge_candidates=7, edge_generic_cosine=0.9, edge_generic_passages=2)
    assert EdgeParams.from_settings(s) == EdgeParams(top_k=3, threshold=0.6, max_per_passage=4, keyword_weight=0.25,
                                                     exact_limit=50_000, candidates=7, generic_cosine=0.9,
                                                     generic_passages=2)
    assert EdgeParams.from_settings(Settings()) == EdgeParams()
