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
    to_script(q, script) -> str     `q` in the characters of that script
    prompt_for(law, label, text, counts) -> QuestionPrompt
    response_schema(counts) -> dict JSON schema of the reply
    parse_reply(obj, counts, *, law="", text="", label="") -> PseudoQueries
                                    ValueError when too few questions survive
    clean_question(q, *, law, text, label, script) -> str | None      one question through the filter
    cache_key(model, embed_hash, counts) -> str
    screen_question, DROP_REASONS, MAX_QUESTION_CHARS

The prompt lives in question_prompt.py, the filter in question_filter.py, the script of a text in
chinese_script.py; every name above stays importable from here. This module keys the answers'
cache: the version of prompt and filter, the model, the counts and the passage's text.
"""

from __future__ import annotations

import hashlib

from ..text.chinese_script import Script, script_of, to_script
from .question_filter import PseudoQueries, clean_question, parse_reply, screen_question
from .question_prompt import (
    DROP_REASONS,
    MAX_QUESTION_CHARS,
    QuestionCounts,
    QuestionPrompt,
    prompt_for,
    response_schema,
)

__all__ = [
    "PROMPT_VERSION",
    "QuestionCounts",
    "PseudoQueries",
    "QuestionPrompt",
    "Script",
    "script_of",
    "to_script",
    "prompt_for",
    "response_schema",
    "parse_reply",
    "clean_question",
    "screen_question",
    "cache_key",
    "MAX_QUESTION_CHARS",
    "DROP_REASONS",
]

PROMPT_VERSION = "hoprag-pq-2"


def cache_key(model: str, embed_hash: str, counts: QuestionCounts = QuestionCounts()) -> str:
    blob = f"{model}|{PROMPT_VERSION}|{counts.min_in}-{counts.max_in}/{counts.min_out}-{counts.max_out}|{embed_hash}"
    return hashlib.sha256(blob.encode()).hexdigest()
