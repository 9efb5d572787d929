"""The LangChain and LlamaIndex retrievers (indexer.langchain, indexer.llamaindex) with the real
packages: over an Index, a Client and an AsyncClient of a real `hoprag serve`, they return the same
keys in the same order as Index.search / hop_search, with the metadata a chain cites from."""

from __future__ import annotations

import asyncio

import pytest

from indexer.client import AsyncClient, Client
from indexer.errors import QueryError

from .conftest import WALK_MECHANICS, need, requires_data
from .live import served_index

pytestmark = requires_data
OVERTIME = "雇主延長工作時間之工資如何計算"
LAWS = ("N0030001", "N0030002")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with served_index(tmp_path_factory.mktemp("frameworks"), LAWS, **WALK_MECHANICS) as env:
        yield env


def _langchain():
    need("langchain_core")
    from indexer.langchain import HopRAGRetriever

    return HopRAGRetriever


def _llamaindex():
    need("llama_index.core")
    from indexer.llamaindex import HopRAGRetriever

    return HopRAGRetriever


CASES = [
    ({"mode": "hybrid", "k": 5}, lambda idx: idx.search(OVERTIME, k=5, mode="hybrid")),
    ({"mode": "dense", "k": 3, "filters": {"law": "勞基法施行細則"}},
     lambda idx: idx.search(OVERTIME, k=3, mode="dense", filters={"law": "勞基法施行細則"})),
    ({"mode": "bm25", "k": 4, "as_of": "2025-01-01"},
     lambda idx: idx.search(OVERTIME, k=4, mode="bm25", as_of="2025-01-01")),
    ({"mode": "hop", "k": 6, "n_hop": 2}, lambda idx: idx.hop_search(OVERTIME, k=6, n_hop=2)),
]


@pytest.mark.parametrize("options,expected", CASES, ids=[c[0]["mode"] for c in CASES])
def test_langchain_returns_the_index_order(env, options, expected):
    Retriever = _langchain()
    want = expected(env["index"])
    assert len(want) >= 3
    docs = Retriever(source=env["index"], **options).invoke(OVERTIME)
    assert [d.metadata["key"] for d in docs] == [h.key for h in want]
    assert [d.id for d in docs] == [h.key for h in want]
    assert [d.page_content for d in docs] == [h.text for h in want]
    assert [d.metadata["score"] for d in docs] == [h.score for h in want]
    with Client(env["url"]) as client:
        remote = Retriever(source=client, **options).invoke(OVERTIME)
    assert [d.metadata["key"] for d in remote] == [h.key for h in want]

    async def via_async_client():
        async with AsyncClient(env["url"]) as client:
            return await Retriever(source=client, **options).ainvoke(OVERTIME)

    assert [d.metadata["key"] for d in asyncio.run(via_async_client())] == [h.key for h in want]
    # an Index from async code: the same answer, from a worker thread
    assert [d.metadata["key"] for d in asyncio.run(Retriever(source=env["index"], **options).ainvoke(OVERTIME))] == [
        h.key for h in want
    ]


@pytest.mark.parametrize("options,expected", CASES, ids=[c[0]["mode"] for c in CASES])
def test_llamaindex_returns_the_index_order(env, options, expected):
    Retriever = _llamaindex()
    want = expected(env["index"])
    nodes = Retriever(env["index"], **options).retrieve(OVERTIME)
    assert [n.node.node_id for n in nodes] == [h.key for h in want]
    assert [n.score for n in nodes] == [h.score for h in want]
    assert [n.node.get_content() for n in nodes] == [h.text for h in want]
    with Client(env["url"]) as client:
        assert [n.node.node_id for n in Retriever(client, **options).retrieve(OVERTIME)] == [h.key for h in want]

    async def via_async_client():
        async with AsyncClient(env["url"]) as client:
            return await Retriever(client, **options).aretrieve(OVERTIME)

    assert [n.node.node_id for n in asyncio.run(via_async_client())] == [h.key for h in want]


def test_documents_carry_what_a_chain_cites(env):
    docs = _langchain()(source=env["index"], mode="hop", k=8, n_hop=2).invoke("勞基法第24條")
    first = docs[0].metadata
    assert (first["key"], first["law"], first["article"], first["label"]) == ("N0030001:24", "勞動基準法", "24", "第24條")
    assert first["cited"] is True and "text" not in first and "passage_id" not in first
    assert all(isinstance(d.metadata["path"], list) for d in docs)
    hopped = [d for d in docs if d.metadata["path"]]
    assert hopped, "a two-round walk from 勞基法第24條 reaches some article over an edge"
    step = hopped[0].metadata["path"][-1]
    assert step["to"] == hopped[0].metadata["key"] and {"from", "kind", "direction"} <= set(step)
    dated = _langchain()(source=env["index"], mode="dense", k=2, as_of="2025-01-01").invoke(OVERTIME)
    assert all(d.metadata["as_of"] == "2025-01-01" for d in dated)


def test_llamaindex_shows_an_llm_the_law_and_article_not_the_scores(env):
    from llama_index.core.schema import MetadataMode

    node = _llamaindex()(env["index"], k=1, mode="dense").retrieve(OVERTIME)[0].node
    shown = node.get_content(metadata_mode=MetadataMode.LLM)
    assert node.metadata["law"] in shown and node.metadata["label"] in shown
    assert "score" not in shown and "generation" not in shown and node.metadata["key"] not in shown


def test_bad_options_fail_before_any_query(env):
    with pytest.raises(QueryError, match="unknown mode 'fast'"):
        _langchain()(source=env["index"], mode="fast").invoke(OVERTIME)
    with pytest.raises(QueryError, match="unknown hop mode"):
        _llamaindex()(env["index"], mode="hop", hop_mode="guess")
    with pytest.raises(QueryError, match="k must be between"):
        _langchain()(source=env["index"], k=0).invoke(OVERTIME)


def test_an_async_client_is_awaited_not_called(env):
    async def calls_sync():
        async with AsyncClient(env["url"]) as client:
            with pytest.raises(TypeError, match="ainvoke"):
                _langchain()(source=client).invoke(OVERTIME)
            with pytest.raises(TypeError, match="aretrieve"):
                _llamaindex()(client).retrieve(OVERTIME)

    asyncio.run(calls_sync())
