"""Where a generation's vector sets live: FAISS files in the snapshot (the default) or Milvus
collections shared by every process and host that reads the index (`HOPRAG_VECTORS=milvus`).

The derived store asks an engine for four things, so that the build, the repair and the open are
one code path on both engines:

Public API:
    VectorEngine                      the interface
        .name                         "faiss" | "milvus"
        .in_snapshot -> bool          the index files go into the snapshot (FAISS) or not (Milvus)
        .wants_laws -> bool           rows carry their law (Milvus filters by it)
        .empty(name, fp, generation)  an empty set to fill from the cache (a first build, a repair)
        .open(name, fp, generation, read_index, token) -> index   the committed set
        .token() -> dict              after a build's writes: what its readers need (Milvus: the
                                      last write's timestamp), committed with the generation
        .begin(fp, committed)         before a build writes: undo what a crashed build left
        .committed(fp, generation)    after the commit: drop what no kept generation can see
    (fp: the embedder's Fingerprint: Milvus keeps one collection per set and embedder)
        .describe() -> dict           for stats and the snapshot's info
        .settings() -> dict           the Settings fields that name this engine (for a build process)
    FaissEngine(), MilvusEngine(store, keep)
    engine_for(settings) -> VectorEngine
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from storage.vectors import VectorIndex

from ..embedders.base import Fingerprint
from ..settings import Settings

__all__ = ["VectorEngine", "FaissEngine", "MilvusEngine", "engine_for"]

SET_NAMES = ("passages", "questions_in", "questions_out")


class VectorEngine(Protocol):
    name: str
    in_snapshot: bool
    wants_laws: bool

    def empty(self, name: str, fp: Fingerprint, generation: int) -> Any: ...
    def open(
        self, name: str, fp: Fingerprint, generation: int, read_index: Callable[[str], VectorIndex], token: dict
    ) -> Any: ...
    def token(self) -> dict: ...
    def begin(self, fp: Fingerprint, committed: int) -> None: ...
    def committed(self, fp: Fingerprint, generation: int) -> None: ...
    def describe(self) -> dict: ...
    def settings(self) -> dict: ...


class FaissEngine:
    name, in_snapshot, wants_laws = "faiss", True, False

    def empty(self, name: str, fp: Fingerprint, generation: int) -> VectorIndex:
        return VectorIndex(fp.dim)

    def open(
        self, name: str, fp: Fingerprint, generation: int, read_index: Callable[[str], VectorIndex], token: dict
    ) -> VectorIndex:
        return read_index(f"{name}.faiss")

    def token(self) -> dict:
        return {}

    def begin(self, fp: Fingerprint, committed: int) -> None:
        pass  # a build patches a copy in memory: nothing of a crashed one survives it

    def committed(self, fp: Fingerprint, generation: int) -> None:
        pass  # old snapshots are pruned by the snapshot store

    def describe(self) -> dict:
        return {"engine": "faiss"}

    def settings(self) -> dict:
        return {"vectors": "faiss"}


class MilvusEngine:
    name, in_snapshot, wants_laws = "milvus", False, True

    def __init__(self, store: Any, keep: int):
        self.store = store
        self.keep = max(1, keep)  # generations whose rows stay readable: as many as snapshots kept

    @staticmethod
    def _set(name: str, fp: Fingerprint) -> str:
        return f"{name}_{fp.id}"

    def empty(self, name: str, fp: Fingerprint, generation: int):
        # a rebuild starts the collection over; readers of older generations fall back to their
        # own repair (their rows are gone), which is what a damaged collection needs anyway
        self.store.reset(self._set(name, fp), fp.dim)
        return self.store.index(
            self._set(name, fp), fp.dim, generation, create=True, ts=-1
        )  # a rebuild reads its own writes

    def open(self, name: str, fp: Fingerprint, generation: int, read_index: Callable[[str], VectorIndex], token: dict):
        return self.store.index(self._set(name, fp), fp.dim, generation, ts=int(token.get("milvus_ts", 0)))

    def token(self) -> dict:
        return {"milvus_ts": self.store.last_write_ts()}

    def begin(self, fp: Fingerprint, committed: int) -> None:
        for name in SET_NAMES:
            self.store.discard_after(self._set(name, fp), fp.dim, committed)

    def committed(self, fp: Fingerprint, generation: int) -> None:
        for name in SET_NAMES:
            self.store.vacuum(self._set(name, fp), fp.dim, generation - self.keep + 1)

    def describe(self) -> dict:
        return {"engine": "milvus", "uri": _redact(self.store.uri), "prefix": self.store.prefix}

    def settings(self) -> dict:
        st = self.store
        return {
            "vectors": "milvus",
            "milvus_uri": st.uri,
            "milvus_prefix": st.prefix,
            "milvus_index": st.index_type,
            "milvus_nlist": st.nlist,
            "milvus_nprobe": st.nprobe,
        }


def _redact(uri: str) -> str:
    """user:password@ never reaches stats or logs."""
    import re

    return re.sub(r"//[^/@]*@", "//***@", uri)


_stores: dict[tuple[str, str], Any] = {}


def engine_for(settings: Settings) -> VectorEngine:
    if settings.vectors == "faiss":
        return FaissEngine()
    from storage.milvus import MilvusStore

    uri = settings.milvus_uri
    if not uri:
        from ..errors import IndexStateError

        raise IndexStateError("HOPRAG_VECTORS=milvus needs HOPRAG_MILVUS_URI (a Milvus Lite file or http://host:19530)")
    key = (uri, settings.milvus_prefix)
    if key not in _stores:  # one client per process and server: gRPC channels are not cheap
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
        _stores[key] = MilvusStore(
            uri, settings.milvus_prefix, token, settings.milvus_index, settings.milvus_nlist, settings.milvus_nprobe
        )
    return MilvusEngine(_stores[key], settings.snapshot_keep)
