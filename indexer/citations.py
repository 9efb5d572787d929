"""Legal citation edges: which article cites which, read from the law texts without an LLM.

Taiwan statutes cite each other in a small set of fixed forms (第三十條, 第十五條之一, 第二十四條第一項第二款,
前條, 前二條, 次條, 本法第X條, 同法第X條, 民法第一百八十四條, 第X條至第Y條, 第X條、第Y條及第Z條, … 準用之).
This module finds them (syntax only) and resolves them to passage keys (`<pcode>:<article>`) in a
Library, giving the citation edges of the HopRAG graph.

Public API:
    Citation                          one reference as written: span, offsets, law, articles, 項/款, 準用
    find_citations(text, laws=()) -> list[Citation]
                                      syntax only; `laws` (known law names) sharpens where a law
                                      name starts and lets 同法/該法 refer to a law named in passing
    CitationEdge                      source key -> target key, with the span that made it
    CitationReport                    edges, resolved / unresolved counts, unresolved spans, counts by
                                      kind (article, range, relative, same, parent, cross-law,
                                      structural) and unresolved by reason
    resolve_citations(library, progress=None) -> CitationReport   progress("citations", laws done, laws)
    law_aliases(name) -> tuple[str, ...]     the names a law is cited by (刑法 for 中華民國刑法)
    ROLES                             ("punishes", "exception", "defines", "applies"): what the citing
                                      article does to the cited one, read from the citing sentence
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from .numerals import NUMBER_CHARS, article_number, cn_to_int
from .passages import Document, Library, Passage

__all__ = ["ROLES", "Citation", "CitationEdge", "CitationReport", "find_citations", "resolve_citations", "law_aliases"]

# --- Simplified Chinese ------------------------------------------------------------------------
# The PRC's statutes cite in the same forms in Simplified characters (第十条, 前条, 本法第二条,
# 《中华人民共和国民法典》第一千一百六十五条, 条/款/项). A text is read through this map, one
# character for one, so every offset, and so every span, is the text's own; law names are compared
# through it too. Only characters of the grammar below and its word lists are mapped.
_S2T = str.maketrans(
    "条项该细则规准适违据参办标纲约后两与并对经过为应属负载系时须视关当于罚处务权义释决订",
    "條項該細則規準適違據參辦標綱約後兩與並對經過為應屬負載係時須視關當於罰處務權義釋決訂",
)


def _trad(text: str) -> str:
    return text.translate(_S2T)


# --- the shapes of a reference ------------------------------------------------------------------

_N = f"[{NUMBER_CHARS}]+"
_CJK = "\u3400-\u9fff"
# 第N項, 第N款, 第N目 and 前段/但書 … narrow an article down; they stay inside the article's span.
_TAIL = rf"(?P<tail>(?:\s*(?:第\s*{_N}\s*[項款目]|前段|後段|但書|本文))*)"
_TOKEN = re.compile(
    rf"(?:(?P<art>第\s*(?P<num>{_N})\s*(?:[-－]\s*(?P<sub1>{_N})\s*)?條(?:\s*之\s*(?P<sub2>{_N}))?)"
    # 前條文 (修正施行前條文), 前條款 … are no article references, 前條文書 is; 後 needs a count (後二條).
    rf"|(?P<rel>(?P<dir>前|次|後)(?P<count>[一二兩三四五六七八九十]*)條(?![例件款]|文(?!書)))"
    # 同條/該條 point back to the article cited just before; 相同條件, 各該條, 該條款 do not.
    rf"|(?P<same>(?<![各相])[同該]條(?![文例件款]))){_TAIL}"
)
_FRAGMENT = re.compile(rf"第\s*({_N})\s*([項款目])")
# What may stand between two references of one list or range: separators and 項/款 of the first.
_GAP = re.compile(rf"(?:\s|、|及|或|與|暨|和|至|到|並|第\s*{_N}\s*[項款目]|前段|後段|但書|本文)*")
_LAST_SEPARATOR = re.compile(r".*(、|及|或|與|暨|和|至|到|並)", re.S)
# A list of named things, each with its article (刑法第二百二十一條之強制性交罪、第二百二十二條之…罪):
# no comma between, so the later articles are still of the law named first.
_LIST_GAP = re.compile(r"[^，,：:。；\n]{0,40}?(?:、|及|或|與|暨|和)\s*")
# The sentence a reference stands in decides 準用 (…之規定，於前項情形準用之).
_SENTENCE_END = re.compile(r"[。；\n]")
_CLAUSE_END = re.compile(r"[，,。；\n：:]")

# --- the law a reference names ------------------------------------------------------------------

# 規定, 解釋 and 決定 end the titles of PRC regulations and judicial interpretations
_LAW_SUFFIX = re.compile(r"(?:法|法典|條例|規則|細則|通則|辦法|標準|準則|規程|公約|條文|綱要|規定|解釋|決定)$")
_SELF = re.compile(r"本(?:法|條例|細則|規則|憲法|通則|辦法|準則|標準|規程|規定|解釋|決定)$")
# 《中华人民共和国民法典》: a title in book brackets just before the reference
_TITLE = re.compile(r"《([^《》]{2,60})》\s*$")
# 同法 refers back, but 合同法 (the PRC's contract law) is a name
_ANAPHOR = re.compile(r"(?:(?<!合)同|該)(?:法|條例|細則|規則)$")
_RUN = re.compile(rf"[{_CJK}]+$")
_DEFINED_AS = re.compile(r"（以下(?:簡)?稱[^（）]{1,12}）$")
_LEADING_CONJUNCTION = re.compile(r"^(?:及|或|與|暨|和|並|、)+")
# Words that end the text before a law name (依刑法, 不受憲法, 在我國從事就業服務法). A known name
# preceded by anything else is part of a longer name: 陸海空軍刑法 is not 刑法, 全民健康保險法 not 保險法.
_BEFORE_LAW = re.compile(
    r"(?:依照|依據|根據|按照|依|按|照|比照|適用|準用|違反|從事|受|參酌|參照|視同|符合|超過|罹患|行使|相當於|較|包括|指|有|在"
    r"|對|經過|經|曾|免|已|犯|於|為|及|或|與|暨|、|並|除|就|將|因|由|應|得|但|即|屬|具|之|服|負|載|附|係|如"
    r"|而|則|者|時|所|以|乃|又|且|亦|均|仍|另|再|須|至|到|其|不|未)$"
)
# The same idea for cutting an unknown law's name out of the text before it; fewer words, because
# this cut may land inside a name (就業服務法, 組織犯罪防制條例, 入出國及移民法).
_TRIM = re.compile(
    r"(?:依照|依據|根據|按照|依|按|比照|適用|準用|違反|從事|不受|受|參酌|參照|視同|符合|超過|罹患|行使|相當於|較|包括|指|在"
    r"|對於|經過|經|曾|免|已|犯(?!罪)|於|為|並|或|除|就(?!業)|因|由|應|(?<!所)得|但|屬|具|負|載|附|係|有(?!關))"
)
# Words ending like a law name that name no law (依法, 違法), or name this law (現行條文第十九條).
_NOT_A_LAW = {
    "依法",
    "違法",
    "合法",
    "方法",
    "辦法",
    "他法",
    "前法",
    "新法",
    "舊法",
    "立法",
    "司法",
    "非法",
    "不法",
    "執法",
    "條文",
    "修正條文",
    "現行條文",
    "標準",
    "規則",
    "細則",
    "準則",
    "通則",
    "規定",
    "有關規定",
    "相關規定",
    "解釋",
    "決定",
}
_LOOKBACK = 40


@dataclass(frozen=True)
class Citation:
    """One reference to one article, a range of articles, or a relative article, as written."""

    span: str  # exactly as written, law name included (民法第一百八十四條)
    start: int  # offsets of span in the text
    end: int
    law: str | None  # law name as written; None for this law (bare, 本法, 本細則 …)
    articles: tuple[str, ...]  # ("24",), ("15-1",); range: (first, last); relative: ("prev:2",)
    paragraph: int | None = None  # 第N項
    item: int | None = None  # 第N款
    mutatis: bool = False  # the sentence applies it 準用 (mutatis mutandis)
    kind: str = "article"  # "article" | "range" | "relative" | "same" (同條/該條)
    qualifier: str = ""  # how the law was designated: "", "本法", "本細則", "同法", "該條例" …
    context_law: str | None = None  # bare reference: a law named before it in the same sentence
    role: str = ""  # what the citing sentence does with it, where it says so: one of ROLES, or ""


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


# --- finding references (syntax) ---------------------------------------------------------------


def _article(m: re.Match) -> str:
    main = cn_to_int(m.group("num"))
    sub = m.group("sub1") or m.group("sub2")
    return f"{main}-{cn_to_int(sub)}" if sub else str(main)


def _fragments(tail: str) -> tuple[int | None, int | None]:
    paragraph = item = None
    for number, level in _FRAGMENT.findall(tail):
        if level == "項" and paragraph is None:
            paragraph = cn_to_int(number)
        elif level == "款" and item is None:
            item = cn_to_int(number)
    return paragraph, item


def _trim_unknown(run: str) -> str:
    """Cut the name of a law we do not know out of the words before it (依勞工保險條例 -> 勞工保險條例)."""
    best = run
    for m in _TRIM.finditer(run):
        rest = run[m.end() :]
        suffix = _LAW_SUFFIX.search(rest)
        if suffix and suffix.start() > 0:  # a name, not the bare suffix (法, 條例)
            best = rest
    return best


class _Parser:
    """find_citations for one set of known law names (compiled once, then cached)."""

    def __init__(self, laws: tuple[str, ...]):
        self.names = frozenset(laws)
        self.lengths = sorted({len(n) for n in laws}, reverse=True)
        # Known names anywhere in the text (依公司法設立…，不受同法第二百十六條), for 同法/該法; and
        # unknown 條例 named in passing (適用勞工退休金條例…依該條例第十一條), so 該條例 finds no wrong one.
        names = sorted(self.names, key=len, reverse=True)
        known = "|".join(map(re.escape, names))
        self.mention = re.compile(rf"(?:{known})|[{_CJK}]{{2,24}}?條例" if known else rf"[{_CJK}]{{2,24}}?條例")

    def _known_suffix(self, run: str) -> str | None:
        for n in self.lengths:
            name = run[-n:]
            if len(run) >= n and name in self.names and (n == len(run) or _BEFORE_LAW.search(run[:-n])):
                return name
        return None

    def law_before(self, text: str, pos: int, floor: int) -> tuple[str | None, str, int]:
        """(law, qualifier, start of the law's name) for a reference starting at pos."""
        end = pos
        note = _DEFINED_AS.search(text, max(floor, pos - 20), pos)  # 勞動基準法（以下簡稱本法）第八十五條
        if note:
            end = note.start()
        title = _TITLE.search(text, max(floor, end - 64), end)
        if title:
            return title.group(1), "", title.start()
        run_m = _RUN.search(text, max(floor, end - _LOOKBACK), end)
        if not run_m:
            return None, "", pos
        run = _LEADING_CONJUNCTION.sub("", run_m.group(0))
        if not run:
            return None, "", pos
        base = end - len(run)
        for pattern in (_SELF, _ANAPHOR):
            m = pattern.search(run)
            if m:
                return None, m.group(0), base + m.start()
        known = self._known_suffix(run)
        if known:
            return known, "", end - len(known)
        if _LAW_SUFFIX.search(run):
            name = _trim_unknown(run)
            if name in _NOT_A_LAW or any(name.endswith(w) for w in ("現行條文", "修正條文")):
                return None, "", pos
            return name, "", end - len(name)
        return None, "", pos

    def mentions(self, text: str, found: list[Citation]) -> list[tuple[int, str]]:
        out = [(c.start, c.law) for c in found if c.law and not c.qualifier]
        for m in self.mention.finditer(text):
            name = m.group(0)
            if name in self.names:
                before = _RUN.search(text, max(0, m.start() - _LOOKBACK), m.start())
                if before and not _BEFORE_LAW.search(before.group(0)):
                    continue
            else:
                name = _trim_unknown(name)
                if _SELF.search(name) or _ANAPHOR.search(name) or name == "條例":
                    continue
            out.append((m.start(), name))
        return sorted(out)

    def find(self, text: str) -> list[Citation]:
        found: list[Citation] = []
        prev_end = 0
        for m in _TOKEN.finditer(text):
            if m.group("rel") and m.group("dir") == "後" and not m.group("count"):
                continue
            paragraph, item = _fragments(m.group("tail"))
            span_end = m.end("art") if m.group("art") else m.end("rel") if m.group("rel") else m.end("same")
            span_end = m.end() if m.group("tail") else span_end
            prev = found[-1] if found else None
            chained = prev is not None and _GAP.fullmatch(text, prev_end, m.start()) is not None
            if m.group("art"):
                number = _article(m)
                if chained and prev is not None and prev.kind != "relative":
                    sep = _LAST_SEPARATOR.match(text, prev_end, m.start())
                    if sep and sep.group(1) in "至到" and prev.kind == "article":
                        # 第X條至第Y條: one reference to every article from X to Y.
                        found[-1] = replace(
                            prev,
                            span=text[prev.start : span_end],
                            end=span_end,
                            articles=(prev.articles[0], number),
                            kind="range",
                        )
                        prev_end = m.end()
                        continue
                    law, qualifier, start = prev.law, prev.qualifier, m.start()
                elif chained:
                    law, qualifier, start = None, "", m.start()
                else:
                    law, qualifier, start = self.law_before(text, m.start(), prev_end)
                    if (
                        law is None
                        and not qualifier
                        and prev is not None
                        and prev.kind != "relative"
                        and (prev.law or prev.qualifier)
                        and _LIST_GAP.fullmatch(text, prev_end, m.start())
                    ):
                        law, qualifier = prev.law, prev.qualifier
                found.append(
                    Citation(
                        text[start:span_end],
                        start,
                        span_end,
                        law,
                        (number,),
                        paragraph,
                        item,
                        kind="article",
                        qualifier=qualifier,
                    )
                )
            elif m.group("rel"):
                count = cn_to_int(m.group("count")) if m.group("count") else 1
                direction = "prev" if m.group("dir") == "前" else "next"
                found.append(
                    Citation(
                        text[m.start() : span_end],
                        m.start(),
                        span_end,
                        None,
                        (f"{direction}:{count}",),
                        paragraph,
                        item,
                        kind="relative",
                    )
                )
            else:
                if prev is None:
                    prev_end = m.end()
                    continue  # 該條 with nothing cited before it points to something we cannot know
                articles = prev.articles[-1:] if prev.kind == "range" else prev.articles
                found.append(
                    Citation(
                        text[m.start() : span_end],
                        m.start(),
                        span_end,
                        prev.law,
                        articles,
                        paragraph,
                        item,
                        kind="same",
                        qualifier=prev.qualifier,
                    )
                )
            prev_end = m.end()
        return self._finish(text, found)

    def _finish(self, text: str, found: list[Citation]) -> list[Citation]:
        if not found:
            return found
        mentions = None
        out: list[Citation] = []
        named: Citation | None = None  # the last reference naming a law, for context_law
        for c in found:
            if c.qualifier and _ANAPHOR.fullmatch(c.qualifier):
                # 同法/該法: the law named most recently before it; 該條例 only a 條例.
                mentions = self.mentions(text, found) if mentions is None else mentions
                suffix = c.qualifier[1:]
                earlier = [n for pos, n in mentions if pos < c.start and n.endswith(suffix)]
                c = replace(c, law=earlier[-1] if earlier else None)
            if (
                c.law is None
                and not c.qualifier
                and c.kind in ("article", "range")
                and named is not None
                and not _SENTENCE_END.search(text, named.end, c.start)
            ):
                c = replace(c, context_law=named.law)
            if c.law is not None:
                named = c
            mutatis = "準用" in text and _mutatis(text, c)
            out.append(replace(c, mutatis=mutatis, role=_role(text, c, mutatis)))
        return out


def _mutatis(text: str, c: Citation) -> bool:
    """Whether the sentence applies the cited articles 準用 (mutatis mutandis), not merely mentions 準用."""
    return _verb_governs(text, c, "準用")


def _verb_governs(text: str, c: Citation, verb: str) -> bool:
    """Whether `verb` (準用, 適用, 不適用) in the reference's sentence has the cited articles as its
    object, not merely stands beside them."""
    start, end = _sentence_bounds(text, c)
    if verb not in text[start:end]:
        return False
    clause_start = max((m.end() for m in _CLAUSE_END.finditer(text, start, c.start)), default=start)
    if verb in text[clause_start : c.start]:
        return True  # 準用第X條、第Y條
    clause_m = _CLAUSE_END.search(text, c.end, end)
    clause_end = clause_m.start() if clause_m else end
    rest = text[c.end : clause_end]
    if verb in rest:
        # 第X條規定於前項準用之; but in 於第X條之參加訴訟準用之, X is where, not what, 準用 applies.
        return not text[clause_start : c.start].endswith("於")
    # 第X條之規定，於前項情形準用之 — but not 依第X條聲明異議，…準用前三條 (that is 前三條's 準用).
    following = text[clause_end + 1 : end]
    return rest.endswith("規定") and following.startswith(("於", "對於", "在")) and verb in following


def _sentence_bounds(text: str, c: Citation) -> tuple[int, int]:
    start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, c.start)), default=0)
    end_m = _SENTENCE_END.search(text, c.end)
    return start, end_m.start() if end_m else len(text)


