"""A LangChain retriever over the index (`pip install hoprag-index[langchain]`).

Public API:
    HopRAGRetriever(source=Index | Client | AsyncClient, k=10, mode="hybrid", hop_mode="similarity",
                    n_hop=2, filters=None, as_of=None)       a langchain_core BaseRetriever
        .invoke(query) -> list[Document]       page_content: the article's text; metadata: key, law,
        .ainvoke(query)                        article, label, score, ... (retrievers.hit_metadata),
                                               and for mode="hop" the path that reached it

    from indexer import Index
    from indexer.langchain import HopRAGRetriever
    retriever = HopRAGRetriever(source=Index(".hoprag"), k=5, mode="hop")
    docs = retriever.invoke("雇主延長工作時間之工資如何計算")

The documents come in the index's order, so they are the same keys as `Index.search` (or
`hop_search`) returns for the same query and options.
"""

from __future__ import annotations

from typing import Any

from .errors import require
from .retrievers import QueryOptions, awaits, hit_metadata

require("langchain_core", "langchain", "indexer.langchain")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402

__all__ = ["HopRAGRetriever"]


class HopRAGRetriever(BaseRetriever):
    source: Any
    """An `indexer.Index`, or an `indexer.client.Client` / `AsyncClient` of `hoprag serve`."""
    k: int = 10
    mode: str = "hybrid"
    hop_mode: str = "similarity"
    n_hop: int = 2
    filters: dict | None = None
    as_of: Any = None

    def _options(self) -> QueryOptions:
        return QueryOptions(self.k, self.mode, self.hop_mode, self.n_hop, self.filters, self.as_of)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if awaits(self.source):
            raise TypeError("an AsyncClient's answers are awaited: use `await retriever.ainvoke(query)`")
        hits = self._options().run(self.source, query)
        return [_document(h) for h in hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if not awaits(self.source):  # an Index or a Client: in a worker thread (LangChain's default)
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        hits = await self._options().run(self.source, query)
        return [_document(h) for h in hits]


def _document(hit: Any) -> Document:
    return Document(page_content=hit.text, metadata=hit_metadata(hit), id=hit.key)
