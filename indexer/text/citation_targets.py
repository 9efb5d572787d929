"""Resolving citations to passages: which article of which law in a Library each reference found
by citation_parser.py lands on (`<pcode>:<article>` keys), giving the citation edges of the HopRAG
graph, and the names a law is cited by.

Public API:
    CitationEdge                          source key -> target key, with the span that made it
    CitationReport                        edges, resolved / unresolved counts, unresolved spans, counts by
                                          kind (article, range, relative, same, parent, cross-law,
                                          structural) and unresolved by reason
    resolve_citations(library, progress=None) -> CitationReport   progress("citations", laws done, laws)
    law_aliases(name) -> tuple[str, ...]  the names a law is cited by (刑法 for 中華民國刑法)
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..passages import Document, Library, Passage
from .citation_parser import NUMBER, Citation, find_citations, is_anaphor, is_self, to_traditional
from .citation_roles import sentence_index
from .numerals import article_number

__all__ = ["CitationEdge", "CitationReport", "resolve_citations", "law_aliases"]


@dataclass(frozen=True)
class CitationEdge:
    """One edge of the graph: an article cites another ("citation"), or a 施行細則 article that
    speaks of 本法 in general hangs off the act's authorizing article ("structural")."""

    source: str  # passage key of the citing article
    target: str  # passage key of the cited article
    span: str  # the reference that made the edge (the first one, if several)
    mutatis: bool = False
    kind: str = "citation"  # "citation" | "structural"
    role: str = ""  # one of ROLES, or "" where no reference between the two says


@dataclass
class CitationReport:
    """What resolve_citations found. A reference counts once, however many articles it names."""

    edges: list[CitationEdge] = field(default_factory=list)
    resolved: int = 0  # references that found their article(s)
    unresolved: int = 0  # references to laws outside the library or missing articles
    unresolved_spans: list[tuple[str, str]] = field(default_factory=list)  # (source key, span)
    # Resolved references by what they are: "article" / "range" / "relative" / "same" within one law,
    # "parent" (本法 in a 施行細則), "cross-law" (民法第184條 elsewhere); plus "structural" edges.
    by_kind: Counter = field(default_factory=Counter)
    unresolved_by_reason: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def edges_by_kind(self) -> Counter:
        return Counter(e.kind for e in self.edges)


_STATE_PREFIXES = ("中華民國", "中华人民共和国", "中華人民共和國")


def law_aliases(name: str) -> tuple[str, ...]:
    """The names a law is cited by: its 法規名稱, and without 中華民國 (刑法, 憲法, 憲法增修條文) or
    中华人民共和国 (民法典, 刑法 of the PRC)."""
    for prefix in _STATE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix) + 1:
            return name, name[len(prefix) :]
    return (name,)


_REGULATION = "施行細則"
# A regulation's 第1條 names the act it is made under: 本規則依道路交通管理處罰條例第九十二條…規定訂定之.
# (Acts say 制定: 本法依中華民國憲法第二十四條制定之; an act has no parent.)
_AUTHORIZED = re.compile(r"訂定")
# 本法 with no article after it (本法所稱工資): a 施行細則 explaining its act in general.
_BARE_PARENT = re.compile(rf"本法(?!(?:（以下(?:簡)?稱[^（）]{{1,12}}）)?\s*第\s*{NUMBER}\s*條)")


@dataclass
class _Law:
    name: str
    order: list[Passage]
    index: dict[str, int]  # article number -> position in order
    parent: _Law | None = None
    authorizing: str | None = None  # the parent's article the regulation is made under


def _laws_of(doc: Document) -> list[tuple[str, list[Passage]]]:
    """The laws in a document, each with its articles in order: an official law file is one law;
    a JSONL file of passages (STARD) may hold articles of many, told apart by their `law`."""
    groups: dict[str, list[Passage]] = {}
    for p in doc.passages:
        if p.article:
            groups.setdefault(p.law or doc.name, []).append(p)
    return list(groups.items()) or [(doc.name, [])]


def _article_key(article: str) -> str:
    """'24' as it is; a label (第四百六十五条, 第十五條之一) as its number, as citations name it."""
    try:
        return article_number(article)
    except ValueError:
        return article


class _Resolver:
    def __init__(self, library: Library):
        self.laws: dict[str, _Law] = {}
        self.by_name: dict[str, _Law] = {}
        for doc in library.documents:
            for name, order in _laws_of(doc):
                law = _Law(name, order, {_article_key(p.article): i for i, p in enumerate(order)})
                self.laws[f"{doc.doc_key}\t{name}"] = law
                for alias in law_aliases(name):
                    self.by_name.setdefault(alias, law)
        self.names = tuple(sorted(self.by_name))
        for law in self.laws.values():
            law.parent, law.authorizing = self._parent(law)

    def _parent(self, law: _Law) -> tuple[_Law | None, str | None]:
        """The act a regulation is made under, and the act's authorizing article.

        勞動基準法施行細則 -> 勞動基準法 (by name), and its 第1條 本細則依勞動基準法第八十五條規定訂定之 -> 85.
        A regulation with another name takes the act its 第1條 names.
        """
        name = law.name
        parent = self.by_name.get(name[: -len(_REGULATION)]) if name.endswith(_REGULATION) else None
        first = law.order[law.index["1"]] if "1" in law.index else None
        if first is None or not _AUTHORIZED.search(first.text):
            return parent, None
        for c in find_citations(first.text, self.names):
            named = self.by_name.get(c.law) if c.law else None
            if named is None or named is law or c.kind != "article":
                continue
            parent = parent or named
            if named is parent and c.articles[0] in parent.index:
                return parent, c.articles[0]
        return parent, None

    def law_of(self, c: Citation, here: _Law) -> tuple[_Law | None, str]:
        """The law a reference points into, or None and why not."""
        if c.law is not None:
            law = self.by_name.get(c.law)
            return law, "" if law else "law not in library"
        if is_anaphor(c.qualifier):
            return None, "no law named before 同法/該法"
        if is_self(c.qualifier) and not to_traditional(here.name).endswith(c.qualifier[1:]):
            # 本法 in a 施行細則 (本條例 in a 規則) is the act it is made under; 本細則 is itself.
            if here.parent is None and here.name.endswith(_REGULATION):
                return None, "parent act not in library"
            return here.parent or here, ""
        return here, ""

    def targets(self, c: Citation, law: _Law, at: int) -> tuple[list[Passage], str]:
        """The cited passages, or [] and why not."""
        if c.articles[0].startswith(("prev:", "next:")):
            direction, count = c.articles[0].split(":")
            n = int(count)
            lo, hi = (at - n, at) if direction == "prev" else (at + 1, at + 1 + n)
            if lo < 0 or hi > len(law.order):
                return [], "relative article outside the law"
            return law.order[lo:hi], ""
        missing = [a for a in c.articles if a not in law.index]
        if missing:
            return [], "no such article"
        if c.kind == "range":
            lo, hi = law.index[c.articles[0]], law.index[c.articles[1]]
            if hi < lo:
                return [], "range runs backwards"
            return law.order[lo : hi + 1], ""
        return [law.order[law.index[a]] for a in c.articles], ""


