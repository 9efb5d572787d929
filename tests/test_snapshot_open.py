"""Opening a snapshot fast without trusting it: FAISS files memory-mapped (and copied before any
change), every file's checksum verified (XXH3; sha256 manifests of older snapshots still read), and
the snapshot matched against the database by the digest its build committed, or row by row where a
database has none."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sqlalchemy import select, update

from indexer.index import Index
from indexer.store.derived import DIGEST_META
from storage.models import PseudoQueryRow
from storage.reads import session_read
from storage.vectors import VectorIndex

from .conftest import vector_file, write_law

USE = "use-multilingual"
SNAP = "snapshots/gen-000001"


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_mapped_index_copies_before_any_change_and_leaves_the_file_alone(tmp_path):
    x = _unit(50, 16, 0)
    vi = VectorIndex(16)
    vi.add(np.arange(50) * 10, x)
    path = tmp_path / "v.faiss"
    path.write_bytes(vi.to_bytes())
    before = path.read_bytes()

    mapped = VectorIndex.from_file(path)
    scores, ids = mapped.search(x[:1], 3)
    assert ids[0, 0] == 0 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(mapped.vectors()[1], x)

    twin = mapped.clone()                       # FAISS' clone_index would share the mapped view
    twin.add(np.array([7]), _unit(1, 16, 1))
    twin.remove(np.array([0]))
    assert (twin.ntotal, mapped.ntotal) == (50, 50)

    mapped.remove(np.array([10, 20]))            # copied first, then changed
    mapped.add(np.array([11]), _unit(1, 16, 2))
    assert mapped.ntotal == 49 and 10 not in set(mapped.ids().tolist())
    assert path.read_bytes() == before


def test_unreadable_index_file_is_a_vector_index_error(tmp_path):
    from storage.vectors import VectorIndexError

    bad = tmp_path / "bad.faiss"
    bad.write_bytes(b"not faiss at all")
    with pytest.raises(VectorIndexError, match="not a readable FAISS index"):
        VectorIndex.from_file(bad)


@pytest.fixture
def built(tmp_path, legal_llm):
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", {
        "1": "為保障勞工權益，特制定本法。",
        "2": "雇主延長勞工工作時間者，應加給工資。",
        "3": "前條之工資，按平日每小時工資額加給三分之一以上。",
    })
    home = tmp_path / "home"
    from indexer.settings import Settings

    settings = Settings(home=home, llm_base_url=legal_llm.url, llm_max_retries=0)
    with Index(settings=settings) as idx:
        idx.build(lib, embedder=USE, llm="openai:fake")
        answer = [h.key for h in idx.search("延長工作時間之工資", k=3, mode="hybrid")]
        stored = idx.db.get_meta(DIGEST_META)
        n_questions = sum(idx.stats()["pseudo_queries"].values())
    assert n_questions > 0
    return home, answer, stored


def test_build_commits_the_digest_of_its_generation(built):
    home, _, stored = built
    assert stored["generation"] == 1 and len(stored["digest"]) == 32
    manifest = json.loads((home / SNAP / "manifest.json").read_text())
    assert manifest["format"] == 2
    assert all(set(e) == {"xxh3_128", "bytes"} for e in manifest["files"].values())
    with Index(home) as idx:
        with idx.db.reading() as r:                      # sqlite3 on SQLite, a session elsewhere
            view = idx.derived.view(r)
        assert view.digest == stored["digest"]
        with idx.db.session() as s:                      # the row-by-row digest agrees with it
            idx.db.set_meta(s, DIGEST_META, None)
            assert idx.derived.view(session_read(s)).digest == stored["digest"]


def test_database_without_a_digest_is_compared_row_by_row(built):
    home, answer, stored = built
    with Index(home) as idx:
        with idx.db.session() as s:  # a digest of another generation does not count
            idx.db.set_meta(s, DIGEST_META, {"generation": 0, "digest": stored["digest"]})
        assert [h.key for h in idx.search("延長工作時間之工資", k=3, mode="hybrid")] == answer
        assert idx.repairs == []
    with Index(home) as idx:  # a row that differs from the snapshot, no digest to say so: found
        with idx.db.session() as s:
            first, second = s.execute(select(PseudoQueryRow.id, PseudoQueryRow.embed_hash).limit(2)).all()
            s.execute(update(PseudoQueryRow).where(PseudoQueryRow.id == first.id).values(embed_hash=second.embed_hash))
        derived = idx.derived.load()
        assert len(idx.repairs) == 1 and "does not match the database" in idx.repairs[0], idx.repairs
        name = "questions_in" if first.id in derived.sets["questions_in"].hashes else "questions_out"
        assert derived.sets[name].hashes[first.id] == second.embed_hash
    with Index(home) as idx:
        idx.derived.load()
        assert idx.repairs == []


def test_committed_digest_that_the_snapshot_does_not_match_is_repaired(built):
    home, answer, _ = built
    with Index(home) as idx:
        with idx.db.session() as s:
            idx.db.set_meta(s, DIGEST_META, {"generation": 1, "digest": "f" * 32})
        assert [h.key for h in idx.search("延長工作時間之工資", k=3, mode="hybrid")] == answer
        assert len(idx.repairs) == 1 and "does not match the database" in idx.repairs[0]


def test_older_sha256_manifest_is_still_verified(built):
    home, answer, _ = built
    folder = home / SNAP
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format"] = 1
    manifest["files"] = {
        name: {"sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(), "bytes": e["bytes"]}
        for name, e in manifest["files"].items()
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with Index(home) as idx:
        assert [h.key for h in idx.search("延長工作時間之工資", k=3, mode="hybrid")] == answer
        assert idx.repairs == [] and idx.verify_snapshot(1) is None
    name = vector_file(folder, "questions_out")
    data = bytearray((folder / name).read_bytes())
    data[-5] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    with Index(home) as idx:
        assert idx.verify_snapshot(1) is not None and "checksum mismatch" in idx.verify_snapshot(1)
        assert [h.key for h in idx.search("延長工作時間之工資", k=3, mode="hybrid")] == answer
        assert any("checksum mismatch" in r and name in r for r in idx.repairs)


def test_a_snapshot_from_before_edge_roles_is_rebuilt_with_them(built):
    """Snapshots written before citation roles hold a graph table without the role column; such a
    snapshot is rebuilt from the database on open (checksums alone would let it through)."""
    from numpy.lib import recfunctions

    from indexer.store.graph import EDGE_DTYPE
    from indexer.store.meta import stored_fingerprint

    home, answer, _ = built
    with Index(home) as idx:
        derived = idx.derived.load()
        derived.edges = recfunctions.drop_fields(derived.edges, "role", usemask=False)
        idx.derived.save(derived, stored_fingerprint(idx.db))
    with Index(home) as idx:
        assert [h.key for h in idx.search("延長工作時間之工資", k=3, mode="hybrid")] == answer
        assert len(idx.repairs) == 1 and "older format" in idx.repairs[0], idx.repairs
        assert idx.retriever.state().edges.dtype == EDGE_DTYPE
    with Index(home) as idx:                           # and the repaired snapshot was saved
        idx.derived.load()
        assert idx.repairs == []
