"""The derived state of one generation: its vector sets (passages, incoming and outgoing
questions) and its edge table, as a snapshot holds them. Everything here can be rebuilt from the
database and the embedding cache alone (no model, no LLM), so a missing or corrupt snapshot is
repaired on open, and said so in `repairs`.

Public API:
    SETS                                  the vector sets of a generation
    Derived(generation, sets, edges, lexicon)   one generation's vectors, edge table and BM25
    DbView(generation, fingerprint, digest)   what the database says, in one transaction
    Derived.digest() -> str               what a snapshot must match: its id/hash tables and counts
    DerivedStore(db, cache, snapshots, home, tokenizer="bigram", engine=FaissEngine())
    DerivedStore.for_settings(db, cache, home, settings)   the same, configured
        .view(session) -> DbView
        .read(view) -> (Derived | None, problem | None)   the snapshot, verified against the view
        .load(required=True) -> Derived | None             read, else rebuild and save (a repair)
        .sync_sets(session, fingerprint, base, generation) -> Derived   base patched to the database
        .rebuild(fingerprint, generation) -> Derived
        .save(derived, fingerprint) -> Snapshot
        .after_commit(fingerprint, generation)             the engine drops what no kept generation sees
        .list(current) -> list[dict], .verify(generation) -> str | None, .forget()
        .restore(generation, current)     serve the current generation's snapshot again, verified
        .repairs                          what loading had to rebuild, for stats and logs
    edge_table(session) -> np.ndarray     the edge table as the graph module's structured array
    DIGEST_META                           the meta key a build commits Derived.digest() under

Why a digest: a snapshot must describe exactly the database rows of its generation (every vector
set's ids and text hashes, the edge and passage counts). Comparing them row by row costs an open
~0.2 s on 60k questions; the build that commits a generation also commits the digest of what it
derived, so an open compares one string. A database without it (made before the digest, or by an
older hoprag) is compared row by row, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xxhash
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.cache import EmbeddingCache
from storage.db import Database
from storage.models import EdgeRow, PassageRow, PseudoQueryRow
from storage.snapshots import Snapshot, SnapshotError, SnapshotStore
from storage.vectors import VectorIndex, VectorIndexError

from .embedders.base import Fingerprint
from .errors import IndexStateError
from .graph import EDGE_DTYPE
from .graph import edge_table as _as_edge_table
from .lexical import Lexicon, build_lexicon, lexical_text
from .settings import Settings
from .vector_engines import FaissEngine, VectorEngine
from .vectorsets import MissingVectors, VectorSet, map_table, npy_bytes, npy_load

__all__ = ["SETS", "Derived", "DbView", "DerivedStore", "edge_table", "DIGEST_META"]

log = logging.getLogger(__name__)
SETS = ("passages", "questions_in", "questions_out")
GRAPH_FILE = "graph.npy"
DIGEST_META = "derived_digest"  # {"generation": N, "digest": Derived.digest()} of the committed generation


@dataclass
class Derived:
    """Everything a snapshot holds, for one generation."""

    generation: int
    sets: dict[str, VectorSet]
    edges: np.ndarray
    lexicon: Lexicon | None = None  # BM25 over every passage (repealed ones too)

    def digest(self) -> str:
        return _digest(
            {name: vs.table() for name, vs in self.sets.items()},
            len(self.edges),
            len(self.lexicon.ids) if self.lexicon is not None else 0,
        )


class DbView(NamedTuple):
    generation: int
    fingerprint: Fingerprint | None
    digest: str  # of the vector sets, edges and passages the database says this generation has
    vectors: dict = {}  # what the vector engine committed with it (Milvus: its last write's timestamp)


def _digest(tables: dict[str, np.ndarray], n_edges: int, n_passages: int) -> str:
    h = xxhash.xxh3_128()
    for name in SETS:
        h.update(name.encode())
        h.update(np.ascontiguousarray(tables[name]).tobytes())
    h.update(np.array([n_edges, n_passages], dtype="<i8").tobytes())
    return h.hexdigest()


def edge_table(s: Session) -> np.ndarray:
    rows = s.execute(
        select(
            EdgeRow.id,
            EdgeRow.source_id,
            EdgeRow.target_id,
            EdgeRow.kind,
            EdgeRow.score,
            EdgeRow.out_query_id,
            EdgeRow.in_query_id,
            EdgeRow.data,
        ).order_by(EdgeRow.id)
    )
    return _as_edge_table((*row[:7], (row[7] or {}).get("role", "")) for row in rows)


def _laws(s: Session) -> dict[str, dict[int, str]]:
    """The law of every vector's passage, for an engine that filters by law (Milvus)."""
    passages = dict(s.execute(select(PassageRow.id, PassageRow.law)).all())
    questions = dict(
        s.execute(
            select(PseudoQueryRow.id, PassageRow.law).join(PassageRow, PassageRow.id == PseudoQueryRow.passage_id)
        ).all()
    )
    return {"passages": passages, "questions_in": questions, "questions_out": questions}


