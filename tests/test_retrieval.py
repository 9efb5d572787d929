"""Retrieval on three real laws: dense, hybrid and citation-aware search, filters, neighbours,
hop search, and the switch to a new generation."""

from __future__ import annotations

import shutil

import pytest

from indexer.index import Index
from indexer.retrieval import QueryError

from .conftest import LAWS_2024, requires_data

pytestmark = requires_data
OVERTIME = "雇主延長工作時間之工資如何計算"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib")
    for pcode in ("N0030001", "N0030002", "J0070017"):
        shutil.copy(LAWS_2024 / f"{pcode}.json", lib)
    home = tmp_path_factory.mktemp("home")
    with Index(home) as idx:
        idx.build(lib, embedder="use-multilingual")
    return home


@pytest.fixture
def idx(home):
    with Index(home) as index:
        yield index


def keys(hits):
    return [h.key for h in hits]


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_overtime_question_finds_article_24(idx, mode):
    hits = idx.search(OVERTIME, k=5, mode=mode)
    assert "N0030001:24" in keys(hits)
    assert all(h.generation == idx.generation for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("query,first", [
    ("勞基法第24條", "N0030001:24"), ("勞動基準法第二十四條的加班費", "N0030001:24"),
    ("著作權法第三條", "J0070017:3"), ("著作權法第10條之1", "J0070017:10-1"),
    ("勞基法施行細則第11條", "N0030002:11"),
])
@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_named_article_comes_first(idx, query, first, mode):
    hits = idx.search(query, k=5, mode=mode)
    assert hits[0].key == first and hits[0].cited
    assert sum(h.cited for h in hits) == 1


def test_bare_article_number_uses_the_filter(idx):
    hits = idx.search("第十五條之一", k=3, filters={"law": "勞基法"})
    assert hits[0].key == "N0030001:15-1" and all(h.law == "勞動基準法" for h in hits)
    unfiltered = idx.search("第十五條之一", k=3)
    assert {"N0030001:15-1"} <= set(keys(unfiltered))


def test_law_not_in_library_is_no_citation(idx):
    hits = idx.search("民法184條侵權行為", k=3)
    assert not any(h.cited for h in hits)


def test_filters(idx):
    assert {h.law for h in idx.search(OVERTIME, k=10, filters={"law": ["著作權法"]})} == {"著作權法"}
    assert {h.key.split(":")[0] for h in idx.search(OVERTIME, k=10, mode="hybrid",
                                                    filters={"pcode": "N0030002"})} == {"N0030002"}
    with pytest.raises(QueryError, match="no law named"):
        idx.search(OVERTIME, filters={"law": "民法"})
    with pytest.raises(QueryError, match="unknown filter"):
        idx.search(OVERTIME, filters={"chapter": "x"})


@pytest.mark.parametrize("kwargs,message", [
    ({"query": ""}, "empty query"), ({"query": "x" * 5000}, "longer than"), ({"query": "工資", "k": 0}, "k must be"),
    ({"query": "工資", "k": 101}, "k must be"), ({"query": "工資", "mode": "sparse"}, "unknown mode"),
    ({"query": "工資", "mode": "questions"}, "no pseudo-queries"),
])
def test_invalid_queries(idx, kwargs, message):
    with pytest.raises(QueryError, match=message):
        idx.search(**kwargs)


def test_neighbors_follow_citations(idx):
    out = idx.neighbors("N0030001:24", direction="out")
    assert "N0030001:32" in [n["key"] for n in out]               # 依第三十二條第四項規定
    assert all(n["kind"] == "citation" and n["direction"] == "out" for n in out)
    incoming = idx.neighbors("N0030001:32", direction="in", kinds=["citation"])
    assert "N0030001:24" in [n["key"] for n in incoming]
    # every citation neighbour says how it was cited, and with what role where the text says one
    by_key = {n["key"]: n for n in incoming}
    assert by_key["N0030001:24"]["span"] == "第三十二條第四項" and "role" not in by_key["N0030001:24"]
    assert (by_key["N0030001:79"]["span"], by_key["N0030001:79"]["role"]) == ("第三十二條", "punishes")
    assert all(n["span"] for n in incoming)
    parent = idx.neighbors("N0030001:85", direction="in")       # the 施行細則 is made under 第85條
    assert any(n["key"].startswith("N0030002:") for n in parent)
    with pytest.raises(KeyError):
        idx.neighbors("N0030001:9999")
    with pytest.raises(QueryError):
        idx.neighbors("N0030001:24", kinds=["friendship"])


def test_hop_search_paths(idx):
    hits = idx.hop_search(OVERTIME, k=10, n_hop=2)
    assert "N0030001:24" in keys(hits)
    assert all(0 <= h.imp <= 1 and 0 <= h.sim <= 1 for h in hits)
    w = idx.settings.hop_imp_weight      # H = (1-w)·SIM + w·IMP (+1 for a named article), every hit
    assert all(abs(h.score - ((1 - w) * h.sim + w * h.imp + (1.0 if h.cited else 0.0))) < 1e-5 for h in hits)
    assert any(h.sim != h.imp for h in hits)                     # so the weights are told apart
    hopped = [h for h in hits if h.path]
    for h in hopped:                                             # a path ends where the hit is
        assert h.path[-1]["to"] == h.key
        assert all(step["kind"] in ("citation", "structural", "question") for step in h.path)
    flat = idx.hop_search(OVERTIME, k=10, n_hop=0)
    assert all(h.path == () for h in flat)
    with pytest.raises(QueryError, match="n_hop"):
        idx.hop_search(OVERTIME, n_hop=99)
    with pytest.raises(QueryError, match="needs an LLM"):
        idx.hop_search(OVERTIME, mode="llm")


def test_hop_search_reaches_cited_articles(idx):
    """From 第24條 the traversal follows its citation of 第32條 (overtime limits)."""
    hits = idx.hop_search("延長工作時間的工資加給標準，以及延長工時的上限", k=20, n_hop=2)
    by_key = {h.key: h for h in hits}
    assert "N0030001:32" in by_key


@pytest.mark.sqlite_only  # the index is its home folder here: copied
def test_new_generation_is_served_after_a_build(home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    lib = tmp_path / "lib"
    lib.mkdir()
    for pcode in ("N0030001", "N0030002", "J0070017", "I0020004"):
        shutil.copy(LAWS_2024 / f"{pcode}.json", lib)
    with Index(copy) as reader, Index(copy) as writer:
        before = reader.search("國家賠償", k=3, filters=None)
        assert all(not h.key.startswith("I0020004") for h in before)
        writer.build(lib)
        after = reader.search("公務員於執行職務行使公權力時，因故意或過失不法侵害人民自由或權利者，國家應負損害賠償責任", k=3)
        assert after[0].generation == before[0].generation + 1
        assert after[0].key.startswith("I0020004:")
