"""The facade: one Index joins the database, the embedding cache, the embedder, the LLM, the FAISS
vector sets, the graph and their snapshots. The CLI and the HTTP service are thin layers over it.

    idx = Index("/path/to/home")                       # opens, migrates, loads the newest snapshot
    report = idx.build("laws/2024-10-11", embedder="use-multilingual", llm="openai:qwen2.5")
    hits = idx.query("雇主延長工作時間之工資如何計算", k=5)
    idx.stats(); idx.graph(); idx.snapshots_list()

Build stages (seconds of each in the report): read → embed → llm → edges → commit → snapshot.
Vectors, the graph and snapshots are derived: a crash between the commit and the snapshot leaves
a database whose generation has no snapshot yet, which the next open rebuilds from the database
and the caches, without embedding or calling an LLM.

Public API:
    Index(home=None, settings=None, create=True)   create=False: a missing index is an error
        .build(library, embedder=None, llm=None, progress=None) -> BuildReport
        .reembed(embedder, progress=None) -> BuildReport
        .search(text, k=10, mode="dense"|"questions"|"hybrid", filters=None) -> list[Hit]
        .query(text, k=10) -> list[Hit]                 dense search
        .hop_search(text, k=10, n_hop=2, mode="similarity"|"llm", filters=None) -> list[Hit]
        .neighbors(passage, direction="out", kinds=None) -> list[dict]
        .passage(id_or_key) -> dict | None
        .graph() -> networkx.MultiDiGraph           node and edge attributes for export
        .stats() -> dict
        .snapshots_list() -> list[dict], .restore_snapshot(generation)
        .generation, .fingerprint, .close()
    Hit, EmbedderMismatch, IndexStateError, IndexBusy (another process is building)
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select, update

from storage.cache import EmbeddingCache
from storage.db import Database
from storage.models import (BuildRow, DocumentRow, EdgeRow, EmbeddingRow, PassageRow, PseudoQueryRow, utcnow)
from storage.lock import IndexBusy, WriterLock
from storage.snapshots import Snapshot, SnapshotError, SnapshotStore
from storage.vectors import VectorIndexError

from .build import (BuildPlan, BuildReport, ExistingPassage, ProgressFn, StageTimer, ensure_vectors,
                    plan_build, unique_texts)
from .edges import EdgeParams, keywords_for, match_questions
from .embedders import Fingerprint, get_embedder
from .embedders.base import Embedder
from .graph import EDGE_KINDS, edge_table, graph_from_table
from .library import read_library
from .passages import Library, Passage, embed_text, text_hash
from .pseudo_queries import QuestionCounts
from .retrieval import Hit
from .vectorsets import MissingVectors, VectorSet, npy_bytes, npy_load

__all__ = ["Index", "Hit", "EmbedderMismatch", "IndexStateError", "IndexBusy"]

log = logging.getLogger(__name__)
SETS = ("passages", "questions_in", "questions_out")
GRAPH_FILE = "graph.npy"


class EmbedderMismatch(RuntimeError):
    """The index holds vectors of another embedder; mixing them would make scores meaningless."""


class IndexStateError(RuntimeError):
    """The index cannot answer (empty, or derived data that cannot be rebuilt without embedding)."""


def _row_values(p: Passage, document_id: int, embed_hash: str | None) -> dict:
    return {"key": p.key, "document_id": document_id, "law": p.law, "article": p.article,
            "article_label": p.article_label, "text": p.text, "chapters": list(p.chapters),
            "paragraphs": list(p.paragraphs), "ordinal": p.ordinal, "metadata": p.metadata,
            "text_hash": text_hash(p.text), "embed_hash": embed_hash, "updated_at": utcnow()}


@dataclass
class _Derived:
    """Everything a snapshot holds, for one generation."""
    generation: int
    sets: dict[str, VectorSet]
    edges: np.ndarray


def _window_warnings(emb: Embedder, passages: Sequence[Passage]) -> list[str]:
    """Passages longer than the model reads: embedded from their beginning, and said so."""
    too_long = getattr(emb, "too_long", None)
    if too_long is None or not passages:
        return []
    over = too_long([p.embed_text for p in passages])
    return [f"{passages[i].key}: {n} tokens, beyond the {emb.max_tokens}-token window of {emb.name}; "
            f"the embedding reads the first {emb.max_tokens} (split the article to index the rest)"
            for i, n in over]


def _edge_table(s) -> np.ndarray:
    return edge_table(s.execute(select(EdgeRow.id, EdgeRow.source_id, EdgeRow.target_id, EdgeRow.kind, EdgeRow.score,
                                       EdgeRow.out_query_id, EdgeRow.in_query_id).order_by(EdgeRow.id)).all())


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
        self._derived: _Derived | None = None
        self._retriever = None
        self.repairs: list[str] = []   # what opening had to rebuild, for stats and logs

    # ---------------------------------------------------------------- state
    @property
    def generation(self) -> int:
        return int(self.db.get_meta("generation", 0))

    @property
    def fingerprint(self) -> Fingerprint | None:
        fp = self.db.get_meta("embedder")
        return Fingerprint.from_dict(fp) if fp else None

    @property
    def edge_params(self) -> EdgeParams:
        s = self.settings
        return EdgeParams(top_k=s.edge_top_k, threshold=s.edge_threshold, max_per_passage=s.edge_max_per_passage,
                          keyword_weight=s.edge_keyword_weight, candidates=s.edge_candidates,
                          generic_cosine=s.edge_generic_cosine, generic_passages=s.edge_generic_passages)

    @property
    def question_counts(self) -> QuestionCounts:
        s = self.settings
        return QuestionCounts(s.questions_in_min, s.questions_in_max, s.questions_out_min, s.questions_out_max)

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
        if stored and emb.fingerprint != stored and self._count(PassageRow.embed_hash.is_not(None)) > 0:
            raise EmbedderMismatch(
                f"this index holds vectors of {stored.describe()}, not {emb.fingerprint.describe()}; "
                f"vectors of two models cannot be mixed. Re-embed everything with "
                f"`hoprag reembed --embedder {chosen}` (texts already embedded by that model come from the cache), "
                f"or build into another --home.")
        return emb

    def _count(self, *where, model=PassageRow) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)))

    # ---------------------------------------------------------------- build
    def _existing(self) -> dict[str, ExistingPassage]:
        with self.db.session() as s:
            rows = s.execute(select(PassageRow.key, PassageRow.id, PassageRow.text_hash, PassageRow.embed_hash,
                                    PassageRow.law, PassageRow.article_label, PassageRow.chapters,
                                    PassageRow.paragraphs, PassageRow.ordinal, DocumentRow.doc_key, PassageRow.meta,
                                    PassageRow.questions_key)
                             .join(DocumentRow, DocumentRow.id == PassageRow.document_id))
            return {r[0]: ExistingPassage(r[1], r[2], r[3], r[4], r[5], tuple(r[6]), tuple(r[7]), r[8], r[9],
                                          r[10] or {}, r[11]) for r in rows}

    def _graph_signature(self, fp: Fingerprint) -> str:
        """What question edges depend on besides the data: a change forces recomputation."""
        blob = json.dumps([fp.id, asdict(self.edge_params)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def build(self, library: str | Path | Library, *, embedder: str | None = None, llm: str | None = None,
              progress: ProgressFn | None = None) -> BuildReport:
        """Bring the index up to date with `library`; raises IndexBusy while another build runs."""
        with WriterLock(self.home / "write.lock"):
            return self._build(library, embedder=embedder, llm=llm, progress=progress)

    def _build(self, library: str | Path | Library, *, embedder: str | None, llm: str | None,
               progress: ProgressFn | None) -> BuildReport:
        from .llm.runner import get_llm
        from .question_stage import QuestionStage

        progress = progress or (lambda *a: None)
        timer = StageTimer()
        lib = library if isinstance(library, Library) else read_library(library, self.settings.max_file_mb)
        # like the embedder, the LLM an index was built with stays its default
        llm_name = llm or self.db.get_meta("llm") or self.settings.llm
        llm_client = get_llm(llm_name, self.settings)   # a bad name fails before any work
        timer.mark("read")
        emb = self._embedder(embedder)
        existing = self._existing()
        plan = plan_build(lib, existing)
        need = unique_texts(plan.needs_vector, plan.embed_hashes)
        warnings = _window_warnings(emb, plan.needs_vector)
        vectors, embedded, hits = ensure_vectors(need, emb, self.cache, chunk=self.settings.embed_chunk, progress=progress)
        timer.mark("embed")

        # Questions: passages that are new, changed, or still without questions (a failed call).
        retexted = {p.key for p in plan.added} | {p.key for _, p in plan.changed + plan.relabeled}
        live = [p for p in lib.passages if plan.embed_hashes[p.key] is not None]
        wanting = [p for p in live if p.key in retexted or existing[p.key].questions_key is None]
        stage = QuestionStage(self.db, llm_client, self.question_counts, self.settings).run(
            wanting, plan.embed_hashes, progress) if llm_client and wanting else None
        new_questions = stage.questions if stage else {}
        timer.mark("llm")
        q_texts = {text_hash(q): q for _, pq in new_questions.values() for q in pq.incoming + pq.outgoing}
        _, q_embedded, q_hits = ensure_vectors(q_texts, emb, self.cache, chunk=self.settings.embed_chunk,
                                               progress=progress)
        timer.mark("embed")

        report = BuildReport(
            added=len(plan.added), changed=len(plan.changed), relabeled=len(plan.relabeled),
            removed=len(plan.removed_ids), unchanged=plan.unchanged + len(plan.touched),
            repealed=sum(1 for p in lib.passages if p.repealed), embedded=embedded + q_embedded,
            cache_hits=hits + q_hits, llm_calls=stage.calls if stage else 0,
            llm_failures=stage.failures if stage else 0, documents=len(lib.documents), passages=len(lib.passages),
            embedder=emb.fingerprint.name, library=lib.root, skipped_files=list(lib.skipped), warnings=warnings)
        signature = self._graph_signature(emb.fingerprint)
        unchanged_index = (plan.is_noop and not new_questions and self.fingerprint == emb.fingerprint
                           and self.db.get_meta("graph_signature") == signature)
        generation = self.generation
        if llm_name != self.db.get_meta("llm"):
            with self.db.session() as s:
                self.db.set_meta(s, "llm", llm_name)
        if not unchanged_index:
            # the vectors of the current generation, patched into the next one (a no-op build never loads them)
            base = self._load_derived(required=False)
            generation, cites = self._commit(lib, plan, emb.fingerprint, new_questions, base, signature, timer)
            report.citations_unresolved = cites
        else:
            last = self._last_report()
            report.citations_unresolved = last.get("citations_unresolved", 0) if last else 0
        report.generation = generation
        report.pseudo_queries = self._count(model=PseudoQueryRow)
        report.edges = self._edge_counts()
        report.stages = timer.stages
        report.seconds = timer.total
        self._record_build(report)
        return report

    def _commit(self, lib: Library, plan: BuildPlan, fp: Fingerprint, new_questions: dict, base: _Derived | None,
                signature: str, timer: StageTimer) -> tuple[int, int]:
        from .citations import resolve_citations

        with self.db.session() as s:
            doc_ids = self._write_documents(s, lib)
            if plan.removed_ids:
                for i in range(0, len(plan.removed_ids), 500):
                    s.execute(delete(PassageRow).where(PassageRow.id.in_(plan.removed_ids[i:i + 500])))
            retexted = plan.changed + plan.relabeled
            # a new text makes its old questions stale: they go, and the LLM stage was asked anew
            updates = [dict(_row_values(p, doc_ids[p.doc_key], plan.embed_hashes[p.key]), id=pid, questions_key=None)
                       for pid, p in retexted]
            updates += [dict(_row_values(p, doc_ids[p.doc_key], plan.embed_hashes[p.key]), id=pid)
                        for pid, p in plan.touched]
            if updates:
                s.execute(update(PassageRow), updates)
            if plan.added:
                rows = [_row_values(p, doc_ids[p.doc_key], plan.embed_hashes[p.key]) for p in plan.added]
                s.execute(insert(PassageRow), rows)
            ids = dict(s.execute(select(PassageRow.key, PassageRow.id)).all())
            stale_q = [ids[k] for k in new_questions if k in ids] + [pid for pid, _ in retexted]
            for i in range(0, len(stale_q), 500):
                s.execute(delete(PseudoQueryRow).where(PseudoQueryRow.passage_id.in_(stale_q[i:i + 500])))
            q_rows = [{"passage_id": ids[k], "direction": d, "ordinal": n, "text": q, "embed_hash": text_hash(q)}
                      for k, (ck, pq) in new_questions.items()
                      for d, qs in (("in", pq.incoming), ("out", pq.outgoing)) for n, q in enumerate(qs)]
            if q_rows:
                s.execute(insert(PseudoQueryRow), q_rows)
            if new_questions:
                s.execute(update(PassageRow), [{"id": ids[k], "questions_key": ck} for k, (ck, _) in new_questions.items()])
            generation = self.generation + 1
            derived = self._sync_sets(s, fp, base, generation)
            timer.mark("commit")
            cites = resolve_citations(lib)
            edges = self._write_edges(s, derived, ids, cites)
            derived.edges = edges
            timer.mark("edges")
            self.db.set_meta(s, "generation", generation)
            self.db.set_meta(s, "embedder", fp.to_dict())
            self.db.set_meta(s, "library", lib.root)
            self.db.set_meta(s, "graph_signature", signature)
            self.db.set_meta(s, "citations_unresolved", cites.unresolved)
            # The snapshot is on disk before the commit: whoever sees generation N in the database
            # finds snapshot N. A crash in between leaves an orphan snapshot the next build replaces.
            self._save_snapshot(derived, fp)
            timer.mark("snapshot")
        return generation, cites.unresolved

    def _write_documents(self, s, lib: Library) -> dict[str, int]:
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
        live = {d.doc_key for d in lib.documents}
        stale = [r.id for k, r in docs.items() if k not in live]
        if stale:
            s.execute(delete(DocumentRow).where(DocumentRow.id.in_(stale)))
        return {k: r.id for k, r in docs.items() if k in live}

    def _desired(self, s) -> dict[str, dict[int, str]]:
        """{set name: {id: embed hash}} as the database says it should be."""
        q = select(PseudoQueryRow.id, PseudoQueryRow.embed_hash)
        return {
            "passages": dict(s.execute(select(PassageRow.id, PassageRow.embed_hash)
                                       .where(PassageRow.embed_hash.is_not(None))).all()),
            "questions_in": dict(s.execute(q.where(PseudoQueryRow.direction == "in")).all()),
            "questions_out": dict(s.execute(q.where(PseudoQueryRow.direction == "out")).all()),
        }

    def _sync_sets(self, s, fp: Fingerprint, base: _Derived | None, generation: int) -> _Derived:
        desired = self._desired(s)
        fetch = lambda hashes: self.cache.get_many(fp.id, hashes)  # noqa: E731 - one-line adapter
        sets = {}
        for name in SETS:
            vs = base.sets.get(name) if base else None
            try:
                if vs is None or vs.dim != fp.dim:
                    vs = VectorSet.build(fp.dim, desired[name], fetch)
                else:
                    vs = vs.copy()   # the loaded generation stays intact for readers and on failure
                    vs.sync(desired[name], fetch)
            except MissingVectors as exc:
                raise IndexStateError(f"{name}: {exc}; run `hoprag reembed --embedder {fp.name}`") from None
            sets[name] = vs
        return _Derived(generation, sets, np.zeros(0))

    def _write_edges(self, s, derived: _Derived, ids: dict[str, int], cites, kinds=EDGE_KINDS) -> np.ndarray:
        """Replace the edges of `kinds` (derived data) and return the whole edge table."""
        s.execute(delete(EdgeRow).where(EdgeRow.kind.in_(kinds)))
        rows = []
        if "question" in kinds:
            owner = dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.passage_id)).all())
            o_ids, o_vecs = derived.sets["questions_out"].index.vectors()
            i_ids, i_vecs = derived.sets["questions_in"].index.vectors()
            kw = None
            if self.settings.edge_keyword_weight > 0:
                kw = keywords_for(dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.text)).all()))
            qe = match_questions(o_ids, np.array([owner[int(i)] for i in o_ids], np.int64), o_vecs,
                                 i_ids, np.array([owner[int(i)] for i in i_ids], np.int64), i_vecs,
                                 self.edge_params, kw)
            rows += [{"source_id": int(a), "target_id": int(b), "kind": "question", "out_query_id": int(o),
                      "in_query_id": int(i), "score": float(sc), "span": None, "data": {}}
                     for a, b, o, i, sc in zip(qe.source, qe.target, qe.out_q, qe.in_q, qe.score)]
        if cites is not None:
            rows += [{"source_id": ids[e.source], "target_id": ids[e.target], "kind": e.kind, "out_query_id": None,
                      "in_query_id": None, "score": 1.0, "span": e.span, "data": {"mutatis": True} if e.mutatis else {}}
                     for e in cites.edges if e.source in ids and e.target in ids]
        if rows:
            s.execute(insert(EdgeRow), rows)
        return _edge_table(s)

    def _record_build(self, report: BuildReport) -> None:
        with self.db.session() as s:
            s.add(BuildRow(generation=report.generation, library=report.library, embedder=report.embedder,
                           status="committed", report=report.to_dict(), seconds=report.seconds,
                           finished_at=utcnow()))

    def _last_report(self) -> dict | None:
        with self.db.session() as s:
            last = s.scalar(select(BuildRow).order_by(BuildRow.id.desc()).limit(1))
            return last.report if last else None

    def _edge_counts(self) -> dict[str, int]:
        with self.db.session() as s:
            counts = dict(s.execute(select(EdgeRow.kind, func.count()).group_by(EdgeRow.kind)).all())
        return {k: int(counts.get(k, 0)) for k in EDGE_KINDS}

    # ---------------------------------------------------------------- snapshots
    def _save_snapshot(self, derived: _Derived, fp: Fingerprint) -> Snapshot:
        files: dict[str, bytes] = {}
        for name, vs in derived.sets.items():
            files.update(vs.to_files(name))
        files[GRAPH_FILE] = npy_bytes(derived.edges)
        info = {"embedder": fp.to_dict(), "fingerprint": fp.id,
                "counts": {name: len(vs) for name, vs in derived.sets.items()} | {"edges": int(len(derived.edges))}}
        snap = self.snapshots.save(derived.generation, files, info)
        self._derived = derived
        return snap

    def _db_view(self, s) -> tuple[int, Fingerprint | None, dict[str, dict[int, str]], int]:
        """Generation, embedder, desired vector sets and edge count, read in one transaction."""
        generation = int(self.db.get_meta_in(s, "generation", 0))
        fp = self.db.get_meta_in(s, "embedder")
        n_edges = int(s.scalar(select(func.count()).select_from(EdgeRow)))
        return generation, Fingerprint.from_dict(fp) if fp else None, self._desired(s), n_edges

    def _read_snapshot(self, generation: int, fp: Fingerprint, desired: dict, n_edges: int
                       ) -> tuple[_Derived | None, str | None]:
        """The snapshot of `generation`, verified (checksums, embedder, ids and hashes, edge count)."""
        if self._derived is not None and self._derived.generation == generation:
            return self._derived, None
        snap = self.snapshots.get(generation)
        if snap is None:
            latest = self.snapshots.latest()
            return None, (f"snapshot of generation {generation} is missing"
                          + (f" (newest on disk: gen {latest.generation})" if latest else ""))
        try:
            if snap.info.get("fingerprint") != fp.id:
                raise SnapshotError("snapshot was made with another embedder")
            read = lambda name: self.snapshots.read(snap, name)  # noqa: E731
            sets = {name: VectorSet.from_files(name, read) for name in SETS}
            edges = npy_load(read(GRAPH_FILE))
            for name in SETS:
                if sets[name].hashes != desired[name]:
                    raise SnapshotError(f"snapshot {name} does not match the database")
            if len(edges) != n_edges:
                raise SnapshotError("snapshot graph does not match the database")
            return _Derived(generation, sets, edges), None
        except (SnapshotError, VectorIndexError) as exc:
            return None, str(exc)

    def _load_derived(self, required: bool = True) -> _Derived | None:
        """The current generation's vectors and graph; a bad snapshot is rebuilt and saved."""
        with self.db.session() as s:
            generation, fp, desired, n_edges = self._db_view(s)
        if fp is None:
            if required:
                raise IndexStateError(f"the index at {self.home} is empty: run `hoprag build LIBRARY` first")
            return None
        derived, problem = self._read_snapshot(generation, fp, desired, n_edges)
        if derived is not None:
            self._derived = derived
            return derived
        log.warning("rebuilding snapshot from the database: %s", problem)
        self.repairs.append(problem)
        with self.db.session() as s:   # one transaction: what is rebuilt is what it is named after
            generation, fp, _, _ = self._db_view(s)
            derived = self._rebuild_derived_in(s, fp, generation)
            self._save_snapshot(derived, fp)
        return derived

    def _rebuild_derived(self, fp: Fingerprint, generation: int) -> _Derived:
        """Vectors from the cache, the graph from the edge table: no model, no LLM."""
        with self.db.session() as s:
            return self._rebuild_derived_in(s, fp, generation)

    def _rebuild_derived_in(self, s, fp: Fingerprint, generation: int) -> _Derived:
        derived = self._sync_sets(s, fp, None, generation)
        derived.edges = _edge_table(s)
        return derived

    def snapshots_list(self) -> list[dict]:
        current = self.generation
        out = []
        for snap in self.snapshots.list():
            status = "ok" if snap.manifest else "unreadable manifest"
            out.append({"generation": snap.generation, "path": str(snap.path), "current": snap.generation == current,
                        "created_at": snap.manifest.get("created_at"), "counts": snap.info.get("counts", {}),
                        "status": status})
        return out

    def verify_snapshot(self, generation: int) -> str | None:
        """None if the snapshot of `generation` is intact (every checksum), else what is wrong."""
        snap = self.snapshots.get(generation)
        if snap is None:
            return f"no snapshot of generation {generation}"
        try:
            for name in snap.manifest.get("files", {}):
                self.snapshots.read(snap, name)
        except SnapshotError as exc:
            return str(exc)
        return None

    def restore_snapshot(self, generation: int) -> None:
        """Load an older snapshot's vectors and graph as the serving state (the database is untouched).

        Only the current generation's snapshot can be restored in place: older ones describe a
        database state that no longer exists, so they are refused with an explanation."""
        problem = self.verify_snapshot(generation)
        if problem:
            raise SnapshotError(problem)
        if generation != self.generation:
            raise SnapshotError(
                f"generation {generation} is not the database's current generation ({self.generation}); "
                f"snapshots are derived from the database, so only the current one can be restored — "
                f"rebuild the library as of then to go back")
        self._derived = None
        self._load_derived()

    # ---------------------------------------------------------------- queries
    def _vectors(self, name: str = "passages"):
        return self._load_derived().sets[name].index

    @property
    def retriever(self):
        if self._retriever is None:
            from .retrieval import Retriever
            self._retriever = Retriever(self)
        return self._retriever

    def search(self, text: str, k: int = 10, mode: str = "dense", filters: dict | None = None) -> list[Hit]:
        """Top-k passages: dense | questions (incoming pseudo-queries) | hybrid (BM25 + dense, RRF);
        an article the query names comes first."""
        return self.retriever.search(text, k=k, mode=mode, filters=filters)

    def query(self, text: str, k: int = 10) -> list[Hit]:
        return self.search(text, k=k, mode="dense")

    def hop_search(self, text: str, k: int = 10, n_hop: int = 2, mode: str = "similarity",
                   filters: dict | None = None) -> list[Hit]:
        return self.retriever.hop_search(text, k=k, n_hop=n_hop, mode=mode, filters=filters)

    def neighbors(self, passage: int | str, direction: str = "out", kinds=None) -> list[dict]:
        return self.retriever.neighbors(passage, direction=direction, kinds=kinds)

    def passage(self, ref: int | str) -> dict | None:
        with self.db.session() as s:
            col = PassageRow.id if isinstance(ref, int) else PassageRow.key
            row = s.scalar(select(PassageRow).where(col == ref))
            if row is None:
                return None
            qs = s.execute(select(PseudoQueryRow.direction, PseudoQueryRow.text).where(PseudoQueryRow.passage_id == row.id)
                           .order_by(PseudoQueryRow.direction, PseudoQueryRow.ordinal)).all()
            return {"passage_id": row.id, "key": row.key, "law": row.law, "article": row.article,
                    "label": row.article_label, "chapters": row.chapters, "paragraphs": row.paragraphs,
                    "text": row.text, "embedded": row.embed_hash is not None, "metadata": row.meta,
                    "questions": {"incoming": [t for d, t in qs if d == "in"],
                                  "outgoing": [t for d, t in qs if d == "out"]}}

    def export_questions(self, path: str | Path) -> dict:
        """Write the pseudo-query cache (every LLM answer) as JSONL: `import_questions` of another
        index then asks the LLM for none of these passages."""
        from .question_stage import export_answers
        return export_answers(self.db, path)

    def import_questions(self, path: str | Path) -> dict:
        """Seed the pseudo-query cache from an export; the next build uses it (answers already
        cached are kept)."""
        from .question_stage import import_answers
        with WriterLock(self.home / "write.lock"):
            return import_answers(self.db, path)

    def graph(self):
        """The passage graph with attributes (key, law, article, questions, spans) for export."""
        derived = self._load_derived()
        g = graph_from_table(derived.edges)
        with self.db.session() as s:
            for pid, key, law, article, label in s.execute(select(PassageRow.id, PassageRow.key, PassageRow.law,
                                                                 PassageRow.article, PassageRow.article_label)):
                g.add_node(pid, key=key, law=law, article=article, label=label)
            qtext = dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.text)).all())
            for eid, src, dst, o, i, span in s.execute(select(EdgeRow.id, EdgeRow.source_id, EdgeRow.target_id,
                                                              EdgeRow.out_query_id, EdgeRow.in_query_id, EdgeRow.span)):
                if g.has_edge(src, dst, eid):
                    g.edges[src, dst, eid].update(question=qtext.get(o), matched_question=qtext.get(i), span=span)
        return g

    def stats(self) -> dict:
        with self.db.session() as s:
            laws = s.scalar(select(func.count()).select_from(DocumentRow))
            passages = s.scalar(select(func.count()).select_from(PassageRow))
            embedded = s.scalar(select(func.count()).select_from(PassageRow).where(PassageRow.embed_hash.is_not(None)))
            cached = s.scalar(select(func.count()).select_from(EmbeddingRow))
            questions = dict(s.execute(select(PseudoQueryRow.direction, func.count())
                                       .group_by(PseudoQueryRow.direction)).all())
        fp = self.fingerprint
        derived = self._load_derived(required=False)
        snap = self.snapshots.get(self.generation)
        return {"home": str(self.home), "laws": laws, "passages": passages, "embedded_passages": embedded,
                "repealed_passages": passages - embedded,
                "vectors": len(derived.sets["passages"]) if derived else 0,
                "pseudo_queries": {"incoming": questions.get("in", 0), "outgoing": questions.get("out", 0)},
                "edges": self._edge_counts(), "cached_embeddings": cached, "embedder": fp.to_dict() if fp else None,
                "generation": self.generation, "snapshot_generation": snap.generation if snap else None,
                "snapshot": snap.path.name if snap else None, "library": self.db.get_meta("library"),
                "last_build": self._last_report(), "repairs": list(self.repairs)}

    # ---------------------------------------------------------------- re-embedding
    def reembed(self, embedder: str, *, progress: ProgressFn | None = None) -> BuildReport:
        """Give every passage and pseudo-query a vector from `embedder` (through the cache); LLM
        questions and citation edges are kept, question edges recomputed."""
        with WriterLock(self.home / "write.lock"):
            return self._reembed(embedder, progress)

    def _reembed(self, embedder: str, progress: ProgressFn | None) -> BuildReport:
        timer = StageTimer()
        emb = get_embedder(embedder, self.settings)
        with self.db.session() as s:
            rows = s.execute(select(PassageRow.law, PassageRow.article_label, PassageRow.text)
                             .where(PassageRow.embed_hash.is_not(None))).all()
            questions = s.scalars(select(PseudoQueryRow.text)).all()
        texts = {}
        for t in [embed_text(law, label, body) for law, label, body in rows] + list(questions):
            texts.setdefault(text_hash(t), t)
        timer.mark("read")
        _, embedded, hits = ensure_vectors(texts, emb, self.cache, chunk=self.settings.embed_chunk,
                                           progress=progress or (lambda *a: None))
        timer.mark("embed")
        with self.db.session() as s:
            generation = self.generation + 1
            derived = self._sync_sets(s, emb.fingerprint, None, generation)
            derived.edges = self._write_edges(s, derived, {}, None, kinds=("question",))
            self.db.set_meta(s, "generation", generation)
            self.db.set_meta(s, "embedder", emb.fingerprint.to_dict())
            self.db.set_meta(s, "graph_signature", self._graph_signature(emb.fingerprint))
            timer.mark("edges")
            self._save_snapshot(derived, emb.fingerprint)
            timer.mark("snapshot")
        report = BuildReport(unchanged=len(rows), embedded=embedded, cache_hits=hits, generation=generation,
                             embedder=emb.fingerprint.name, library=str(self.db.get_meta("library") or ""),
                             passages=len(rows), pseudo_queries=len(questions), edges=self._edge_counts(),
                             stages=timer.stages, seconds=timer.total)
        self._record_build(report)
        return report