# --- what the citing article does with the cited one ---------------------------------------------

ROLES = ("punishes", "exception", "defines", "applies")
# A sanction anywhere in the citing article (an item 一、違反第五條規定者 takes the penalty its
# article's head names). Simplified forms where the one-character map does not reach (没收, 减轻).
_PENALTY = re.compile(r"罰鍰|罰金|罰款|徒刑|拘役|處罰|沒收|没收|[減减][輕轻]其刑|免除其刑|加重其刑|吊扣|吊銷|吊销")
_BREACH = re.compile(r"違反|違背|未依|不依|未遵守|不遵守|未遵照")
# 第X條所稱勞工，指… / 第X条所称…是指…: the citing article says what a word of the cited one means
_DEFINES = re.compile(r"(?:之?規定)?(?:所稱|所称|所定|所謂|所谓|所指)[^。；\n]{1,30}?(?:，|,)?(?:係指|是指|指|謂|谓)")
# 除第X條另有規定外 (but not 刪除, 免除, 解除, 排除 …)
_EXCEPT = re.compile(r"(?<![刪删免解排扣消廢废革拆剔切])除")
# 除第X條規定外，並應… is "besides", not "except"
_BESIDES = re.compile(r"外[，,]?\s*(?:並|亦|另|尚|還|还)")
# Placeholders of the same length keep offsets while one verb is read apart from a longer one.
_NEGATED_APPLY = re.compile(r"不適用|停止適用")


