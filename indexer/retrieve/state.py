"""One generation as queries read it: an immutable `State` made once per generation (or per date
in force), and the small questions every channel asks of it.

Public API:
    State                         vectors, passage and question metadata, edges, BM25 of one generation
    PassageInfo                   key, law, article, label, text, chapters, doc_key of a passage
    chapters_of(info) -> tuple    its chapters (kept as stored until shown)
    make_state(generation, derived, rows, questions, former=()) -> State
    hit(st, pid, score, **extra) -> Hit
    passage_id(st, ref) -> int    a passage by row id or key; KeyError if the state holds none
    allowed_passages(st, filters) -> set[int] | None      None: no filter; law, pcode, key, or any
                                                          field of the passages' metadata (equality)
    laws_only(st, filters) -> list[str] | None           a filter naming laws and nothing else
    allowed_mask(ids, allowed) -> np.ndarray[bool]        which of `ids` a filter lets through
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np

from ..errors import IndexStateError, QueryError
from ..store.lexical import Lexicon
from .halfscan import HalfScan
from .hits import Hit
from .named import law_names

__all__ = [
    "State",
    "PassageInfo",
    "chapters_of",
    "make_state",
    "hit",
    "passage_id",
    "allowed_passages",
    "laws_only",
    "allowed_mask",
    "FILTER_FIELDS",
]

FILTER_FIELDS = ("law", "pcode", "key")


class PassageInfo(NamedTuple):
    key: str
    law: str
    article: str
    label: str
    text: str
    chapters: Any  # a list, or its JSON text as stored: decoded by `chapters_of` for the few shown
    doc_key: str


def chapters_of(info: PassageInfo) -> tuple[str, ...]:
    return tuple(_stored(info.chapters) or ())


def _stored(raw: Any) -> Any:
    """A JSON column as the state load read it: its text, or the value a driver decoded."""
    return json.loads(raw) if isinstance(raw, str) else raw


@dataclass
class State:
    """One generation, read-only once built."""

    generation: int
    ids: np.ndarray  # passage ids with a vector, in matrix order
    matrix: np.ndarray  # their vectors
    row_of: dict[int, int]
    info: dict[int, PassageInfo]
    by_key: dict[str, int]
    by_law_article: dict[tuple[str, str], int]
    by_article: dict[str, list[int]]  # article number -> its passages in every law (民法 or not: 184條)
    law_names: dict[str, str]  # every name and short name -> official law name
    doc_of_law: dict[str, str]  # official law name -> doc_key
    q_text: dict[int, str]
    q_owner: dict[int, int]
    q_in: Any  # VectorIndex of incoming questions
    q_out_row: dict[int, int]
    q_out_matrix: np.ndarray
    edges: np.ndarray  # EDGE_DTYPE, sorted by source
    edge_start: dict[int, tuple[int, int]]  # source -> (start, end) in edges
    in_edges: dict[int, list[int]]  # target -> positions in edges
    passage_index: Any  # VectorIndex of passages
    fingerprint: Any = None  # the embedder the vectors were made with
    lexicon: Lexicon | None = None  # BM25 of this generation, from its snapshot
    as_of: str | None = None  # a dated state (asof.py): ids are article-version ids
    meta: dict[int, dict] = field(default_factory=dict)  # passage id -> its metadata (non-empty only)
    # what is made on first use, in one dict that the copies `dataclasses.replace` makes share: a
    # dated state is copied for every query (its own as_of), and would make them again each time
    _made: dict[str, Any] = field(default_factory=dict, repr=False)

    def half_scan(self) -> HalfScan:
        """The matrix in half precision, for a dense query's first pass."""
        if "half" not in self._made:
            self._made["half"] = HalfScan(self.matrix)
        return self._made["half"]

    def bm25_positions(self) -> np.ndarray:
        """For each BM25 document, its row in `ids`/`matrix` (-1: a passage without a vector)."""
        if "bm25_pos" not in self._made:
            _, ids = self.bm25()
            self._made["bm25_pos"] = np.array([self.row_of.get(int(i), -1) for i in ids], np.int64)
        return self._made["bm25_pos"]

    def bm25(self) -> tuple[Any, np.ndarray]:
        """The BM25 model and the passage id of each of its documents."""
        lexicon = self._lexicon()
        return lexicon.model, lexicon.ids

    def bm25_scores(self, text: str) -> np.ndarray:
        """One BM25 score per document, in the order of `bm25()`'s ids (zeros without a token)."""
        lexicon = self._lexicon()
        return lexicon.scores(lexicon.tokenize(text))

    def _lexicon(self) -> Lexicon:
        if self.lexicon is None:
            raise IndexStateError("this generation has no BM25 index")
        return self.lexicon


