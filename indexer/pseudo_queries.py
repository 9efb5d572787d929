"""HopRAG pseudo-queries (arXiv 2502.12442 §3.2): for each passage, incoming questions (the passage
answers them) and outgoing questions (the passage raises them; other passages answer them), both
from one LLM call with a JSON schema, a worked example as an earlier turn, and a filter that keeps
only questions that can help retrieval.

What a small local model gets wrong, and what the filter does about it (a reply left with too few
questions is a ValueError, so the runner asks again):
  - Simplified characters in a Traditional passage (违反): converted to the passage's script (OpenCC).
  - 「本法」「本條例」: replaced by the law's name, 「本條」 by the law's name and the article number,
    which is what a searcher types.
  - 「該條」「前條」「前述規定」「本項」, pointers without a subject: dropped (the question means nothing
    alone).
  - the article pasted back (40 characters of the passage copied in a row): dropped.
  - statements (no question mark and no question word): dropped.
  - over-long or near-empty questions, English questions for a Chinese passage: dropped.
  - the same question twice, or as both incoming and outgoing: kept once, as incoming.

Public API:
    PROMPT_VERSION                  bump when the prompt or the filter changes: cached answers are keyed by it
    QuestionCounts                  min/max incoming and outgoing questions; QuestionCounts.from_settings(settings)
    PseudoQueries                   incoming, outgoing (tuples of str)
    QuestionPrompt                  system, prompt, examples ((prompt, reply) turns), script,
                                    .repair(reason) -> the next user turn after a reply that did not fit
    Script                          "hant" | "hans" | "other"
    script_of(text) -> Script       Traditional or Simplified Chinese, by the characters OpenCC would change
    prompt_for(law, label, text, counts) -> QuestionPrompt
    response_schema(counts) -> dict JSON schema of the reply
    parse_reply(obj, counts, *, law="", text="", label="") -> PseudoQueries
                                    ValueError when too few questions survive
    clean_question(q, *, law, text, label, script) -> str | None      one question through the filter
    cache_key(model, embed_hash, counts) -> str
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = [
    "PROMPT_VERSION",
    "QuestionCounts",
    "PseudoQueries",
    "QuestionPrompt",
    "Script",
    "script_of",
    "prompt_for",
    "response_schema",
    "parse_reply",
    "clean_question",
    "cache_key",
    "MAX_QUESTION_CHARS",
]

PROMPT_VERSION = "hoprag-pq-2"
MAX_QUESTION_CHARS = 80  # a question longer than this is the article pasted back, or an essay
_MIN_QUESTION_CHARS = 6
# this many characters copied from the passage make a paste: half the longest question. A
# question about a short article quotes its core phrase (著作人專有將其著作改作成衍生著作或編輯成
# 編輯著作, 24 characters, of 著作權法 第28條): that is asking, not pasting.
_PASTE_WINDOW = 40

Script = Literal["hant", "hans", "other"]
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class QuestionCounts:
    min_in: int = 2
    max_in: int = 4
    min_out: int = 2
    max_out: int = 6

    def __post_init__(self) -> None:
        if not (1 <= self.min_in <= self.max_in and 0 <= self.min_out <= self.max_out):
            raise ValueError(f"invalid question counts {self}")

    @classmethod
    def from_settings(cls, s) -> QuestionCounts:
        return cls(s.questions_in_min, s.questions_in_max, s.questions_out_min, s.questions_out_max)


@dataclass(frozen=True)
class PseudoQueries:
    incoming: tuple[str, ...]
    outgoing: tuple[str, ...]


@dataclass(frozen=True)
class QuestionPrompt:
    system: str
    prompt: str
    examples: tuple[tuple[str, str], ...]
    script: Script
    counts: QuestionCounts

    def repair(self, reason: str) -> str:
        """What to say after a reply that did not fit (parse_reply's ValueError): the mistake, named.
        The commonest on a 1.5B model is outgoing questions that repeat the incoming ones."""
        m = re.match(r"(incoming|outgoing): (\d+) usable", reason)
        counts = self.counts
        if m:
            field, n = m.group(1), int(m.group(2))
            what = _REPAIR_WHAT[self.script].format(field=field, n=n)
            names = _DROP_NAMES[self.script]
            dropped = re.findall(r"(incoming|outgoing) ('(?:[^'\\]|\\.)*'|\"[^\"]*\"): (\w+)", reason)
            if dropped:
                what += _REPAIR_LIST[self.script] + _REPAIR_SEP[self.script].join(
                    f"{f} {q[1:-1]}（{names.get(why, why)}）"
                    if self.script != "other"
                    else f"{f} {q} ({names.get(why, why)})"
                    for f, q, why in dropped
                )
        else:
            what = reason
        return _REPAIR[self.script].format(what=what, min_in=counts.min_in, min_out=counts.min_out)


@lru_cache(maxsize=4)
def _converter(config: str):
    import opencc

    return opencc.OpenCC(f"{config}.json")


def script_of(text: str) -> Script:
    """ "hant" when more characters change from Traditional to Simplified than back, "hans" when
    fewer, "other" without Chinese (shared characters alone count as Traditional: the library's)."""
    cjk = "".join(_CJK.findall(text))
    if not cjk:
        return "other"
    to_s = sum(a != b for a, b in zip(cjk, _converter("t2s").convert(cjk)))
    to_t = sum(a != b for a, b in zip(cjk, _converter("s2tw").convert(cjk)))
    return "hans" if to_t > to_s else "hant"


# ---------------------------------------------------------------- the prompt
_SYSTEM = {
    "hant": "你是臺灣法律的檢索助理。你為法規條文撰寫檢索用的問題，一律使用繁體中文（臺灣用字），只輸出 JSON。",
    "hans": "你是法律检索助理。你为法律条文撰写检索用的问题，一律使用简体中文，只输出 JSON。",
    "other": "You write retrieval questions for legal provisions. Output only JSON.",
}
_PROMPT = {
    "hant": "\n".join(
        [
            "請閱讀下列條文，撰寫兩類問題：",
            "1. incoming（{min_in} 至 {max_in} 題）：一般人或法律工作者會問、而「本條文就能直接回答」的問題。",
            "2. outgoing（{min_out} 至 {max_out} 題）：讀完本條文自然會想問、"
            "但「本條文本身無法回答」、要查其他條文（定義、要件、程序、罰則、例外、所引用的條文）才能回答的問題。",
            "規則：每題都要能單獨看懂：寫出法規名稱或具體的法律概念，不可用「本條」「本法」「該規定」「前述」等指代；每題一句、"
            "{max_chars} 字以內、以問號結尾；不要照抄條文；題目彼此不重複。",
            "",
            "法規：{law}",
            "條號：{label}",
            "條文：",
            "{text}",
        ]
    ),
    "hans": "\n".join(
        [
            "请阅读下列条文，撰写两类问题：",
            "1. incoming（{min_in} 至 {max_in} 题）：一般人或法律工作者会问、而「本条文就能直接回答」的问题。",
            "2. outgoing（{min_out} 至 {max_out} 题）：读完本条文自然会想问、"
            "但「本条文本身无法回答」、要查其他条文（定义、要件、程序、罚则、例外、所引用的条文）才能回答的问题。",
            "规则：每题都要能单独看懂：写出法律名称或具体的法律概念，不可用「本条」「本法」「该规定」「前述」等指代；每题一句、"
            "{max_chars} 字以内、以问号结尾；不要照抄条文；题目彼此不重复。",
            "",
            "法律：{law}",
            "条号：{label}",
            "条文：",
            "{text}",
        ]
    ),
    "other": """Read the provision below and write two kinds of questions:
1. incoming ({min_in} to {max_in}): questions a reader might ask that this provision answers directly.
2. outgoing ({min_out} to {max_out}): questions the provision raises but does not answer itself, whose answers
   are in other provisions (definitions, conditions, procedures, penalties, exceptions, cited articles).
Rules: each question stands alone (name the law or the legal concept, never "this article" or "the above"),
one sentence of at most {max_chars} words, ending with a question mark; do not copy the text; no repeats.

Law: {law}
Article: {label}
Text:
{text}""",
}
# One worked example per script, from laws outside the bundled library, sent as an earlier turn:
# a small model copies the form of an answer far more reliably than it follows written rules.
_EXAMPLE = {
    "hant": (
        "公寓大廈管理條例",
        "第 9 條",
        "各區分所有權人按其共有之應有部分比例，對建築物之共用部分及其基地有使用收益之權。但另有約定者從其約定。",
        {
            "incoming": [
                "公寓大廈的區分所有權人對共用部分有哪些使用收益的權利？",
                "區分所有權人使用大樓共用部分的比例如何決定？",
                "住戶之間可以另外約定共用部分的使用方式嗎？",
            ],
            "outgoing": [
                "公寓大廈的共用部分和專有部分如何區分？",
                "區分所有權人的應有部分比例是怎麼計算的？",
                "住戶違反共用部分的使用規定會受到什麼處罰？",
            ],
        },
    ),
    "hans": (
        "中华人民共和国消费者权益保护法",
        "第二十四条",
        "经营者提供的商品或者服务不符合质量要求的，消费者可以依照国家规定、当事人约定退货，或者要求经营者履行更换、修理等义务。",
        {
            "incoming": [
                "买到的商品质量不合格，消费者可以退货吗？",
                "经营者提供的服务不符合质量要求时，消费者可以要求哪些补救？",
                "商品有质量问题时能否要求商家更换或修理？",
            ],
            "outgoing": [
                "消费者退货时运输等必要费用由谁承担？",
                "网购商品没有质量问题能否无理由退货？",
                "经营者拒绝履行退货义务要承担什么法律责任？",
            ],
        },
    ),
    "other": (
        "Residential Tenancies Act",
        "Section 12",
        "A landlord must return the security deposit within "
        "30 days after the tenancy ends, less any amount lawfully withheld for damage.",
        {
            "incoming": [
                "How long does a landlord have to return a tenant's security deposit?",
                "Can a landlord keep part of the security deposit for damage?",
            ],
            "outgoing": [
                "What counts as damage beyond normal wear and tear under the Residential Tenancies Act?",
                "What can a tenant do if the landlord does not return the deposit in time?",
            ],
        },
    ),
}


_REPAIR_WHAT = {
    "hant": "{field} 只剩 {n} 題可用（其餘與其他題重複、用了指代、照抄條文或不是問句）",
    "hans": "{field} 只剩 {n} 题可用（其余与其他题重复、用了指代、照抄条文或不是问句）",
    "other": "only {n} usable {field} questions (the others repeat, point at 'this article', copy the text or are not questions)",
}
DROP_REASONS = ("type", "deictic", "language", "long", "short", "pasted", "statement", "repeat")
_DROP_NAMES = {
    "hant": {
        "type": "不是文字",
        "deictic": "用了「本條」「該條」等指代",
        "language": "不是中文",
        "long": "超過 80 字",
        "short": "太短",
        "pasted": "照抄條文",
        "statement": "不是問句",
        "repeat": "和另一題重複",
    },
    "hans": {
        "type": "不是文字",
        "deictic": "用了「本条」「该条」等指代",
        "language": "不是中文",
        "long": "超过 80 字",
        "short": "太短",
        "pasted": "照抄条文",
        "statement": "不是问句",
        "repeat": "和另一题重复",
    },
    "other": {
        "type": "not text",
        "deictic": "points at 'this article'",
        "language": "wrong language",
        "long": "too long",
        "short": "too short",
        "pasted": "copies the text",
        "statement": "not a question",
        "repeat": "repeats another question",
    },
}
_REPAIR_LIST = {"hant": "；被刪去的題目：", "hans": "；被删去的题目：", "other": "; dropped: "}
_REPAIR_SEP = {"hant": "；", "hans": "；", "other": "; "}
_REPAIR = {
    "hant": (
        "上面的回答不合要求：{what}。請重新輸出完整的 JSON：incoming 至少 {min_in} 題，本條文就能回答；"
        "outgoing 至少 {min_out} 題，必須是本條文「無法」回答、要查其他條文（定義、程序、罰則、例外）的新問題，"
        "不可和 incoming 重複或只換幾個字。每題寫出法規名稱或具體概念，不用「該條」「前述」等指代，不照抄條文。"
    ),
    "hans": (
        "上面的回答不合要求：{what}。请重新输出完整的 JSON：incoming 至少 {min_in} 题，本条文就能回答；"
        "outgoing 至少 {min_out} 题，必须是本条文「无法」回答、要查其他条文（定义、程序、罚则、例外）的新问题，"
        "不可和 incoming 重复或只换几个字。每题写出法律名称或具体概念，不用「该条」「前述」等指代，不照抄条文。"
    ),
    "other": (
        "That reply does not fit: {what}. Write the whole JSON again: at least {min_in} incoming questions "
        "this provision answers, and at least {min_out} outgoing questions it does NOT answer (other "
        "provisions do: definitions, procedures, penalties, exceptions), none repeating an incoming one."
    ),
}


def _fill(script: Script, law: str, label: str, text: str, counts: QuestionCounts) -> str:
    return _PROMPT[script].format(
        law=law or "-",
        label=label or "-",
        text=text,
        min_in=counts.min_in,
        max_in=counts.max_in,
        min_out=counts.min_out,
        max_out=counts.max_out,
        max_chars=MAX_QUESTION_CHARS // 2 if script == "other" else MAX_QUESTION_CHARS,
    )


def prompt_for(law: str, label: str, text: str, counts: QuestionCounts = QuestionCounts()) -> QuestionPrompt:
    script = script_of(f"{law}{text}")
    ex_law, ex_label, ex_text, ex_reply = _EXAMPLE[script]
    reply = {"incoming": ex_reply["incoming"][: counts.max_in], "outgoing": ex_reply["outgoing"][: counts.max_out]}
    example = (_fill(script, ex_law, ex_label, ex_text, counts), json.dumps(reply, ensure_ascii=False))
    return QuestionPrompt(
        system=_SYSTEM[script],
        prompt=_fill(script, law, label, text, counts),
        examples=(example,),
        script=script,
        counts=counts,
    )


def response_schema(counts: QuestionCounts = QuestionCounts()) -> dict:
    def questions(lo: int, hi: int) -> dict:
        return {
            "type": "array",
            "items": {"type": "string", "maxLength": MAX_QUESTION_CHARS},
            "minItems": lo,
            "maxItems": hi,
        }

    return {
        "type": "object",
        "properties": {
            "incoming": questions(counts.min_in, counts.max_in),
            "outgoing": questions(counts.min_out, counts.max_out),
        },
        "required": ["incoming", "outgoing"],
        "additionalProperties": False,
    }


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


def _to_script(q: str, script: Script) -> str:
    if script == "hant":
        return _converter("s2tw").convert(q)
    if script == "hans":
        return _converter("t2s").convert(q)
    return q


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
    q = _to_script(q, script)
    if law and script != "other":
        q = _THIS_LAW.sub(_to_script(law, script), q)
        if label:
            q = _THIS_ARTICLE.sub(_to_script(law + "".join(label.split()), script), q)
    if _DEICTIC.search(q) or _THIS_ARTICLE.search(q):
        return None, "deictic"
    if script != "other" and not _CJK.search(q):
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


def cache_key(model: str, embed_hash: str, counts: QuestionCounts = QuestionCounts()) -> str:
    blob = f"{model}|{PROMPT_VERSION}|{counts.min_in}-{counts.max_in}/{counts.min_out}-{counts.max_out}|{embed_hash}"
    return hashlib.sha256(blob.encode()).hexdigest()
