"""Milvus as the vector engine (a real `milvus-lite server` the tests start, see
conftest.milvus_server), alone and with PostgreSQL: versioned rows that readers of the committed
generation never see change, a build that writes only what changed, a crashed build undone, a lost
collection rebuilt from the cache, law filters inside Milvus."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from indexer.index import Index
from indexer.settings import Settings

from .conftest import TOY_V1, TOY_V2

USE = "use-multilingual"


def _settings(tmp_path, milvus_server, **extra) -> Settings:
    return Settings(
        home=tmp_path / "home",
        vectors="milvus",
        milvus_uri=milvus_server.uri,
        milvus_prefix=f"t_{uuid.uuid4().hex[:10]}",
        **extra,
    )


def _rows(store, name: str, fp) -> list[dict]:
    coll = store.collection(f"{name}_{fp.id}", fp.dim)
    return store.query(coll, "pk >= 0", ["vid", "gen_from", "gen_to"])


def test_versioned_rows_law_filter_and_the_next_generations_view(milvus_server):
    from storage.milvus import LIVE, MilvusStore

    store = MilvusStore(milvus_server.uri, f"u_{uuid.uuid4().hex[:8]}")
    rng = np.random.default_rng(7)
    v = rng.normal(size=(6, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    g1 = store.index("passages", 8, 1, create=True)
    g1.add(np.arange(1, 7), v, laws=["民法", "民法", "刑法", "刑法", "勞動基準法", "民法"])
    assert g1.ntotal == 6 and g1.ids().tolist() == [1, 2, 3, 4, 5, 6]

    g2 = g1.clone()                                           # the build of generation 2
    g2.remove(np.array([2, 3]))
    g2.add(np.array([2]), -v[1:2], laws=["民法"])             # 2 changed, 3 gone
    assert g1.ids().tolist() == [1, 2, 3, 4, 5, 6]            # generation 1 readers: untouched
    assert g2.ids().tolist() == [1, 2, 4, 5, 6]
    scores, ids = g1.search(v[1:2], 1)
    assert ids[0, 0] == 2 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    _, ids = g2.search(v[1:2], 6)
    assert 3 not in ids[0] and ids[0, -1] == 2                # the changed vector points away now

    _, ids = g2.search(v[0:1], 6, laws=["刑法"])              # filtered inside Milvus
    assert ids[0].tolist() == [4]
    _, ids = g2.search(v[0:1], 6, laws=['民法" or law != "'])  # a law name is data, not an expression
    assert ids.shape[1] == 0

    rows = store.query(store.collection("passages", 8), "pk >= 0", ["vid", "gen_from", "gen_to"])
    assert sorted((r["vid"], r["gen_from"], r["gen_to"]) for r in rows) == [
        (1, 1, LIVE), (2, 1, 2), (2, 2, LIVE), (3, 1, 2), (4, 1, LIVE), (5, 1, LIVE), (6, 1, LIVE)]

    store.discard_after("passages", 8, 1)                     # generation 2 never committed
    assert store.index("passages", 8, 2).ids().tolist() == [1, 2, 3, 4, 5, 6]
    assert len(store.query(store.collection("passages", 8), "pk >= 0", ["vid"])) == 6

    g2 = store.index("passages", 8, 1).clone()
    g2.remove(np.array([6]))
    store.vacuum("passages", 8, 2)                            # generation 2 committed, 1 no longer kept
    assert store.index("passages", 8, 2).ids().tolist() == [1, 2, 3, 4, 5]
    assert len(store.query(store.collection("passages", 8), "pk >= 0", ["vid"])) == 5


def test_an_index_on_milvus_builds_only_what_changed(tmp_path, toy_libs, milvus_server):
    old, new = toy_libs
    settings = _settings(tmp_path, milvus_server)
    with Index(settings=settings) as idx:
        first = idx.build(old, embedder=USE)
        assert (first.generation, first.added) == (1, 3)
        snap = idx.derived.snapshots.get(1)
        assert snap.info["vectors"]["engine"] == "milvus" and not list(snap.path.glob("*.faiss"))
        hit = idx.search("勞工工時法第2條", k=1)[0]
        assert hit.text == TOY_V1["2"]
        store, fp = idx.derived.engine.store, idx.builder.embedder(None).fingerprint

        with Index(settings=settings) as reader:               # another reader, as another process would be
            assert reader.search("雇主延長工作時間", k=1)[0].text == TOY_V1["2"]
            second = idx.build(new)
            assert (second.generation, second.changed, second.added, second.embedded) == (2, 2, 1, 3)
            # the reader switches to generation 2 at its next query, from Milvus' rows
            hit = reader.search("雇主延長工作時間者應加給工資三分之一", k=1)[0]
            assert (hit.text, hit.generation) == (TOY_V2["2"], 2)

        rows = _rows(store, "passages", fp)
        written = sorted((r["vid"], r["gen_from"]) for r in rows if r["gen_from"] == 2)
        # 1 and 2 rewritten (the law's new name is part of their text), 4 added; 3, repealed, retired
        assert written == [(1, 2), (2, 2), (4, 2)]
        assert sorted(r["vid"] for r in rows if r["gen_to"] == 2) == [1, 2, 3]  # generation 1 readers keep them
        then = idx.search("勞工工時法第2條", k=1, mode="hybrid", as_of="2021-01-01")[0]
        assert then.text == TOY_V1["2"]


def test_a_failed_build_leaves_the_generation_whole_and_the_next_undoes_it(tmp_path, toy_libs, milvus_server,
                                                                        monkeypatch):
    old, new = toy_libs
    settings = _settings(tmp_path, milvus_server)
    with Index(settings=settings) as idx:
        idx.build(old, embedder=USE)
        before = [(h.key, round(h.score, 5)) for h in idx.search("雇主延長工作時間", k=3)]
        store, fp = idx.derived.engine.store, idx.builder.embedder(None).fingerprint

        from indexer.build import builder as build

        def boom(*a, **k):
            raise RuntimeError("power cut")

        monkeypatch.setattr(build.history, "record", boom)     # dies after Milvus got generation 2's rows
        with pytest.raises(RuntimeError, match="power cut"):
            idx.build(new)
        monkeypatch.undo()
        assert any(r["gen_from"] == 2 for r in _rows(store, "passages", fp))
        with Index(settings=settings) as reader:
            assert reader.stats()["generation"] == 1
            assert [(h.key, round(h.score, 5)) for h in reader.search("雇主延長工作時間", k=3)] == before

        again = idx.build(new)
        assert again.generation == 2
        rows = _rows(store, "passages", fp)
        assert len({(r["vid"], r["gen_from"]) for r in rows}) == len(rows)  # no duplicates from the dead build
        assert idx.search("勞動工時法第4條", k=1)[0].text == TOY_V2["4"]


def test_a_lost_collection_is_rebuilt_from_the_cache(tmp_path, toy_libs, milvus_server):
    _, new = toy_libs
    settings = _settings(tmp_path, milvus_server)
    with Index(settings=settings) as idx:
        idx.build(new, embedder=USE)
        want = [h.key for h in idx.search("主管機關為勞動部", k=2)]
        store, fp = idx.derived.engine.store, idx.builder.embedder(None).fingerprint
    store.reset(f"passages_{fp.id}", fp.dim)                    # someone dropped it
    with Index(settings=settings) as idx:
        assert [h.key for h in idx.search("主管機關為勞動部", k=2)] == want
        assert any("missing" in r for r in idx.repairs), idx.repairs
    assert len(_rows(store, "passages", fp)) == 3


def test_postgresql_and_milvus_together(tmp_path, toy_libs, milvus_server, postgres_url):
    old, new = toy_libs
    settings = _settings(tmp_path, milvus_server, database_url=postgres_url)
    with Index(settings=settings) as idx:
        assert idx.db.engine.dialect.name == "postgresql"
        idx.build(old, embedder=USE)
        assert idx.build(new).generation == 2
        hit = idx.search("勞動工時法第2條", k=1, mode="hybrid")[0]
        assert (hit.key, hit.text) == ("T0000001:2", TOY_V2["2"])
        hops = idx.hop_search("主管機關", k=3)
        assert hops and all(h.generation == 2 for h in hops)


def _two_laws_and_a_search_spy(tmp_path, monkeypatch):
    """A library of two small laws, `asked`, and watch(): from then on MilvusVectorIndex.search
    records each call's laws in `asked` (and searches for real)."""
    from storage.milvus import MilvusVectorIndex

    from .conftest import write_law

    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "工資法", {"1": "雇主應按月給付工資。", "2": "延長工作時間應加給工資。"})
    write_law(lib, "T0000002", "休假法", {"1": "勞工每七日應有二日休息。", "2": "雇主應給付休假日工資。"})
    asked: list = []
    original = MilvusVectorIndex.search

    def spy(self, queries, k, laws=None):
        asked.append(laws)
        return original(self, queries, k, laws)

    return lib, asked, lambda: monkeypatch.setattr(MilvusVectorIndex, "search", spy)