def _role(text: str, c: Citation, mutatis: bool) -> str:
    """What the citing sentence does with the cited articles, where its words say it: punishes
    (違反第X條…者，處…罰鍰; 犯第X條之罪…減輕其刑), exception (不適用第X條, 不受第X條之限制,
    除第X條…外, …但第X條…不在此限, 第X條以外), defines (第X條所稱…，指…), applies (準用, 適用). "" otherwise:
    a bare 依第X條 is a mention, not a role."""
    start, end = _sentence_bounds(text, c)
    clause_start = max((m.end() for m in _CLAUSE_END.finditer(text, start, c.start)), default=start)
    clause_m = _CLAUSE_END.search(text, c.end, end)
    before, after = text[clause_start : c.start], text[c.end : clause_m.start() if clause_m else end]
    if text.startswith("以外", c.end):
        return "exception"  # 犯前二條以外之罪
    if _PENALTY.search(text) and (_BREACH.search(before) or ("犯" in before and "罪" in after)):
        return "punishes"
    negated = _NEGATED_APPLY.sub(lambda m: "不" * (len(m.group()) - 3) + "不適用", text)
    if (
        ("不受" in before and "限制" in text[c.end : end])
        or (_EXCEPT.search(before) and _BESIDES.search(text, c.end, end) is None and "外" in text[c.end : end])
        or ("不在此限" in text[start:end] and "但" in text[start : c.start])
        or _verb_governs(negated, c, "不適用")
    ):
        return "exception"
    if _DEFINES.match(text, c.end, end):
        return "defines"
    if mutatis or _verb_governs(_NEGATED_APPLY.sub(lambda m: "＿" * len(m.group()), text), c, "適用"):
        return "applies"
    return ""


