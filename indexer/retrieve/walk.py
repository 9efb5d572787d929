"""HopRAG's retrieve → reason → prune (arXiv 2502.12442 §3.3) over one state: enter at the best
passages, follow at each frontier passage the edges to its most relevant neighbours for n_hop
rounds, count visits, rank by relevance and visits.

Public API:
    walk(st, text, qv, k, n_hop, allowed, settings, choose=None) -> HopHits
    Option       a way on from a frontier passage (target, edge position, direction, kind, sim, ...)
    Chooser      choose(frontier, options, similarity_picks) -> {passage: options chosen}: the LLM's
                 say over some frontier passages (llm_walk.LLMChooser); the others keep similarity's

At most k entries (the articles the query names first); at each frontier passage the options are
its out-edges and the citation/structural edges into it taken backwards, one per target, scored by
the target's SIM (library-wide fused relevance, normalized) and tie-broken by the question's
cosine; the similarity choice follows the best `hop_branch` options with SIM ≥ hop_min_sim (else
none). A passage is expanded once, the frontier holds at most k; IMP = visits / most visits (an
entry counts one visit, each arrival one more), H = (1-w)·SIM + w·IMP (w = hop_imp_weight), named
articles first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

import numpy as np

from ..settings import Settings
from ..store.graph import EDGE_KINDS, EDGE_ROLES
from .channels import fusion
from .hits import HopHits
from .named import cited_articles
from .state import State, hit

__all__ = ["walk", "Option", "Chooser"]


@dataclass(frozen=True)
class Option:
    """A way on from a frontier passage: an edge position, followed along (out) or against (in) it.
    sim: the target's SIM, or what the edge's legal role passes to it (`passed`, 0 if nothing)."""

    target: int
    pos: int
    direction: str
    kind: str
    sim: float
    qcos: float
    passed: float = 0.0


Chooser = Callable[[list[int], dict[int, list[Option]], dict[int, list[Option]]], dict[int, list[Option]]]


def walk(
    st: State,
    text: str,
    qv: np.ndarray,
    k: int,
    n_hop: int,
    allowed: set[int] | None,
    settings: Settings,
    choose: Chooser | None = None,
) -> HopHits:
    # SIM: reciprocal rank fusion over the whole library (dense rank, BM25 rank, and the rank
    # among incoming questions), so a passage reached by a hop is judged as an entry would be.
    scores = fusion(st, text, qv, max(50, 5 * k), settings)
    by_rank = np.argsort(-scores, kind="stable")
    order = (int(st.ids[i]) for i in by_rank)
    top_rrf = float(scores[by_rank[0]]) if len(scores) and scores[by_rank[0]] > 0 else 1.0

    # SIM a passage holds of its own, or passed to it over a citation with a legal role (the
    # article that punishes a breach of a relevant duty is as relevant as hop_role_weight says)
    passed: dict[int, float] = {}

    def own_sim(pid: int) -> float:
        row = st.row_of.get(pid)
        return float(scores[row]) / top_rrf if row is not None else 0.0

    def sim(pid: int) -> float:
        return max(own_sim(pid), passed.get(pid, 0.0))

    # a query naming a hundred articles must not make a hundred entries: k in all
    cited = cited_articles(st, text, allowed)[:k]
    named = set(cited)
    entries = cited + list(
        islice((p for p in order if (allowed is None or p in allowed) and p not in named), k - len(cited))
    )
    paths: dict[int, list[dict]] = {p: [] for p in entries}
    arrivals: Counter = Counter()
    steps: list[dict] = []
    expanded: set[int] = set()
    frontier = entries
    for _ in range(n_hop):
        frontier = [v for v in frontier if v not in expanded][:k]
        if not frontier:
            break
        expanded.update(frontier)
        options = {v: _options(st, qv, v, sim, own_sim(v), allowed, settings.hop_role_weight) for v in frontier}
        picks = {
            v: [o for o in opts[: settings.hop_branch] if o.sim >= settings.hop_min_sim] for v, opts in options.items()
        }
        if choose is not None:
            picks.update(choose(frontier, options, picks))
        reached: list[int] = []
        for v in frontier:
            # v is expanded once and its options name each target once: one arrival per (v, t)
            for o in picks[v]:
                arrivals[o.target] += 1
                if o.passed:
                    passed[o.target] = max(passed.get(o.target, 0.0), o.passed)
                step = _step(st, v, o)
                steps.append(step)
                if o.target not in paths:
                    paths[o.target] = paths[v] + [step]
                reached.append(o.target)
        frontier = sorted(dict.fromkeys(reached), key=lambda p: -sim(p))
    top_sim = max((sim(p) for p in paths), default=1.0) or 1.0
    # Visits: an entry counts once (being chosen as an entry is one vote, as in HopRAG), each
    # arrival over an edge once more. IMP is relative to the most-visited passage, in [0, 1]
    # like SIM: a walk that only reaches each passage once changes nothing (all IMP = 1, the
    # ranking is SIM's), and a passage several relevant passages lead to rises, entry or not.
    visits = Counter(entries) + arrivals
    most = max(visits.values(), default=0)
    w = settings.hop_imp_weight
    scored = []
    for p in paths:
        s_norm = sim(p) / top_sim
        imp = visits[p] / most if most else 0.0
        scored.append(((1 - w) * s_norm + w * imp + (1.0 if p in named else 0.0), p, s_norm, imp))
    scored.sort(key=lambda t: -t[0])
    return HopHits(
        [
            hit(st, p, h, sim=round(sn, 6), imp=round(i, 6), path=tuple(paths[p]), cited=p in named)
            for h, p, sn, i in scored[:k]
        ],
        steps=steps,
        generation=st.generation,
    )


def _options(
    st: State,
    qv: np.ndarray,
    v: int,
    sim: Callable[[int], float],
    v_own: float,
    allowed: set[int] | None,
    role_weight: float,
) -> list[Option]:
    """Where the walk may go from v, best first: its out-edges, and the citation and structural
    edges into v taken backwards (the penalty or exception article that cites v). One option
    per target: its SIM, tie-broken by the question's cosine to the query. Over a citation with
    a legal role, the target's SIM is at least role_weight × v's own SIM (only what v holds
    of its own passes: a penalty article reached so does not lift the other duties it punishes)."""
    best: dict[int, Option] = {}
    passing = role_weight * v_own

    def consider(t: int, pos: int, direction: str, kind: str, q: int) -> None:
        if t == v or t not in st.info or (allowed is not None and t not in allowed):
            return
        qcos = float(st.q_out_matrix[st.q_out_row[q]] @ qv[0]) if q >= 0 and q in st.q_out_row else -1.0
        own = sim(t)
        given = passing if role_weight and int(st.edges["role"][pos]) and passing > own else 0.0
        o = Option(t, pos, direction, kind, max(own, given), qcos, given)
        old = best.get(t)
        if old is None or (o.sim, o.qcos) > (old.sim, old.qcos):
            best[t] = o

    a, b = st.edge_start.get(v, (0, 0))
    e = st.edges
    for pos in range(a, b):
        consider(int(e["target"][pos]), pos, "out", EDGE_KINDS[int(e["kind"][pos])], int(e["out_q"][pos]))
    for pos in st.in_edges.get(v, ()):
        kind = EDGE_KINDS[int(e["kind"][pos])]
        if kind != "question":  # a question edge asks in one direction only
            consider(int(e["source"][pos]), pos, "in", kind, -1)
    return sorted(best.values(), key=lambda o: (-o.sim, -o.qcos, o.target))


def _step(st: State, v: int, o: Option) -> dict:
    step: dict[str, str | None] = {
        "from": st.info[v].key,
        "to": st.info[o.target].key,
        "kind": o.kind,
        "direction": o.direction,
    }
    role = int(st.edges["role"][o.pos])
    if role:
        step["role"] = EDGE_ROLES[role]
    q = int(st.edges["out_q"][o.pos])
    if q >= 0:
        step["question"] = st.q_text.get(q)
        step["matched_question"] = st.q_text.get(int(st.edges["in_q"][o.pos]))
    return step
