"""A passage's neighbourhood as a small graph to draw: the passages one and two edges away (both
directions), the edges among them with their questions and citation spans.

Public API:
    neighbourhood(retriever, db, ref, hops=2, limit=60, as_of=None) -> dict
        {"center": key, "hops": n, "truncated": bool,
         "nodes": [{key, law, label, article, hop}],                       the center first (hop 0)
         "edges": [{source, target, kind, score, question?, matched_question?, span?, role?}]}
    add_neighbor_spans(db, center_key, neighbors)   the citation as written on each citation neighbour

Every passage one edge away is drawn before any two away, and the strongest edges first within a
ring, so a truncated picture (over `limit` nodes: a definitions article cited by hundreds) still
shows what matters most around the center.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import EdgeRow, PassageRow

__all__ = ["neighbourhood", "add_neighbor_spans"]


def neighbourhood(
    retriever: Any, db: Database, ref: int | str, hops: int = 2, limit: int = 60, as_of: Any = None
) -> dict:
    """Raises KeyError for a passage the index (as of the date) does not hold."""
    hops, limit = max(0, int(hops)), max(1, int(limit))
    center = retriever.passage_brief(ref, as_of=as_of)  # KeyError if unknown
    nodes: dict[str, dict] = {center["key"]: center | {"hop": 0}}
    edges: dict[tuple, dict] = {}
    frontier, truncated = [center["key"]], False
    for hop in range(1, hops + 1):
        ring: list[dict] = []
        for key in frontier:
            for n in retriever.neighbors(key, direction="both", as_of=as_of):
                out = n["direction"] == "out"
                e = {
                    "source": key if out else n["key"],
                    "target": n["key"] if out else key,
                    "kind": n["kind"],
                    "score": round(n["score"], 4),
                }
                if n.get("question"):
                    e["question"], e["matched_question"] = n["question"], n.get("matched_question")
                if n.get("role"):
                    e["role"] = n["role"]
                edges.setdefault((e["source"], e["target"], e["kind"], e.get("question")), e)
                if n["key"] not in nodes:
                    ring.append(n)
        next_frontier = []
        for n in sorted(ring, key=lambda n: -n["score"]):
            if n["key"] in nodes:
                continue
            if len(nodes) >= limit:
                truncated = True
                break
            nodes[n["key"]] = {
                "key": n["key"],
                "law": n["law"],
                "label": n["label"],
                "article": n["article"],
                "hop": hop,
            }
            next_frontier.append(n["key"])
        frontier = next_frontier
    drawn = [e for e in edges.values() if e["source"] in nodes and e["target"] in nodes]
    _add_spans(db, drawn)
    return {
        "center": center["key"],
        "hops": hops,
        "truncated": truncated,
        "nodes": list(nodes.values()),
        "edges": drawn,
    }


def add_neighbor_spans(db: Database, center: str, neighbors: list[dict]) -> None:
    """Each citation neighbour of `center` gets the citation as written (`span`), in place."""
    edges = [
        {"source": center, "target": n["key"], "kind": n["kind"]}
        if n["direction"] == "out"
        else {"source": n["key"], "target": center, "kind": n["kind"]}
        for n in neighbors
    ]
    _add_spans(db, edges)
    for n, e in zip(neighbors, edges):
        if "span" in e:
            n["span"] = e["span"]


def _add_spans(db: Database, edges: list[dict]) -> None:
    """The citation as written (第三十條, 前條): kept with the edge rows of the current generation."""
    cited = {(e["source"], e["target"]) for e in edges if e["kind"] == "citation"}
    if not cited:
        return
    keys = sorted({k for pair in cited for k in pair})
    with db.session() as s:
        ids = dict(s.execute(select(PassageRow.key, PassageRow.id).where(PassageRow.key.in_(keys))).all())
        by_id = {v: k for k, v in ids.items()}
        spans: dict[tuple[str, str], str] = {}
        for src, dst, span in s.execute(
            select(EdgeRow.source_id, EdgeRow.target_id, EdgeRow.span).where(
                EdgeRow.kind == "citation", EdgeRow.source_id.in_(list(ids.values()))
            )
        ):
            pair = (by_id.get(src), by_id.get(dst))
            if pair in cited and span:
                spans.setdefault(pair, span)  # type: ignore[arg-type]
    for e in edges:
        if (e["source"], e["target"]) in spans and e["kind"] == "citation":
            e["span"] = spans[(e["source"], e["target"])]
