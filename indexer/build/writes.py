"""The database writes of one build, all inside the caller's transaction: documents, passages,
questions and edges as the new generation has them. Nothing here commits; the Builder (build.py)
decides what to write and when, so that a crash anywhere in these steps leaves the last generation.

Public API:
    write_documents(s, library) -> dict[str, int]             {doc key: id}; documents gone are deleted
    write_passages(s, library, plan) -> dict[str, int]        documents, then passages; {passage key: id}
    write_questions(s, ids, plan, new_questions) -> None      the LLM's questions, stale ones deleted
    question_edge_rows(edges: QuestionEdges) -> list[dict]    EdgeRow values of matched questions
    citation_edge_rows(ids, cites) -> list[dict]              EdgeRow values of resolved citations
    write_edges(s, rows, kinds) -> np.ndarray                 edges of `kinds` replaced; the whole table
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from storage.models import DocumentRow, EdgeRow, PassageRow, PseudoQueryRow, utcnow

from ..passages import Library, Passage, text_hash
from ..store.derived import edge_table
from ..store.passage_rows import passage_row
from .edges import QuestionEdges
from .plan import BuildPlan

__all__ = [
    "write_documents",
    "write_passages",
    "write_questions",
    "question_edge_rows",
    "citation_edge_rows",
    "write_edges",
]

# ids per DELETE ... IN (...): one bound parameter each, below every database's limit per statement
_SLICE = 500


def write_documents(s: Session, lib: Library) -> dict[str, int]:
    """Documents as the library has them (a row rewritten only when a field differs, so that
    updated_at tells when a law really changed); returns {doc key: id} of the live ones."""
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


def write_passages(s: Session, lib: Library, plan: BuildPlan) -> dict[str, int]:
    """Documents and passages as the library has them; returns {passage key: id}."""
    doc_ids = write_documents(s, lib)
    for i in range(0, len(plan.removed_ids), _SLICE):
        s.execute(delete(PassageRow).where(PassageRow.id.in_(plan.removed_ids[i : i + _SLICE])))

    def row(p: Passage) -> dict[str, Any]:
        return passage_row(p, doc_ids[p.doc_key], plan.embed_hashes[p.key])

    # a new text makes its old questions stale: they go, and the LLM stage was asked anew
    updates = [row(p) | {"id": pid, "questions_key": None} for pid, p in plan.changed + plan.relabeled]
    updates += [row(p) | {"id": pid} for pid, p in plan.touched]
    if updates:
        s.execute(update(PassageRow), updates)
    if plan.added:
        s.execute(insert(PassageRow), [row(p) for p in plan.added])
    return dict(s.execute(select(PassageRow.key, PassageRow.id)).all())


def write_questions(s: Session, ids: dict[str, int], plan: BuildPlan, new_questions: dict) -> None:
    """`new_questions`: {passage key: (cache key, PseudoQueries)} from the LLM stage. A passage whose
    text changed loses its questions even without new ones (a failed call is asked again next build)."""
    stale = [ids[k] for k in new_questions if k in ids] + [pid for pid, _ in plan.changed + plan.relabeled]
    for i in range(0, len(stale), _SLICE):
        s.execute(delete(PseudoQueryRow).where(PseudoQueryRow.passage_id.in_(stale[i : i + _SLICE])))
    rows = [
        {"passage_id": ids[k], "direction": d, "ordinal": n, "text": q, "embed_hash": text_hash(q)}
        for k, (_, pq) in new_questions.items()
        for d, qs in (("in", pq.incoming), ("out", pq.outgoing))
        for n, q in enumerate(qs)
    ]
    if rows:
        s.execute(insert(PseudoQueryRow), rows)
    if new_questions:
        s.execute(update(PassageRow), [{"id": ids[k], "questions_key": ck} for k, (ck, _) in new_questions.items()])


def question_edge_rows(qe: QuestionEdges) -> list[dict[str, Any]]:
    return [
        {
            "source_id": int(a),
            "target_id": int(b),
            "kind": "question",
            "out_query_id": int(o),
            "in_query_id": int(i),
            "score": float(sc),
            "span": None,
            "data": {},
        }
        for a, b, o, i, sc in zip(qe.source, qe.target, qe.out_q, qe.in_q, qe.score)
    ]


def citation_edge_rows(ids: dict[str, int], cites: Any) -> list[dict[str, Any]]:
    """Citations between passages the index holds; one to a passage outside it has no row."""
    return [
        {
            "source_id": ids[e.source],
            "target_id": ids[e.target],
            "kind": e.kind,
            "out_query_id": None,
            "in_query_id": None,
            "score": 1.0,
            "span": e.span,
            "data": ({"mutatis": True} if e.mutatis else {}) | ({"role": e.role} if e.role else {}),
        }
        for e in cites.edges
        if e.source in ids and e.target in ids
    ]


def write_edges(s: Session, rows: list[dict[str, Any]], kinds: Sequence[str]) -> np.ndarray:
    """Replace the edges of `kinds` (derived data, recomputed whole) and return the whole edge table."""
    s.execute(delete(EdgeRow).where(EdgeRow.kind.in_(kinds)))
    if rows:
        s.execute(insert(EdgeRow), rows)
    return edge_table(s)
