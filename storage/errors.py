"""Storage errors that the package's error list (indexer/errors.py) names without importing what
raises them: VectorIndexError lives apart from FAISS and numpy (storage/vectors.py), which a no-op
build never loads.

Public API:
    VectorIndexError     a vector index or array file that cannot be read or does not fit
"""

from __future__ import annotations

__all__ = ["VectorIndexError"]


class VectorIndexError(ValueError):
    pass
