"""The derived state of one generation: its vector sets (passages, incoming and outgoing
questions), its edge table and BM25, as a snapshot holds them. Everything here can be rebuilt from
the database and the embedding cache alone (no model, no LLM), so a missing or corrupt snapshot is
repaired on open, and said so in `repairs`.

DerivedStore is what the builder and the retriever hold. It keeps what this process has loaded
(`current`) and what opening had to repair, and hands each job to its unit:
    derive.py             deriving a generation from the database and the embedding cache
    derived_snapshot.py   a generation's snapshot: written, read back, verified against the database
    snapshot_admin.py     the snapshots on disk: listed, checked, restored; the engine's clean-up

Public API:
    SETS                                  the vector sets of a generation
    Derived(generation, sets, edges, lexicon)   one generation's vectors, edge table and BM25
    DbView(generation, fingerprint, digest)   what the database says, in one transaction
    Derived.digest() -> str               what a snapshot must match: its id/hash tables and counts
    DerivedStore(db, cache, snapshots, home, tokenizer="bigram", engine=FaissEngine())
    DerivedStore.for_settings(db, cache, home, settings)   the same, configured
        .view(read) -> DbView             read: a storage.reads.Read (one transaction)
        .read(view) -> (Derived | None, problem | None)   the snapshot, verified against the view
        .load(required=True) -> Derived | None             read, else rebuild and save (a repair)
        .sync_sets(session, fingerprint, base, generation) -> Derived   base patched to the database
        .rebuild(fingerprint, generation) -> Derived
        .save(derived, fingerprint) -> Snapshot
        .commit_record(derived) -> dict                    what a build commits under DIGEST_META
        .after_commit(fingerprint, generation)             the engine drops what no kept generation sees
        .list(current) -> list[dict], .verify(generation) -> str | None, .forget()
        .restore(generation, current)     serve the current generation's snapshot again, verified
        .repairs                          what loading had to rebuild, for stats and logs
    edge_table(session) -> np.ndarray     the edge table as the graph module's structured array
    DIGEST_META                           the meta key a build commits Derived.digest() under
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from storage.db import Database
from storage.reads import Read, session_read
from storage.snapshots import Snapshot, SnapshotStore

from ..embedders.base import Fingerprint
from ..errors import IndexStateError
from ..settings import Settings
from .derive import SETS, Derived, Deriver, edge_table
from .derived_snapshot import DIGEST_META, GRAPH_FILE, DbView, SnapshotCodec
from .snapshot_admin import SnapshotAdmin
from .vector_engines import FaissEngine, VectorEngine

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from storage.cache import EmbeddingCache

__all__ = ["SETS", "Derived", "DbView", "DerivedStore", "edge_table", "DIGEST_META", "GRAPH_FILE"]

log = logging.getLogger(__name__)


class DerivedStore:
    def __init__(
        self,
        db: Database,
        cache: EmbeddingCache,
        snapshots: SnapshotStore,
        home: Path,
        tokenizer: str = "bigram",
        engine: VectorEngine | None = None,
    ):
        self.db, self.cache, self.snapshots, self.home = db, cache, snapshots, home
        self.engine: VectorEngine = engine or FaissEngine()
        self.tokenizer = tokenizer  # BM25's (Settings.bm25_tokenizer): a snapshot of another is rebuilt
        self.current: Derived | None = None  # the last generation loaded or saved by this process
        self.repairs: list[str] = []
        self._deriver = Deriver(cache, self.engine, tokenizer)
        self._codec = SnapshotCodec(snapshots, self.engine, tokenizer)
        self._admin = SnapshotAdmin(snapshots, self.engine)

    @classmethod
    def for_settings(cls, db: Database, cache: EmbeddingCache, home: Path, settings: Settings) -> DerivedStore:
        """Snapshots under home/snapshots, BM25's tokenizer and the vector engine as configured."""
        from .vector_engines import engine_for

        snapshots = SnapshotStore(home / "snapshots", keep=settings.snapshot_keep)
        return cls(db, cache, snapshots, home, settings.bm25_tokenizer, engine_for(settings))

    # ---------------------------------------------------------------- load and verify
    def view(self, r: Read) -> DbView:
        return self._codec.view(r)

    def read(self, view: DbView) -> tuple[Derived | None, str | None]:
        """The snapshot of the view's generation, verified, or None and what is wrong with it; the
        generation this process holds already is not read again."""
        current = self.current
        if current is not None and current.generation == view.generation:
            return current, None
        return self._codec.read(view)

    def load(self, required: bool = True) -> Derived | None:
        """The current generation's vectors and graph; a bad snapshot is rebuilt and saved."""
        with self.db.reading() as r:
            view = self.view(r)
        if view.fingerprint is None:
            if required:
                raise IndexStateError(f"the index at {self.home} is empty: run `hoprag build LIBRARY` first")
            return None
        derived, problem = self.read(view)
        if derived is not None:
            self.current = derived
            return derived
        log.warning("rebuilding snapshot from the database: %s", problem)
        self.repairs.append(str(problem))
        with self.db.session() as s:  # one transaction: what is rebuilt is what it is named after
            view = self.view(session_read(s))
            assert view.fingerprint is not None
            derived = self._rebuild_in(s, view.fingerprint, view.generation)
        try:
            self.save(derived, view.fingerprint)
        except OSError as exc:  # a read-only index: serve the rebuilt state from memory
            log.warning("the rebuilt snapshot cannot be saved (%s); serving it from memory", exc.strerror)
            self.current = derived
        return derived

    # ---------------------------------------------------------------- derive
    def rebuild(self, fp: Fingerprint, generation: int) -> Derived:
        """Vectors from the cache, the graph from the edge table: no model, no LLM."""
        with self.db.session() as s:
            return self._rebuild_in(s, fp, generation)

    def _rebuild_in(self, s: Session, fp: Fingerprint, generation: int) -> Derived:
        derived = self.sync_sets(s, fp, None, generation)
        derived.edges = edge_table(s)
        return derived

    def sync_sets(self, s: Session, fp: Fingerprint, base: Derived | None, generation: int) -> Derived:
        """Deriver.sync_sets, BM25 reusing the tokens of unchanged texts from `base`, else from the
        generation this process holds."""
        known = base.lexicon if base is not None else (self.current.lexicon if self.current else None)
        return self._deriver.sync_sets(s, fp, base, generation, known)

    # ---------------------------------------------------------------- save and commit
    def save(self, derived: Derived, fp: Fingerprint) -> Snapshot:
        snap = self._codec.save(derived, fp)
        self.current = derived
        return snap

    def commit_record(self, derived: Derived) -> dict:
        return self._codec.commit_record(derived)

    def after_commit(self, fp: Fingerprint, generation: int) -> None:
        self._admin.after_commit(fp, generation)

    def forget(self) -> None:
        """Drop what this process holds, so that the next load reads the snapshot from disk."""
        self.current = None

    # ---------------------------------------------------------------- snapshot administration
    def list(self, current: int) -> list[dict]:
        return self._admin.list(current)

    def verify(self, generation: int) -> str | None:
        return self._admin.verify(generation)

    def restore(self, generation: int, current: int) -> None:
        """Load the current generation's snapshot from disk as the serving state (the database is
        untouched); any other generation is refused with an explanation."""
        self._admin.check_restorable(generation, current)
        self.forget()
        self.load()
