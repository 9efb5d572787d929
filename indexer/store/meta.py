"""What the meta table says about the index that every stage asks: the embedder its vectors were
made with. Imports neither SQLAlchemy nor numpy (storage.db reads a SQLite index with sqlite3), so
the facade can ask it before a first query's heavy imports.

Public API:
    stored_fingerprint(db) -> Fingerprint | None   None before the first build
"""

from __future__ import annotations

from storage.db import Database

from ..embedders.base import Fingerprint

__all__ = ["stored_fingerprint"]


def stored_fingerprint(db: Database) -> Fingerprint | None:
    fp = db.get_meta("embedder")
    return Fingerprint.from_dict(fp) if fp else None