def _category(c: Citation, here: _Law, target: _Law) -> str:
    if target is not here:
        return "parent" if target is here.parent else "cross-law"
    return c.kind


def resolve_citations(library: Library, progress: Callable[[str, int, int], None] | None = None) -> CitationReport:
    """Citation edges between the live articles of a library, and how many references resolved.

    Repealed articles (（刪除）) cite nothing and are cited by nothing: a reference that lands only
    on repealed articles counts as unresolved.
    """
    started = time.perf_counter()
    resolver = _Resolver(library)
    report = CitationReport()
    seen: dict[tuple[str, str], int] = {}  # (source, target) -> position in report.edges

    def add(edge: CitationEdge) -> bool:
        # One edge per (source, target), the first reference kept, with the first role any
        # reference between the two states; never an article to itself.
        if edge.source == edge.target:
            return False
        at = seen.get((edge.source, edge.target))
        if at is not None:
            if edge.role and not report.edges[at].role:
                report.edges[at] = replace(report.edges[at], role=edge.role)
            return False
        seen[(edge.source, edge.target)] = len(report.edges)
        report.edges.append(edge)
        return True

    for done, law in enumerate(resolver.laws.values(), 1):
        if progress is not None:
            progress("citations", done - 1, len(resolver.laws))
        for at, passage in enumerate(law.order):
            if passage.repealed:
                continue
            for c, target_law, targets, reason in _resolve_passage(resolver, law, at, passage):
                live = [t for t in targets if not t.repealed]
                if not live:
                    report.unresolved += 1
                    report.unresolved_by_reason[reason or "repealed article"] += 1
                    report.unresolved_spans.append((passage.key, c.span))
                    continue
                report.resolved += 1
                report.by_kind[_category(c, law, target_law)] += 1
                for t in live:
                    add(CitationEdge(passage.key, t.key, c.span, c.mutatis, "citation", c.role))
            edge = _structural(law, passage)
            if edge is not None and add(edge):
                report.by_kind["structural"] += 1
    if progress is not None:
        progress("citations", len(resolver.laws), len(resolver.laws))
    report.seconds = time.perf_counter() - started
    return report


def _resolve_passage(
    resolver: _Resolver, law: _Law, at: int, passage: Passage
) -> list[tuple[Citation, _Law, list[Passage], str]]:
    """(citation, law it points into, cited passages, why none) for each reference in a passage."""
    citations = find_citations(passage.text, resolver.names)
    resolved: list[tuple[Citation, _Law, list[Passage], str]] = []
    for c in citations:
        target_law, reason = resolver.law_of(c, law)
        if target_law is None:
            resolved.append((c, law, [], reason))
            continue
        targets, reason = resolver.targets(c, target_law, at if target_law is law else -1)
        resolved.append((c, target_law, targets, reason))
    # 依刑法第八十七條第三項前段許可延長監護，第九十一條之一第一項施以強制治療，第九十二條…: once one
    # bare article of a sentence exists only in the law the sentence named, all its bare articles do.
    borrowed: set[tuple[int, str]] = set()
    for c, _, _, reason in resolved:
        if reason != "no such article" or not c.context_law:
            continue
        other = resolver.by_name.get(c.context_law)
        if other is not None and resolver.targets(c, other, -1)[0]:
            borrowed.add((sentence_index(passage.text, c.start), c.context_law))
    if not borrowed:
        return resolved
    out = []
    for c, target_law, targets, reason in resolved:
        if c.context_law and (sentence_index(passage.text, c.start), c.context_law) in borrowed:
            target_law = resolver.by_name[c.context_law]
            targets, reason = resolver.targets(c, target_law, -1)
        out.append((c, target_law, targets, reason))
    return out


def _structural(law: _Law, passage: Passage) -> CitationEdge | None:
    """A 施行細則 article that speaks of 本法 in general hangs off the article that authorizes it."""
    parent = law.parent
    if parent is None or not law.name.endswith(_REGULATION) or not _BARE_PARENT.search(passage.text):
        return None
    target = law.authorizing or ("1" if "1" in parent.index else None)
    if target is None:
        return None
    return CitationEdge(passage.key, parent.order[parent.index[target]].key, "本法", False, "structural")
