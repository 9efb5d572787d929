"""Optional parts fail with the extra to install, not with a bare ImportError: a machine with only
the core (store, FAISS, offline embedder, CLI) is told what to add for BGE-M3, Gemini, PDFs or the
HTTP service."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from indexer.errors import USER_ERRORS, MissingExtra


@pytest.fixture
def without(monkeypatch):
    """Make imports of the named top-level packages fail, as on a core-only install."""
    def hide(*packages: str) -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in packages:
                monkeypatch.delitem(sys.modules, name)
        for name in packages:
            monkeypatch.setitem(sys.modules, name, None)   # `import name` raises ImportError
    return hide


def test_bge_m3_without_the_st_extra(without):
    from indexer.embedders import forget_embedders, get_embedder
    from indexer.settings import Settings
    without("sentence_transformers")
    forget_embedders()
    with pytest.raises(MissingExtra, match=r"hoprag-index\[st\]") as exc:
        get_embedder("bge-m3", Settings())
    assert "sentence_transformers" in str(exc.value) and isinstance(exc.value, USER_ERRORS)


def test_gemini_without_its_extra(without):
    from indexer.llm.runner import get_llm
    from indexer.settings import Settings
    without("google")
    with pytest.raises(MissingExtra, match=r"hoprag-index\[gemini\]"):
        get_llm("gemini:gemini-2.5-flash", Settings(gemini_api_key="k"))


def test_pdf_without_its_extra(without, tmp_path):
    from indexer.library import read_file
    without("pypdf")
    f = tmp_path / "law.pdf"
    f.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(MissingExtra, match=r"hoprag-index\[pdf\]"):
        read_file(f)


def test_serve_without_the_server_extra(without):
    from indexer.cli import app
    without("fastapi")
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 1 and "hoprag-index[server]" in r.output, r.output


def test_the_offline_path_needs_no_extra(without, tmp_path):
    """Build and search with the offline embedder while torch, sentence-transformers, google-genai,
    pypdf and fastapi cannot be imported."""
    from indexer import Index
    without("torch", "sentence_transformers", "google", "pypdf", "fastapi", "uvicorn")
    from .conftest import write_law
    write_law(tmp_path / "lib", "N0030001", "勞動基準法", {"24": "雇主延長勞工工作時間者，其延長工作時間之工資應加給。"})
    lib = tmp_path / "lib"
    with Index(tmp_path / "home") as idx:
        assert idx.build(lib, embedder="use-multilingual").added == 1
        assert idx.search("延長工時工資", k=1, mode="hybrid")[0].key == "N0030001:24"
