"""Corrupt derived files are detected with a clear message and rebuilt from the database and the
caches, without embedding; the database itself is never modified by an open that repairs."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from indexer.index import Index
from indexer.settings import Settings
from storage.db import SchemaError
from storage.models import Base

from .conftest import LAWS_2024, requires_data

pytestmark = [requires_data, pytest.mark.sqlite_only]  # copies homes, dumps the SQLite file
SNAP = "snapshots/gen-000001"


@pytest.fixture(scope="module")
def llm_server(legal_llm):
    """The fake LLM stays up for the module, so that a repair that asked it anything would be seen."""
    return legal_llm


@pytest.fixture(scope="module")
def built(tmp_path_factory, llm_server):
    # Built with (fake) LLM questions, so that llm_results, pseudo_queries and the question indexes
    # hold rows: with llm=none those tables are empty and "unchanged" would prove nothing about them.
    lib = tmp_path_factory.mktemp("lib")
    for pcode in ("N0030001", "N0030002"):
        shutil.copy(LAWS_2024 / f"{pcode}.json", lib)
    home = tmp_path_factory.mktemp("home")
    with Index(settings=Settings(home=home, llm_base_url=llm_server.url)) as idx:
        idx.build(lib, embedder="use-multilingual", llm="openai:fake")
        answer = [h.key for h in idx.search("延長工作時間之工資", k=5)]
        edges = idx.stats()["edges"]
    assert edges["question"] > 0 and edges["citation"] > 0
    return home, answer, edges


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip(path, at=0.5):
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x5A
    path.write_bytes(bytes(data))


# Every table of the schema, read from the models (a new model's table is covered without editing
# this list), plus Alembic's version row and SQLite's AUTOINCREMENT counters (a repair that wrote
# and deleted rows would move them).
TABLES = sorted(Base.metadata.tables) + ["alembic_version", "sqlite_sequence"]


def _dump(home):
    con = sqlite3.connect(home / "index.db")
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}
    finally:
        con.close()


def test_the_dump_covers_every_table_and_each_holds_rows(built):
    home, _, _ = built
    con = sqlite3.connect(home / "index.db")
    try:
        on_disk = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()
    # a table the migrations create but the models lack (or the reverse) would escape the comparison
    assert on_disk == set(TABLES)
    assert set(Base.metadata.tables) == {"meta", "documents", "passages", "embeddings", "builds", "llm_results",
                                         "pseudo_queries", "edges", "article_versions", "observations"}
    empty = [t for t, rows in _dump(home).items() if not rows]
    assert empty == []                               # an empty table compares equal whatever a repair did


DAMAGE = [
    ("truncated passages.faiss", lambda h: _truncate(h / SNAP / "passages.faiss"), "checksum mismatch"),
    ("empty passages.faiss", lambda h: (h / SNAP / "passages.faiss").write_bytes(b""), "checksum mismatch"),
    ("flipped passages.faiss", lambda h: _flip(h / SNAP / "passages.faiss"), "checksum mismatch"),
    ("missing id map", lambda h: (h / SNAP / "passages.map.npy").unlink(), "passages.map.npy"),
    ("flipped id map", lambda h: _flip(h / SNAP / "passages.map.npy", 0.9), "checksum mismatch"),
    ("truncated graph", lambda h: _truncate(h / SNAP / "graph.npy", 0.3), "checksum mismatch"),
    ("flipped questions index", lambda h: _flip(h / SNAP / "questions_in.faiss", 0.2), "checksum mismatch"),
    ("truncated manifest", lambda h: _truncate(h / SNAP / "manifest.json"), "missing"),
    ("garbage manifest", lambda h: (h / SNAP / "manifest.json").write_text("{]"), "missing"),
    ("manifest lies about a checksum", lambda h: (h / SNAP / "manifest.json").write_text(
        (h / SNAP / "manifest.json").read_text().replace('"xxh3_128": "', '"xxh3_128": "0', 1)), "checksum mismatch"),
    ("missing snapshot folder", lambda h: shutil.rmtree(h / SNAP), "missing"),
    ("missing snapshots root", lambda h: shutil.rmtree(h / "snapshots"), "missing"),
    ("stale snapshot only", lambda h: (h / SNAP).rename(h / "snapshots" / "gen-000000"), "missing"),
]


@pytest.mark.parametrize("name,damage,message", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_snapshot_is_repaired_from_the_database(built, llm_server, tmp_path, name, damage, message):
    src, answer, edges = built
    home = tmp_path / "home"
    shutil.copytree(src, home)
    before = _dump(home)
    calls = len(llm_server.requests)
    damage(home)
    with Index(settings=Settings(home=home, llm_base_url=llm_server.url)) as idx:
        assert [h.key for h in idx.search("延長工作時間之工資", k=5)] == answer
        assert idx.stats()["edges"] == edges
        assert len(idx.repairs) == 1 and message in idx.repairs[0], idx.repairs
        assert idx.verify_snapshot(1) is None
    after = _dump(home)
    assert [t for t in TABLES if after[t] != before[t]] == []   # the repair touched derived files only
    assert len(llm_server.requests) == calls                    # and asked the LLM nothing
    with Index(home) as idx:
        idx.search("工資", k=1)
        assert idx.repairs == []


def test_database_from_a_newer_hoprag_is_refused_untouched(built, tmp_path):
    src, _, _ = built
    home = tmp_path / "home"
    shutil.copytree(src, home)
    con = sqlite3.connect(home / "index.db")
    con.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    con.commit()
    con.close()
    before = _dump(home)
    with pytest.raises(SchemaError, match="newer version"):
        Index(home)
    assert _dump(home) == before
