"""The embedder interface every backend implements, and its fingerprint.

Public API:
    Embedder            protocol: fingerprint, dim, embed(texts) -> float32 (n, dim), L2-normalized
    Fingerprint         what makes two vectors comparable (name, revision, dim, normalization)
    EmbedderError       an embedder that cannot produce vectors; the message says what to do
    check_vectors(...)  the guard every backend runs on its output
    in_batches(texts, size, call, progress) -> list of call's results   the API embedders' batching
    weights_digest(folder, names) -> str   sha256 over a model's weight files, memoized by size and mtime
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import EmbedderError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Embedder", "Fingerprint", "EmbedderError", "check_vectors", "in_batches", "l2_normalize", "weights_digest"]


@dataclass(frozen=True)
class Fingerprint:
    name: str  # the name it was chosen by: "bge-m3", "st:/models/x", "use-multilingual"
    model: str  # model id or path
    revision: str  # hub commit, package version + weights hash, or API model version
    dim: int
    normalized: bool = True

    @cached_property  # every query looks its embedder up by it
    def id(self) -> str:
        """Short stable id used as the embedding-cache namespace."""
        blob = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Fingerprint:
        return cls(**data)

    def describe(self) -> str:
        return f"{self.name} ({self.model} @ {self.revision[:12]}, {self.dim}-d)"


@runtime_checkable
class Embedder(Protocol):
    name: str

    @property
    def fingerprint(self) -> Fingerprint: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed texts in the given order; float32 (len(texts), dim), rows of unit length.
        `progress(n)`: n of these texts are done (called after each batch)."""
        ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    import numpy as np  # here, not at the top: the fingerprint is read where numpy is not needed

    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise EmbedderError("the model returned an all-zero vector; refusing to index it")
    return vectors / norms


def check_vectors(vectors: np.ndarray, n: int, dim: int, who: str) -> np.ndarray:
    """Validate a backend's output so a broken model can never reach the index."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape != (n, dim):
        raise EmbedderError(f"{who} returned shape {vectors.shape}, expected ({n}, {dim})")
    if not np.all(np.isfinite(vectors)):
        raise EmbedderError(f"{who} returned NaN or infinite values")
    return l2_normalize(vectors)


def in_batches(
    texts: list[str], size: int, call: Callable[[list[str]], np.ndarray], progress: Callable[[int], None] | None
) -> list[np.ndarray]:
    """`call` on each run of `size` texts, in order, reporting the texts done after each."""
    parts = []
    for i in range(0, len(texts), size):
        parts.append(call(texts[i : i + size]))
        if progress is not None:
            progress(min(i + size, len(texts)))
    return parts


def weights_digest(folder: Path, names: Sequence[str]) -> str:
    """sha256 over the weight files of `names` in `folder` (those present), memoized in the user's
    cache keyed by their sizes and mtimes: hashing 30 MB to 2 GB of weights at every start would
    cost a new process's first query 25 ms (the offline model) to seconds (BGE-M3)."""
    files = [folder / name for name in names if (folder / name).exists()]
    key = "|".join(f"{f.name}:{st.st_size}:{st.st_mtime_ns}" for f in files for st in [f.stat()])
    memo_file = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hoprag" / "weights-digests.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(folder))
    if entry and entry.get("key") == key:
        return str(entry["digest"])
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    digest = h.hexdigest()
    memo[str(folder)] = {"key": key, "digest": digest}
    try:  # whole or not at all: two processes may write it at once
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_name(f"{memo_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_file)
    except OSError:
        pass  # the memo only saves time; a read-only home must not stop embedding
    return digest
