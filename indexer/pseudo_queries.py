"""HopRAG pseudo-queries (arXiv 2502.12442 §3.2): for each passage, incoming questions (the passage
answers them) and outgoing questions (the passage raises them; other passages answer them), both
from one LLM call with a strict JSON schema.

Public API:
    PROMPT_VERSION                  bump when the prompt changes: cached answers are keyed by it
    QuestionCounts                  min/max incoming and outgoing questions
    PseudoQueries                   incoming, outgoing (tuples of str)
    prompt_for(law, label, text, counts) -> (system, prompt)
    response_schema(counts) -> dict JSON schema of the reply
    parse_reply(obj, counts) -> PseudoQueries     ValueError when the reply does not fit
    cache_key(model, embed_hash, counts) -> str
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["PROMPT_VERSION", "QuestionCounts", "PseudoQueries", "prompt_for", "response_schema",
           "parse_reply", "cache_key"]

PROMPT_VERSION = "hoprag-pq-1"
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


@dataclass(frozen=True)
class PseudoQueries:
    incoming: tuple[str, ...]
    outgoing: tuple[str, ...]


_SYSTEM_ZH = (
    "你是臺灣法律的檢索助理。你為法規條文撰寫檢索用的問題，一律使用繁體中文，只輸出符合指定 JSON 結構的內容。")
_PROMPT_ZH = """請閱讀下列條文，撰寫兩類問題：
1. incoming（{min_in} 至 {max_in} 題）：一般人或法律工作者可能提出、而「本條文即可直接回答」的問題。
2. outgoing（{min_out} 至 {max_out} 題）：閱讀本條文後自然會產生、但「本條文本身無法回答」、需要查閱其他條文（例如本條所引用的條文、定義、罰則、程序或例外規定）才能回答的問題。
每個問題須完整、具體、可獨立理解（寫出法規名稱或關鍵概念，不要用「本條」「該規定」等指代），以問號結尾，不要重複。

法規：{law}
條號：{label}
條文：
{text}"""

_SYSTEM_EN = "You write retrieval questions for legal provisions. Output only JSON that fits the given schema."
_PROMPT_EN = """Read the provision below and write two kinds of questions:
1. incoming ({min_in} to {max_in}): questions a reader might ask that this provision answers directly.
2. outgoing ({min_out} to {max_out}): questions the provision raises but does not answer itself, whose answers
   are likely in other provisions (cited articles, definitions, penalties, procedures, exceptions).
Each question must stand alone (name the law or concept, no "this article"), end with a question mark, no repeats.

Law: {law}
Article: {label}
Text:
{text}"""


def prompt_for(law: str, label: str, text: str, counts: QuestionCounts = QuestionCounts()) -> tuple[str, str]:
    chinese = bool(_CJK.search(text))
    system, template = (_SYSTEM_ZH, _PROMPT_ZH) if chinese else (_SYSTEM_EN, _PROMPT_EN)
    return system, template.format(law=law or "-", label=label or "-", text=text, min_in=counts.min_in,
                                   max_in=counts.max_in, min_out=counts.min_out, max_out=counts.max_out)


def response_schema(counts: QuestionCounts = QuestionCounts()) -> dict:
    def questions(lo: int, hi: int) -> dict:
        return {"type": "array", "items": {"type": "string"}, "minItems": lo, "maxItems": hi}
    return {"type": "object",
            "properties": {"incoming": questions(counts.min_in, counts.max_in),
                           "outgoing": questions(counts.min_out, counts.max_out)},
            "required": ["incoming", "outgoing"], "additionalProperties": False}


def _clean(items: object, lo: int, hi: int, field: str) -> tuple[str, ...]:
    if not isinstance(items, list) or not all(isinstance(q, str) for q in items):
        raise ValueError(f"{field} must be a list of strings")
    out: list[str] = []
    for q in items:
        q = " ".join(q.split())
        if len(q) >= 4 and q not in out:
            out.append(q)
    if len(out) < lo:
        raise ValueError(f"{field}: {len(out)} usable questions, at least {lo} required")
    return tuple(out[:hi])   # more than asked is trimmed, not a failure


def parse_reply(obj: object, counts: QuestionCounts = QuestionCounts()) -> PseudoQueries:
    if not isinstance(obj, dict):
        raise ValueError("reply is not a JSON object")
    return PseudoQueries(incoming=_clean(obj.get("incoming"), counts.min_in, counts.max_in, "incoming"),
                         outgoing=_clean(obj.get("outgoing"), counts.min_out, counts.max_out, "outgoing"))


def cache_key(model: str, embed_hash: str, counts: QuestionCounts = QuestionCounts()) -> str:
    blob = f"{model}|{PROMPT_VERSION}|{counts.min_in}-{counts.max_in}/{counts.min_out}-{counts.max_out}|{embed_hash}"
    return hashlib.sha256(blob.encode()).hexdigest()
