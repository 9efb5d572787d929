"""The facade: one Index joins the database, the embedding cache, the embedder, the FAISS vectors
and their snapshots. The CLI and (later) the HTTP service are thin layers over it.

    idx = Index("/path/to/home")                       # opens, migrates, loads the newest snapshot
    report = idx.build("laws/2024-10-11", embedder="use-multilingual")
    hits = idx.query("雇主延長工作時間之工資如何計算", k=5)
    idx.stats()

Public API:
    Index(home=None, settings=None, create=True)   create=False: a missing index is an error
        .build(library, embedder=None, progress=None) -> BuildReport
        .reembed(embedder, progress=None) -> BuildReport
        .query(text, k=10) -> list[Hit]
        .passage(id_or_key) -> dict | None
        .stats() -> dict
        .generation, .fingerprint, .close()
    Hit, EmbedderMismatch, IndexError_
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select, update

from storage.cache import EmbeddingCache
from storage.db import Database
from storage.models import BuildRow, DocumentRow, EmbeddingRow, PassageRow, utcnow
from storage.snapshots import SnapshotError, SnapshotStore
from storage.vectors import VectorIndex, VectorIndexError

from .build import (BuildPlan, BuildReport, ExistingPassage, ProgressFn, StageTimer, ensure_vectors,
                    plan_build, unique_texts)
from .embedders import EmbedderError, Fingerprint, get_embedder
from .embedders.base import Embedder
from .library import read_library
from .passages import Library, Passage, embed_text, text_hash

__all__ = ["Index", "Hit", "EmbedderMismatch", "IndexStateError"]

log = logging.getLogger(__name__)
PASSAGES_FILE = "passages.faiss"


class EmbedderMismatch(RuntimeError):
    """The index holds vectors of another embedder; mixing them would make scores meaningless."""


class IndexStateError(RuntimeError):
    """The index cannot answer (empty, or derived data that cannot be rebuilt without embedding)."""


@dataclass(frozen=True)
class Hit:
    passage_id: int
    key: str
    law: str
    article: str
    score: float
    text: str
    label: str = ""
    chapters: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chapters"] = list(self.chapters)
        return d


def _row_values(p: Passage, document_id: int, embed_hash: str | None) -> dict:
    return {"key": p.key, "document_id": document_id, "law": p.law, "article": p.article,
            "article_label": p.article_label, "text": p.text, "chapters": list(p.chapters),
            "paragraphs": list(p.paragraphs), "ordinal": p.ordinal, "metadata": p.metadata,
            "text_hash": text_hash(p.text), "embed_hash": embed_hash, "updated_at": utcnow()}


class Index:
    def __init__(self, home: str | Path | None = None, settings=None, *, create: bool = True):
        from .settings import Settings
        settings = settings or Settings()
        if home is not None:
            settings = settings.model_copy(update={"home": Path(home)})
        self.settings = settings
        self.home = Path(settings.home)
        url = settings.database_url_for()
        if not create and url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
            raise IndexStateError(f"no index at {self.home}: run `hoprag build LIBRARY` first (or pass --home)")
        self.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(url)
        self.cache = EmbeddingCache(self.db)
        self.snapshots = SnapshotStore(self.home / "snapshots", keep=settings.snapshot_keep)
        self._vectors: VectorIndex | None = None
        self._vectors_generation = -1
        self.repairs: list[str] = []   # what opening had to rebuild, for stats and logs

    # ---------------------------------------------------------------- state
    @property
    def generation(self) -> int:
        return int(self.db.get_meta("generation", 0))

    @property
    def fingerprint(self) -> Fingerprint | None:
        fp = self.db.get_meta("embedder")
        return Fingerprint.from_dict(fp) if fp else None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- embedders
    def _embedder(self, name: str | None) -> Embedder:
        stored = self.fingerprint
        chosen = name or (stored.name if stored else self.settings.embedder)
        emb = get_embedder(chosen, self.settings)
        if stored and emb.fingerprint != stored and self._count_vectors_expected() > 0:
            raise EmbedderMismatch(
                f"this index holds vectors of {stored.describe()}, not {emb.fingerprint.describe()}; "
                f"vectors of two models cannot be mixed. Re-embed everything with "
                f"`hoprag reembed --embedder {chosen}` (texts already embedded by that model come from the cache), "
                f"or build into another --home.")
        return emb

    def _count_vectors_expected(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(PassageRow).where(PassageRow.embed_hash.is_not(None))))

    # ---------------------------------------------------------------- build
    def _existing(self) -> dict[str, ExistingPassage]:
        with self.db.session() as s:
            rows = s.execute(select(PassageRow.key, PassageRow.id, PassageRow.text_hash, PassageRow.embed_hash,
                                    PassageRow.law, PassageRow.article_label, PassageRow.chapters,
                                    PassageRow.paragraphs, PassageRow.ordinal, DocumentRow.doc_key, PassageRow.meta)
                             .join(DocumentRow, DocumentRow.id == PassageRow.document_id))
            return {r[0]: ExistingPassage(r[1], r[2], r[3], r[4], r[5], tuple(r[6]), tuple(r[7]), r[8], r[9], r[10] or {})
                    for r in rows}

    def build(self, library: str | Path | Library, *, embedder: str | None = None,
              progress: ProgressFn | None = None) -> BuildReport:
        progress = progress or (lambda *a: None)
        timer = StageTimer()
        lib = library if isinstance(library, Library) else read_library(library)
        timer.mark("read")
        emb = self._embedder(embedder)
        plan = plan_build(lib, self._existing())
        base_vectors = self._load_vectors(required=False)
        timer.mark("diff")
        need = unique_texts(plan.needs_vector, plan.embed_hashes)
        vectors, embedded, hits = ensure_vectors(need, emb, self.cache, chunk=self.settings.embed_chunk, progress=progress)
        timer.mark("embed")

        report = BuildReport(
            added=len(plan.added), changed=len(plan.changed), relabeled=len(plan.relabeled),
            removed=len(plan.removed_ids), unchanged=plan.unchanged + len(plan.touched),
            repealed=sum(1 for p in lib.passages if p.repealed), embedded=embedded, cache_hits=hits,
            documents=len(lib.documents), passages=len(lib.passages), embedder=emb.fingerprint.name,
            library=lib.root, skipped_files=list(lib.skipped))
        fingerprint_changed = self.fingerprint != emb.fingerprint
        generation = self.generation
        if not plan.is_noop or fingerprint_changed:
            generation, new_ids = self._commit(lib, plan, emb.fingerprint)
            timer.mark("commit")
            self._apply_vectors(base_vectors, plan, vectors, new_ids, generation, emb)
            timer.mark("snapshot")
        report.generation = generation
        report.stages = timer.stages
        report.seconds = timer.total
        self._record_build(report)
        return report

    def _commit(self, lib: Library, plan: BuildPlan, fp: Fingerprint) -> tuple[int, dict[str, int]]:
        with self.db.session() as s:
            docs = {d.doc_key: d for d in s.scalars(select(DocumentRow))}
            for d in lib.documents:
                row = docs.get(d.doc_key)
                values = dict(name=d.name, format=d.format, source=d.source, content_hash=d.content_hash, meta=d.metadata)
                if row is None:
                    row = DocumentRow(doc_key=d.doc_key, **values)
                    s.add(row)
                    docs[d.doc_key] = row
                elif any(getattr(row, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(row, k, v)
                    row.updated_at = utcnow()
            s.flush()
            doc_ids = {k: r.id for k, r in docs.items()}

            if plan.removed_ids:
                for i in range(0, len(plan.removed_ids), 500):
                    s.execute(delete(PassageRow).where(PassageRow.id.in_(plan.removed_ids[i:i + 500])))
            updates = [dict(_row_values(p, doc_ids[p.doc_key], plan.embed_hashes[p.key]), id=pid)
                       for pid, p in plan.changed + plan.relabeled + plan.touched]
            if updates:
                s.execute(update(PassageRow), updates)
            new_ids: dict[str, int] = {}
            if plan.added:
                rows = [_row_values(p, doc_ids[p.doc_key], plan.embed_hashes[p.key]) for p in plan.added]
                result = s.execute(insert(PassageRow).returning(PassageRow.key, PassageRow.id), rows)
                new_ids = dict(result.all())
            live = {d.doc_key for d in lib.documents}
            stale = [r.id for k, r in docs.items() if k not in live]
            if stale:
                s.execute(delete(DocumentRow).where(DocumentRow.id.in_(stale)))
            generation = self.generation + 1
            self.db.set_meta(s, "generation", generation)
            self.db.set_meta(s, "embedder", fp.to_dict())
            self.db.set_meta(s, "library", lib.root)
        return generation, new_ids

    def _record_build(self, report: BuildReport) -> None:
        with self.db.session() as s:
            s.add(BuildRow(generation=report.generation, library=report.library, embedder=report.embedder,
                           status="committed", report=report.to_dict(), seconds=report.seconds,
                           finished_at=utcnow()))

    def _apply_vectors(self, base: VectorIndex | None, plan: BuildPlan, vectors: dict[str, np.ndarray],
                       new_ids: dict[str, int], generation: int, emb: Embedder) -> None:
        if base is None or base.dim != emb.fingerprint.dim:
            index = self._vectors_from_db(emb.fingerprint)
        else:
            index = base
            index.remove(np.array([pid for pid, _ in plan.changed + plan.relabeled] + plan.removed_ids, dtype=np.int64))
            ids_by_key = {p.key: pid for pid, p in plan.changed + plan.relabeled} | new_ids
            todo = [(ids_by_key[p.key], p) for p in plan.needs_vector]
            if todo:
                ids = np.array([pid for pid, _ in todo], dtype=np.int64)
                index.add(ids, np.stack([vectors[plan.embed_hashes[p.key]] for _, p in todo]))
        self._save_snapshot(index, generation, emb.fingerprint)

    def _save_snapshot(self, index: VectorIndex, generation: int, fp: Fingerprint) -> None:
        self.snapshots.save(generation, {PASSAGES_FILE: index.to_bytes()},
                            {"embedder": fp.to_dict(), "fingerprint": fp.id, "vectors": index.ntotal})
        self._vectors, self._vectors_generation = index, generation

    # ---------------------------------------------------------------- vectors
    def _vectors_from_db(self, fp: Fingerprint) -> VectorIndex:
        """Rebuild the passage vectors from the database and the cache: no model call."""
        with self.db.session() as s:
            rows = s.execute(select(PassageRow.id, EmbeddingRow.vector)
                             .join(EmbeddingRow, (EmbeddingRow.text_hash == PassageRow.embed_hash)
                                   & (EmbeddingRow.fingerprint == fp.id))
                             .where(PassageRow.embed_hash.is_not(None))).all()
        expected = self._count_vectors_expected()
        if len(rows) != expected:
            raise IndexStateError(
                f"{expected - len(rows)} of {expected} passages have no cached vector for {fp.describe()}; "
                f"run `hoprag reembed --embedder {fp.name}` to embed them again")
        index = VectorIndex(fp.dim)
        if rows:
            index.add(np.array([r[0] for r in rows], dtype=np.int64),
                      np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))
        return index

    def _load_vectors(self, required: bool = True) -> VectorIndex | None:
        generation, fp = self.generation, self.fingerprint
        if fp is None:
            if required:
                raise IndexStateError(f"the index at {self.home} is empty: run `hoprag build LIBRARY` first")
            return None
        if self._vectors is not None and self._vectors_generation == generation:
            return self._vectors
        snap = self.snapshots.get(generation)
        problem = None
        if snap is None:
            latest = self.snapshots.latest()
            problem = (f"snapshot of generation {generation} is missing"
                       + (f" (newest on disk: {latest.generation})" if latest else ""))
        else:
            try:
                index = VectorIndex.from_bytes(self.snapshots.read(snap, PASSAGES_FILE))
                if snap.info.get("fingerprint") != fp.id or index.dim != fp.dim:
                    raise SnapshotError("snapshot was made with another embedder")
                if index.ntotal != self._count_vectors_expected():
                    raise SnapshotError(f"snapshot holds {index.ntotal} vectors, the database expects more or fewer")
                self._vectors, self._vectors_generation = index, generation
                return index
            except (SnapshotError, VectorIndexError) as exc:
                problem = str(exc)
        log.warning("rebuilding vectors from the database: %s", problem)
        self.repairs.append(problem)
        index = self._vectors_from_db(fp)
        self._save_snapshot(index, generation, fp)
        return index

    # ---------------------------------------------------------------- queries
    def query(self, text: str, k: int = 10) -> list[Hit]:
        if not text or not text.strip():
            raise ValueError("empty query")
        if k < 1:
            raise ValueError("k must be at least 1")
        index = self._load_vectors()
        emb = self._embedder(None)
        scores, ids = index.search(emb.embed([text]), k)
        found = [(int(i), float(sc)) for i, sc in zip(ids[0], scores[0]) if i >= 0]
        rows = self._passages_by_id([i for i, _ in found])
        return [Hit(passage_id=i, key=rows[i].key, law=rows[i].law, article=rows[i].article, score=sc,
                    text=rows[i].text, label=rows[i].article_label, chapters=tuple(rows[i].chapters))
                for i, sc in found if i in rows]

    def _passages_by_id(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        if not ids:
            return {}
        with self.db.session() as s:
            return {r.id: r for r in s.scalars(select(PassageRow).where(PassageRow.id.in_(list(ids))))}

    def passage(self, ref: int | str) -> dict | None:
        with self.db.session() as s:
            col = PassageRow.id if isinstance(ref, int) else PassageRow.key
            row = s.scalar(select(PassageRow).where(col == ref))
            if row is None:
                return None
            return {"passage_id": row.id, "key": row.key, "law": row.law, "article": row.article,
                    "label": row.article_label, "chapters": row.chapters, "paragraphs": row.paragraphs,
                    "text": row.text, "embedded": row.embed_hash is not None, "metadata": row.meta}

    def stats(self) -> dict:
        with self.db.session() as s:
            laws = s.scalar(select(func.count()).select_from(DocumentRow))
            passages = s.scalar(select(func.count()).select_from(PassageRow))
            embedded = s.scalar(select(func.count()).select_from(PassageRow).where(PassageRow.embed_hash.is_not(None)))
            cached = s.scalar(select(func.count()).select_from(EmbeddingRow))
            last = s.scalar(select(BuildRow).order_by(BuildRow.id.desc()).limit(1))
        fp = self.fingerprint
        vectors = self._load_vectors(required=False)
        snap = self.snapshots.get(self.generation)
        return {"home": str(self.home), "laws": laws, "passages": passages, "embedded_passages": embedded,
                "repealed_passages": passages - embedded, "vectors": vectors.ntotal if vectors else 0,
                "cached_embeddings": cached, "embedder": fp.to_dict() if fp else None,
                "generation": self.generation, "snapshot": snap.path.name if snap else None,
                "library": self.db.get_meta("library"),
                "last_build": last.report if last else None, "repairs": list(self.repairs)}

    # ---------------------------------------------------------------- re-embedding
    def reembed(self, embedder: str, *, progress: ProgressFn | None = None) -> BuildReport:
        """Give every passage a vector from `embedder` (through the cache), keeping everything else."""
        timer = StageTimer()
        emb = get_embedder(embedder, self.settings)
        with self.db.session() as s:
            rows = s.execute(select(PassageRow.id, PassageRow.law, PassageRow.article_label, PassageRow.text)
                             .where(PassageRow.embed_hash.is_not(None))).all()
        texts = {}
        for _, law, label, body in rows:
            t = embed_text(law, label, body)
            texts.setdefault(text_hash(t), t)
        timer.mark("read")
        _, embedded, hits = ensure_vectors(texts, emb, self.cache, chunk=self.settings.embed_chunk,
                                           progress=progress or (lambda *a: None))
        timer.mark("embed")
        with self.db.session() as s:
            generation = self.generation + 1
            self.db.set_meta(s, "generation", generation)
            self.db.set_meta(s, "embedder", emb.fingerprint.to_dict())
        self._save_snapshot(self._vectors_from_db(emb.fingerprint), generation, emb.fingerprint)
        timer.mark("snapshot")
        report = BuildReport(unchanged=len(rows), embedded=embedded, cache_hits=hits, generation=generation,
                             embedder=emb.fingerprint.name, library=str(self.db.get_meta("library") or ""),
                             passages=len(rows), stages=timer.stages, seconds=timer.total)
        self._record_build(report)
        return report