def test_a_law_filter_runs_in_milvus(tmp_path, milvus_server, monkeypatch):
    """Dense search filtered by law asks Milvus with the filter (and answers as FAISS does)."""
    lib, asked, watch = _two_laws_and_a_search_spy(tmp_path, monkeypatch)
    with Index(settings=_settings(tmp_path, milvus_server)) as idx:
        idx.build(lib, embedder=USE)
        watch()
        hits = idx.search("雇主給付工資", k=5, filters={"law": "休假法"})
        assert {h.law for h in hits} == {"休假法"} and len(hits) == 2 and asked == [["休假法"]]
    with Index(settings=Settings(home=tmp_path / "faiss")) as ref:
        ref.build(lib, embedder=USE)
        want = ref.search("雇主給付工資", k=5, filters={"law": "休假法"})
    assert [(h.key, round(h.score, 4)) for h in hits] == [(h.key, round(h.score, 4)) for h in want]


@pytest.mark.parametrize("index_type", ["FLAT", "IVF_FLAT"])
def test_an_ivf_index_answers_every_dense_query(tmp_path, milvus_server, monkeypatch, index_type):
    """On IVF (chosen for libraries too large to scan) unfiltered dense search goes to Milvus; on
    FLAT the in-memory scan answers it (faster than a round trip at statute sizes). Same hits."""
    lib, asked, watch = _two_laws_and_a_search_spy(tmp_path, monkeypatch)
    # nprobe = nlist: the IVF search probes every list, so its hits are the exact ones
    with Index(settings=_settings(tmp_path, milvus_server, milvus_index=index_type, milvus_nlist=2,
                                  milvus_nprobe=2)) as idx:
        idx.build(lib, embedder=USE)
        watch()
        hits = idx.search("雇主給付工資", k=3, mode="dense")
    assert asked == ([None] if index_type == "IVF_FLAT" else [])
    with Index(settings=Settings(home=tmp_path / "faiss")) as ref:
        ref.build(lib, embedder=USE)
        want = ref.search("雇主給付工資", k=3, mode="dense")
    assert [(h.key, round(h.score, 4)) for h in hits] == [(h.key, round(h.score, 4)) for h in want]


