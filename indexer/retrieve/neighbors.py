"""A passage's neighbours: the passages one edge away, with the edge's kind, score, questions and
legal role.

Public API:
    neighbors(st, ref, direction="out", kinds=None) -> list[dict]   strongest edge first
    brief(st, ref) -> {key, law, label, article}

neighbourhood.py draws several rings of these; the citation spans come from there too (they live in
the database's edge rows, not in the snapshot's edge table).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import QueryError
from ..store.graph import EDGE_KINDS, EDGE_ROLES
from .modes import DIRECTIONS
from .state import State, passage_id

__all__ = ["neighbors", "brief"]


def _edge_dict(st: State, e: Any, direction: str) -> dict:
    other = int(e["target"] if direction == "out" else e["source"])
    key, law, article, label, text, _, _ = st.info[other]
    d = {
        "direction": direction,
        "kind": EDGE_KINDS[int(e["kind"])],
        "score": float(e["score"]),
        "passage_id": other,
        "key": key,
        "law": law,
        "article": article,
        "label": label,
        "text": text,
    }
    if int(e["role"]):
        d["role"] = EDGE_ROLES[int(e["role"])]
    if int(e["out_q"]) >= 0:
        d["question"] = st.q_text.get(int(e["out_q"]))
        d["matched_question"] = st.q_text.get(int(e["in_q"]))
    return d


def neighbors(st: State, ref: int | str, direction: str = "out", kinds: Iterable[str] | None = None) -> list[dict]:
    """The edges of a passage (by id or key; KeyError if none) of the given kinds, out, in or
    both, strongest first."""
    if direction not in DIRECTIONS:
        raise QueryError("direction must be out, in or both")
    wanted = set(kinds) if kinds else set(EDGE_KINDS)
    if wanted - set(EDGE_KINDS):
        raise QueryError(f"unknown edge kind {sorted(wanted - set(EDGE_KINDS))[0]!r}: {', '.join(EDGE_KINDS)}")
    pid = passage_id(st, ref)
    a, b = st.edge_start.get(pid, (0, 0))
    positions = []
    if direction in ("out", "both"):
        positions += [(i, "out") for i in range(a, b)]
    if direction in ("in", "both"):
        positions += [(i, "in") for i in st.in_edges.get(pid, [])]
    found = [_edge_dict(st, st.edges[i], way) for i, way in positions if EDGE_KINDS[int(st.edges[i]["kind"])] in wanted]
    return sorted(found, key=lambda d: -d["score"])


def brief(st: State, ref: int | str) -> dict:
    """key, law, label, article of a passage the state holds (by id or key); KeyError if none."""
    key, law, article, label, *_ = st.info[passage_id(st, ref)]
    return {"key": key, "law": law, "label": label, "article": article}
