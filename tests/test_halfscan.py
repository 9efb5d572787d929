"""The dense scan's half-precision first pass answers the exact top k or says it cannot, and one
query's native pools are set for its block and given back."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.native_threads import query_threads
from indexer.retrieve.halfscan import HalfScan

from .conftest import requires_data


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def exact_top(matrix: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    scores = matrix @ q
    return np.lexsort((np.arange(len(scores)), -scores))[:k]


@pytest.mark.parametrize("k", [1, 10, 50])
def test_the_half_precision_pass_returns_the_exact_top_k(k):
    rng = np.random.default_rng(7)
    matrix = unit(rng.standard_normal((5000, 128)))
    scan = HalfScan(matrix)
    proved = 0
    for _ in range(40):
        q = unit(rng.standard_normal((1, 128)))[0]
        found = scan.top(q, k)
        if found is None:
            continue
        proved += 1
        pos, scores = found
        assert list(pos) == list(exact_top(matrix, q, k))
        np.testing.assert_allclose(scores, (matrix @ q)[pos], atol=1e-6)
    assert proved >= 35  # random vectors leave gaps wider than the bound nearly always


def test_scores_crowded_within_the_bound_are_not_guessed():
    """2,000 vectors a hair's breadth apart around one direction: float16 cannot tell them apart,
    so the first pass proves nothing and says so (the caller then scans in float32)."""
    rng = np.random.default_rng(3)
    base = unit(rng.standard_normal((1, 64)))
    matrix = unit(base + 1e-5 * rng.standard_normal((2000, 64)))
    assert HalfScan(matrix).top(base[0], 10) is None


def test_a_library_not_larger_than_the_candidates_is_left_to_the_full_scan():
    matrix = unit(np.random.default_rng(1).standard_normal((50, 32)))
    assert HalfScan(matrix).top(matrix[0], 10) is None


def test_query_threads_sets_the_pools_for_the_block_and_gives_them_back():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}
        with query_threads(1):
            assert blas_threads() == {1}
        assert blas_threads() == {2}
        with query_threads(0):  # 0 is not "no threads": at least one
            assert blas_threads() == {1}
        assert blas_threads() == {2}


@requires_data
def test_dense_search_on_the_laws_is_the_exact_top_k(laws_index):
    """Through Index.search, at the default settings (one thread per query): the keys of an exact
    float32 scan of every passage, for questions of all kinds."""
    from indexer import Index, Settings

    assert Settings().query_threads == 1
    questions = ["雇主延長工作時間之工資如何計算", "著作之合理使用", "公司負責人違反忠實義務", "船舶進入港口", "民法第一百八十四條"]
    with Index(laws_index["home"], create=False) as idx:
        st = idx.retriever.state()
        for q in questions:
            qv = idx.retriever.embed_query(q, st)[0]
            for k in (1, 10, 40):
                found = idx.search(q, k=k, mode="dense")
                named = {h.key for h in found if h.cited}  # an article the query names goes first
                want = [st.info[int(st.ids[i])].key for i in exact_top(st.matrix, qv, k)]
                assert [h.key for h in found if not h.cited] == [w for w in want if w not in named][: k - len(named)]


@requires_data
def test_a_dated_state_makes_its_half_precision_copy_once(laws_index, monkeypatch):
    """A query as of a date gets its own copy of the dated state (its as_of); what the state
    makes on first use is shared by those copies, not made again for every query."""
    from indexer import Index
    from indexer.retrieve import state

    made = []

    class Counted(HalfScan):
        def __init__(self, matrix):
            made.append(len(matrix))
            super().__init__(matrix)

    monkeypatch.setattr(state, "HalfScan", Counted)
    with Index(laws_index["home"], create=False) as idx:
        first = [h.key for h in idx.search("雇主延長工作時間之工資如何計算", k=5, as_of="2022-06-01")]
        for q in ["著作之合理使用", "公司負責人違反忠實義務", "雇主延長工作時間之工資如何計算"]:
            found = [h.key for h in idx.search(q, k=5, as_of="2022-06-01")]
        assert found == first
    assert len(made) == 1
