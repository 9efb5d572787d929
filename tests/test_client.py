"""indexer.client against a real `hoprag serve` app on loopback (with an API key): every method gives
what the same `Index` method gives, sync and async; errors come back as the index's own classes;
a build over HTTP returns its BuildReport."""

from __future__ import annotations

import asyncio
import shutil

import httpx
import pytest

from indexer.build.report import BuildReport
from indexer.client import AsyncClient, Client
from indexer.errors import BuildBusy, QueryError
from indexer.index import Index
from indexer.retrieval import Hit, HopHits
from indexer.service import create_app
from indexer.settings import Settings

from .conftest import LAWS_2024, WALK_MECHANICS, requires_data
from .live import LiveServer, wait_job

KEY = "test-key-7f3a"
LAWS = ("N0030001", "N0030002")
OVERTIME = "雇主延長工作時間之工資如何計算"

pytestmark = requires_data


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("client")
    roots, home = base / "roots", base / "home"
    lib = roots / "laws"
    lib.mkdir(parents=True)
    for pcode in LAWS:
        shutil.copy(LAWS_2024 / f"{pcode}.json", lib / f"{pcode}.json")
    settings = Settings(home=home, **WALK_MECHANICS)
    with Index(settings=settings) as idx:
        idx.build(lib, embedder="use-multilingual")
    app = create_app(settings, api_key=KEY, library_roots=[roots])
    with LiveServer(app) as server, Index(settings=Settings(home=home, **WALK_MECHANICS)) as local:
        yield {"url": server.url, "index": local, "roots": roots}


@pytest.fixture(scope="module")
def client(env):
    with Client(env["url"], api_key=KEY) as c:
        yield c


def test_queries_answer_what_the_index_answers(client, env):
    idx = env["index"]
    for mode in ("dense", "hybrid", "bm25"):
        remote, local = client.search(OVERTIME, k=5, mode=mode), idx.search(OVERTIME, k=5, mode=mode)
        assert all(isinstance(h, Hit) for h in remote)
        assert [(h.key, round(h.score, 5), h.text) for h in remote] == [(h.key, round(h.score, 5), h.text) for h in local]
    assert [h.key for h in client.search("勞基法第24條", k=3, filters={"law": "勞基法"})] == [
        h.key for h in idx.search("勞基法第24條", k=3, filters={"law": "勞基法"})
    ]
    hop, local_hop = client.hop_search(OVERTIME, k=5, n_hop=2), idx.hop_search(OVERTIME, k=5, n_hop=2)
    assert isinstance(hop, HopHits) and hop.steps == local_hop.steps and hop.llm_calls == 0
    assert [(h.key, h.path, h.sim, h.imp) for h in hop] == [(h.key, h.path, h.sim, h.imp) for h in local_hop]
    assert client.neighbors("N0030001:32", direction="in", kinds=["citation"]) == idx.neighbors(
        "N0030001:32", direction="in", kinds=["citation"]
    )
    assert client.passage("N0030001:24") == idx.passage("N0030001:24")
    assert client.history("N0030001:24") == idx.history("N0030001:24")
    assert client.neighbourhood("N0030001:24", hops=1)["center"] == "N0030001:24"
    assert client.stats()["passages"] == idx.stats()["passages"]


def test_missing_things_and_errors_are_the_index_own(client, env):
    idx = env["index"]
    assert client.passage("N0030001:9999") is None is idx.passage("N0030001:9999")
    assert client.history("N0030001:9999") == [] == idx.history("N0030001:9999")
    with pytest.raises(KeyError):
        client.neighbors("N0030001:9999")
    with pytest.raises(QueryError, match="needs an LLM"):       # the service's 400, its own class
        client.hop_search(OVERTIME, mode="llm")
    with pytest.raises(QueryError, match="mode"):               # a 422 (outside the schema) as QueryError
        client.search(OVERTIME, mode="sideways")
    with pytest.raises(QueryError, match="k"):
        client.search(OVERTIME, k=10**6)
    with pytest.raises(QueryError, match="history starts on"):
        client.diff("1990-01-01", "2024-09-30")
    with Client(env["url"], api_key="wrong") as stranger, pytest.raises(PermissionError):
        stranger.search(OVERTIME)


def test_the_async_client_answers_the_same(client, env):
    async def main():
        async with AsyncClient(env["url"], api_key=KEY) as ac:
            hits = await ac.search(OVERTIME, k=5, mode="hybrid")
            hop = await ac.hop_search(OVERTIME, k=5)
            with pytest.raises(QueryError):
                await ac.search(OVERTIME, mode="sideways")
            return hits, hop

    hits, hop = asyncio.run(main())
    assert [h.key for h in hits] == [h.key for h in client.search(OVERTIME, k=5, mode="hybrid")]
    assert [h.key for h in hop] == [h.key for h in client.hop_search(OVERTIME, k=5)]


def test_a_build_over_http_returns_its_report_and_a_busy_service_says_so(client, env):
    """Last in this file: the builds change the index the other tests read."""
    extra = env["roots"] / "extra"
    extra.mkdir()
    shutil.copy(LAWS_2024 / "J0070017.json", extra / "J0070017.json")
    with httpx.Client(base_url=env["url"], headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as raw:
        # dated after the laws' own date: a current build (an older one would only add history)
        job = raw.post("/builds", json={"library": "extra", "as_of": "2024-08-01"}).json()
        with pytest.raises(BuildBusy, match="one build runs at a time"):   # the 409 keeps its class
            client.build("laws")
        assert wait_job(raw, job["id"], timeout=300)["status"] == "committed"
    report = client.build("laws", as_of="2024-08-02", timeout_s=300)   # the two laws again, 著作權法 gone
    assert isinstance(report, BuildReport) and report.added > 0 and report.removed > 0
    assert report.documents == 2 and client.stats()["laws"] == 2
    with pytest.raises(PermissionError):
        client.build("../../outside-the-roots")

