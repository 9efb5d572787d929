"""Finding legal citations in a text: the syntax of a reference, without an LLM and without a
library. Taiwan statutes cite each other in a small set of fixed forms (第三十條, 第十五條之一,
第二十四條第一項第二款, 前條, 前二條, 次條, 本法第X條, 同法第X條, 民法第一百八十四條, 第X條至第Y條,
第X條、第Y條及第Z條, … 準用之); the PRC's in the same forms in Simplified characters. Which passage a
reference lands on is citation_targets.py's question; what the citing sentence does with it is
citation_roles.py's.

Public API:
    Citation                              one reference as written: span, offsets, law, articles, 項/款, 準用, role
    find_citations(text, laws=()) -> list[Citation]
                                          `laws` (known law names) sharpens where a law name starts
                                          and lets 同法/該法 refer to a law named in passing
    to_traditional(text) -> str           the text as the grammar reads it, one character for one
    is_anaphor(qualifier) -> bool         同法/該法/該條例: the law named before it
    is_self(qualifier) -> bool            本法/本細則/本條例 …: the citing law (or the act it is made under)
    NUMBER                                the pattern of an article's number (二十四, 24)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from .citation_roles import SENTENCE_END, applies_mutatis, citing_role
from .numerals import NUMBER_CHARS, cn_to_int

__all__ = ["Citation", "find_citations", "to_traditional", "is_anaphor", "is_self", "NUMBER"]

# --- Simplified Chinese ------------------------------------------------------------------------
# The PRC's statutes cite in the same forms in Simplified characters (第十条, 前条, 本法第二条,
# 《中华人民共和国民法典》第一千一百六十五条, 条/款/项). A text is read through this map, one
# character for one, so every offset, and so every span, is the text's own; law names are compared
# through it too. Only characters of the grammar below and its word lists are mapped.
_SIMPLIFIED = "条项该细则规准适违据参办标纲约后两与并对经过为应属负载系时须视关当于罚处务权义释决订"
_S2T = str.maketrans(
    _SIMPLIFIED, "條項該細則規準適違據參辦標綱約後兩與並對經過為應屬負載係時須視關當於罰處務權義釋決訂"
)
# str.translate looks every character up in a dict; one regex pass finds the few texts (about one
# in twenty of Taiwan's) that hold a mapped character at all: a sixth of the time over 30 laws
_ANY_SIMPLIFIED = re.compile(f"[{_SIMPLIFIED}]")


def to_traditional(text: str) -> str:
    return text.translate(_S2T) if _ANY_SIMPLIFIED.search(text) else text


# --- the shapes of a reference ------------------------------------------------------------------

NUMBER = f"[{NUMBER_CHARS}]+"
_CJK = "\u3400-\u9fff"
# 第N項, 第N款, 第N目 and 前段/但書 … narrow an article down; they stay inside the article's span.
_TAIL = rf"(?P<tail>(?:\s*(?:第\s*{NUMBER}\s*[項款目]|前段|後段|但書|本文))*)"
_TOKEN = re.compile(
    rf"(?:(?P<art>第\s*(?P<num>{NUMBER})\s*(?:[-－]\s*(?P<sub1>{NUMBER})\s*)?條(?:\s*之\s*(?P<sub2>{NUMBER}))?)"
    # 前條文 (修正施行前條文), 前條款 … are no article references, 前條文書 is; 後 needs a count (後二條).
    rf"|(?P<rel>(?P<dir>前|次|後)(?P<count>[一二兩三四五六七八九十]*)條(?![例件款]|文(?!書)))"
    # 同條/該條 point back to the article cited just before; 相同條件, 各該條, 該條款 do not.
    rf"|(?P<same>(?<![各相])[同該]條(?![文例件款]))){_TAIL}"
)
_FRAGMENT = re.compile(rf"第\s*({NUMBER})\s*([項款目])")
# What may stand between two references of one list or range: separators and 項/款 of the first.
_GAP = re.compile(rf"(?:\s|、|及|或|與|暨|和|至|到|並|第\s*{NUMBER}\s*[項款目]|前段|後段|但書|本文)*")
_LAST_SEPARATOR = re.compile(r".*(、|及|或|與|暨|和|至|到|並)", re.S)
# A list of named things, each with its article (刑法第二百二十一條之強制性交罪、第二百二十二條之…罪):
# no comma between, so the later articles are still of the law named first.
_LIST_GAP = re.compile(r"[^，,：:。；\n]{0,40}?(?:、|及|或|與|暨|和)\s*")

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


def is_anaphor(qualifier: str) -> bool:
    return _ANAPHOR.fullmatch(qualifier) is not None


def is_self(qualifier: str) -> bool:
    return _SELF.fullmatch(qualifier) is not None


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
                and not SENTENCE_END.search(text, named.end, c.start)
            ):
                c = replace(c, context_law=named.law)
            if c.law is not None:
                named = c
            mutatis = "準用" in text and applies_mutatis(text, c)
            out.append(replace(c, mutatis=mutatis, role=citing_role(text, c, mutatis)))
        return out


@lru_cache(maxsize=8)
def _parser(laws: tuple[str, ...]) -> _Parser:
    return _Parser(laws)


@lru_cache(maxsize=8)
def _known(laws: tuple[str, ...]) -> tuple[dict[str, str], bool]:
    """{law name as read: as the caller writes it}, and whether the two are the same throughout:
    once per set of names, not once per passage (a library's names, 6,000 times over, were a
    quarter of its citation parsing)."""
    known = {to_traditional(name): name for name in laws}
    return known, all(k == v for k, v in known.items())


def find_citations(text: str, laws: Iterable[str] = ()) -> list[Citation]:
    """Every article reference in text, in order. Paragraph-only references (前項, 第二項) are none.

    `laws`: law names (and aliases) the caller knows; without them a law's name is cut out of the
    text before 第 by the words that usually precede one (依, 適用, 違反 …). Traditional and
    Simplified Chinese alike: spans and known law names come back as the text and `laws` write them.
    """
    trad = to_traditional(text)
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
