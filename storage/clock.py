"""The clock rows, locks and snapshots are stamped with: UTC, timezone-aware. A module of its own
so that the lock and the snapshot store stamp time without importing SQLAlchemy's models.

Public API:
    utcnow() -> datetime
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utcnow"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
