"""Building an index: diff a Library against the database, embed only what the cache lacks, ask
the LLM only for passages without questions, and commit one new generation.

The order of work is chosen so that a failure at any point loses nothing paid for and leaves the
index at its last generation:
  1. read and check the whole library (a bad file stops here, nothing written);
  2. diff against the database by passage key (plan.py);
  3. embed what the cache lacks, committing cache rows chunk by chunk (paid work survives);
  4. ask the LLM for questions, storing each answer in its cache as it arrives;
  5. one transaction: documents, passages, questions, edges, generation N+1; inside it, before
     the commit, the snapshot of N+1 is written (whoever sees N+1 in the database finds its
     snapshot; a crash before the commit leaves an orphan snapshot the next build replaces).

Public API:
    Builder(db, cache, derived, settings)
        .build(library, embedder=None, llm=None, progress=None) -> BuildReport   library: a path (read
            once; the no-op decided here), LibraryFiles (read by the caller, who decided the no-op:
            Index.build) or a Library
        .reembed(embedder, progress=None) -> BuildReport
        .embedder(name) -> Embedder          the index's embedder (or `name`), refusing a mix of two
    ensure_vectors(texts_by_hash, embedder, cache, ...) -> (vectors, embedded, hits)   from embed_stage.py
    BuildReport, StageTimer, ProgressFn   from report.py (where the no-op build is decided)

The rows themselves are written by build_writes.py; this module decides what, when, in which
transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.cache import EmbeddingCache
from storage.db import Database
from storage.models import ArticleVersionRow, PassageRow, PseudoQueryRow

from ..embedders import Fingerprint, get_embedder, preload
from ..embedders.base import Embedder
from ..errors import EmbedderMismatch
from ..library import LibraryFiles, parse_library, scan_library
from ..library.limits import PdfLimits, pdf_limits
from ..nogc import paused_gc
from ..passages import Library, embed_text, text_hash
from ..settings import Settings
from ..store import history
from ..store.derived import DIGEST_META, Derived, DerivedStore
from ..store.graph import EDGE_KINDS
from ..store.meta import stored_fingerprint
from ..store.views import edge_counts, last_report
from .edges import EdgeParams, keywords_for, match_questions
from .embed_stage import ensure_vectors, window_warnings
from .plan import BuildPlan, existing_passages, plan_build, unique_texts
from .pseudo_queries import QuestionCounts
from .records import graph_signature, record_build, unchanged_build
from .report import BuildReport, ProgressFn, StageTimer, no_progress
from .writes import citation_edge_rows, question_edge_rows, write_edges, write_passages, write_questions

__all__ = ["Builder", "BuildReport", "ensure_vectors", "StageTimer", "ProgressFn"]


class Builder:
    """Builds and re-embeddings of one index; the caller holds its write lock."""

    def __init__(self, db: Database, cache: EmbeddingCache, derived: DerivedStore, settings: Settings):
        self.db, self.cache, self.derived, self.settings = db, cache, derived, settings

    def embedder(self, name: str | None) -> Embedder:
        """`name`, else the embedder the index was built with, else the configured one; an
        embedder other than the index's is refused while the index holds vectors."""
        stored = stored_fingerprint(self.db)
        chosen = name or (stored.name if stored else self.settings.embedder)
        emb = get_embedder(chosen, self.settings)
        if stored and emb.fingerprint != stored and self._count(PassageRow.embed_hash.is_not(None)) > 0:
            raise EmbedderMismatch(
                f"this index holds vectors of {stored.describe()}, not {emb.fingerprint.describe()}; "
                f"vectors of two models cannot be mixed. Re-embed everything with "
                f"`hoprag reembed --embedder {chosen}` (texts already embedded by that model come from the cache), "
                f"or build into another --home."
            )
        return emb

    def _count(self, *where: Any, model: Any = PassageRow) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    # ---------------------------------------------------------------- build
    def build(
        self,
        library: str | Path | Library | LibraryFiles,
        *,
        embedder: str | None = None,
        llm: str | None = None,
        progress: ProgressFn | None = None,
        as_of: str | dt.date | None = None,
    ) -> BuildReport:
        from ..llm.runner import get_llm
        from .question_stage import QuestionStage

        progress = progress or no_progress
        timer = StageTimer()
        # like the embedder, the LLM an index was built with stays its default
        llm_name = llm or self.db.get_meta("llm") or self.settings.llm
        llm_client = get_llm(llm_name, self.settings)  # a bad name fails before any work
        wanted_date = history.parse_build_date(as_of) if as_of is not None else None
        if isinstance(library, str | Path):  # read once; a LibraryFiles comes with its no-op decided
            library = scan_library(library, self.settings.max_file_mb, self.settings.read_within)
            noop = unchanged_build(
                self.db, self.settings, library.digest, embedder, llm_name, llm_client is not None, timer, wanted_date
            )
            if noop is not None:
                return noop
        files = library.digest if isinstance(library, LibraryFiles) else None
        if isinstance(library, Library):
            lib = library
        else:
            with pdf_limits(PdfLimits.from_settings(self.settings)), paused_gc():  # the library is kept
                lib = parse_library(library, progress)
        timer.mark("read")
        emb = self.embedder(embedder)
        preload(emb)  # something changed: the model loads while the library is compared with the index
        when = history.build_date(lib, wanted_date)
        with self.db.session() as s:
            history.seed_from_current(self.db, s)
            latest = history.latest_date(s)
        if latest is not None and when < latest:  # the law as it was: history only, today's index untouched
            return self._history_only(lib, emb, when, progress, timer)
        with paused_gc(), self.db.session() as s:  # ~7,000 rows kept: nothing for the collector
            existing = existing_passages(s)
        plan = plan_build(lib, existing)
        need = unique_texts(plan.needs_vector, plan.embed_hashes)
        warnings = window_warnings(emb, plan.needs_vector)
        _, embedded, hits = ensure_vectors(need, emb, self.cache, chunk=self.settings.embed_chunk, progress=progress)
        timer.mark("embed")

        # Questions: passages that are new, changed, or still without questions (a failed call).
        retexted = {p.key for p in plan.added} | {p.key for _, p in plan.changed + plan.relabeled}
        live = [p for p in lib.passages if plan.embed_hashes[p.key] is not None]
        wanting = [p for p in live if p.key in retexted or existing[p.key].questions_key is None]
        counts = QuestionCounts.from_settings(self.settings)
        stage = (
            QuestionStage(self.db, llm_client, counts, self.settings).run(wanting, plan.embed_hashes, progress)
            if llm_client and wanting
            else None
        )
        new_questions = stage.questions if stage else {}
        timer.mark("llm")
        q_texts = {text_hash(q): q for _, pq in new_questions.values() for q in pq.incoming + pq.outgoing}
        _, q_embedded, q_hits = ensure_vectors(
            q_texts, emb, self.cache, chunk=self.settings.embed_chunk, progress=progress, stage="embed questions"
        )
        timer.mark("embed")

        report = BuildReport(
            added=len(plan.added),
            changed=len(plan.changed),
            relabeled=len(plan.relabeled),
            removed=len(plan.removed_ids),
            unchanged=plan.unchanged + len(plan.touched),
            repealed=sum(1 for p in lib.passages if p.repealed),
            embedded=embedded + q_embedded,
            cache_hits=hits + q_hits,
            llm_calls=stage.calls if stage else 0,
            llm_failures=stage.failures if stage else 0,
            llm_unreachable=stage.unreachable if stage else False,
            documents=len(lib.documents),
            passages=len(lib.passages),
            embedder=emb.fingerprint.name,
            library=lib.root,
            skipped_files=list(lib.skipped),
            warnings=warnings,
        )
        signature = graph_signature(self.settings, emb.fingerprint)
        unchanged_index = (
            plan.is_noop
            and not new_questions
            and stored_fingerprint(self.db) == emb.fingerprint
            and self.db.get_meta("graph_signature") == signature
        )
        generation = int(self.db.get_meta("generation", 0))
        if llm_name != self.db.get_meta("llm"):
            with self.db.session() as s:
                self.db.set_meta(s, "llm", llm_name)
        if not unchanged_index:
            # the vectors of the current generation, patched into the next one (a no-op build never loads them)
            base = self.derived.load(required=False)
            generation, cites = self._commit(
                lib, plan, emb.fingerprint, new_questions, base, signature, files, timer, when, progress
            )
            report.citations_unresolved = cites
        else:
            last = last_report(self.db, current=True)
            report.citations_unresolved = last.get("citations_unresolved", 0) if last else 0
            with self.db.session() as s:  # what the next build compares before parsing
                self.db.set_meta(s, "library_files", files)
                history.record(self.db, s, lib.passages, plan.embed_hashes, when)
                self.db.set_meta(s, "as_of", when.isoformat())
        report.as_of = when.isoformat()
        report.generation = generation
        report.pseudo_queries = self._count(model=PseudoQueryRow)
        report.edges = edge_counts(self.db)
        report.stages = timer.stages
        report.seconds = timer.total
        record_build(self.db, report)
        return report

    def _history_only(
        self, lib: Library, emb: Embedder, when: dt.date, progress: ProgressFn, timer: StageTimer
    ) -> BuildReport:
        """A library older than the index's newest date: its versions join the history and their
        vectors the cache (so that an as-of query never embeds), and the current generation, the
        law as now, stays as it is."""
        hashes = {p.key: None if p.repealed else text_hash(p.embed_text) for p in lib.passages}
        need = {h: p.embed_text for p in lib.passages if (h := hashes[p.key]) is not None}
        _, embedded, hits = ensure_vectors(need, emb, self.cache, chunk=self.settings.embed_chunk, progress=progress)
        timer.mark("embed")
        with self.db.session() as s:
            seen = history.record(self.db, s, lib.passages, hashes, when)
        timer.mark("commit")
        report = BuildReport(
            unchanged=seen["observed"],
            repealed=sum(1 for p in lib.passages if p.repealed),
            embedded=embedded,
            cache_hits=hits,
            generation=int(self.db.get_meta("generation", 0)),
            documents=len(lib.documents),
            passages=len(lib.passages),
            embedder=emb.fingerprint.name,
            library=lib.root,
            skipped_files=list(lib.skipped),
            as_of=when.isoformat(),
            history_only=True,
            stages=timer.stages,
            seconds=timer.total,
        )
        record_build(self.db, report)
        return report

    def _commit(
        self,
        lib: Library,
        plan: BuildPlan,
        fp: Fingerprint,
        new_questions: dict,
        base: Derived | None,
        signature: str,
        files: str | None,
        timer: StageTimer,
        when: dt.date,
        progress: ProgressFn = no_progress,
    ) -> tuple[int, int]:
        """Generation N+1 in one transaction, its snapshot written before the commit (the collector
        paused: what the stages make is kept until the commit ends, nogc.py)."""
        from ..text.citations import resolve_citations

        with paused_gc(), self.db.session() as s:
            ids = write_passages(s, lib, plan)
            write_questions(s, ids, plan, new_questions)
            generation = int(self.db.get_meta_in(s, "generation", 0)) + 1
            derived = self.derived.sync_sets(s, fp, base, generation)
            timer.mark("commit")
            cites = resolve_citations(lib, progress)
            derived.edges = self._write_edges(s, derived, ids, cites)
            timer.mark("edges")
            self.db.set_meta(s, "generation", generation)
            self.db.set_meta(s, "embedder", fp.to_dict())
            self.db.set_meta(s, "library", lib.root)
            self.db.set_meta(s, "graph_signature", signature)
            self.db.set_meta(s, "citations_unresolved", cites.unresolved)
            self.db.set_meta(s, "library_files", files)  # what the next build compares before parsing
            self.db.set_meta(s, "as_of", when.isoformat())
            history.record(self.db, s, lib.passages, plan.embed_hashes, when)
            self.db.set_meta(s, DIGEST_META, self.derived.commit_record(derived))
            progress("snapshot", 0, 1)
            self.derived.save(derived, fp)
            progress("snapshot", 1, 1)
            timer.mark("snapshot")
        self.derived.after_commit(fp, generation)
        return generation, cites.unresolved

    def _write_edges(
        self, s: Session, derived: Derived, ids: dict[str, int], cites: Any, kinds: Sequence[str] = EDGE_KINDS
    ) -> np.ndarray:
        """Replace the edges of `kinds` (derived data) and return the whole edge table."""
        rows: list[dict[str, Any]] = []
        if "question" in kinds:
            owner = dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.passage_id)).all())
            o_ids, o_vecs = derived.sets["questions_out"].index.vectors()
            i_ids, i_vecs = derived.sets["questions_in"].index.vectors()
            kw = None
            if self.settings.edge_keyword_weight > 0:
                kw = keywords_for(dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.text)).all()))
            qe = match_questions(
                o_ids,
                np.array([owner[int(i)] for i in o_ids], np.int64),
                o_vecs,
                i_ids,
                np.array([owner[int(i)] for i in i_ids], np.int64),
                i_vecs,
                EdgeParams.from_settings(self.settings),
                kw,
            )
            rows += question_edge_rows(qe)
        if cites is not None:
            rows += citation_edge_rows(ids, cites)
        return write_edges(s, rows, kinds)

    # ---------------------------------------------------------------- re-embedding
    def reembed(self, embedder: str, *, progress: ProgressFn | None = None) -> BuildReport:
        """Give every passage and pseudo-query a vector from `embedder` (through the cache); LLM
        questions and citation edges are kept, question edges recomputed."""
        timer = StageTimer()
        emb = get_embedder(embedder, self.settings)
        with self.db.session() as s:
            rows = s.execute(
                select(PassageRow.law, PassageRow.article_label, PassageRow.text).where(
                    PassageRow.embed_hash.is_not(None)
                )
            ).all()
            questions = s.scalars(select(PseudoQueryRow.text)).all()
            # older versions too, so that as-of queries keep working with the new model
            n_passages = len(rows)
            rows = list(rows) + list(
                s.execute(
                    select(ArticleVersionRow.law, ArticleVersionRow.article_label, ArticleVersionRow.text).where(
                        ArticleVersionRow.embed_hash.is_not(None)
                    )
                )
            )
        texts: dict[str, str] = {}
        for t in [embed_text(law, label, body) for law, label, body in rows] + list(questions):
            texts.setdefault(text_hash(t), t)
        timer.mark("read")
        _, embedded, hits = ensure_vectors(
            texts, emb, self.cache, chunk=self.settings.embed_chunk, progress=progress or no_progress
        )
        timer.mark("embed")
        with self.db.session() as s:
            generation = int(self.db.get_meta_in(s, "generation", 0)) + 1
            derived = self.derived.sync_sets(s, emb.fingerprint, None, generation)
            derived.edges = self._write_edges(s, derived, {}, None, kinds=("question",))
            self.db.set_meta(s, "generation", generation)
            self.db.set_meta(s, "embedder", emb.fingerprint.to_dict())
            self.db.set_meta(s, "graph_signature", graph_signature(self.settings, emb.fingerprint))
            self.db.set_meta(s, DIGEST_META, self.derived.commit_record(derived))
            timer.mark("edges")
            self.derived.save(derived, emb.fingerprint)
            timer.mark("snapshot")
        self.derived.after_commit(emb.fingerprint, generation)
        report = BuildReport(
            unchanged=n_passages,
            embedded=embedded,
            cache_hits=hits,
            generation=generation,
            embedder=emb.fingerprint.name,
            library=str(self.db.get_meta("library") or ""),
            passages=n_passages,
            pseudo_queries=len(questions),
            edges=edge_counts(self.db),
            stages=timer.stages,
            seconds=timer.total,
        )
        record_build(self.db, report)
        return report
