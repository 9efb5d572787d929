"""The retriever's public names where code written before the `retrieve` package imports them
(`from indexer.retrieval import Hit`). New code imports from `indexer.retrieve`."""

from __future__ import annotations

from .errors import HopLLMError, QueryError
from .retrieve.hits import Hit, HopHits
from .retrieve.modes import HOP_MODES, MODES
from .retrieve.named import LAW_SHORT_NAMES
from .retrieve.retriever import Retriever
from .retrieve.state import PassageInfo, State

__all__ = [
    "Retriever",
    "Hit",
    "HopHits",
    "State",
    "PassageInfo",
    "QueryError",
    "HopLLMError",
    "LAW_SHORT_NAMES",
    "MODES",
    "HOP_MODES",
]
