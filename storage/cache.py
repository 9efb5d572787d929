"""The embedding cache: (embedder fingerprint id, sha256 of normalized text) -> float32 vector.

Content-addressed, so entries are never wrong, only unused: they are written as soon as a batch
is embedded (a crashed build loses no paid-for work) and shared by passages, pseudo-queries and
every later build. SQLAlchemy loads when the cache is first used: a query holds one (a snapshot's
repair reads it) but never uses it.

Public API:
    EmbeddingCache(db)
        .get_many(fingerprint_id, hashes) -> dict[hash, np.ndarray]
        .put_many(fingerprint_id, {hash: vector})
        .count(fingerprint_id=None) -> int
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

import numpy as np

from .clock import utcnow
from .db import Database

__all__ = ["EmbeddingCache"]

_CHUNK = 500  # bound parameters per IN (...) query, below SQLite's limit


def _chunks(items: list, n: int = _CHUNK):
    for i in range(0, len(items), n):
        yield items[i : i + n]


class EmbeddingCache:
    def __init__(self, db: Database):
        self.db = db

    def get_many(self, fingerprint_id: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        from sqlalchemy import select

        from .models import EmbeddingRow

        wanted = sorted(set(hashes))
        found: dict[str, np.ndarray] = {}
        with self.db.session() as s:
            for part in _chunks(wanted):
                rows = s.execute(
                    select(EmbeddingRow.text_hash, EmbeddingRow.dim, EmbeddingRow.vector).where(
                        EmbeddingRow.fingerprint == fingerprint_id, EmbeddingRow.text_hash.in_(part)
                    )
                )
                for h, dim, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape != (dim,):
                        raise ValueError(f"corrupt cache entry {fingerprint_id}/{h}: {vec.size} floats, expected {dim}")
                    found[h] = vec
        return found

    def put_many(self, fingerprint_id: str, vectors: Mapping[str, np.ndarray]) -> None:
        if not vectors:
            return
        from sqlalchemy import Table

        from .models import EmbeddingRow

        rows = [
            {
                "fingerprint": fingerprint_id,
                "text_hash": h,
                "dim": int(v.shape[0]),
                "vector": np.ascontiguousarray(v, dtype=np.float32).tobytes(),
            }
            for h, v in vectors.items()
        ]
        now = utcnow()
        with self.db.session() as s:
            for part in _chunks(rows):
                self.db.insert_rows(
                    s,
                    cast(Table, EmbeddingRow.__table__),  # a declarative class's table (typed as any FromClause)
                    [dict(r, created_at=now) for r in part],
                    key=("fingerprint", "text_hash"),
                )

    def count(self, fingerprint_id: str | None = None) -> int:
        from sqlalchemy import func, select

        from .models import EmbeddingRow

        with self.db.session() as s:
            q = select(func.count()).select_from(EmbeddingRow)
            if fingerprint_id:
                q = q.where(EmbeddingRow.fingerprint == fingerprint_id)
            return int(s.execute(q).scalar_one())