@lru_cache(maxsize=8)
def _parser(laws: tuple[str, ...]) -> _Parser:
    return _Parser(laws)


@lru_cache(maxsize=8)
def _known(laws: tuple[str, ...]) -> tuple[dict[str, str], bool]:
    """{law name as read: as the caller writes it}, and whether the two are the same throughout:
    once per set of names, not once per passage (a library's names, 6,000 times over, were a
    quarter of its citation parsing)."""
    known = {_trad(name): name for name in laws}
    return known, all(k == v for k, v in known.items())


def find_citations(text: str, laws: Iterable[str] = ()) -> list[Citation]:
    """Every article reference in text, in order. Paragraph-only references (前項, 第二項) are none.

    `laws`: law names (and aliases) the caller knows; without them a law's name is cut out of the
    text before 第 by the words that usually precede one (依, 適用, 違反 …). Traditional and
    Simplified Chinese alike: spans and known law names come back as the text and `laws` write them.
    """
    trad = _trad(text)
    if "條" not in trad:  # every reference names one (條, or 条 read as 條)
        return []
    known, same = _known(laws if isinstance(laws, tuple) else tuple(laws))
    found = _parser(tuple(sorted(known))).find(trad)
    if trad == text and same:
        return found
    return [
        replace(
            c,
            span=text[c.start : c.end],
            law=known.get(c.law, c.law) if c.law else None,
            context_law=known.get(c.context_law, c.context_law) if c.context_law else None,
        )
        for c in found
    ]


