"""The shortcuts that make an unchanged index cheap, and that they never skip real work: a no-op
build decided without parsing the library, BM25 kept in the snapshot (no query tokenizes the
library), an incremental build that tokenizes only what changed."""

from __future__ import annotations

import pytest

import indexer.build as build_module
import indexer.lexical as lexical
from indexer import Index

from .conftest import write_law

USE = "use-multilingual"
ARTICLES = {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。", "3": "前條之給付，準用第一條。"}


@pytest.fixture
def built(tmp_path):
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", ARTICLES)
    home = tmp_path / "home"
    with Index(home) as idx:
        idx.build(lib, embedder=USE)
    return lib, home


def _count_calls(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_noop_build_does_not_parse_or_embed(built, monkeypatch):
    lib, home = built
    parsed = _count_calls(monkeypatch, build_module, "read_library")
    with Index(home) as idx:
        r = idx.build(lib)
        assert (r.added, r.changed, r.embedded, r.generation, r.unchanged, r.passages) == (0, 0, 0, 1, 3, 3)
        assert parsed == []                         # decided from the files' digest alone
        # a changed file takes the full path and commits a new generation
        write_law(lib, "T0000001", "測試法", {**ARTICLES, "3": "前條之給付，準用第一條及第二條。"})
        r = idx.build(lib)
        assert (r.changed, r.generation) == (1, 2) and len(parsed) == 1
        r = idx.build(lib)                          # and the next one is a no-op again
        assert (r.changed, r.generation) == (0, 2) and len(parsed) == 1


def test_noop_shortcut_yields_to_other_settings(built, monkeypatch):
    lib, home = built
    parsed = _count_calls(monkeypatch, build_module, "read_library")
    from indexer.settings import Settings
    with Index(home, settings=Settings(edge_threshold=0.9)) as idx:   # other edge parameters
        idx.build(lib)
    assert len(parsed) == 1


def test_bm25_comes_from_the_snapshot(built, monkeypatch):
    _, home = built
    tokenized = _count_calls(monkeypatch, lexical, "tokenize")
    with Index(home, create=False) as idx:
        hits = idx.search("延長工作時間 加給工資", k=1, mode="hybrid")
        assert idx.search("延長工作時間 加給工資", k=1, mode="bm25")[0].key == "T0000001:2"  # BM25 alone
    assert hits[0].key == "T0000001:2"
    assert tokenized == []                          # no article is tokenized again to answer


def test_incremental_build_tokenizes_only_changed_passages(built, monkeypatch):
    lib, home = built
    with Index(home) as idx:
        idx.search("工資", k=1, mode="hybrid")      # loads the generation the next build patches
        tokenized = _count_calls(monkeypatch, lexical, "tokenize")
        write_law(lib, "T0000001", "測試法", {**ARTICLES, "4": "本法自公布日施行。"})
        r = idx.build(lib)
        assert r.added == 1
        assert [a[0] for a in tokenized] == ["測試法 第4條 本法自公布日施行。"]
        assert idx.search("公布日施行", k=1, mode="hybrid")[0].key == "T0000001:4"