def _desired(s: Session) -> dict[str, dict[int, str]]:
    q = select(PseudoQueryRow.id, PseudoQueryRow.embed_hash)
    return {
        "passages": dict(
            s.execute(
                select(PassageRow.id, PassageRow.embed_hash).where(PassageRow.embed_hash.is_not(None))  # type: ignore[arg-type]
            ).all()
        ),
        "questions_in": dict(s.execute(q.where(PseudoQueryRow.direction == "in")).all()),
        "questions_out": dict(s.execute(q.where(PseudoQueryRow.direction == "out")).all()),
    }


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

    @classmethod
    def for_settings(cls, db: Database, cache: EmbeddingCache, home: Path, settings: Settings) -> DerivedStore:
        """Snapshots under home/snapshots, BM25's tokenizer and the vector engine as configured."""
        from .vector_engines import engine_for

        snapshots = SnapshotStore(home / "snapshots", keep=settings.snapshot_keep)
        return cls(db, cache, snapshots, home, settings.bm25_tokenizer, engine_for(settings))

    def view(self, s: Session) -> DbView:
        """Generation, embedder and the digest of what the snapshot must hold, in one transaction."""
        generation = int(self.db.get_meta_in(s, "generation", 0))
        fp = self.db.get_meta_in(s, "embedder")
        stored = self.db.get_meta_in(s, DIGEST_META) or {}
        token: dict = {}
        if stored.get("generation") == generation and stored.get("digest"):
            digest = str(stored["digest"])
            token = dict(stored.get("vectors") or {})
        else:  # no digest committed with this generation: the rows themselves
            desired = _desired(s)
            tables = {name: map_table(desired[name]) for name in SETS}
            n_edges = int(s.scalar(select(func.count()).select_from(EdgeRow)) or 0)
            n_passages = int(s.scalar(select(func.count()).select_from(PassageRow)) or 0)
            digest = _digest(tables, n_edges, n_passages)
        return DbView(generation, Fingerprint.from_dict(fp) if fp else None, digest, token)

    def read(self, view: DbView) -> tuple[Derived | None, str | None]:
        """The snapshot of the view's generation, verified (checksums, embedder, ids and hashes,
        edge count), or None and what is wrong with it."""
        current = self.current
        if current is not None and current.generation == view.generation:
            return current, None
        snap = self.snapshots.get(view.generation)
        if snap is None:
            latest = self.snapshots.latest()
            return None, (
                f"snapshot of generation {view.generation} is missing"
                + (f" (newest on disk: gen {latest.generation})" if latest else "")
            )
        try:
            fp = view.fingerprint
            if fp is None or snap.info.get("fingerprint") != fp.id:
                raise SnapshotError("snapshot was made with another embedder")
            if snap.info.get("vectors", {"engine": "faiss"}).get("engine") != self.engine.name:
                raise SnapshotError(f"snapshot was made for another vector engine than {self.engine.name}")

            def read(name: str) -> bytes:
                return self.snapshots.read(snap, name)

            def mapped(file: str) -> VectorIndex:
                return VectorIndex.from_file(self.snapshots.verified_path(snap, file))

            def opener(name: str) -> Callable[[str], Any]:
                return lambda _file: self.engine.open(name, fp, view.generation, mapped, view.vectors)

            sets = {name: VectorSet.from_files(name, read, opener(name)) for name in SETS}
            edges = npy_load(read(GRAPH_FILE))
            if edges.dtype != EDGE_DTYPE:  # a snapshot from before a column was added (role)
                raise SnapshotError("the snapshot's graph table is of an older format")
            lexicon = Lexicon.from_files(read, self.tokenizer)
            derived = Derived(view.generation, sets, edges, lexicon)
            if derived.digest() != view.digest:
                raise SnapshotError("snapshot does not match the database (vector sets, edges or passages)")
            return derived, None
        except (SnapshotError, VectorIndexError) as exc:
            return None, str(exc)
        except ValueError as exc:  # BM25 files that do not fit together
            return None, f"snapshot BM25: {exc}"

    def load(self, required: bool = True) -> Derived | None:
        """The current generation's vectors and graph; a bad snapshot is rebuilt and saved."""
        with self.db.session() as s:
            view = self.view(s)
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
            view = self.view(s)
            assert view.fingerprint is not None
            derived = self._rebuild_in(s, view.fingerprint, view.generation)
        try:
            self.save(derived, view.fingerprint)
        except OSError as exc:  # a read-only index: serve the rebuilt state from memory
            log.warning("the rebuilt snapshot cannot be saved (%s); serving it from memory", exc.strerror)
            self.current = derived
        return derived

    def rebuild(self, fp: Fingerprint, generation: int) -> Derived:
        """Vectors from the cache, the graph from the edge table: no model, no LLM."""
        with self.db.session() as s:
            return self._rebuild_in(s, fp, generation)

    def _rebuild_in(self, s: Session, fp: Fingerprint, generation: int) -> Derived:
        derived = self.sync_sets(s, fp, None, generation)
        derived.edges = edge_table(s)
        return derived

    def sync_sets(
        self,
        s: Session,
        fp: Fingerprint,
        base: Derived | None,
        generation: int,
    ) -> Derived:
        """The vector sets the database asks for, patched from `base` (a copy: the loaded
        generation stays intact for readers and on failure) or built from the cache; the edge
        table is left empty for the caller to fill."""
        desired = _desired(s)
        laws = _laws(s) if self.engine.wants_laws else dict.fromkeys(SETS)

        def fetch(hashes: list[str]) -> dict[str, np.ndarray]:
            return self.cache.get_many(fp.id, hashes)

        if base is not None:
            self.engine.begin(fp, generation - 1)
        sets = {}
        for name in SETS:
            vs = base.sets.get(name) if base else None
            try:
                if vs is None or vs.dim != fp.dim:
                    vs = VectorSet.build(
                        fp.dim, desired[name], fetch, self.engine.empty(name, fp, generation), laws[name]
                    )
                else:
                    vs = vs.copy(generation)
                    vs.sync(desired[name], fetch, laws[name])
            except MissingVectors as exc:
                raise IndexStateError(f"{name}: {exc}; run `hoprag reembed --embedder {fp.name}`") from None
            sets[name] = vs
        # tokens of passages whose text is unchanged come from the generation before
        known = base.lexicon if base is not None else (self.current.lexicon if self.current else None)
        rows = s.execute(select(PassageRow.id, PassageRow.law, PassageRow.article_label, PassageRow.text)).all()
        texts = {pid: lexical_text(law, label, text) for pid, law, label, text in rows}
        lexicon = build_lexicon(texts, self.tokenizer, known)
        return Derived(generation, sets, np.zeros(0), lexicon)

    def save(self, derived: Derived, fp: Fingerprint) -> Snapshot:
        files: dict[str, bytes] = {}
        for name, vs in derived.sets.items():
            files.update(vs.to_files(name, with_index=self.engine.in_snapshot))
        files[GRAPH_FILE] = npy_bytes(derived.edges)
        if derived.lexicon is not None:
            files.update(derived.lexicon.to_files())
        info = {
            "embedder": fp.to_dict(),
            "fingerprint": fp.id,
            "vectors": self.engine.describe(),
            "counts": {name: len(vs) for name, vs in derived.sets.items()} | {"edges": len(derived.edges)},
        }
        snap = self.snapshots.save(derived.generation, files, info)
        self.current = derived
        return snap

    def commit_record(self, derived: Derived) -> dict:
        """What a build commits under DIGEST_META with its generation: the digest a snapshot must
        match and what the vector engine's readers need."""
        return {"generation": derived.generation, "digest": derived.digest(), "vectors": self.engine.token()}

    def after_commit(self, fp: Fingerprint, generation: int) -> None:
        """Once the database names `generation`: the engine may drop rows older readers no longer need."""
        try:
            self.engine.committed(fp, generation)
        except Exception as exc:  # the commit stands; the next build vacuums again
            log.warning("vector engine cleanup after generation %d failed: %s", generation, exc)

    def forget(self) -> None:
        """Drop what this process holds, so that the next load reads the snapshot from disk."""
        self.current = None

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

    def restore(self, generation: int, current: int) -> None:
        """Load the current generation's snapshot from disk as the serving state (the database is
        untouched). Older snapshots describe a database state that no longer exists, so they are
        refused with an explanation."""
        problem = self.verify(generation)
        if problem:
            raise SnapshotError(problem)
        if generation != current:
            raise SnapshotError(
                f"generation {generation} is not the database's current generation ({current}); "
                f"snapshots are derived from the database, so only the current one can be restored — "
                f"rebuild the library as of then to go back"
            )
        self.forget()
        self.load()

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