def make_state(generation: int, derived: Any, rows: Any, questions: Any, former: Any = ()) -> State:
    """rows: (id, key, law, article, label, text, chapters, doc_key, law name[, metadata]) per passage,
    chapters and metadata as lists and dicts or as their JSON text (a new process's first query
    would spend ~0.1 s decoding 13,000 of them, for the ten a query shows);
    questions: (id, passage id, text); former: (an older name of a law, its doc_key)."""
    info = {r[0]: PassageInfo(*r[1:8]) for r in rows}
    doc_of_law = {r[8]: r[7] for r in rows}
    by_article: dict[str, list[int]] = {}
    for pid, v in info.items():
        by_article.setdefault(v.article, []).append(pid)
    ids, matrix = derived.sets["passages"].index.vectors()
    q_ids, q_matrix = derived.sets["questions_out"].index.vectors()
    edges = np.sort(derived.edges, order=["source", "id"]) if len(derived.edges) else derived.edges
    edge_start: dict[int, tuple[int, int]] = {}
    in_edges: dict[int, list[int]] = {}
    if len(edges):
        src = edges["source"]
        bounds = np.flatnonzero(np.r_[True, src[1:] != src[:-1], True])
        for a, b in pairwise(bounds):
            edge_start[int(src[a])] = (int(a), int(b))
        for pos, t in enumerate(edges["target"].tolist()):
            in_edges.setdefault(t, []).append(pos)
    return State(
        generation=generation,
        ids=ids,
        matrix=matrix,
        row_of={int(i): n for n, i in enumerate(ids)},
        info=info,
        by_key={v.key: k for k, v in info.items()},
        by_law_article={(v.law, v.article): k for k, v in info.items()},
        by_article=by_article,
        law_names=law_names(doc_of_law, former),
        doc_of_law=doc_of_law,
        q_text={q: t for q, _, t in questions},
        q_owner={q: p for q, p, _ in questions},
        q_in=derived.sets["questions_in"].index,
        q_out_row={int(q): n for n, q in enumerate(q_ids)},
        q_out_matrix=q_matrix,
        edges=edges,
        edge_start=edge_start,
        in_edges=in_edges,
        passage_index=derived.sets["passages"].index,
        meta={r[0]: m for r in rows if len(r) > 9 and r[9] not in (None, "{}") and (m := _stored(r[9]))},
    )


def hit(st: State, pid: int, score: float, **extra: Any) -> Hit:
    info = st.info[pid]
    key, law, article, label, text, _, _ = info
    return Hit(
        passage_id=pid,
        key=key,
        law=law,
        article=article,
        score=float(score),
        text=text,
        label=label,
        chapters=chapters_of(info),
        generation=st.generation,
        as_of=st.as_of,
        **extra,
    )


def passage_id(st: State, ref: int | str) -> int:
    """The row id of a passage (by id or key) the state holds; KeyError if none."""
    pid = st.by_key.get(ref) if isinstance(ref, str) else ref
    if pid is None or pid not in st.info:
        raise KeyError(ref)
    return pid


def _filter_values(filters: dict, name: str, kinds: tuple[type, ...] = (str,)) -> list[Any]:
    v = filters.get(name)
    if v is None:
        return []
    vs = list(v) if isinstance(v, (list, tuple)) else [v]
    if not vs or not all(isinstance(x, kinds) for x in vs):
        what = "a string" if kinds == (str,) else "a string, number or boolean"
        raise QueryError(f"filter {name!r} takes {what} or a non-empty list of them")
    return vs


def _text(value: Any) -> str:
    """A metadata value as text (2024 and "2024" are one value: the CLI and query strings carry text)."""
    return value if isinstance(value, str) else json.dumps(value)


def _metadata_filter(st: State, name: str, values: list[Any]) -> set[int]:
    if not any(name in m for m in st.meta.values()):
        raise QueryError(
            f"unknown filter {name!r}: no passage has a metadata field of that name "
            "(filters: law, pcode, key, or a field of the passages' metadata)"
        )
    wanted = {_text(v) for v in values}
    return {pid for pid, m in st.meta.items() if name in m and _text(m[name]) in wanted}


def allowed_passages(st: State, filters: dict | None) -> set[int] | None:
    """The passages a filter ({field: a value or a list}, any value of a list matches, every field
    must) lets through: law (any of its names), pcode, key, or a field of the passages' metadata
    compared by equality; QueryError for a law or a field the index does not know. The set is
    applied before top-k by every channel, so a filtered query still gets k hits when k match."""
    if not filters:
        return None
    chosen: set[int] | None = None
    for name in sorted(set(filters) - set(FILTER_FIELDS)):
        found = _metadata_filter(st, name, _filter_values(filters, name, (str, int, float, bool)))
        chosen = found if chosen is None else chosen & found
    laws = _filter_values(filters, "law")
    resolved = set()
    for name in laws:
        full = st.law_names.get(name.strip())
        if full is None:
            raise QueryError(f"no law named {name!r} in this index")
        resolved.add(full)
    pcodes, keys = set(_filter_values(filters, "pcode")), set(_filter_values(filters, "key"))
    return {
        pid
        for pid, p in (st.info.items() if chosen is None else ((i, st.info[i]) for i in chosen if i in st.info))
        if (not laws or p.law in resolved) and (not pcodes or p.doc_key in pcodes) and (not keys or p.key in keys)
    }


def laws_only(st: State, filters: dict | None) -> list[str] | None:
    """The full law names of a filter that names laws and nothing else (validated by allowed_passages)."""
    if not filters or set(filters) != {"law"}:
        return None
    v = filters["law"]
    return sorted({st.law_names[x.strip()] for x in ([v] if isinstance(v, str) else v)})


def allowed_mask(ids: np.ndarray, allowed: set[int]) -> np.ndarray:
    """Which of `ids` the filter lets through: scores outside it are masked before top-k, so a
    filtered query still gets k hits when k match."""
    return np.isin(ids, np.fromiter(allowed, np.int64, len(allowed)))
