"""The states queries read: today's generation, loaded once per generation, and the law in force
on a date, made once per observation date and kept while used.

Public API:
    States(db, derived, settings)
        .current() -> State           the committed generation (a build's commit swaps it whole)
        .on(as_of) -> State           .current() for None; else the law in force on that date
        .load() -> State              read the current generation now (no cache)

An answer never mixes two generations: a state is read in one database transaction and swapped in
whole. SQLite's data_version tells, without a query, whether anything was committed since the
last look, so an unchanged index costs a query no database read.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import replace

from storage.db import Database

from ..errors import IndexStateError
from ..nogc import paused_gc
from ..settings import Settings
from ..store.derived import DerivedStore
from .state import State, make_state

__all__ = ["States"]

_DATED_KEPT = 4  # dated states kept (each holds its vectors: ~13 MB for the 30 laws at 512-d)

# What a state is made of, in plain SQL (storage.reads: sqlite3 reads a SQLite index, so that a new
# process's first query imports no SQLAlchemy). Chapters and metadata stay JSON text, decoded when
# shown (state.chapters_of).
_PASSAGES = (
    "SELECT p.id, p.key, p.law, p.article, p.article_label, p.text, CAST(p.chapters AS TEXT),"
    " d.doc_key, d.name, CAST(p.metadata AS TEXT) FROM passages p JOIN documents d ON d.id = p.document_id"
)
_QUESTIONS = "SELECT id, passage_id, text FROM pseudo_queries"
# a law's former names (from its older versions) still find it: 性別工作平等法 → 性別平等工作法
_FORMER_NAMES = "SELECT DISTINCT law, doc_key FROM article_versions"


class States:
    def __init__(self, db: Database, derived: DerivedStore, settings: Settings):
        self.db, self.derived, self.settings = db, derived, settings
        self._state: State | None = None
        self._dated: OrderedDict[tuple, State] = OrderedDict()  # as_of states by (observation date, history)
        self._making: dict[tuple, threading.Event] = {}  # dated states being made, outside the lock
        self._epochs: tuple[tuple, list[dt.date]] = ((), [])  # (history, its observation dates)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None  # (database data_version, generation) last read
        self._epochs_seen: tuple[int, int] | None = None  # (data_version, generation) _epochs was read at

    def current(self) -> State:
        """The state of the database's current generation, loaded once per generation: once a
        build commits, no answer comes from the generation before."""
        state = self._state
        if state is not None and state.generation == self._generation():
            return state
        with self._lock:
            if self._state is None or self._state.generation != self._generation():
                self._state = self.load()
            return self._state

    def on(self, as_of: str | dt.date | None) -> State:
        """Today's state, or the law in force on `as_of` (asof.py). Every date between two
        observation dates sees the same law, so a state is made once per observation date it
        resolves to (and per history: a build, even of an older date, makes them anew), outside
        the lock (a state being made holds up only the queries that wait for that one), and the
        `_DATED_KEPT` most recently used are kept: a burst of distinct dates costs no more than
        the distinct states they name."""
        current = self.current()
        if as_of is None:
            return current
        from ..store.history import parse_date

        when = parse_date(as_of)
        epoch, history_key = self._epoch(when, current.generation)
        key = (epoch, history_key)
        while True:
            with self._lock:
                dated = self._dated.get(key)
                if dated is not None:
                    self._dated.move_to_end(key)
                    return replace(dated, as_of=when.isoformat())
                waiting = self._making.get(key)
                mine = waiting is None
                making = threading.Event() if waiting is None else waiting
                if mine:
                    self._making[key] = making
            if not mine:
                making.wait()  # made by another query (or failed there: then made here)
                continue
            try:
                made = self._make_dated(current, epoch or when)
                with self._lock:
                    self._dated[key] = made
                    while len(self._dated) > _DATED_KEPT:
                        self._dated.popitem(last=False)
            finally:
                with self._lock:
                    self._making.pop(key, None)
                making.set()

    def _epoch(self, when: dt.date, generation: int) -> tuple[dt.date | None, tuple]:
        """The newest observation date on or before `when` (None: before the history starts), and
        what identifies the history (generation, newest build): the dates are read once per history."""
        from sqlalchemy import func, select

        from storage.models import BuildRow, ObservationRow

        from ..store.history import horizon

        version = self.db.data_version()  # unchanged: no build since, the same history (no query)
        known = self._epochs_seen
        if version is None or known is None or known != (version, generation):
            with self.db.session() as s:
                history_key = (generation, s.scalar(select(func.max(BuildRow.id))))
                if self._epochs[0] != history_key:
                    dates = s.scalars(
                        select(ObservationRow.as_of).where(ObservationRow.as_of <= horizon()).distinct()
                    ).all()
                    self._epochs = (history_key, sorted(dates))
            self._epochs_seen = (version, generation) if version is not None else None
        history_key, dates = self._epochs
        i = bisect.bisect_right(dates, when)
        return (dates[i - 1] if i else None), history_key

    def _make_dated(self, current: State, when: dt.date) -> State:
        from ..store.asof import dated_derived

        with self.db.session() as s:
            dated_data, rows = dated_derived(
                s, self.derived.cache, current.fingerprint, self.settings.bm25_tokenizer, current.lexicon, when
            )
        dated = make_state(current.generation, dated_data, rows, [])
        dated.fingerprint, dated.lexicon, dated.as_of = current.fingerprint, dated_data.lexicon, when.isoformat()
        return dated

    def _generation(self) -> int:
        # the version is read before the generation: a commit between the two is seen next time
        version = self.db.data_version()
        seen = self._seen
        if version is not None and seen is not None and seen[0] == version:
            return seen[1]
        generation = int(self.db.get_meta("generation", 0))
        self._seen = (version, generation) if version is not None else None
        return generation

    @paused_gc()  # tens of thousands of rows, dicts and tuples kept: nothing for the collector
    def load(self) -> State:
        for _ in range(3):
            with self.db.reading() as r:
                # One transaction: the generation and every row below belong together.
                view = self.derived.view(r)
                rows = r.rows(_PASSAGES)
                questions = r.rows(_QUESTIONS)
                former = r.rows(_FORMER_NAMES)
            if view.fingerprint is None:
                raise IndexStateError(f"the index at {self.derived.home} is empty: run `hoprag build LIBRARY` first")
            data, _ = self.derived.read(view)
            if data is not None:
                state = make_state(view.generation, data, rows, questions, former)
                state.fingerprint = view.fingerprint
                state.lexicon = data.lexicon
                return state
            self.derived.load()  # repairs the current generation's snapshot, then read again
        raise IndexStateError("the index changed three times while loading; try again")
