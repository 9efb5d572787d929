"""Deriving a generation's state from the database and the embedding cache alone (no model, no
LLM): its vector sets (passages, incoming and outgoing questions), its edge table and BM25. That
this needs nothing else is what lets a missing or corrupt snapshot be rebuilt on open. Deriving
imports SQLAlchemy where it runs: a query reads Derived and SETS from here and never derives.

Public API:
    SETS                                          the vector sets of a generation
    Derived(generation, sets, edges, lexicon)     one generation's vectors, edge table and BM25
        .digest() -> str                          what a snapshot must match: its id/hash tables and counts
    table_digest(tables, n_edges, n_passages) -> str   the same digest, from tables read elsewhere
    wanted_vectors(read) -> {set name: {id: embed hash}}   the vectors the database asks for (a storage.reads.Read)
    edge_table(session) -> np.ndarray             the edge table as the graph module's structured array
    Deriver(cache, engine, tokenizer)
        .sync_sets(session, fingerprint, base, generation, known) -> Derived
                                                  base patched to the database (or built from the cache);
                                                  known: a lexicon whose tokens may be reused
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xxhash

from storage.reads import Read, session_read

from ..embedders.base import Fingerprint
from ..errors import IndexStateError
from .graph import edge_table as _as_edge_table
from .lexical import Lexicon, build_lexicon, lexical_text
from .vector_engines import VectorEngine
from .vectorsets import MissingVectors, VectorSet

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from storage.cache import EmbeddingCache

__all__ = ["SETS", "Derived", "table_digest", "wanted_vectors", "edge_table", "Deriver"]

SETS = ("passages", "questions_in", "questions_out")


@dataclass
class Derived:
    """Everything a snapshot holds, for one generation."""

    generation: int
    sets: dict[str, VectorSet]
    edges: np.ndarray
    lexicon: Lexicon | None = None  # BM25 over every passage (repealed ones too)

    def digest(self) -> str:
        return table_digest(
            {name: vs.table() for name, vs in self.sets.items()},
            len(self.edges),
            len(self.lexicon.ids) if self.lexicon is not None else 0,
        )


def table_digest(tables: dict[str, np.ndarray], n_edges: int, n_passages: int) -> str:
    h = xxhash.xxh3_128()
    for name in SETS:
        h.update(name.encode())
        h.update(np.ascontiguousarray(tables[name]).tobytes())
    h.update(np.array([n_edges, n_passages], dtype="<i8").tobytes())
    return h.hexdigest()


def edge_table(s: Session) -> np.ndarray:
    from sqlalchemy import select

    from storage.models import EdgeRow

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
    from sqlalchemy import select

    from storage.models import PassageRow, PseudoQueryRow

    passages = dict(s.execute(select(PassageRow.id, PassageRow.law)).all())
    questions = dict(
        s.execute(
            select(PseudoQueryRow.id, PassageRow.law).join(PassageRow, PassageRow.id == PseudoQueryRow.passage_id)
        ).all()
    )
    return {"passages": passages, "questions_in": questions, "questions_out": questions}


def wanted_vectors(r: Read) -> dict[str, dict[int, str]]:
    questions = "SELECT id, embed_hash FROM pseudo_queries WHERE direction = "
    return {
        "passages": dict(r.rows("SELECT id, embed_hash FROM passages WHERE embed_hash IS NOT NULL")),
        "questions_in": dict(r.rows(questions + "'in'")),
        "questions_out": dict(r.rows(questions + "'out'")),
    }


class Deriver:
    def __init__(self, cache: EmbeddingCache, engine: VectorEngine, tokenizer: str):
        self.cache, self.engine, self.tokenizer = cache, engine, tokenizer

    def sync_sets(
        self,
        s: Session,
        fp: Fingerprint,
        base: Derived | None,
        generation: int,
        known: Lexicon | None,
    ) -> Derived:
        """The vector sets the database asks for, patched from `base` (a copy: the loaded
        generation stays intact for readers and on failure) or built from the cache; the edge
        table is left empty for the caller to fill. BM25 reuses the tokens of `known` for texts
        it already holds."""
        from sqlalchemy import select

        from storage.models import PassageRow

        desired = wanted_vectors(session_read(s))
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
        rows = s.execute(select(PassageRow.id, PassageRow.law, PassageRow.article_label, PassageRow.text)).all()
        texts = {pid: lexical_text(law, label, text) for pid, law, label, text in rows}
        lexicon = build_lexicon(texts, self.tokenizer, known)
        return Derived(generation, sets, np.zeros(0), lexicon)
