"""The snapshots on disk, as an operator sees them: listed, checked file by file, restored as the
serving state, and the vector engine's clean-up once a generation is committed. Serving and
building never need this; `hoprag snapshots …` and a build's last step do.

Public API:
    SnapshotAdmin(snapshots, engine)
        .list(current) -> list[dict]        generation, path, current?, created_at, counts, status
        .verify(generation) -> str | None   None if every checksum holds, else what is wrong
        .check_restorable(generation, current)   SnapshotError unless that snapshot may serve again
        .after_commit(fingerprint, generation)   the engine drops what no kept generation sees
"""

from __future__ import annotations

import logging

from storage.snapshots import SnapshotError, SnapshotStore

from ..embedders.base import Fingerprint
from .vector_engines import VectorEngine

__all__ = ["SnapshotAdmin"]

log = logging.getLogger(__name__)


class SnapshotAdmin:
    def __init__(self, snapshots: SnapshotStore, engine: VectorEngine):
        self.snapshots, self.engine = snapshots, engine

    def list(self, current: int) -> list[dict]:
        out = []
        for snap in self.snapshots.list():
            status = "ok" if snap.manifest else "unreadable manifest"
            out.append(
                {
                    "generation": snap.generation,
                    "path": str(snap.path),
                    "current": snap.generation == current,
                    "created_at": snap.manifest.get("created_at"),
                    "counts": snap.info.get("counts", {}),
                    "status": status,
                }
            )
        return out

    def verify(self, generation: int) -> str | None:
        """None if the snapshot of `generation` is intact (every checksum), else what is wrong."""
        snap = self.snapshots.get(generation)
        if snap is None:
            return f"no snapshot of generation {generation}"
        try:
            for name in snap.manifest.get("files", {}):
                self.snapshots.verify(snap, name)
        except SnapshotError as exc:
            return str(exc)
        return None

    def check_restorable(self, generation: int, current: int) -> None:
        """Only the current generation's intact snapshot may serve again: older snapshots describe a
        database state that no longer exists, so they are refused with an explanation."""
        problem = self.verify(generation)
        if problem:
            raise SnapshotError(problem)
        if generation != current:
            raise SnapshotError(
                f"generation {generation} is not the database's current generation ({current}); "
                f"snapshots are derived from the database, so only the current one can be restored — "
                f"rebuild the library as of then to go back"
            )

    def after_commit(self, fp: Fingerprint, generation: int) -> None:
        """Once the database names `generation`: the engine may drop rows older readers no longer need."""
        try:
            self.engine.committed(fp, generation)
        except Exception as exc:  # the commit stands; the next build vacuums again
            log.warning("vector engine cleanup after generation %d failed: %s", generation, exc)
