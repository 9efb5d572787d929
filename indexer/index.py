"""The facade: one Index joins the database, the embedding cache, the builder, the derived state
(vectors, graph, snapshots) and the retriever. The CLI and the HTTP service are thin layers over it;
nothing in the package imports it back.

Public API:
    Index(home=None, settings=None, create=True)   create=False: a missing index is an error
        .build(library, embedder=None, llm=None, progress=None) -> BuildReport
        .reembed(embedder, progress=None) -> BuildReport
        .upsert(passages, embedder=None, llm=None, progress=None) -> BuildReport, .delete(keys)   by key
        .search(query, k=10, mode="dense"|"questions"|"hybrid"|"bm25", filters=None, as_of=None) -> list[Hit]
        .hop_search(query, k=10, n_hop=2, mode="similarity"|"llm", filters=None, as_of=None) -> HopHits
        .neighbors(ref, direction="out", kinds=None, as_of=None) -> list[dict]
        .neighbourhood(ref, hops=2, limit=60, as_of=None) -> {center, nodes, edges}   to draw
        .passage(ref, as_of=None) -> dict | None, .query(query, k) = dense search, .graph() -> MultiDiGraph
        .stats() -> dict, .graph_summary() -> dict  edges per law, degree histogram, recent builds
        .export_questions(path), .import_questions(path), .history(key), .diff(date_from, date_to, law=None)
        .snapshots_list() -> list[dict], .verify_snapshot(generation), .restore_snapshot(generation)
        .generation, .fingerprint, .repairs, .retriever, .builder, .derived, .close()
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.db import Database
from storage.lock import AdvisoryLock, WriterLock, writer_lock

from .build.report import BuildReport, ProgressFn
from .embedders import Fingerprint, preload_named
from .errors import EmbedderMismatch, IndexBusy, IndexStateError
from .passages import Library, Passage
from .settings import Settings
from .store.meta import stored_fingerprint

if TYPE_CHECKING:
    from storage.cache import EmbeddingCache

    from .build.builder import Builder
    from .retrieve import Hit, HopHits, Retriever
    from .store.derived import DerivedStore

__all__ = ["Index", "EmbedderMismatch", "IndexStateError", "IndexBusy"]


class Index:
    def __init__(self, home: str | Path | None = None, settings: Settings | None = None, *, create: bool = True):
        # without Settings: arguments > environment > the home's hoprag.toml (or $HOPRAG_CONFIG) > defaults
        settings = settings or Settings.load(home)
        if home is not None:
            settings = settings.model_copy(update={"home": Path(home)})
        self.settings = settings
        self.home = Path(settings.home)
        url = settings.database_url_for()
        if not create and url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
            raise IndexStateError(f"no index at {self.home}: run `hoprag build LIBRARY` first (or pass --home)")
        if self.home.exists() and not self.home.is_dir():
            raise IndexStateError(f"the index home {self.home} is a file, not a folder (--home / HOPRAG_HOME)")
        self.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(url)

    # The parts load on first use: a no-op build needs the database alone (no numpy, FAISS, BM25),
    # a query no SQLAlchemy (storage/db.py), which the build, the history and the views import.
    @cached_property
    def cache(self) -> EmbeddingCache:
        from storage.cache import EmbeddingCache

        return EmbeddingCache(self.db)

    @cached_property
    def derived(self) -> DerivedStore:
        from .store.derived import DerivedStore

        return DerivedStore.for_settings(self.db, self.cache, self.home, self.settings)

    @cached_property
    def builder(self) -> Builder:
        from .build.builder import Builder

        return Builder(self.db, self.cache, self.derived, self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        from .retrieve.retriever import Retriever

        return Retriever(self.db, self.derived, self.settings)

    def _querying(self, embeds: bool) -> Retriever:
        """The retriever; made for a query that embeds, the model loads beside its imports and the state's read."""
        if embeds and "retriever" not in self.__dict__ and (fp := self.fingerprint):
            preload_named(fp.name, self.settings)
        return self.retriever

    @property
    def generation(self) -> int:
        """The database's current generation (each committed build adds one)."""
        return int(self.db.get_meta("generation", 0))

    @property
    def fingerprint(self) -> Fingerprint | None:
        """The embedder the index's vectors were made with (None before the first build)."""
        return stored_fingerprint(self.db)

    @property
    def repairs(self) -> list[str]:
        """What opening had to rebuild (a missing or corrupt snapshot), for stats and logs."""
        return self.derived.repairs

    def _lock(self) -> WriterLock | AdvisoryLock:
        """The single writer's lock (IndexBusy while another process builds); a read-only index refuses."""
        if self.db.read_only:
            raise IndexStateError(f"the index at {self.home} is read-only: it answers queries; builds need it writable")
        return writer_lock(self.db.engine, self.home / "write.lock")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(
        self,
        library: str | Path | Library,
        *,
        embedder: str | None = None,
        llm: str | None = None,
        progress: ProgressFn | None = None,
        as_of: str | date | None = None,
    ) -> BuildReport:
        """Bring the index up to date with `library` (a folder, file or Library): embed what the
        cache lacks, ask `llm` for questions of passages without them, commit a new generation.
        `as_of` dates what the library says (default: its newest amendment date); a date older
        than the index's newest only adds to the history. Raises IndexBusy while another process
        builds, EmbedderMismatch for a second embedder."""
        from .build.records import unchanged_library

        with self._lock():
            # each file read once: its bytes decide the no-op (before numpy, FAISS), then are parsed
            files, noop = (
                (None, None)
                if isinstance(library, Library)
                else unchanged_library(self.db, self.settings, library, embedder, llm, as_of)
            )
            return noop or self.builder.build(
                files or library, embedder=embedder, llm=llm, progress=progress, as_of=as_of
            )

    def upsert(self, passages: Iterable[Passage | dict], **build: Any) -> BuildReport:
        """Put passages in by key (Passage, or {key, text, metadata?, law?, article?, doc_key?}): a
        build of the index's own library with them, dated today (build/upserts.py). Keywords:
        embedder, llm, progress, as for build."""
        return self._edit(lambda up, lib: up.with_upserts(lib, up.as_passages(passages, lib)), build)

    def delete(self, keys: Iterable[str], **build: Any) -> BuildReport:
        """Take passages out by key; KeyError for a key the index does not hold (nothing is taken out)."""
        return self._edit(lambda up, lib: up.without(lib, keys), build)

    def _edit(self, change: Any, build: dict) -> BuildReport:
        from .build import upserts  # change(upserts, library) -> the library to build

        with self._lock():
            return self.builder.build(change(upserts, upserts.current_library(self.db)), as_of=date.today(), **build)

    def reembed(self, embedder: str, *, progress: ProgressFn | None = None) -> BuildReport:
        """A vector from `embedder` for every passage and question (cache first); citations kept, question edges redone."""
        with self._lock():
            return self.builder.reembed(embedder, progress=progress)

    def export_questions(self, path: str | Path) -> dict:
        """Write the pseudo-query cache (every LLM answer) as JSONL: `import_questions` of another
        index then asks the LLM for none of these passages."""
        from .build.question_stage import export_answers

        return export_answers(self.db, path)

    def import_questions(self, path: str | Path) -> dict:
        """Seed the pseudo-query cache from an export; the next build uses it (answers already
        cached are kept)."""
        from .build.question_stage import read_answers, store_answers

        answers = read_answers(path, self.settings.questions_import_max_mb)  # a slow or huge file holds no lock
        with self._lock():
            return store_answers(self.db, answers)

    def search(
        self, query: str, k: int = 10, mode: str = "dense", filters: dict | None = None, as_of: Any = None
    ) -> list[Hit]:
        """Top-k passages: dense | questions (incoming pseudo-queries) | hybrid (BM25 + dense +
        questions, RRF) | bm25; an article the query names comes first. `as_of` (YYYY-MM-DD): the
        law in force on that date. Raises QueryError on bad input."""
        return self._querying(mode != "bm25").search(query, k=k, mode=mode, filters=filters, as_of=as_of)

    def query(self, query: str, k: int = 10) -> list[Hit]:
        """Dense top-k passages (search with mode="dense")."""
        return self.search(query, k=k, mode="dense")

    def hop_search(self, query: str, k: int = 10, n_hop: int = 2, mode: str = "similarity", **kw: Any) -> HopHits:
        """HopRAG multi-hop retrieval: entries from hybrid search, then `n_hop` steps along question
        and citation edges chosen by similarity or by the LLM; ranked by relevance and visits.
        Keywords: filters, as_of (the law in force on that date: citation edges of then)."""
        return self._querying(True).hop_search(query, k=k, n_hop=n_hop, mode=mode, **kw)

    def neighbors(self, ref: int | str, direction: str = "out", kinds: Any = None, as_of: Any = None) -> list[dict]:
        """The passages one edge away (out, in or both), with the edge's kind, questions, legal role
        and, for a citation, its `span` as written (today's texts: none as of a date);
        `as_of`: among the articles in force on that date (passage by key)."""
        return self.retriever.neighbors(ref, direction=direction, kinds=kinds, as_of=as_of)

    def neighbourhood(self, ref: int | str, hops: int = 2, limit: int = 60, as_of: Any = None) -> dict:
        """Passages up to `hops` edges away and the edges among them, to draw; KeyError if unknown."""
        from .retrieve.neighbourhood import neighbourhood

        return neighbourhood(self.retriever, self.db, ref, hops=hops, limit=limit, as_of=as_of)

    def graph_summary(self) -> dict:
        """Edges per law by kind, a histogram of passage degrees, the newest builds."""
        from .store.views import graph_summary_view

        return graph_summary_view(self.db)

    def passage(self, ref: int | str, as_of: Any = None) -> dict | None:
        """One passage by id or key, with its pseudo-queries; None if there is none. `as_of`: the
        version of that key in force on the date (with its interval), by key."""
        from .store import history, views

        return views.passage_view(self.db, ref) if as_of is None else history.version_of(self.db, str(ref), as_of)

    def graph(self) -> Any:
        """The passage graph (networkx.MultiDiGraph) with attributes (key, law, article,
        questions, spans) for export."""
        from .store.views import graph_view

        return graph_view(self.db, self.derived)

    def stats(self) -> dict:
        """Counts, embedder, generation, snapshot, the last build's report and any repairs."""
        from .store.views import stats_view

        return stats_view(self.db, self.home, self.derived, self.generation)

    def history(self, key: str) -> list[dict]:
        """The versions of one article (`pcode:article`), oldest first, with the dates each was in force."""
        from .store import history

        return history.history_of(self.db, key)

    def diff(self, date_from: str | date, date_to: str | date, law: str | None = None) -> dict:
        """Articles added, changed (with a text diff), removed and relabeled between two dates, and
        renamed laws; `law` narrows it to one law (name or pcode)."""
        from .store import history

        return history.diff_of(self.db, date_from, date_to, law)

    def snapshots_list(self) -> list[dict]:
        """Every snapshot on disk: generation, path, whether current, creation time, counts."""
        return self.derived.list(self.generation)

    def verify_snapshot(self, generation: int) -> str | None:
        """None if the snapshot of `generation` is intact (every checksum), else what is wrong."""
        return self.derived.verify(generation)

    def restore_snapshot(self, generation: int) -> None:
        """Serve the current generation's snapshot again (verified); older ones are refused."""
        self.derived.restore(generation, self.generation)
