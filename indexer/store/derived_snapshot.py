"""A generation's derived state in its snapshot: written, read back, and verified against what the
database says that generation holds.

Public API:
    DbView(generation, fingerprint, digest, vectors)   what the database says, in one transaction
    DIGEST_META                           the meta key a build commits Derived.digest() under
    GRAPH_FILE                            the snapshot file of the edge table
    SnapshotCodec(snapshots, engine, tokenizer)
        .view(read) -> DbView             read: a storage.reads.Read (one transaction)
        .read(view) -> (Derived | None, problem | None)   the snapshot, verified against the view
        .save(derived, fingerprint) -> Snapshot
        .commit_record(derived) -> dict   what a build commits under DIGEST_META

Why a digest: a snapshot must describe exactly the database rows of its generation (every vector
set's ids and text hashes, the edge and passage counts). Comparing them row by row costs an open
~0.2 s on 60k questions; the build that commits a generation also commits the digest of what it
derived, so an open compares one string. A database without it (made before the digest, or by an
older hoprag) is compared row by row, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from storage.reads import Read
from storage.snapshots import Snapshot, SnapshotError, SnapshotStore
from storage.vectors import VectorIndex, VectorIndexError

from ..embedders.base import Fingerprint
from .derive import SETS, Derived, table_digest, wanted_vectors
from .graph import EDGE_DTYPE
from .lexical import Lexicon
from .vector_engines import VectorEngine
from .vectorsets import VectorSet, map_table, npy_bytes, npy_load

__all__ = ["DbView", "DIGEST_META", "GRAPH_FILE", "SnapshotCodec"]

GRAPH_FILE = "graph.npy"
DIGEST_META = "derived_digest"  # {"generation": N, "digest": Derived.digest()} of the committed generation


class DbView(NamedTuple):
    generation: int
    fingerprint: Fingerprint | None
    digest: str  # of the vector sets, edges and passages the database says this generation has
    vectors: dict = {}  # what the vector engine committed with it (Milvus: its last write's timestamp)


class SnapshotCodec:
    def __init__(self, snapshots: SnapshotStore, engine: VectorEngine, tokenizer: str):
        self.snapshots, self.engine, self.tokenizer = snapshots, engine, tokenizer

    def view(self, r: Read) -> DbView:
        """Generation, embedder and the digest of what the snapshot must hold, in one transaction."""
        generation = int(r.meta("generation", 0))
        fp = r.meta("embedder")
        stored = r.meta(DIGEST_META) or {}
        token: dict = {}
        if stored.get("generation") == generation and stored.get("digest"):
            digest = str(stored["digest"])
            token = dict(stored.get("vectors") or {})
        else:  # no digest committed with this generation: the rows themselves
            desired = wanted_vectors(r)
            tables = {name: map_table(desired[name]) for name in SETS}
            n_edges = int(r.rows("SELECT COUNT(*) FROM edges")[0][0])
            n_passages = int(r.rows("SELECT COUNT(*) FROM passages")[0][0])
            digest = table_digest(tables, n_edges, n_passages)
        return DbView(generation, Fingerprint.from_dict(fp) if fp else None, digest, token)

    def read(self, view: DbView) -> tuple[Derived | None, str | None]:
        """The snapshot of the view's generation, verified (checksums, embedder, ids and hashes,
        edge count), or None and what is wrong with it."""
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
        return self.snapshots.save(derived.generation, files, info)

    def commit_record(self, derived: Derived) -> dict:
        """What a build commits under DIGEST_META with its generation: the digest a snapshot must
        match and what the vector engine's readers need."""
        return {"generation": derived.generation, "digest": derived.digest(), "vectors": self.engine.token()}
