"""The passage graph: a networkx MultiDiGraph over passages, one edge per question match or citation.

Snapshots hold the edges as one numpy table (`graph.npy`: id, source, target, kind, score, out_q,
in_q, role); the graph is rebuilt from it, or from the database, on load. Export adds texts and questions for
Gephi (GraphML) and networkx users (node-link JSON).

Public API:
    EDGE_KINDS                              ("question", "citation", "structural")
    EDGE_ROLES                              ("", "punishes", "exception", "defines", "applies"): a
                                            citation's legal role, "" where its text does not say
    edge_table(rows) -> np.ndarray          rows of (id, source, target, kind, score, out_q, in_q[, role])
    graph_from_table(table, nodes=()) -> nx.MultiDiGraph
    export_graph(graph, fmt, path)          fmt: graphml | json
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from storage.files import atomic_write

from ..text.citations import ROLES
from .edge_params import EDGE_KINDS  # defined where a no-op build can read it without numpy

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["EDGE_KINDS", "EDGE_ROLES", "EDGE_DTYPE", "edge_table", "graph_from_table", "export_graph"]

EDGE_ROLES = ("", *ROLES)

# out_q / in_q: the pseudo-query ids of a question edge (-1 for citations): hop search scores
# an edge by how close its outgoing question is to the query.
EDGE_DTYPE = np.dtype(
    [
        ("id", "<i8"),
        ("source", "<i8"),
        ("target", "<i8"),
        ("kind", "u1"),
        ("score", "<f4"),
        ("out_q", "<i8"),
        ("in_q", "<i8"),
        ("role", "u1"),  # EDGE_ROLES: what a citation does with the article it cites
    ]
)


def edge_table(rows: Iterable[tuple]) -> np.ndarray:
    """rows of (id, source, target, kind, score, out_q | None, in_q | None[, role])."""
    code = {k: i for i, k in enumerate(EDGE_KINDS)}
    role = {r: i for i, r in enumerate(EDGE_ROLES)}
    data = [
        (i, s, t, code[k], sc, -1 if o is None else o, -1 if q is None else q, role[r[0] if r else ""])
        for i, s, t, k, sc, o, q, *r in rows
    ]
    return np.array(data, dtype=EDGE_DTYPE) if data else np.zeros(0, EDGE_DTYPE)


def graph_from_table(table: np.ndarray, nodes: Iterable[int] = ()) -> nx.MultiDiGraph:
    import networkx as nx  # only export and graph() need it; queries and builds use the edge table

    g = nx.MultiDiGraph()
    g.add_nodes_from(int(n) for n in nodes)
    g.add_edges_from(
        (int(s), int(t), int(i), {"kind": EDGE_KINDS[k], "score": float(sc)} | ({"role": EDGE_ROLES[r]} if r else {}))
        for i, s, t, k, sc, _, _, r in table.tolist()
    )
    return g


def export_graph(graph: nx.MultiDiGraph, fmt: str, path: str | Path) -> None:
    import networkx as nx

    if fmt == "graphml":
        # GraphML takes scalars only: lists (chapters) become strings.
        g = nx.MultiDiGraph()
        g.add_nodes_from(
            (
                n,
                {
                    k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
                    for k, v in d.items()
                    if v is not None
                },
            )
            for n, d in graph.nodes(data=True)
        )
        g.add_edges_from(
            (s, t, k, {a: v for a, v in d.items() if v is not None}) for s, t, k, d in graph.edges(keys=True, data=True)
        )
        buf = io.BytesIO()
        nx.write_graphml(g, buf)
        body = buf.getvalue()
    elif fmt == "json":
        body = json.dumps(nx.node_link_data(graph, edges="edges"), ensure_ascii=False).encode("utf-8")
    else:
        raise ValueError(f"unknown graph format {fmt!r}: graphml or json")
    # whole or not at all, and never over a device, FIFO, link or folder
    atomic_write(Path(path), body)
