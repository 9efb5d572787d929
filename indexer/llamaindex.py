"""A LlamaIndex retriever over the index (`pip install hoprag-index[llamaindex]`).

Public API:
    HopRAGRetriever(source=Index | Client | AsyncClient, k=10, mode="hybrid", hop_mode="similarity",
                    n_hop=2, filters=None, as_of=None)       a llama_index.core BaseRetriever
        .retrieve(query) -> list[NodeWithScore]     TextNode: id_ = the passage key, text = the
        .aretrieve(query)                           article's text, metadata = key, law, article,
                                                    label, score, ... and for mode="hop" the path

    from indexer import Index
    from indexer.llamaindex import HopRAGRetriever
    nodes = HopRAGRetriever(Index(".hoprag"), k=5).retrieve("雇主延長工作時間之工資如何計算")

Nodes come in the index's order (the same keys as `Index.search` for the same query and options).
An LLM or embedder reading a node is shown its law and article label beside the text; the other
metadata (scores, the path) is for the program (excluded_*_metadata_keys).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import require
from .retrievers import QueryOptions, awaits, hit_metadata

require("llama_index.core", "llamaindex", "indexer.llamaindex")

from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode  # noqa: E402

__all__ = ["HopRAGRetriever"]

# what an LLM reading the node needs beside the text: which law and article it is (the rest, scores
# and paths, is for the program)
_SHOWN = ("law", "label")


class HopRAGRetriever(BaseRetriever):
    def __init__(
        self,
        source: Any,
        k: int = 10,
        mode: str = "hybrid",
        hop_mode: str = "similarity",
        n_hop: int = 2,
        filters: dict | None = None,
        as_of: Any = None,
        **kwargs: Any,
    ):
        """source: an `indexer.Index`, or an `indexer.client.Client` / `AsyncClient` of `hoprag serve`."""
        self.source = source
        self.options = QueryOptions(k, mode, hop_mode, n_hop, filters, as_of)
        self.options.check()
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if awaits(self.source):
            raise TypeError("an AsyncClient's answers are awaited: use `await retriever.aretrieve(query)`")
        hits = self.options.run(self.source, query_bundle.query_str)
        return [_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if not awaits(self.source):  # an Index or a Client: off the event loop
            return await asyncio.to_thread(self._retrieve, query_bundle)
        hits = await self.options.run(self.source, query_bundle.query_str)
        return [_node(h) for h in hits]


def _node(hit: Any) -> NodeWithScore:
    metadata = hit_metadata(hit)
    hidden = [m for m in metadata if m not in _SHOWN]
    node = TextNode(
        id_=hit.key,
        text=hit.text,
        metadata=metadata,
        excluded_embed_metadata_keys=hidden,
        excluded_llm_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=hit.score)
