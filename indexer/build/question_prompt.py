"""The pseudo-query prompt: what one LLM call is asked (system turn, a worked example as an earlier
turn, the passage), the JSON schema of the reply, and the turn that names the mistakes of a reply
that did not fit. Each is written in the passage's script (Traditional, Simplified, or English).

Public API:
    QuestionCounts(min_in=2, max_in=4, min_out=2, max_out=6)   .from_settings(settings)
    QuestionPrompt      system, prompt, examples ((prompt, reply) turns), script, counts,
                        .repair(reason) -> str     the next user turn after a reply that did not fit
    prompt_for(law, label, text, counts) -> QuestionPrompt
    response_schema(counts) -> dict                JSON schema of the reply
    MAX_QUESTION_CHARS                             the longest question asked for (and kept)
    DROP_REASONS                                   why the filter drops a question (question_filter.py)

A change here changes the answers: bump PROMPT_VERSION (pseudo_queries.py), which keys their cache.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..text.chinese_script import Script, script_of

__all__ = [
    "QuestionCounts",
    "QuestionPrompt",
    "prompt_for",
    "response_schema",
    "MAX_QUESTION_CHARS",
    "DROP_REASONS",
]

MAX_QUESTION_CHARS = 80  # a question longer than this is the article pasted back, or an essay


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
