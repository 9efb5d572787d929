"""Read-only views of an index's database for people and tools: one passage with its questions,
the passage graph with attributes for export, counts, and the last build's report.

Public API:
    passage_view(db, ref) -> dict | None          ref: passage id (int) or key (str)
    graph_view(db, store) -> networkx.MultiDiGraph
    edge_counts(db) -> {kind: count}
    last_report(db, current=False) -> dict | None   current: passing over history-only builds
    table_counts(db) -> dict                      laws, passages, embedded, cached embeddings, questions
    stats_view(db, home, store, generation) -> dict   what `hoprag stats` shows
    graph_summary_view(db, builds=10) -> dict     edges per law by kind, degree histogram, recent builds
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from storage.db import Database
from storage.models import BuildRow, DocumentRow, EdgeRow, EmbeddingRow, PassageRow, PseudoQueryRow

from .edge_params import EDGE_KINDS
from .meta import stored_fingerprint

if TYPE_CHECKING:
    from pathlib import Path

    from .derived import DerivedStore

__all__ = [
    "passage_view",
    "graph_view",
    "edge_counts",
    "last_report",
    "table_counts",
    "stats_view",
    "graph_summary_view",
]


def passage_view(db: Database, ref: int | str) -> dict | None:
    with db.session() as s:
        col = PassageRow.id if isinstance(ref, int) else PassageRow.key
        row = s.scalar(select(PassageRow).where(col == ref))
        if row is None:
            return None
        qs = s.execute(
            select(PseudoQueryRow.direction, PseudoQueryRow.text)
            .where(PseudoQueryRow.passage_id == row.id)
            .order_by(PseudoQueryRow.direction, PseudoQueryRow.ordinal)
        ).all()
        return {
            "passage_id": row.id,
            "key": row.key,
            "law": row.law,
            "article": row.article,
            "label": row.article_label,
            "chapters": row.chapters,
            "paragraphs": row.paragraphs,
            "text": row.text,
            "embedded": row.embed_hash is not None,
            "metadata": row.meta,
            "questions": {"incoming": [t for d, t in qs if d == "in"], "outgoing": [t for d, t in qs if d == "out"]},
        }


def graph_view(db: Database, store: DerivedStore) -> Any:
    """The passage graph with attributes (key, law, article, questions, spans) for export."""
    from .graph import graph_from_table  # numpy and networkx: not for the views a no-op build reads

    derived = store.load()
    assert derived is not None  # load() raises rather than answer None unless required=False
    g = graph_from_table(derived.edges)
    with db.session() as s:
        for pid, key, law, article, label in s.execute(
            select(PassageRow.id, PassageRow.key, PassageRow.law, PassageRow.article, PassageRow.article_label)
        ):
            g.add_node(pid, key=key, law=law, article=article, label=label)
        qtext = dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.text)).all())
        for eid, src, dst, o, i, span in s.execute(
            select(
                EdgeRow.id,
                EdgeRow.source_id,
                EdgeRow.target_id,
                EdgeRow.out_query_id,
                EdgeRow.in_query_id,
                EdgeRow.span,
            )
        ):
            if g.has_edge(src, dst, eid):
                g.edges[src, dst, eid].update(
                    question=None if o is None else qtext.get(o),
                    matched_question=None if i is None else qtext.get(i),
                    span=span,
                )
    return g


def edge_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        counts = dict(s.execute(select(EdgeRow.kind, func.count()).group_by(EdgeRow.kind)).all())
    return {k: int(counts.get(k, 0)) for k in EDGE_KINDS}


def last_report(db: Database, current: bool = False) -> dict | None:
    """The newest build's report; `current`: the newest that made or kept the index as it is now,
    passing over history-only builds (an older library's versions joined the history, nothing else)."""
    with db.session() as s:
        for row in s.scalars(select(BuildRow).order_by(BuildRow.id.desc()).execution_options(yield_per=16)):
            if not (current and (row.report or {}).get("history_only")):
                return row.report
        return None


def table_counts(db: Database) -> dict[str, Any]:
    with db.session() as s:

        def count(model: Any, *where: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        questions = dict(
            s.execute(select(PseudoQueryRow.direction, func.count()).group_by(PseudoQueryRow.direction)).all()
        )
        return {
            "laws": count(DocumentRow),
            "passages": count(PassageRow),
            "embedded_passages": count(PassageRow, PassageRow.embed_hash.is_not(None)),
            "cached_embeddings": count(EmbeddingRow),
            "pseudo_queries": {"incoming": int(questions.get("in", 0)), "outgoing": int(questions.get("out", 0))},
        }


def stats_view(db: Database, home: Path, store: DerivedStore, generation: int) -> dict:
    """Counts, embedder, generation, snapshot, the last build's report and any repairs."""
    derived = store.load(required=False)
    vectors = len(derived.sets["passages"]) if derived else 0
    snapshot, repairs = store.snapshots.get(generation), store.repairs
    counts = table_counts(db)
    fp = stored_fingerprint(db)
    return {
        "home": str(home),
        "laws": counts["laws"],
        "passages": counts["passages"],
        "embedded_passages": counts["embedded_passages"],
        "repealed_passages": counts["passages"] - counts["embedded_passages"],
        "vectors": vectors,
        "pseudo_queries": counts["pseudo_queries"],
        "edges": edge_counts(db),
        "cached_embeddings": counts["cached_embeddings"],
        "embedder": fp.to_dict() if fp else None,
        "generation": int(db.get_meta("generation", 0)),
        "snapshot_generation": snapshot.generation if snapshot else None,
        "snapshot": snapshot.path.name if snapshot else None,
        "library": db.get_meta("library"),
        "llm": db.get_meta("llm"),
        "as_of": db.get_meta("as_of"),
        "last_build": last_report(db),
        "repairs": list(repairs),
    }


# degree buckets of the histogram: statutes have a long tail (a definitions article is cited by
# hundreds), so powers of two keep the chart readable
DEGREE_BUCKETS = ((0, 0), (1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, None))


def graph_summary_view(db: Database, builds: int = 10) -> dict:
    """The graph at a glance: per law its passages and the edges leaving them by kind, a histogram
    of passage degrees (in + out, all kinds), and the newest builds."""
    with db.session() as s:
        laws: dict[int, dict] = {}
        for doc_id, doc_key, name, n in s.execute(
            select(DocumentRow.id, DocumentRow.doc_key, DocumentRow.name, func.count(PassageRow.id))
            .join(PassageRow, PassageRow.document_id == DocumentRow.id)
            .where(PassageRow.embed_hash.is_not(None))
            .group_by(DocumentRow.id)
        ):
            laws[doc_id] = {"law": name, "pcode": doc_key, "passages": int(n), "edges": dict.fromkeys(EDGE_KINDS, 0)}
        for doc_id, kind, n in s.execute(
            select(PassageRow.document_id, EdgeRow.kind, func.count())
            .join(PassageRow, PassageRow.id == EdgeRow.source_id)
            .group_by(PassageRow.document_id, EdgeRow.kind)
        ):
            if doc_id in laws and kind in laws[doc_id]["edges"]:
                laws[doc_id]["edges"][kind] = int(n)
        degree: dict[int, int] = dict.fromkeys(
            s.scalars(select(PassageRow.id).where(PassageRow.embed_hash.is_not(None))), 0
        )
        for column in (EdgeRow.source_id, EdgeRow.target_id):
            for pid, n in s.execute(select(column, func.count()).group_by(column)):
                if pid in degree:
                    degree[pid] += int(n)
        recent = s.scalars(select(BuildRow).order_by(BuildRow.id.desc()).limit(builds)).all()
        build_rows = [
            {
                "generation": b.generation,
                "status": b.status,
                "library": b.library,
                "embedder": b.embedder,
                "seconds": round(b.seconds, 3),
                "finished_at": b.finished_at.isoformat() if b.finished_at else None,
                "embedded": (b.report or {}).get("embedded"),
                "passages": (b.report or {}).get("passages"),
            }
            for b in recent
        ]
    histogram = []
    for lo, hi in DEGREE_BUCKETS:
        n = sum(1 for d in degree.values() if d >= lo and (hi is None or d <= hi))
        label = str(lo) if lo == hi else (f"{lo}+" if hi is None else f"{lo}–{hi}")
        histogram.append({"degree": label, "passages": n})
    per_law = sorted(laws.values(), key=lambda r: (-sum(r["edges"].values()), r["pcode"]))
    return {"laws": per_law, "degree_histogram": histogram, "builds": build_rows}
