"""Retrieval over one committed generation: dense, question, BM25, hybrid and citation-aware
search, neighbours, and HopRAG multi-hop traversal. One module per job, in the order a query
meets them:

    modes.py       the values a query chooses from (no imports: the CLI's --help reads them)
    hits.py        Hit, HopHits: what a query answers
    states.py      States: today's generation and the law in force on a date, loaded once each
    state.py       State: one generation's vectors, metadata, edges and BM25; filters as masks
    named.py       the laws and articles a query names (勞基法第24條 first)
    channels.py    dense, questions, BM25 and their reciprocal rank fusion
    walk.py        the similarity walk (retrieve → reason → prune)
    llm_walk.py    the LLM's say in the walk, within a budget and a deadline
    neighbors.py   a passage's edges, and its neighbourhood to draw
    retriever.py   Retriever: the queries, joined from the above

`from indexer.retrieve import Retriever, Hit, HopHits` loads those on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Retriever", "Hit", "HopHits", "State", "PassageInfo", "MODES", "HOP_MODES", "LAW_SHORT_NAMES"]

_WHERE = {
    "Retriever": "retriever",
    "Hit": "hits",
    "HopHits": "hits",
    "State": "state",
    "PassageInfo": "state",
    "MODES": "modes",
    "HOP_MODES": "modes",
    "LAW_SHORT_NAMES": "named",
}

if TYPE_CHECKING:
    from .hits import Hit, HopHits
    from .modes import HOP_MODES, MODES
    from .named import LAW_SHORT_NAMES
    from .retriever import Retriever
    from .state import PassageInfo, State


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'indexer.retrieve' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
