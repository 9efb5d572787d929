"""Storage errors that the package's error list (indexer/errors.py) names without importing what
raises them: VectorIndexError lives apart from FAISS and numpy (storage/vectors.py), which a no-op
build never loads, and SchemaError apart from SQLAlchemy (storage/db.py), which the HTTP client
never loads.

Public API:
    VectorIndexError     a vector index or array file that cannot be read or does not fit
    SchemaError          a database written by a newer hoprag (or not one of ours)
"""

from __future__ import annotations

__all__ = ["VectorIndexError", "SchemaError"]


class VectorIndexError(ValueError):
    pass


class SchemaError(RuntimeError):
    pass