# --- resolving references in a library ---------------------------------------------------------

_REGULATION = "施行細則"
# A regulation's 第1條 names the act it is made under: 本規則依道路交通管理處罰條例第九十二條…規定訂定之.
# (Acts say 制定: 本法依中華民國憲法第二十四條制定之; an act has no parent.)
_AUTHORIZED = re.compile(r"訂定")
# 本法 with no article after it (本法所稱工資): a 施行細則 explaining its act in general.
_BARE_PARENT = re.compile(rf"本法(?!(?:（以下(?:簡)?稱[^（）]{{1,12}}）)?\s*第\s*{_N}\s*條)")


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
        if _ANAPHOR.fullmatch(c.qualifier):
            return None, "no law named before 同法/該法"
        if _SELF.fullmatch(c.qualifier) and not _trad(here.name).endswith(c.qualifier[1:]):
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
            borrowed.add((_sentence(passage.text, c.start), c.context_law))
    if not borrowed:
        return resolved
    out = []
    for c, target_law, targets, reason in resolved:
        if c.context_law and (_sentence(passage.text, c.start), c.context_law) in borrowed:
            target_law = resolver.by_name[c.context_law]
            targets, reason = resolver.targets(c, target_law, -1)
        out.append((c, target_law, targets, reason))
    return out


def _sentence(text: str, pos: int) -> int:
    return len(_SENTENCE_END.findall(text, 0, pos))


def _structural(law: _Law, passage: Passage) -> CitationEdge | None:
    """A 施行細則 article that speaks of 本法 in general hangs off the article that authorizes it."""
    parent = law.parent
    if parent is None or not law.name.endswith(_REGULATION) or not _BARE_PARENT.search(passage.text):
        return None
    target = law.authorizing or ("1" if "1" in parent.index else None)
    if target is None:
        return None
    return CitationEdge(passage.key, parent.order[parent.index[target]].key, "本法", False, "structural")
