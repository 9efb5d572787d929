"""hoprag-index: a local-first HopRAG index for legal texts.

    from indexer import Index, Settings
    with Index("./.hoprag") as idx:
        idx.build("laws/2024-10-11", embedder="use-multilingual")
        hits = idx.search("雇主延長工作時間之工資如何計算", k=5, mode="hybrid")

The names below are loaded on first use, so that `import indexer.cli` (a no-op build, `--help`)
pays only for what it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Index",
    "Hit",
    "HopHits",
    "Settings",
    "BuildReport",
    "Library",
    "Passage",
    "LibraryError",
    "EmbedderError",
    "EmbedderMismatch",
    "IndexStateError",
    "QueryError",
    "HopLLMError",
    "BuildBusy",
    "IndexBusy",
    "SchemaError",
    "SnapshotError",
]

_WHERE = {
    "Index": "index",
    "Hit": "retrieve.hits",
    "HopHits": "retrieve.hits",
    "Settings": "settings",
    "BuildReport": "build.report",
    "Library": "passages",
    "Passage": "passages",
}

if TYPE_CHECKING:
    from .build.report import BuildReport
    from .errors import (
        BuildBusy,
        EmbedderError,
        EmbedderMismatch,
        HopLLMError,
        IndexBusy,
        IndexStateError,
        LibraryError,
        QueryError,
        SchemaError,
        SnapshotError,
    )
    from .index import Index
    from .passages import Library, Passage
    from .retrieve.hits import Hit, HopHits
    from .settings import Settings


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'indexer' has no attribute {name!r}")
    from .nogc import paused_gc

    with paused_gc():  # a new process's imports (SQLAlchemy, pydantic): nothing for the collector
        module = importlib.import_module(f".{_WHERE.get(name, 'errors')}", __name__)
    return getattr(module, name)
