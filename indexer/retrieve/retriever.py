"""The retriever: every query over one committed generation (or the law in force on a date), joined
from the package's parts.

Public API:
    Retriever(db, derived, settings)
        .search(query, k=10, mode="dense"|"questions"|"hybrid"|"bm25", filters=None, as_of=None) -> list[Hit]
        .hop_search(query, k=10, n_hop=2, mode="similarity"|"llm", filters=None, as_of=None,
                    deadline=None) -> HopHits
        .neighbors(passage, direction="out"|"in"|"both", kinds=None, as_of=None) -> list[dict]
        .passage_brief(passage, as_of=None) -> {key, law, label, article}     KeyError if none
        .state() -> State, .states (States: .on(as_of), .load()), .embed_query(text, st) -> vector
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from storage.db import Database

from ..errors import HopLLMError, QueryError
from ..llm.budget import Deadline
from ..native_threads import query_threads
from ..settings import Settings
from ..store.derived import DerivedStore
from .channels import QueryEmbedder, bm25, check_query, dense, fused, questions
from .hits import Hit, HopHits
from .llm_walk import LLMChooser, hop_llm
from .modes import HOP_MODES, MODES
from .named import cited_articles
from .neighbors import brief
from .neighbors import neighbors as edges_of
from .state import State, allowed_passages, hit, laws_only
from .states import States
from .walk import walk

__all__ = ["Retriever"]


class Retriever:
    def __init__(self, db: Database, derived: DerivedStore, settings: Settings):
        self.db, self.settings = db, settings
        self.states = States(db, derived, settings)
        self._embedder = QueryEmbedder(settings)
        # one query's embed and scans: BLAS and OpenMP pools of this many threads (native_threads)
        self.threads = settings.query_threads or os.cpu_count() or 1

    def state(self) -> State:
        """The current generation's state (loaded once per generation)."""
        return self.states.current()

    def embed_query(self, text: str, st: State | None = None) -> Any:
        """The query's vector from the embedder the state's vectors were made with."""
        return self._embedder.embed(text, st or self.state())

    def search(
        self, query: str, k: int = 10, mode: str = "dense", filters: dict | None = None, as_of: Any = None
    ) -> list[Hit]:
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: {', '.join(MODES)}")
        check_query(query, k, self.settings)
        st = self.states.on(as_of)
        if st.as_of and mode == "questions":
            raise QueryError(
                "pseudo-queries belong to today's articles: search as of a date with dense, bm25 or hybrid"
            )
        allowed = allowed_passages(st, filters)
        cited = cited_articles(st, query, allowed)
        ranked: list[tuple[int, float, dict[str, Any]]]
        if mode == "bm25":  # the lexical channel alone (what hybrid fuses with the others)
            ranked = [(p, s, {}) for p, s in bm25(st, query, k, allowed)]
            return _ranked_hits(st, ranked, cited, k)
        if mode == "questions" and st.q_in.ntotal == 0:
            raise QueryError("this index has no pseudo-queries: build it with --llm to search by questions")
        with query_threads(self.threads):
            qv = self.embed_query(query, st)
            if mode == "dense":
                ranked = [(p, s, {}) for p, s in dense(st, qv, k, allowed, laws_only(st, filters))]
            elif mode == "questions":
                found_q = questions(st, qv, k, allowed)
                ranked = [(p, s, {"matched_question": st.q_text[q]}) for p, s, q in found_q]
            else:
                ranked = [(p, s, {}) for p, s in fused(st, query, qv, k, allowed, self.settings)]
        return _ranked_hits(st, ranked, cited, k)

    def hop_search(
        self,
        query: str,
        k: int = 10,
        n_hop: int = 2,
        mode: str = "similarity",
        filters: dict | None = None,
        as_of: Any = None,
        deadline: Deadline | None = None,
    ) -> HopHits:
        """HopRAG retrieve–reason–prune (walk.py): enter at the best passages, follow at each the
        edge (out, or a citation against its direction) to the most relevant neighbour, or none,
        for n_hop rounds, count visits, rank by H = (1-w)·SIM + w·IMP.
        llm mode: every LLM call and retry lies within `deadline` (default: hop_llm_deadline_s from
        now; its cancel event stops the LLM work too); past it the similarity choice stands."""
        if mode not in HOP_MODES:
            raise QueryError(f"unknown hop mode {mode!r}: {', '.join(HOP_MODES)}")
        check_query(query, k, self.settings)
        if not 0 <= n_hop <= self.settings.max_hops:
            raise QueryError(f"n_hop must be between 0 and {self.settings.max_hops}")
        st = self.states.on(as_of)
        allowed = allowed_passages(st, filters)
        chooser = None
        if mode == "llm" and n_hop > 0:
            chooser = LLMChooser(st, query, hop_llm(self.db, self.settings), self.settings, deadline)
        with query_threads(self.threads):
            qv = self.embed_query(query, st)
            hits = walk(st, query, qv, k, n_hop, allowed, self.settings, chooser)
        if chooser is not None:
            if chooser.all_failed():
                raise HopLLMError(
                    f"every LLM call of this hop search failed ({chooser.calls}): {chooser.public_reason()}"
                )
            hits.llm_calls, hits.llm_failures, hits.deadline_hit = chooser.calls, chooser.failures, chooser.deadline_hit
        return hits

    def neighbors(
        self, passage: int | str, direction: str = "out", kinds: Iterable[str] | None = None, as_of: Any = None
    ) -> list[dict]:
        """The passages one edge away, strongest edge first, a citation with its span as written
        (today's only: the database keeps the spans of the current generation); KeyError for an
        unknown passage."""
        st = self.states.on(as_of)
        found = edges_of(st, passage, direction, kinds)
        if as_of is None and found:
            from .neighbourhood import add_neighbor_spans  # SQLAlchemy: not on the search path

            add_neighbor_spans(self.db, brief(st, passage)["key"], found)
        return found

    def passage_brief(self, passage: int | str, as_of: Any = None) -> dict:
        """key, law, label, article of a passage the index (as of the date) holds; KeyError if none."""
        return brief(self.states.on(as_of), passage)


def _ranked_hits(st: State, ranked: list[tuple[int, float, dict[str, Any]]], cited: list[int], k: int) -> list[Hit]:
    if cited:
        # the article the query names goes first, above any similarity score
        top = max([s for _, s, _ in ranked], default=1.0)
        rest = [r for r in ranked if r[0] not in cited]
        ranked = [(p, top + (len(cited) - i) * 1e-3, {"cited": True}) for i, p in enumerate(cited)] + rest
    return [hit(st, p, s, **extra) for p, s, extra in ranked[:k]]
