"""Every error a user of hoprag-index can cause or meet, in one leaf module, with what each means
to the HTTP service (its status) and to the CLI (exit 1 with the message, never a traceback).

Public API:
    LibraryError           a library file could not be read (the message names the file)
    EmbedderError          an embedder failed (never answered with stand-in vectors)
    EmbedderMismatch       the index holds vectors of another embedder
    IndexStateError        the index cannot answer (empty, or derived data not rebuildable)
    QueryError             invalid query arguments (empty, k out of range, unknown mode or filter)
    HopLLMError            llm hop mode: every LLM call of the query failed
    BuildBusy              the service runs one build at a time
    MissingExtra           an optional part is not installed; says which extra to install
    require(module, extra, what)   import `module` or raise MissingExtra
    IndexBusy              another process holds the write lock      (storage.lock)
    SchemaError            database written by a newer hoprag          (storage.db raises it; storage.errors)
    SnapshotError          a snapshot failed its checksums             (storage.snapshots)
    VectorIndexError       an unreadable FAISS index or array file     (storage.vectors)
    HTTP_STATUS            {error class: status the service answers}
    USER_ERRORS            what the CLI and the build worker report as a message, not a traceback
"""

from __future__ import annotations

import importlib
from pathlib import Path

from storage.errors import SchemaError, VectorIndexError
from storage.lock import IndexBusy
from storage.snapshots import SnapshotError

__all__ = [
    "LibraryError",
    "EmbedderError",
    "EmbedderMismatch",
    "IndexStateError",
    "QueryError",
    "HopLLMError",
    "BuildBusy",
    "MissingExtra",
    "require",
    "IndexBusy",
    "SchemaError",
    "SnapshotError",
    "VectorIndexError",
    "HTTP_STATUS",
    "USER_ERRORS",
]


class LibraryError(Exception):
    """A library file could not be read. The message always names the file."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class EmbedderError(RuntimeError):
    """An embedder failed. Never answered with stand-in vectors: the caller gets this instead."""


class EmbedderMismatch(RuntimeError):
    """The index holds vectors of another embedder; mixing them would make scores meaningless."""


class IndexStateError(RuntimeError):
    """The index cannot answer (empty, or derived data that cannot be rebuilt without embedding)."""


class QueryError(ValueError):
    """A query the index cannot take as given (empty, k out of range, unknown mode or filter)."""


class HopLLMError(RuntimeError):
    """Hop search in llm mode: every LLM call of the query failed after its retries (a passage
    whose call alone failed keeps its similarity choice, counted in HopHits.llm_failures)."""


class BuildBusy(RuntimeError):
    """One build at a time: the index has a single writer."""


class MissingExtra(ImportError):
    """An optional part of hoprag-index is not installed (the core is store, FAISS, the offline
    embedder and the CLI; BGE-M3, Gemini, PDF reading and the HTTP service are extras)."""


def require(module: str, extra: str, what: str) -> None:
    """Import `module` now, or say which extra brings it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{what} needs the Python package {module.split('.')[0]!r}, which is not installed: "
            f"install hoprag-index[{extra}] (pip install 'hoprag-index[{extra}]')"
        ) from None


# The caller's input or the index's state, not a bug: 4xx for what the request got wrong, 409 for
# a conflict that passes, 502 for an upstream LLM, 503 for an index that cannot answer now.
HTTP_STATUS: dict[type[Exception], int] = {
    QueryError: 400,
    LibraryError: 400,
    EmbedderMismatch: 409,
    IndexBusy: 409,
    BuildBusy: 409,
    HopLLMError: 502,
    IndexStateError: 503,
    EmbedderError: 503,
    MissingExtra: 503,
    SnapshotError: 503,
    SchemaError: 503,
    VectorIndexError: 503,
}
USER_ERRORS: tuple[type[BaseException], ...] = tuple(HTTP_STATUS) + (ValueError, FileNotFoundError, PermissionError)
