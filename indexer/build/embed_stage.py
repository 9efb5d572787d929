"""The embedding stage of a build: a vector for every text, from the cache or embedded now, and a
warning for each passage longer than the model reads.

Cache rows are committed chunk by chunk, so that a build killed mid-way keeps what it paid for and
the next one embeds only the rest.

Public API:
    ensure_vectors(texts_by_hash, embedder, cache, *, chunk=512, progress=no_progress, stage="embed")
        -> (vectors: dict[str, np.ndarray], embedded: int, hits: int)
    window_warnings(embedder, passages) -> list[str]   passages beyond the embedder's token window
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, cast

import numpy as np

from storage.cache import EmbeddingCache

from ..embedders.base import Embedder
from ..passages import Passage
from .report import ProgressFn, no_progress

__all__ = ["ensure_vectors", "window_warnings"]


def ensure_vectors(
    texts_by_hash: Mapping[str, str],
    embedder: Embedder,
    cache: EmbeddingCache,
    *,
    chunk: int = 512,
    progress: ProgressFn = no_progress,
    stage: str = "embed",
) -> tuple[dict[str, np.ndarray], int, int]:
    """Vectors for every hash: from the cache, else embedded and cached chunk by chunk.

    Returns (vectors by hash, texts embedded, cache hits).
    """
    fp = embedder.fingerprint.id
    vectors = cache.get_many(fp, texts_by_hash.keys())
    hits = len(vectors)
    missing = [h for h in texts_by_hash if h not in vectors]
    if missing:
        progress(stage, 0, len(missing))
    for i in range(0, len(missing), chunk):
        part = missing[i : i + chunk]

        def within(n: int, start: int = i) -> None:  # each batch of the embedder, not each cache chunk
            progress(stage, start + n, len(missing))

        out = embedder.embed([texts_by_hash[h] for h in part], progress=within)
        fresh = dict(zip(part, out))
        cache.put_many(fp, fresh)
        vectors.update(fresh)
        progress(stage, min(i + chunk, len(missing)), len(missing))
    return vectors, len(missing), hits


class _Windowed(Embedder, Protocol):
    """An embedder that reads at most max_tokens tokens of a text and can say which texts are longer."""

    @property
    def max_tokens(self) -> int: ...

    def too_long(self, texts: Sequence[str]) -> list[tuple[int, int]]: ...


def window_warnings(emb: Embedder, passages: Sequence[Passage]) -> list[str]:
    """Passages longer than the model reads: embedded from their beginning, and said so."""
    if getattr(emb, "too_long", None) is None or not passages:
        return []
    windowed = cast(_Windowed, emb)  # an embedder with too_long() states its max_tokens too
    over = windowed.too_long([p.embed_text for p in passages])
    return [
        f"{passages[i].key}: {n} tokens, beyond the {windowed.max_tokens}-token window of {emb.name}; "
        f"the embedding reads the first {windowed.max_tokens} (split the article to index the rest)"
        for i, n in over
    ]
