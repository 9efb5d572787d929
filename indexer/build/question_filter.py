"""The filter every LLM question goes through before it is stored: what a small local model gets
wrong is repaired (script, 「本法」) or dropped (pointers, pastes, statements, repeats); the cases
are listed in pseudo_queries.py's module doc.

Public API:
    PseudoQueries                   incoming, outgoing (tuples of str)
    screen_question(q, *, law, text, label, script) -> (str | None, reason | None)   reason in DROP_REASONS
    clean_question(q, *, law, text, label, script) -> str | None      one question through the filter
    parse_reply(obj, counts, *, law="", text="", label="") -> PseudoQueries
                                    ValueError when too few questions survive

A change here changes the answers: bump PROMPT_VERSION (pseudo_queries.py), which keys their cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..text.chinese_script import CJK, Script, script_of, to_script
from .question_prompt import MAX_QUESTION_CHARS, QuestionCounts

__all__ = ["PseudoQueries", "screen_question", "clean_question", "parse_reply"]

_MIN_QUESTION_CHARS = 6
# this many characters copied from the passage make a paste: half the longest question. A
# question about a short article quotes its core phrase (著作人專有將其著作改作成衍生著作或編輯成
# 編輯著作, 24 characters, of 著作權法 第28條): that is asking, not pasting.
_PASTE_WINDOW = 40


@dataclass(frozen=True)
class PseudoQueries:
    incoming: tuple[str, ...]
    outgoing: tuple[str, ...]


# ---------------------------------------------------------------- the filter
_NUMBERING = re.compile(
    r"^\s*(?:[0-9０-９]+[.、．)）]|[（(][0-9一二三四五六七八九十]+[)）]|[-*•]|問[:：]|问[:：]|Q\d*[:：.])\s*"
)
# 本法 / 本條例 / 本細則 name the law: the law's name says the same to a searcher.
_THIS_LAW = re.compile(r"本(?:法|條例|条例|細則|细则|規則|规则|辦法|办法)")
_THIS_ARTICLE = re.compile(r"本條|本条")
# Pointers that mean nothing outside the article: the question has to name what it asks about.
_DEICTIC = re.compile(
    r"該條|该条|此條|此条|該法|该法|本規定|本规定|該規定|该规定|此規定|此规定|上述|上開|上开|"
    r"前述|前條|前条|本項|本项|該項|该项|本款|該款|该款|this (?:article|section|provision)",
    re.IGNORECASE,
)


_QUESTION_WORD = re.compile(
    r"什麼|什么|甚麼|何|哪|嗎|吗|是否|能否|可否|可不可以|如何|怎|多少|多久|多長|多长|幾|几|誰|谁|呢|"
    r"^(?:what|which|who|whom|when|where|why|how|is|are|can|does|do|must|may|should)\b",
    re.IGNORECASE,
)


def _pasted(q: str, text: str) -> bool:
    if len(q) < _PASTE_WINDOW or not text:
        return False
    body = "".join(text.split())
    flat = "".join(q.split())
    return any(flat[i : i + _PASTE_WINDOW] in body for i in range(0, len(flat) - _PASTE_WINDOW + 1))


def clean_question(
    q: object, *, law: str = "", text: str = "", label: str = "", script: Script | None = None
) -> str | None:
    """The question as it will be stored, or None when it cannot help retrieval."""
    return screen_question(q, law=law, text=text, label=label, script=script)[0]


def screen_question(
    q: object, *, law: str = "", text: str = "", label: str = "", script: Script | None = None
) -> tuple[str | None, str | None]:
    """(the question as stored, None), or (None, why it was dropped: one of DROP_REASONS)."""
    if not isinstance(q, str):
        return None, "type"
    script = script or script_of(f"{law}{text}" or q)  # no passage given: the question's own script
    q = _NUMBERING.sub("", " ".join(q.split())).strip(" \"'「」")
    q = to_script(q, script)
    if law and script != "other":
        q = _THIS_LAW.sub(to_script(law, script), q)
        if label:
            q = _THIS_ARTICLE.sub(to_script(law + "".join(label.split()), script), q)
    if _DEICTIC.search(q) or _THIS_ARTICLE.search(q):
        return None, "deictic"
    if script != "other" and not CJK.search(q):
        return None, "language"  # an English question for a Chinese passage
    size = len(q.split()) if script == "other" else len(q)
    limit = MAX_QUESTION_CHARS // 2 if script == "other" else MAX_QUESTION_CHARS
    if size > limit:
        return None, "long"
    if len(q) < _MIN_QUESTION_CHARS:
        return None, "short"
    if _pasted(q, text):
        return None, "pasted"
    mark = "?" if script == "other" else "？"
    if q[-1] not in "？?":
        if not _QUESTION_WORD.search(q):
            return None, "statement"  # often a sentence of the article
        q = q.rstrip("。.！!；;，,") + mark
    elif q[-1] != mark:
        q = q[:-1].rstrip() + mark  # small models mix half- and full-width marks; one form per script
    return q, None


def _key(q: str) -> str:
    return re.sub(r"[\s？?。，,、]", "", q)


def _clean_list(items: object, field: str, seen: set[str], dropped: list[str], **ctx) -> list[str]:
    if not isinstance(items, list):
        raise ValueError(f"{field} must be a list of strings")
    out = []
    for item in items:
        q, why = screen_question(item, **ctx)
        if q is not None and _key(q) in seen:
            why = "repeat"
        if why is not None:
            dropped.append(f"{field} {str(item)[:60]!r}: {why}")
            continue
        assert q is not None
        seen.add(_key(q))
        out.append(q)
    return out


def parse_reply(
    obj: object, counts: QuestionCounts = QuestionCounts(), *, law: str = "", text: str = "", label: str = ""
) -> PseudoQueries:
    """The questions of a reply that survive the filter; ValueError when fewer than asked remain
    (the runner then asks again)."""
    if not isinstance(obj, dict):
        raise ValueError("reply is not a JSON object")
    ctx = {"law": law, "text": text, "label": label, "script": script_of(f"{law}{text}") if (law or text) else None}
    seen: set[str] = set()
    dropped: list[str] = []
    incoming = _clean_list(obj.get("incoming"), "incoming", seen, dropped, **ctx)
    outgoing = _clean_list(obj.get("outgoing"), "outgoing", seen, dropped, **ctx)
    for field, got, lo in (("incoming", incoming, counts.min_in), ("outgoing", outgoing, counts.min_out)):
        if len(got) < lo:
            # which question went and why, so that the repair turn can name each mistake
            detail = "; dropped: " + " | ".join(dropped[:6]) if dropped else ""
            raise ValueError(f"{field}: {len(got)} usable questions, at least {lo} required{detail}")
    return PseudoQueries(incoming=tuple(incoming[: counts.max_in]), outgoing=tuple(outgoing[: counts.max_out]))
