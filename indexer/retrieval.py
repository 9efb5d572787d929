"""HopRAG retrieval over one committed generation: dense, question, hybrid and citation-aware
search, neighbours, and multi-hop traversal (retrieve → reason → prune, arXiv 2502.12442 §3.3).

Everything a query needs is loaded once per generation into an immutable `State` (vectors from
the snapshot, passage and question metadata from one database transaction), so an answer never
mixes two generations; a new generation is swapped in whole when the database commits one.

Public API:
    Retriever(db, derived, settings)
        .search(text, k=10, mode="dense"|"questions"|"hybrid", filters=None) -> list[Hit]
        .neighbors(passage, direction="out"|"in"|"both", kinds=None) -> list[dict]
        .hop_search(text, k=10, n_hop=2, mode="similarity"|"llm", filters=None, as_of=None,
                    deadline=None) -> HopHits
        .state() -> State
    Hit                        passage_id, key, law, article, score, text, label, chapters, generation,
                               and per mode: matched_question, path, sim, imp, cited
    HopHits(list[Hit])         .to_dict(), .generation, .llm_calls, .llm_failures (0 in similarity mode), .steps (every edge followed),
                               .deadline_hit (llm mode ran out of its deadline, or its caller went away)
    RRF_K                      the default of Settings.rrf_k

Hop search: at most k entries (the articles the query names first); at each frontier passage the
options are its out-edges and the citation/structural edges into it taken backwards, one per
target, scored by the target's SIM (library-wide fused relevance, normalized) and tie-broken by
the question's cosine; similarity mode follows the best `hop_branch` options with SIM ≥
hop_min_sim (else none), llm mode asks the LLM about the best `hop_llm_options` for at most
hop_max_llm_calls passages per query and falls back to the similarity choice. A passage is
expanded once, the frontier holds at most k; IMP = visits / most visits (an entry counts one visit,
each arrival one more), H = (1-w)·SIM + w·IMP
(w = hop_imp_weight), named articles first. Fusion weights the question list by question_weight
and uses rrf_k.
    LAW_SHORT_NAMES            common short names (勞基法 → 勞動基準法)
    QueryError                 invalid query arguments (the service answers 4xx)
    HopLLMError                llm hop mode: every LLM call failed (the service answers 502)
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from itertools import islice, pairwise
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import func, select

from storage.db import Database
from storage.models import ArticleVersionRow, BuildRow, DocumentRow, ObservationRow, PassageRow, PseudoQueryRow

from .derived import DerivedStore
from .errors import EmbedderMismatch, HopLLMError, IndexStateError, QueryError
from .graph import EDGE_KINDS, EDGE_ROLES
from .lexical import Lexicon
from .llm.base import LLMError
from .llm.budget import Breaker, Deadline
from .native_threads import blas_threads
from .numerals import NUMBER_CHARS, article_number
from .ranks import desc_order
from .settings import Settings

__all__ = [
    "Retriever",
    "Hit",
    "HopHits",
    "State",
    "PassageInfo",
    "QueryError",
    "HopLLMError",
    "LAW_SHORT_NAMES",
    "MODES",
    "HOP_MODES",
]

MODES = ("dense", "questions", "hybrid", "bm25")
HOP_MODES = ("similarity", "llm")
RRF_K = 10  # default reciprocal rank fusion constant (Settings.rrf_k; 60 in Cormack et al. 2009, 10 tuned here)

# What people type for the laws of the bundled library. Longer names win when several match.
LAW_SHORT_NAMES = {
    "勞基法": "勞動基準法",
    "勞基法施行細則": "勞動基準法施行細則",
    "個資法": "個人資料保護法",
    "個資法施行細則": "個人資料保護法施行細則",
    "消保法": "消費者保護法",
    "民訴法": "民事訴訟法",
    "刑訴法": "刑事訴訟法",
    "行訴法": "行政訴訟法",
    "國賠法": "國家賠償法",
    "採購法": "政府採購法",
    "就服法": "就業服務法",
    "性工法": "性別平等工作法",
    "性平工作法": "性別平等工作法",
    "性別工作平等法": "性別平等工作法",
    "移民法": "入出國及移民法",
    "兩岸條例": "臺灣地區與大陸地區人民關係條例",
    "兩岸人民關係條例": "臺灣地區與大陸地區人民關係條例",
    "道交條例": "道路交通管理處罰條例",
    "道安規則": "道路交通安全規則",
    "行程法": "行政程序法",
    "刑法": "中華民國刑法",
    "憲法": "中華民國憲法",
    "增修條文": "中華民國憲法增修條文",
    "憲法增修條文": "中華民國憲法增修條文",
    "攬才專法": "外國專業人才延攬及僱用法",
    "外國人才專法": "外國專業人才延攬及僱用法",
}
_BARE_ARTICLE = re.compile(
    rf"第?\s*([{NUMBER_CHARS}]+)\s*條(?:\s*之\s*([{NUMBER_CHARS}]+))?|第\s*([0-9]+)-([0-9]+)\s*條"
)


def _doc(text: str, default: Any = None) -> Any:
    """A field with its description (the HTTP API's schema is made from these)."""
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class Hit:
    passage_id: int = field(
        metadata={"doc": "the passage's row id (stable within this index); as of a date: the article version's id"}
    )
    key: str = field(metadata={"doc": "pcode:article, stable across renamings, e.g. N0030001:24"})
    law: str = field(metadata={"doc": "the law's name as the library has it now"})
    article: str = field(metadata={"doc": "article number, e.g. 24 or 15-1"})
    score: float = field(metadata={"doc": "the mode's ranking score (higher is better)"})
    text: str = field(metadata={"doc": "the article's text"})
    label: str = _doc("the article's label, e.g. 第15-1條", "")
    chapters: tuple[str, ...] = _doc("the chapters the article sits in", ())
    generation: int = _doc("the committed generation the hit comes from", 0)
    matched_question: str | None = _doc("questions mode: the incoming question matched")
    cited: bool = _doc("the query names this article (勞基法第24條)", False)
    sim: float | None = _doc("hop search: normalized relevance")
    imp: float | None = _doc("hop search: visits / most visits (an entry counts one, each arrival one more), in [0, 1]")
    path: tuple[dict, ...] | None = _doc("hop search: edges followed to reach it")
    as_of: str | None = _doc("searched as of a date: that date (the text and law name in force then)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chapters"] = list(self.chapters)
        if self.path is not None:
            d["path"] = list(self.path)
        return {k: v for k, v in d.items() if v is not None}


class PassageInfo(NamedTuple):
    key: str
    law: str
    article: str
    label: str
    text: str
    chapters: tuple[str, ...]
    doc_key: str


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
    _bm25_pos: np.ndarray | None = field(default=None, repr=False)

    def bm25_positions(self) -> np.ndarray:
        """For each BM25 document, its row in `ids`/`matrix` (-1: a passage without a vector)."""
        if self._bm25_pos is None:
            _, ids = self.bm25()
            self._bm25_pos = np.array([self.row_of.get(int(i), -1) for i in ids], np.int64)
        return self._bm25_pos

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


_DATED_KEPT = 4  # dated states kept (each holds its vectors: ~13 MB for the 30 laws at 512-d)


class Retriever:
    def __init__(self, db: Database, derived: DerivedStore, settings: Settings):
        self.db, self.derived, self.settings = db, derived, settings
        self._state: State | None = None
        self._dated: OrderedDict[tuple, State] = OrderedDict()  # as_of states by (observation date, history)
        self._making: dict[tuple, threading.Event] = {}  # dated states being made, outside the lock
        self._epochs: tuple[tuple, list[dt.date]] = ((), [])  # (history, its observation dates)
        self._lock = threading.Lock()
        self._embedders: dict[str, Any] = {}
        self._seen: tuple[int, int] | None = None  # (database data_version, generation) last read
        self._epochs_seen: tuple[int, int] | None = None  # (data_version, generation) _epochs was read at
        # a query's library scan, at the threads the embedder uses (`hoprag serve`: serve_threads)
        self._threads = settings.cpu_threads or os.cpu_count() or 1

    # ---------------------------------------------------------------- state
    def state(self) -> State:
        """The state of the database's current generation, loaded once per generation: once a
        build commits, no answer comes from the generation before."""
        current = self._generation()
        state = self._state
        if state is not None and state.generation == current:
            return state
        with self._lock:
            if self._state is None or self._state.generation != self._generation():
                if self._state is None:
                    self._preload_embedder()
                self._state = self.load_state()
            return self._state

    def _preload_embedder(self) -> None:
        """A new process's first query: the model loads (its weights mapped, outside the GIL) while
        the snapshot is read; the query's embed waits for that load, not for both one after the other."""
        from .embedders import get_embedder, preload
        from .views import stored_fingerprint

        fp = stored_fingerprint(self.db)
        if fp is None:
            return
        try:
            emb = get_embedder(fp.name, self.settings)
        except Exception:  # the query itself says what is wrong with the embedder
            return
        preload(emb)

    def state_at(self, as_of: str | dt.date | None) -> State:
        """Today's state, or the law in force on `as_of` (asof.py). Every date between two
        observation dates sees the same law, so a state is made once per observation date it
        resolves to (and per history: a build, even of an older date, makes them anew), outside
        the lock (a state being made holds up only the queries that wait for that one), and the
        `_DATED_KEPT` most recently used are kept: a burst of distinct dates costs no more than
        the distinct states they name."""
        current = self.state()
        if as_of is None:
            return current
        from .history import parse_date

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
        from .history import horizon

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
        from .asof import dated_derived

        with self.db.session() as s:
            derived, rows = dated_derived(
                s, self.derived.cache, current.fingerprint, self.settings.bm25_tokenizer, current.lexicon, when
            )
        dated = self._make_state(current.generation, derived, rows, [])
        dated.fingerprint, dated.lexicon, dated.as_of = current.fingerprint, derived.lexicon, when.isoformat()
        if dated.lexicon is not None:  # now: each query gets a copy (its own as_of), which would map again
            dated.bm25_positions()
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

    def load_state(self) -> State:
        for _ in range(3):
            with self.db.session() as s:
                # One transaction: the generation and every row below belong together.
                view = self.derived.view(s)
                rows = s.execute(
                    select(
                        PassageRow.id,
                        PassageRow.key,
                        PassageRow.law,
                        PassageRow.article,
                        PassageRow.article_label,
                        PassageRow.text,
                        PassageRow.chapters,
                        DocumentRow.doc_key,
                        DocumentRow.name,
                    ).join(DocumentRow, DocumentRow.id == PassageRow.document_id)
                ).all()
                questions = s.execute(select(PseudoQueryRow.id, PseudoQueryRow.passage_id, PseudoQueryRow.text)).all()
                # a law's former names (from its older versions) still find it: 性別工作平等法 → 性別平等工作法
                former = s.execute(select(ArticleVersionRow.law, ArticleVersionRow.doc_key).distinct()).all()
            if view.fingerprint is None:
                raise IndexStateError(f"the index at {self.derived.home} is empty: run `hoprag build LIBRARY` first")
            derived, _ = self.derived.read(view)
            if derived is not None:
                state = self._make_state(view.generation, derived, rows, questions, former)
                state.fingerprint = view.fingerprint
                state.lexicon = derived.lexicon
                return state
            self.derived.load()  # repairs the current generation's snapshot, then read again
        raise IndexStateError("the index changed three times while loading; try again")

    def _make_state(self, generation: int, derived, rows, questions, former=()) -> State:
        info = {r[0]: PassageInfo(r[1], r[2], r[3], r[4], r[5], tuple(r[6] or ()), r[7]) for r in rows}
        doc_of_law = {r[8]: r[7] for r in rows}
        names = {n: n for n in doc_of_law}
        from .citations import law_aliases

        for name in doc_of_law:
            for alias in law_aliases(name):
                names.setdefault(alias, name)
        law_of_doc = {doc: law for law, doc in doc_of_law.items()}
        for old_name, doc in former:
            if doc in law_of_doc:
                names.setdefault(old_name, law_of_doc[doc])
        for short, full in LAW_SHORT_NAMES.items():
            if full in doc_of_law:
                names.setdefault(short, full)
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
            law_names=names,
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
        )

    # ---------------------------------------------------------------- helpers
    def _hit(self, st: State, pid: int, score: float, **extra) -> Hit:
        key, law, article, label, text, chapters, _ = st.info[pid]
        return Hit(
            passage_id=pid,
            key=key,
            law=law,
            article=article,
            score=float(score),
            text=text,
            label=label,
            chapters=chapters,
            generation=st.generation,
            as_of=st.as_of,
            **extra,
        )

    def _allowed(self, st: State, filters: dict | None) -> set[int] | None:
        if not filters:
            return None
        unknown = set(filters) - {"law", "pcode", "key"}
        if unknown:
            raise QueryError(f"unknown filter {sorted(unknown)[0]!r}: use law, pcode or key")

        def values(name: str) -> list[str]:
            v = filters.get(name)
            if v is None:
                return []
            vs = [v] if isinstance(v, str) else list(v)
            if not all(isinstance(x, str) for x in vs):
                raise QueryError(f"filter {name!r} takes a string or a list of strings")
            return vs

        laws = values("law")
        resolved = set()
        for name in laws:
            full = st.law_names.get(name.strip())
            if full is None:
                raise QueryError(f"no law named {name!r} in this index")
            resolved.add(full)
        pcodes, keys = set(values("pcode")), set(values("key"))
        allowed = set()
        for pid, p in st.info.items():
            if (not laws or p.law in resolved) and (not pcodes or p.doc_key in pcodes) and (not keys or p.key in keys):
                allowed.add(pid)
        return allowed

    @staticmethod
    def _laws_only(st: State, filters: dict | None) -> list[str] | None:
        """The full law names of a filter that names laws and nothing else (validated by _allowed)."""
        if not filters or set(filters) != {"law"}:
            return None
        v = filters["law"]
        return sorted({st.law_names[x.strip()] for x in ([v] if isinstance(v, str) else v)})

    def _check(self, text: str, k: int) -> None:
        if not isinstance(text, str) or not text.strip():
            raise QueryError("empty query")
        if len(text) > self.settings.max_query_chars:
            raise QueryError(f"query longer than {self.settings.max_query_chars} characters")
        if not 1 <= k <= self.settings.max_k:
            raise QueryError(f"k must be between 1 and {self.settings.max_k}")

    def embed_query(self, text: str, st: State | None = None) -> np.ndarray:
        """The query's vector from the embedder the state's vectors were made with."""
        st = st or self.state()
        emb = self._embedders.get(st.fingerprint.id)
        if emb is None:
            from .embedders import get_embedder

            emb = get_embedder(st.fingerprint.name, self.settings)
            if emb.fingerprint != st.fingerprint:
                raise EmbedderMismatch(
                    f"the index holds vectors of {st.fingerprint.describe()}, but that name now "
                    f"loads {emb.fingerprint.describe()}; run `hoprag reembed --embedder {st.fingerprint.name}`"
                )
            self._embedders[st.fingerprint.id] = emb
        return emb.embed([text])

    def dense(
        self, st: State, qv: np.ndarray, k: int, allowed: set[int] | None, laws: list[str] | None = None
    ) -> list[tuple[int, float]]:
        """Exact top-k by inner product. One query against the in-memory matrix is a single BLAS
        call; FAISS's thread pool would only fight the embedder's threads for it. A filter by law
        alone (`laws`) on a Milvus index is searched in Milvus, where the filter is an index scan;
        so is every unfiltered query on a Milvus IVF index (a library too large to scan exactly)."""
        if not len(st.ids) or (allowed is not None and not allowed):
            return []
        index = st.passage_index
        if getattr(index, "filters_by_law", False) and (laws or (allowed is None and index.approximate)):
            scores, ids = index.search(qv, k, laws=laws)
            return [(int(i), float(sc)) for i, sc in zip(ids[0], scores[0]) if i >= 0 and int(i) in st.info]
        with blas_threads(self._threads):
            scores = st.matrix @ qv[0]
        if allowed is not None:
            scores = np.where(np.isin(st.ids, np.fromiter(allowed, np.int64)), scores, -np.inf)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(st.ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _questions(self, st: State, qv: np.ndarray, k: int, allowed: set[int] | None) -> list[tuple[int, float, int]]:
        """Best incoming question per passage: (passage id, score, question id)."""
        n = st.q_in.ntotal
        if n == 0:
            return []
        scores, ids = st.q_in.search(qv, min(n, max(4 * k, 50)))
        best: dict[int, tuple[float, int]] = {}
        for q, sc in zip(ids[0].tolist(), scores[0].tolist()):
            if q < 0:
                continue
            pid = st.q_owner.get(q)
            if pid is None or (allowed is not None and pid not in allowed) or pid not in st.info:
                continue
            if pid not in best:
                best[pid] = (sc, q)
        return sorted(((p, sc, q) for p, (sc, q) in best.items()), key=lambda t: -t[1])[:k]

    def bm25_ranked(self, st: State, text: str, n: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        _, ids = st.bm25()
        scores = st.bm25_scores(text)
        if allowed is not None:
            scores = np.where(np.isin(ids, np.fromiter(allowed, np.int64)), scores, 0.0)
        top = desc_order(scores)[:n]
        return [(int(ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def cited_articles(self, st: State, text: str, allowed: set[int] | None) -> list[int]:
        """Passages the query names (著作權法第三條, 勞基法第24條, 第十五條之一), in order of mention."""
        from .citations import find_citations

        found: list[int] = []
        if "條" not in text and "条" not in text:  # every form below names one (most queries do not)
            return found
        names = sorted(st.law_names, key=len, reverse=True)
        # people type a space between the law and the article (性別工作平等法 第1條); statutes never do
        text = re.sub(r"\s+(?=第)", "", text)
        cites = find_citations(text, laws=names)
        spans = [(c.law, c.articles) for c in cites if c.kind in ("article", "range")]
        if not spans:  # what people type without 第: 民法184條
            for m in re.finditer(rf"({'|'.join(map(re.escape, names))})?\s*{_BARE_ARTICLE.pattern}", text):
                num = m.group(2) or m.group(4)
                sub = m.group(3) or m.group(5)
                try:
                    art = article_number(f"第{num}條" + (f"之{sub}" if sub else ""))
                except ValueError:
                    continue
                spans.append((m.group(1), (art,)))
        for law, articles in spans:
            full = st.law_names.get(law) if law else None
            if law and full is None:
                continue
            for art in articles[:1] if len(articles) == 1 else articles:
                if full:
                    pid = st.by_law_article.get((full, art))
                    cands = [pid] if pid is not None else []
                else:  # no law named: that article of every law (the filter narrows it)
                    cands = [p for (lw, a), p in st.by_law_article.items() if a == art]
                for pid in cands:
                    if pid not in found and (allowed is None or pid in allowed):
                        found.append(pid)
        return found

    # ---------------------------------------------------------------- search
    def search(
        self, text: str, k: int = 10, mode: str = "dense", filters: dict | None = None, as_of: Any = None
    ) -> list[Hit]:
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: {', '.join(MODES)}")
        self._check(text, k)
        st = self.state_at(as_of)
        if st.as_of and mode == "questions":
            raise QueryError(
                "pseudo-queries belong to today's articles: search as of a date with dense, bm25 or hybrid"
            )
        allowed = self._allowed(st, filters)
        cited = self.cited_articles(st, text, allowed)
        ranked: list[tuple[int, float, dict[str, Any]]]
        if mode == "bm25":  # the lexical channel alone (what hybrid fuses with the others)
            return self._ranked_hits(st, [(p, s, {}) for p, s in self.bm25_ranked(st, text, k, allowed)], cited, k)
        qv = self.embed_query(text, st)
        if mode == "dense":
            laws = self._laws_only(st, filters)
            ranked = [(p, s, {}) for p, s in self.dense(st, qv, k, allowed, laws)]
        elif mode == "questions":
            if st.q_in.ntotal == 0:
                raise QueryError("this index has no pseudo-queries: build it with --llm to search by questions")
            ranked = [(p, s, {"matched_question": st.q_text[q]}) for p, s, q in self._questions(st, qv, k, allowed)]
        else:
            ranked = [(p, s, {}) for p, s in self.fused(st, text, qv, k, allowed)]
        return self._ranked_hits(st, ranked, cited, k)

    def _ranked_hits(
        self, st: State, ranked: list[tuple[int, float, dict[str, Any]]], cited: list[int], k: int
    ) -> list[Hit]:
        if cited:
            # the article the query names goes first, above any similarity score
            top = max([s for _, s, _ in ranked], default=1.0)
            rest = [r for r in ranked if r[0] not in cited]
            ranked = [(p, top + (len(cited) - i) * 1e-3, {"cited": True}) for i, p in enumerate(cited)] + rest
        return [self._hit(st, p, s, **extra) for p, s, extra in ranked[:k]]

    def _fusion(self, st: State, text: str, qv: np.ndarray, depth: int) -> np.ndarray:
        """Reciprocal rank fusion over the whole library, one score per passage of `st.ids`: the
        dense rank and the BM25 rank of every passage, and the rank among the top `depth` incoming
        questions (× question_weight). Ranks over the whole library, not top-50 lists, so that hybrid
        search and hop search's SIM are one and the same score (on the STARD dev half this is worth
        +0.3 points recall@10 at rrf_k 30 and nothing at 60: consistency, not accuracy, is the why)."""
        rrf_k, q_weight = self.settings.rrf_k, self.settings.question_weight
        n = len(st.ids)
        fused = np.zeros(n)
        if not n:
            return fused
        ranks = np.empty(n, np.int64)
        with blas_threads(self._threads):
            dense = st.matrix @ qv[0]
        ranks[desc_order(dense)] = np.arange(n)
        fused += 1.0 / (rrf_k + ranks + 1)
        scores = st.bm25_scores(text)
        pos = st.bm25_positions()
        hit = np.flatnonzero((scores > 0) & (pos >= 0))
        order = hit[desc_order(scores[hit])]
        fused[pos[order]] += 1.0 / (rrf_k + np.arange(len(order)) + 1)
        if st.q_in.ntotal and q_weight > 0:
            for rank, (pid, _, _) in enumerate(self._questions(st, qv, depth, None)):
                row = st.row_of.get(pid)
                if row is not None:
                    fused[row] += q_weight / (rrf_k + rank + 1)
        return fused

    def fused(
        self, st: State, text: str, qv: np.ndarray, k: int, allowed: set[int] | None, depth: int | None = None
    ) -> list[tuple[int, float]]:
        """The best max(k, depth) passages by library-wide fusion (`_fusion`), within `allowed`."""
        depth = depth or max(50, 5 * k)
        fused = self._fusion(st, text, qv, depth)
        if allowed is not None:
            fused = np.where(np.isin(st.ids, np.fromiter(allowed, np.int64)), fused, 0.0)
        n = min(max(k, depth), len(fused))
        if not n:
            return []
        top = np.argpartition(-fused, n - 1)[:n]
        top = top[np.argsort(-fused[top], kind="stable")]
        return [(int(st.ids[i]), float(fused[i])) for i in top if fused[i] > 0]

    def fusion_scores(self, st: State, text: str, qv: np.ndarray, depth: int) -> dict[int, float]:
        """`_fusion` as {passage id: score}."""
        fused = self._fusion(st, text, qv, depth)
        return {int(p): float(f) for p, f in zip(st.ids, fused)}

    # ---------------------------------------------------------------- graph
    def _edge_dict(self, st: State, e, direction: str) -> dict:
        other = int(e["target"] if direction == "out" else e["source"])
        key, law, article, label, text, _, _ = st.info[other]
        kind = EDGE_KINDS[int(e["kind"])]
        d = {
            "direction": direction,
            "kind": kind,
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

    def _out_positions(self, st: State, pid: int) -> range:
        a, b = st.edge_start.get(pid, (0, 0))
        return range(a, b)

    @staticmethod
    def _pid(st: State, passage: int | str) -> int:
        """The row id of a passage (by id or key) the state holds; KeyError if none."""
        pid = st.by_key.get(passage) if isinstance(passage, str) else passage
        if pid is None or pid not in st.info:
            raise KeyError(passage)
        return pid

    def passage_brief(self, passage: int | str, as_of: Any = None) -> dict:
        """key, law, label, article of a passage the index (as of the date) holds; KeyError if none."""
        st = self.state_at(as_of)
        key, law, article, label, *_ = st.info[self._pid(st, passage)]
        return {"key": key, "law": law, "label": label, "article": article}

    def neighbors(
        self, passage: int | str, direction: str = "out", kinds: Iterable[str] | None = None, as_of: Any = None
    ) -> list[dict]:
        if direction not in ("out", "in", "both"):
            raise QueryError("direction must be out, in or both")
        kinds = set(kinds) if kinds else set(EDGE_KINDS)
        if kinds - set(EDGE_KINDS):
            raise QueryError(f"unknown edge kind {sorted(kinds - set(EDGE_KINDS))[0]!r}: {', '.join(EDGE_KINDS)}")
        st = self.state_at(as_of)
        pid = self._pid(st, passage)
        out = []
        if direction in ("out", "both"):
            out += [
                self._edge_dict(st, st.edges[i], "out")
                for i in self._out_positions(st, pid)
                if EDGE_KINDS[int(st.edges[i]["kind"])] in kinds
            ]
        if direction in ("in", "both"):
            out += [
                self._edge_dict(st, st.edges[i], "in")
                for i in st.in_edges.get(pid, [])
                if EDGE_KINDS[int(st.edges[i]["kind"])] in kinds
            ]
        return sorted(out, key=lambda d: -d["score"])

    # ---------------------------------------------------------------- hop search
    def hop_search(
        self,
        text: str,
        k: int = 10,
        n_hop: int = 2,
        mode: str = "similarity",
        filters: dict | None = None,
        as_of: Any = None,
        deadline: Deadline | None = None,
    ) -> HopHits:
        """HopRAG retrieve–reason–prune: enter at the best passages, follow at each the edge (out,
        or a citation against its direction) to the most relevant neighbour, or none, for n_hop
        rounds, count visits, rank by H = (1-w)·SIM + w·IMP.
        llm mode: every LLM call and retry lies within `deadline` (default: hop_llm_deadline_s from
        now; its cancel event stops the LLM work too); past it the similarity choice stands."""
        if mode not in HOP_MODES:
            raise QueryError(f"unknown hop mode {mode!r}: {', '.join(HOP_MODES)}")
        self._check(text, k)
        s = self.settings
        if not 0 <= n_hop <= s.max_hops:
            raise QueryError(f"n_hop must be between 0 and {s.max_hops}")
        st = self.state_at(as_of)
        allowed = self._allowed(st, filters)
        llm = self._hop_llm() if mode == "llm" and n_hop > 0 else None
        spent = _LLMSpend(deadline=deadline or Deadline(s.hop_llm_deadline_s), breaker=Breaker(s.llm_breaker_failures))
        qv = self.embed_query(text, st)
        # SIM: reciprocal rank fusion over the whole library (dense rank, BM25 rank, and the rank
        # among incoming questions), so a passage reached by a hop is judged as an entry would be.
        fused = self._fusion(st, text, qv, depth=max(50, 5 * k))
        by_rank = np.argsort(-fused, kind="stable")
        order = (int(st.ids[i]) for i in by_rank)
        top_rrf = float(fused[by_rank[0]]) if len(fused) and fused[by_rank[0]] > 0 else 1.0

        # SIM a passage holds of its own, or passed to it over a citation with a legal role (the
        # article that punishes a breach of a relevant duty is as relevant as hop_role_weight says)
        passed: dict[int, float] = {}

        def own_sim(pid: int) -> float:
            row = st.row_of.get(pid)
            return float(fused[row]) / top_rrf if row is not None else 0.0

        def sim(pid: int) -> float:
            return max(own_sim(pid), passed.get(pid, 0.0))

        # a query naming a hundred articles must not make a hundred entries: k in all
        cited = self.cited_articles(st, text, allowed)[:k]
        named = set(cited)
        entries = cited + list(
            islice((p for p in order if (allowed is None or p in allowed) and p not in named), k - len(cited))
        )
        paths: dict[int, list[dict]] = {p: [] for p in entries}
        arrivals: Counter = Counter()
        steps: list[dict] = []
        expanded: set[int] = set()
        judged: dict[int, list[_Option]] = {}  # llm mode: a passage is judged once per query
        frontier = entries
        for _ in range(n_hop):
            frontier = [v for v in frontier if v not in expanded][:k]
            if not frontier:
                break
            expanded.update(frontier)
            options = {v: self._hop_options(st, qv, v, sim, own_sim(v), allowed) for v in frontier}
            picks = {v: self._choose_similarity(opts) for v, opts in options.items()}
            if llm is not None:
                picks.update(self._choose_llm(st, text, llm, frontier, options, picks, judged, spent))
            reached: list[int] = []
            for v in frontier:
                # v is expanded once and its options name each target once: one arrival per (v, t)
                for o in picks[v]:
                    arrivals[o.target] += 1
                    if o.passed:
                        passed[o.target] = max(passed.get(o.target, 0.0), o.passed)
                    step = self._step(st, v, o)
                    steps.append(step)
                    if o.target not in paths:
                        paths[o.target] = paths[v] + [step]
                    reached.append(o.target)
            frontier = sorted(dict.fromkeys(reached), key=lambda p: -sim(p))
        if llm is not None and spent.calls and spent.failures == spent.calls and not spent.deadline_hit:
            raise HopLLMError(f"every LLM call of this hop search failed ({spent.calls}): {spent.public_reason()}")
        top_sim = max((sim(p) for p in paths), default=1.0) or 1.0
        # Visits: an entry counts once (being chosen as an entry is one vote, as in HopRAG), each
        # arrival over an edge once more. IMP is relative to the most-visited passage, in [0, 1]
        # like SIM: a walk that only reaches each passage once changes nothing (all IMP = 1, the
        # ranking is SIM's), and a passage several relevant passages lead to rises, entry or not.
        visits = Counter(entries) + arrivals
        most = max(visits.values(), default=0)
        w = s.hop_imp_weight
        scored = []
        for p in paths:
            s_norm = sim(p) / top_sim
            imp = visits[p] / most if most else 0.0
            scored.append(((1 - w) * s_norm + w * imp + (1.0 if p in named else 0.0), p, s_norm, imp))
        scored.sort(key=lambda t: -t[0])
        return HopHits(
            [
                self._hit(st, p, h, sim=round(sn, 6), imp=round(i, 6), path=tuple(paths[p]), cited=p in named)
                for h, p, sn, i in scored[:k]
            ],
            llm_calls=spent.calls,
            llm_failures=spent.failures,
            steps=steps,
            deadline_hit=spent.deadline_hit,
            generation=st.generation,
        )

    def _hop_options(
        self, st: State, qv: np.ndarray, v: int, sim, v_own: float, allowed: set[int] | None
    ) -> list[_Option]:
        """Where the walk may go from v, best first: its out-edges, and the citation and structural
        edges into v taken backwards (the penalty or exception article that cites v). One option
        per target: its SIM, tie-broken by the question's cosine to the query. Over a citation with
        a legal role, the target's SIM is at least hop_role_weight × v's own SIM (only what v holds
        of its own passes: a penalty article reached so does not lift the other duties it punishes)."""
        best: dict[int, _Option] = {}
        role_weight = self.settings.hop_role_weight
        passing = role_weight * v_own

        def consider(t: int, pos: int, direction: str, kind: str, q: int) -> None:
            if t == v or t not in st.info or (allowed is not None and t not in allowed):
                return
            qcos = float(st.q_out_matrix[st.q_out_row[q]] @ qv[0]) if q >= 0 and q in st.q_out_row else -1.0
            own = sim(t)
            given = passing if role_weight and int(st.edges["role"][pos]) and passing > own else 0.0
            o = _Option(t, pos, direction, kind, max(own, given), qcos, given)
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

    def _choose_similarity(self, options: list[_Option]) -> list[_Option]:
        s = self.settings
        return [o for o in options[: s.hop_branch] if o.sim >= s.hop_min_sim]  # none below hop_min_sim

    def _step(self, st: State, v: int, o: _Option) -> dict:
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

    def _hop_llm(self):
        from .llm.runner import get_llm

        llm = get_llm(self.db.get_meta("llm") or self.settings.llm, self.settings)
        if llm is None:
            raise QueryError("hop mode 'llm' needs an LLM: build the index with --llm, or set HOPRAG_LLM")
        return llm

    def _option_line(self, st: State, n: int, o: _Option) -> str:
        _, law, article, label, body, _, _ = st.info[o.target]
        if o.kind == "question":
            q = int(st.edges["out_q"][o.pos])
            relation = f"問題：{st.q_text.get(q, '')}／對應：{st.q_text.get(int(st.edges['in_q'][o.pos]), '')}"
        elif o.kind == "citation":
            role = _ROLE_WORDS.get(EDGE_ROLES[int(st.edges["role"][o.pos])])
            relation = ("引用" if o.direction == "out" else "被引用") + (
                f"（{role[o.direction == 'in']}）" if role else ""
            )
        else:
            relation = "母法授權條文" if o.direction == "out" else "施行細則"
        snippet = " ".join(body.split())[:120]
        return f"{n}. {law} {label or article}｜{relation}｜{snippet}"

    def _choose_llm(
        self,
        st: State,
        text: str,
        llm,
        frontier: list[int],
        options: dict[int, list[_Option]],
        fallback: dict[int, list[_Option]],
        judged: dict[int, list[_Option]],
        spent: _LLMSpend,
    ) -> dict[int, list[_Option]]:
        """Ask the LLM which neighbours of each frontier passage help answer the query: at most
        hop_max_llm_calls per query, the most relevant passages first; the others, and any call
        that fails after its retries, keep the similarity choice (`fallback`)."""
        from .llm.base import LLMError
        from .llm.runner import LLMRequest, run_requests_sync, runner_options

        s = self.settings
        branch = s.hop_branch
        ask = [v for v in frontier if options[v] and v not in judged][: max(0, s.hop_max_llm_calls - spent.calls)]
        if spent.deadline.expired or spent.breaker.tripped:
            spent.deadline_hit = spent.deadline_hit or spent.deadline.expired
            ask = []  # no time left, or no LLM there: the similarity choice stands
        if not ask:
            return {v: judged[v] for v in frontier if v in judged}
        schema = {
            "type": "object",
            "properties": {"helpful": {"type": "array", "items": {"type": "integer"}, "maxItems": branch}},
            "required": ["helpful"],
        }
        shown: dict[str, list[_Option]] = {}
        requests = []
        for v in ask:
            opts = options[v][: s.hop_llm_options]
            shown[str(v)] = opts
            _, law, article, label, body, _, _ = st.info[v]
            prompt = (
                f"使用者的問題：{text}\n\n目前條文：{law} {label or article}\n{body[:800]}\n\n"
                "下列是可以從此條文繼續查閱的條文（編號. 條文｜關係｜內容開頭）：\n"
                + "\n".join(self._option_line(st, n, o) for n, o in enumerate(opts))
                + f"\n\n請選出最有助於回答使用者問題的條文編號（至多 {branch} 個）；"
                '都沒有幫助時回傳空陣列。以 JSON 回答：{"helpful": [編號]}'
            )
            requests.append(
                LLMRequest(
                    key=str(v),
                    prompt=prompt,
                    schema=schema,
                    system="你是臺灣法律檢索助理，只輸出符合 JSON 結構的內容。",
                )
            )

        def validate(obj):
            chosen = obj.get("helpful") if isinstance(obj, dict) else None
            if not isinstance(chosen, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in chosen):
                raise ValueError("helpful must be a list of integers")
            return chosen

        results = run_requests_sync(
            llm, requests, validate=validate, **runner_options(s), breaker=spent.breaker, deadline=spent.deadline
        )
        for v in ask:
            spent.calls += 1
            chosen = results.get(str(v))
            if isinstance(chosen, list):
                opts = shown[str(v)]
                judged[v] = [opts[i] for i in dict.fromkeys(chosen) if 0 <= i < len(opts)][:branch]
            else:
                spent.failures += 1
                if isinstance(chosen, LLMError):
                    spent.last_error = chosen
                    spent.deadline_hit = spent.deadline_hit or chosen.kind == "deadline"
                judged[v] = fallback[v]
        return {v: judged[v] for v in frontier if v in judged}


# How the LLM is told a citation's role, from the current article: (it cites the option, the
# option cites it), after 引用 / 被引用
_ROLE_WORDS = {
    "punishes": ("處罰違反該條者", "該條處罰違反目前條文者"),
    "exception": ("為該條之例外", "該條為目前條文之例外"),
    "defines": ("解釋該條用語", "該條解釋目前條文用語"),
    "applies": ("準用或適用該條", "該條準用或適用目前條文"),
}


@dataclass(frozen=True)
class _Option:
    """A way on from a frontier passage: an edge position, followed along (out) or against (in) it.
    sim: the target's SIM, or what the edge's legal role passes to it (`passed`, 0 if nothing)."""

    target: int
    pos: int
    direction: str
    kind: str
    sim: float
    qcos: float
    passed: float = 0.0


@dataclass
class _LLMSpend:
    deadline: Deadline
    breaker: Breaker
    calls: int = 0
    failures: int = 0
    last_error: LLMError | None = None
    deadline_hit: bool = False

    def public_reason(self) -> str:
        """Why the LLM failed, without the endpoint's URL or any path (the client may be anyone)."""
        err = self.last_error
        if err is None:
            return "no answer"
        if err.kind == "http":
            return f"the LLM answered HTTP {err.status}"
        return {
            "unreachable": "the LLM endpoint is unreachable",
            "connection": "the LLM endpoint refused or dropped the connection",
            "timeout": "the LLM did not answer in time",
            "malformed": "the LLM's replies did not fit",
            "refused": "the LLM refused",
        }.get(err.kind, err.kind)


class HopHits(list):
    """hop_search's hits (a plain list to callers), with what the llm mode spent on them and every
    edge the walk followed (also to passages that did not make the top k)."""

    def __init__(
        self,
        hits: Iterable[Hit] = (),
        llm_calls: int = 0,
        llm_failures: int = 0,
        steps: Iterable[dict] = (),
        deadline_hit: bool = False,
        generation: int = 0,
    ):
        super().__init__(hits)
        self.llm_calls = llm_calls
        self.llm_failures = llm_failures
        self.steps = list(steps)
        self.deadline_hit = deadline_hit  # llm mode ran out of time: the rest chose by similarity
        self.generation = generation  # the committed generation the walk ran on

    def to_dict(self) -> dict:
        """The answer as `POST /hop-search` and `hoprag hop --json` give it."""
        return {
            "hits": [h.to_dict() for h in self],
            "generation": self.generation,
            "llm_calls": self.llm_calls,
            "llm_failures": self.llm_failures,
            "deadline_hit": self.deadline_hit,
            "steps": self.steps,
        }
