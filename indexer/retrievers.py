"""What the framework retrievers (indexer.langchain, indexer.llamaindex) share: one query against an
`Index`, a `Client` or an `AsyncClient`, and a hit's metadata as a document carries it.

Public API:
    RETRIEVER_MODES                 the search modes and "hop" (hop search, `hop_mode` similarity|llm)
    QueryOptions(k=10, mode="hybrid", hop_mode="similarity", n_hop=2, filters=None, as_of=None)
        .check()                    QueryError for a mode the index does not have
        .run(source, text) -> list[Hit] (or an awaitable of it, for an AsyncClient)
    awaits(source) -> bool          an AsyncClient: its queries are awaited
    hit_metadata(hit) -> dict       key, law, article, label, score, generation, chapters, and what
                                    the mode adds: cited, matched_question, sim, imp, path, as_of

Hybrid is the default: it is the index's best single ranking on the STARD benchmark (README), and
what a chain that retrieves once should use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import QueryError
from .retrieve.hits import Hit
from .retrieve.modes import HOP_MODES, MODES

__all__ = ["RETRIEVER_MODES", "QueryOptions", "awaits", "hit_metadata"]

RETRIEVER_MODES = (*MODES, "hop")


@dataclass(frozen=True)
class QueryOptions:
    k: int = 10
    mode: str = "hybrid"
    hop_mode: str = "similarity"
    n_hop: int = 2
    filters: dict | None = None
    as_of: Any = None

    def check(self) -> None:
        if self.mode not in RETRIEVER_MODES:
            raise QueryError(f"unknown mode {self.mode!r}: {', '.join(RETRIEVER_MODES)}")
        if self.hop_mode not in HOP_MODES:
            raise QueryError(f"unknown hop mode {self.hop_mode!r}: {', '.join(HOP_MODES)}")

    def run(self, source: Any, text: str) -> Any:
        """`source.search` or `source.hop_search` with these options: an Index and a Client
        answer a list of hits, an AsyncClient an awaitable of one."""
        self.check()
        if self.mode == "hop":
            return source.hop_search(
                text, k=self.k, n_hop=self.n_hop, mode=self.hop_mode, filters=self.filters, as_of=self.as_of
            )
        return source.search(text, k=self.k, mode=self.mode, filters=self.filters, as_of=self.as_of)


def awaits(source: Any) -> bool:
    from .client import AsyncClient

    return isinstance(source, AsyncClient)


def hit_metadata(hit: Hit) -> dict:
    """Everything of a hit but its text (the document's content) and row id (the index's own)."""
    d = hit.to_dict()
    d.pop("text", None)
    d.pop("passage_id", None)
    return d
