"""The same index on PostgreSQL (a real server the tests start, see conftest.postgres_server):
migrations, builds, the caches, snapshots checked against the committed digest, history and as-of
queries, with nothing in the home folder but snapshots."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from indexer.index import Index
from indexer.settings import Settings

from .conftest import TOY_V1, TOY_V2

USE = "use-multilingual"
V1, V2 = TOY_V1, TOY_V2


def test_an_index_on_postgresql(tmp_path, toy_libs, postgres_url):
    old, new = toy_libs
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=postgres_url)
    with Index(settings=settings) as idx:
        assert idx.db.engine.dialect.name == "postgresql"
        first = idx.build(new, embedder=USE)
        assert (first.generation, first.added, first.embedded, first.edges["citation"]) == (1, 4, 3, 0)
        back = idx.build(old)                                     # older: history only
        assert back.history_only and back.generation == 1
        assert idx.build(new).generation == 1                     # a no-op
        hit = idx.search("勞動工時法第2條", k=1, mode="hybrid")[0]
        assert (hit.key, hit.text) == ("T0000001:2", V2["2"])
        then = idx.search("勞工工時法第2條", k=1, mode="hybrid", as_of="2021-01-01")[0]
        assert (then.law, then.text) == ("勞工工時法", V1["2"])
        edges = idx.neighbors("T0000001:3", as_of="2021-01-01")
        assert [e["key"] for e in edges] == ["T0000001:2"]
        assert idx.diff("2020-01-01", "2023-01-01")["counts"] == {"added": 1, "changed": 2, "removed": 0,
                                                                 "relabeled": 1}
        with idx.db.session() as s:
            assert s.execute(text("SELECT count(*) FROM article_versions")).scalar() == 7
    assert not (home / "index.db").exists()                       # the rows live in PostgreSQL
    shutil.rmtree(home / "snapshots")                              # derived files: rebuilt from the database
    with Index(settings=settings) as idx:
        assert idx.search("勞動工時法第2條", k=1)[0].text == V2["2"]
        assert len(idx.repairs) == 1 and "missing" in idx.repairs[0]
    with Index(settings=settings) as idx:
        assert idx.search("工資", k=1) and idx.repairs == []


def test_one_writer_per_database_across_homes_and_a_killed_writer_frees_it(tmp_path, toy_libs, postgres_url):
    """Two hosts are two homes on one database: the advisory lock, not the home's lock file,
    keeps them from writing at once; a writer killed with SIGKILL leaves the lock free."""
    import os
    import subprocess
    import sys

    from storage.lock import IndexBusy, writer_lock

    old, new = toy_libs
    a = Settings(home=tmp_path / "a", database_url=postgres_url)
    b = Settings(home=tmp_path / "b", database_url=postgres_url)
    with Index(settings=a) as ia, Index(settings=b) as ib:
        ia.build(old, embedder=USE)
        with writer_lock(ia.db.engine, tmp_path / "a" / "write.lock"):
            with pytest.raises(IndexBusy, match=f"hoprag writer pid {os.getpid()}"):
                ib.build(new)
        assert ib.build(new).generation == 2
    killer = (
        "import os, signal, sys\n"
        "from sqlalchemy import create_engine\n"
        "from storage.lock import AdvisoryLock\n"
        "AdvisoryLock(create_engine(sys.argv[1])).acquire()\n"
        "print('held', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", killer, postgres_url], capture_output=True, text=True)
    assert out.returncode == -9 and "held" in out.stdout
    with Index(settings=a) as ia:
        assert ia.build(old, as_of="2024-01-01").as_of == "2024-01-01"   # the lock was free
