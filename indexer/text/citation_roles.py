"""What a citing sentence does with the articles it cites, read from its words: punishes, makes an
exception of, defines a word of, or applies (準用, 適用) them; and the sentence a reference stands in.
The parser (citation_parser.py) asks this of each reference it finds.

Public API:
    ROLES                                 ("punishes", "exception", "defines", "applies")
    Reference                             what these read of a reference: its start and end in the text
    citing_role(text, ref, mutatis) -> str    one of ROLES, or "" for a bare mention (依第X條)
    applies_mutatis(text, ref) -> bool    the sentence applies the cited articles 準用, not merely names 準用
    SENTENCE_END                          the pattern that ends a sentence (。；and a line break)
    sentence_index(text, pos) -> int      which sentence of the text `pos` stands in
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["ROLES", "Reference", "citing_role", "applies_mutatis", "SENTENCE_END", "sentence_index"]


class Reference(Protocol):
    """A Citation, as far as a sentence is read around it: a Protocol, so that the parser imports
    this module and not the other way round."""

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


# The sentence a reference stands in decides 準用 (…之規定，於前項情形準用之).
SENTENCE_END = re.compile(r"[。；\n]")
_CLAUSE_END = re.compile(r"[，,。；\n：:]")


def applies_mutatis(text: str, c: Reference) -> bool:
    """Whether the sentence applies the cited articles 準用 (mutatis mutandis), not merely mentions 準用."""
    return _verb_governs(text, c, "準用")


def _verb_governs(text: str, c: Reference, verb: str) -> bool:
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


def _sentence_bounds(text: str, c: Reference) -> tuple[int, int]:
    start = max((m.end() for m in SENTENCE_END.finditer(text, 0, c.start)), default=0)
    end_m = SENTENCE_END.search(text, c.end)
    return start, end_m.start() if end_m else len(text)


def sentence_index(text: str, pos: int) -> int:
    return len(SENTENCE_END.findall(text, 0, pos))


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


def citing_role(text: str, c: Reference, mutatis: bool) -> str:
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
