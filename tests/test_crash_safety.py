"""Crash safety: `hoprag build` killed with SIGKILL at many points (reading, embedding, cache
writes, the database transaction, FAISS serialization, snapshot files, fsync, rename, the commit),
then reopened. Each time the index opens, answers queries from one whole generation, has lost
nothing it had committed, and the next build embeds only what was not cached before the kill."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import select

from indexer.index import Index
from indexer.library import read_library
from indexer.passages import text_hash
from storage.models import EmbeddingRow

from .conftest import LAWS_2022, LAWS_2024, requires_data

pytestmark = [requires_data, pytest.mark.sqlite_only]  # builds in subprocesses on the home's SQLite file
USE = "use-multilingual"

# module : attribute path : which call : kill before or after the original runs
KILL_POINTS = [
    ("indexer.library", "read_regular", 1, "before"),               # reading the files
    ("indexer.library", "read_regular", 3, "after"),
    ("indexer.build.builder", "parse_library", 1, "after"),                  # parsing what was read
    ("indexer.embedders.use", "UseEmbedder.embed", 1, "before"),     # embedding
    ("indexer.embedders.use", "UseEmbedder.embed", 1, "after"),
    ("storage.cache", "EmbeddingCache.put_many", 1, "before"),       # cache writes
    ("storage.cache", "EmbeddingCache.put_many", 1, "after"),
    ("indexer.build.writes", "write_documents", 1, "after"),         # inside the database transaction
    ("indexer.store.derived", "DerivedStore.sync_sets", 1, "after"),
    ("indexer.text.citations", "resolve_citations", 1, "after"),
    ("indexer.build.builder", "write_edges", 1, "after"),                    # the edges written, commit not yet
    ("storage.vectors", "VectorIndex.to_bytes", 1, "before"),        # FAISS serialization
    ("storage.vectors", "VectorIndex.to_bytes", 3, "after"),
    ("os", "fsync", 1, "after"),                                     # snapshot files
    ("os", "fsync", 4, "before"),
    ("os", "fsync", 7, "after"),                                     # the manifest
    ("os", "replace", 1, "before"),                                  # the snapshot rename
    ("os", "replace", 1, "after"),
    ("storage.snapshots", "SnapshotStore.prune", 1, "after"),       # snapshot done, commit not yet
    ("sqlalchemy.orm.session", "SessionTransaction.commit", 4, "before"),  # commits of cache rows …
    ("indexer.build.builder", "record_build", 1, "before"),                  # … and after the generation commit
    ("indexer.build.builder", "record_build", 1, "after"),
]

KILLER = textwrap.dedent("""
    import importlib, os, signal, sys
    home, lib, spec = sys.argv[1], sys.argv[2], sys.argv[3]
    module, attr, nth, when = spec.split(":")
    owner = importlib.import_module(module)
    *parents, name = attr.split(".")
    for p in parents:
        owner = getattr(owner, p)
    original, calls = getattr(owner, name), [0]
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(nth) and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls[0] == int(nth) and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(owner, name, wrapper)
    from indexer.index import Index
    with Index(home) as idx:
        idx.build(lib)
    sys.exit(3)   # the kill point was never reached
""")


def _library(folder, laws):
    folder.mkdir()
    for src, pcode in laws:
        shutil.copy(src / f"{pcode}.json", folder)
    return folder


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Generation 1 of a small index, and the library its next build will read."""
    root = tmp_path_factory.mktemp("crash")
    v1 = _library(root / "v1", [(LAWS_2022, "N0030001"), (LAWS_2022, "N0030002"), (LAWS_2022, "I0020004")])
    v2 = _library(root / "v2", [(LAWS_2024, "N0030001"), (LAWS_2024, "N0030002"), (LAWS_2024, "A0030210")])
    home = root / "home"
    with Index(home) as idx:
        idx.build(v1, embedder=USE)
        gen1 = {h.key for h in idx.search("國家賠償責任", k=50)}
        cached = idx.stats()["cached_embeddings"]
    needed = {text_hash(p.embed_text) for p in read_library(v2).passages if not p.repealed}
    return {"home": home, "v2": v2, "gen1_keys": gen1, "cached": cached, "needed": needed}


def _cache_hashes(idx):
    with idx.db.session() as s:
        return set(s.scalars(select(EmbeddingRow.text_hash)))


@pytest.mark.parametrize("point", KILL_POINTS, ids=[f"{m}.{a}#{n}-{w}" for m, a, n, w in KILL_POINTS])
def test_killed_build_loses_nothing_and_resumes(base, tmp_path, point):
    home = tmp_path / "home"
    shutil.copytree(base["home"], home)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(home), str(base["v2"]), ":".join(map(str, point))],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, f"kill point not reached (rc {proc.returncode}): {proc.stderr[-2000:]}"

    with Index(home) as idx:
        generation = idx.generation
        assert generation in (1, 2)
        stats = idx.stats()                                     # opens, reads, verifies or repairs
        assert stats["vectors"] == stats["embedded_passages"]
        hits = idx.search("國家賠償責任", k=5)
        assert {h.generation for h in hits} == {generation}
        laws = {h.law for h in idx.search("違反行政法上義務而受罰鍰", k=20)}
        assert ("行政罰法" in laws) == (generation == 2)       # a whole generation, never a mix
        cache = _cache_hashes(idx)
        assert stats["cached_embeddings"] >= base["cached"]     # committed cache rows survive
        if generation == 1:
            assert {h.key for h in idx.search("國家賠償責任", k=50)} == base["gen1_keys"]

    with Index(home) as idx:
        report = idx.build(base["v2"])
        assert report.embedded == len(base["needed"] - cache)   # only what the kill had not cached
        assert idx.generation == 2
        final = idx.stats()
        assert final["passages"] == 98 + 70 + 46 and final["laws"] == 3
        assert final["vectors"] == final["embedded_passages"]
        assert idx.verify_snapshot(idx.generation) is None