def test_readers_wait_for_the_builds_last_write_not_for_strong(tmp_path, toy_libs, milvus_server):
    """A build commits Milvus' timestamp of its last write with the generation; readers ask for
    exactly that (Customized consistency) instead of Strong, which a real Milvus answers only at its
    next time tick (~400 ms on a 2.3 standalone)."""
    from indexer.store.derived import DIGEST_META

    _, new = toy_libs
    settings = _settings(tmp_path, milvus_server)
    with Index(settings=settings) as idx:
        idx.build(new, embedder=USE)
        ts = idx.db.get_meta(DIGEST_META)["vectors"]["milvus_ts"]
        assert ts >= 0  # milvus-lite reports no write timestamps (0: readers use Strong, free there)
    with Index(settings=settings) as idx:
        idx.search("主管機關", k=1)
        index = idx.retriever.state().passage_index
        assert idx.repairs == [] and index.ts == ts and index.generation == 1, idx.repairs


def test_the_client_pings_no_faster_than_a_milvus_lite_server_allows(milvus_server):
    """pymilvus' own keepalive (a ping every 10 s, idle or not) breaks gRPC's default server policy
    (one ping per 5 minutes without data, GOAWAY "too_many_pings" on the third early one), which
    milvus-lite's server keeps: a CI run lost a connection to it. The live channel must carry ours."""
    from storage.milvus import MilvusStore

    store = MilvusStore(milvus_server.uri, f"k_{uuid.uuid4().hex[:8]}")
    options = store.client._get_connection()._grpc_options
    assert options["grpc.keepalive_time_ms"] >= 5 * 60 * 1000
    assert options["grpc.keepalive_permit_without_calls"] is False
    assert store.exists("x", 8) is False  # and the channel answers
