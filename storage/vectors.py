"""FAISS vector index with stable int64 ids (the passage row ids), inner product on unit vectors.

Public API:
    VectorIndex(dim)
        .add(ids, vectors) / .remove(ids) / .search(queries, k) -> (scores, ids)
        .ids() -> np.ndarray, .vectors() -> (ids, matrix), .ntotal, .dim, .clone(), .holds(sorted_ids)
        .to_bytes() / VectorIndex.from_bytes(data)   faiss' own serialization, never pickle
        VectorIndex.from_file(path)                  the same file memory-mapped, read-only: opening
                                                     costs no copy; the first add or remove copies
"""

from __future__ import annotations

import os

import numpy as np

from .errors import VectorIndexError

__all__ = ["VectorIndex", "VectorIndexError", "check_vectors", "check_batch"]


def check_vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise VectorIndexError(f"vectors of shape {vectors.shape} do not fit a {dim}-d index")
    return vectors


def check_batch(ids: np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) as int64 and float32 rows of `dim`, one id per vector, no id twice."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = check_vectors(vectors, dim)
    if len(ids) != len(vectors):
        raise VectorIndexError(f"{len(ids)} ids for {len(vectors)} vectors")
    if len(np.unique(ids)) != len(ids):
        raise VectorIndexError("duplicate vector ids: remove the old vectors first")
    return ids, vectors


def _faiss():
    import faiss  # imported on first use: `hoprag stats` should not pay for it

    return faiss


class VectorIndex:
    def __init__(self, dim: int, _index=None, _mapped: bool = False):
        faiss = _faiss()
        self.dim = int(dim)
        # A mapped index views the snapshot file: FAISS aborts the process (not an exception) on any
        # resize of a viewed vector, so every mutation goes through _owned() first.
        self._mapped = _mapped
        # Exact search (flat): statute collections are 10^3–10^5 passages, where flat inner
        # product is fast and never loses a hit; IDMap2 keeps our ids and supports removal.
        self._index = _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of everything stored, a copy, rows in storage order."""
        faiss = _faiss()
        flat = faiss.downcast_index(self._index.index)
        n = flat.ntotal
        if n == 0:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        matrix = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim).copy()
        return self.ids(), matrix

    def add(self, ids: np.ndarray, vectors: np.ndarray, laws=None) -> None:
        """laws: ignored (FAISS holds no metadata; the retriever filters by law itself)."""
        ids, vectors = check_batch(ids, vectors, self.dim)
        if len(ids) == 0:
            return
        if np.isin(ids, self.ids()).any():
            raise VectorIndexError("duplicate vector ids: remove the old vectors first")
        self._owned().add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return 0
        return int(self._owned().remove_ids(_faiss().IDSelectorBatch(ids)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = check_vectors(queries, self.dim)
        k = max(1, min(int(k), self.ntotal)) if self.ntotal else 0
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        scores, ids = self._index.search(queries, k)
        return scores, ids

    def holds(self, sorted_ids: np.ndarray) -> bool:
        """Exactly these ids (a snapshot's hash map against its FAISS file)."""
        return bool(np.array_equal(np.sort(self.ids()), sorted_ids))

    def clone(self, generation: int | None = None) -> VectorIndex:
        """An independent copy (a build patches the copy while queries read the original)."""
        if self._mapped:  # clone_index would copy the view, not the vectors
            return VectorIndex.from_bytes(self.to_bytes())
        return VectorIndex(self.dim, _index=_faiss().clone_index(self._index))

    def _owned(self):
        if self._mapped:
            self._index = self.clone()._index
            self._mapped = False
        return self._index

    def to_bytes(self) -> bytes:
        return _faiss().serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> VectorIndex:
        """From FAISS' serialization (copied into FAISS' own memory)."""
        faiss = _faiss()
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise VectorIndexError(f"not a readable FAISS index ({str(exc).splitlines()[0]})") from None
        return cls._checked(index)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> VectorIndex:
        """Memory-mapped, read-only (IO_FLAG_MMAP_IFC): the vectors stay in the page cache, shared
        by every process that serves the same snapshot. The file must not change while mapped."""
        faiss = _faiss()
        try:
            index = faiss.read_index(os.fspath(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError as exc:
            raise VectorIndexError(f"not a readable FAISS index ({str(exc).splitlines()[0]})") from None
        return cls._checked(index, mapped=True)

    @classmethod
    def _checked(cls, index, mapped: bool = False) -> VectorIndex:
        if not isinstance(index, _faiss().IndexIDMap2):
            raise VectorIndexError(f"unexpected FAISS index type {type(index).__name__}")
        return cls(index.d, _index=index, _mapped=mapped)
