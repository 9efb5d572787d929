"""A named FAISS index plus the content hash behind every id: what a snapshot stores per vector set
(passages, incoming questions, outgoing questions), and how it is brought up to date.

Keeping the hash per id makes every update a diff against the database: ids whose hash changed or
vanished leave, new ones are added from the embedding cache. The same code serves an incremental
build, a repair after a crash, and a rebuild from nothing.

Public API:
    VectorSet(index, hashes)            hashes: {id: embed hash}; index: FAISS or Milvus (same API)
        .sync(desired, fetch, laws=None) -> (removed, added)   laws: {id: law} for an engine that filters
        .copy(generation=None) -> VectorSet                    FAISS: a copy; Milvus: the next generation's view
        .table() -> structured array of (id, hash), sorted by id: what the map file holds
        .to_files(name, with_index=True) -> {filename: bytes}
        VectorSet.from_files(name, read, read_index=None) -> VectorSet
        VectorSet.build(dim, desired, fetch, index=None, laws=None) -> VectorSet
    npy_bytes(array) / npy_load(bytes)  numpy's format, pickle off
    MAP_DTYPE                            a map file's rows: (id int64, hash S64)
    map_table({id: hash}) -> np.ndarray  those rows, sorted by id
    MissingVectors                       a hash the cache does not hold (cannot rebuild without embedding)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from storage.vectors import VectorIndex, VectorIndexError

__all__ = ["VectorSet", "npy_bytes", "npy_load", "MissingVectors", "FetchFn", "MAP_DTYPE", "map_table"]

FetchFn = Callable[[list[str]], Mapping[str, np.ndarray]]
MAP_DTYPE = np.dtype([("id", "<i8"), ("hash", "S64")])


def map_table(hashes: Mapping[int, str]) -> np.ndarray:
    items = sorted(hashes.items())
    return np.array(items, dtype=MAP_DTYPE) if items else np.zeros(0, MAP_DTYPE)


class MissingVectors(RuntimeError):
    pass


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_load(data: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise VectorIndexError(f"unreadable array file ({exc})") from None


class VectorSet:
    def __init__(self, index: VectorIndex, hashes: dict[int, str] | None = None, table: np.ndarray | None = None):
        self.index = index
        # A loaded set keeps the map file's table and makes the dict only when a build asks: an
        # open of 60k questions should not spend 30 ms on dicts that queries never read. Either
        # form is kept once made (a build's digest and its snapshot both read the table); sync,
        # the only change to a set, drops the table.
        self._hashes = hashes
        self._table = table if hashes is None else None

    @property
    def hashes(self) -> dict[int, str]:
        if self._hashes is None:
            table = self._table if self._table is not None else np.zeros(0, MAP_DTYPE)
            self._hashes = {int(i): h.decode("ascii") for i, h in zip(table["id"], table["hash"])}
        return self._hashes

    def table(self) -> np.ndarray:
        if self._table is None:
            self._table = map_table(self.hashes)
        return self._table

    @property
    def dim(self) -> int:
        return self.index.dim

    def __len__(self) -> int:
        return self.index.ntotal

    def copy(self, generation: int | None = None) -> VectorSet:
        """What a build updates while queries keep reading this one: an independent FAISS copy,
        or Milvus' view of `generation` (its writes are invisible to readers of this one)."""
        return VectorSet(self.index.clone(generation), dict(self.hashes))

    @classmethod
    def build(
        cls,
        dim: int,
        desired: Mapping[int, str],
        fetch: FetchFn,
        index: Any = None,
        laws: Mapping[int, str] | None = None,
    ) -> VectorSet:
        vs = cls(index if index is not None else VectorIndex(dim), {})
        vs.sync(desired, fetch, laws)
        return vs

    def sync(
        self, desired: Mapping[int, str], fetch: FetchFn, laws: Mapping[int, str] | None = None
    ) -> tuple[int, int]:
        self._table = None
        stale = [i for i, h in self.hashes.items() if desired.get(i) != h]
        fresh = [i for i, h in desired.items() if self.hashes.get(i) != h]
        if stale:
            self.index.remove(np.array(stale, dtype=np.int64))
            for i in stale:
                del self.hashes[i]
        if fresh:
            wanted = sorted({desired[i] for i in fresh})
            vectors = fetch(wanted)
            missing = [h for h in wanted if h not in vectors]
            if missing:
                raise MissingVectors(f"{len(missing)} texts have no cached vector (first: {missing[0][:12]}…)")
            self.index.add(
                np.array(fresh, dtype=np.int64),
                np.stack([vectors[desired[i]] for i in fresh]),
                laws=[laws.get(i, "") for i in fresh] if laws is not None else None,
            )
            self.hashes.update({i: desired[i] for i in fresh})
        return len(stale), len(fresh)

    def to_files(self, name: str, with_index: bool = True) -> dict[str, bytes]:
        files = {f"{name}.map.npy": npy_bytes(self.table())}
        if with_index:
            files[f"{name}.faiss"] = self.index.to_bytes()
        return files

    @classmethod
    def from_files(
        cls, name: str, read: Callable[[str], bytes], read_index: Callable[[str], Any] | None = None
    ) -> VectorSet:
        """read(file) -> bytes; read_index(file) -> VectorIndex when the caller can map a large file."""
        index = read_index(f"{name}.faiss") if read_index else VectorIndex.from_bytes(read(f"{name}.faiss"))
        table = npy_load(read(f"{name}.map.npy"))
        if table.dtype != MAP_DTYPE:
            raise VectorIndexError(f"{name}.map.npy has dtype {table.dtype}")
        if not index.holds(table["id"]):  # the table is written sorted by id
            raise VectorIndexError(f"{name}: the vector index and the hash map disagree")
        return cls(index, table=table)
