"""Hop search's llm mode: the LLM, shown a frontier passage and its best options, says which help
answer the query; within a query's budget of calls and its deadline, every failure falling back to
the similarity choice.

Public API:
    hop_llm(db, settings) -> LLM                the index's LLM; QueryError if it has none
    LLMChooser(st, text, llm, settings, deadline=None)
        a walk.Chooser: at most hop_max_llm_calls passages per query, the most relevant first,
        each judged once per query
        .calls, .failures, .deadline_hit, .all_failed() -> bool, .public_reason() -> str
"""

from __future__ import annotations

from typing import Any

from storage.db import Database

from ..errors import QueryError
from ..llm.base import LLMError
from ..llm.budget import Breaker, Deadline
from ..settings import Settings
from ..store.graph import EDGE_ROLES
from .state import State
from .walk import Option

__all__ = ["hop_llm", "LLMChooser"]

# How the LLM is told a citation's role, from the current article: (it cites the option, the
# option cites it), after 引用 / 被引用
_ROLE_WORDS = {
    "punishes": ("處罰違反該條者", "該條處罰違反目前條文者"),
    "exception": ("為該條之例外", "該條為目前條文之例外"),
    "defines": ("解釋該條用語", "該條解釋目前條文用語"),
    "applies": ("準用或適用該條", "該條準用或適用目前條文"),
}

_SYSTEM = "你是臺灣法律檢索助理，只輸出符合 JSON 結構的內容。"


def hop_llm(db: Database, settings: Settings) -> Any:
    from ..llm.runner import get_llm

    llm = get_llm(db.get_meta("llm") or settings.llm, settings)
    if llm is None:
        raise QueryError("hop mode 'llm' needs an LLM: build the index with --llm, or set HOPRAG_LLM")
    return llm


class LLMChooser:
    """One query's LLM judgements and what they cost: every call and retry lies within `deadline`
    (default: hop_llm_deadline_s from now; its cancel event stops the LLM work too), a breaker
    stops asking an LLM that keeps failing."""

    def __init__(self, st: State, text: str, llm: Any, settings: Settings, deadline: Deadline | None = None):
        self.st, self.text, self.llm, self.settings = st, text, llm, settings
        self.deadline = deadline or Deadline(settings.hop_llm_deadline_s)
        self.breaker = Breaker(settings.llm_breaker_failures)
        self.calls = 0
        self.failures = 0
        self.last_error: LLMError | None = None
        self.deadline_hit = False
        self._judged: dict[int, list[Option]] = {}  # a passage is judged once per query

    def all_failed(self) -> bool:
        """Every call failed, and not for want of time: the LLM, not the budget, is the problem."""
        return bool(self.calls) and self.failures == self.calls and not self.deadline_hit

    def __call__(
        self, frontier: list[int], options: dict[int, list[Option]], fallback: dict[int, list[Option]]
    ) -> dict[int, list[Option]]:
        """Ask the LLM which neighbours of each frontier passage help answer the query: at most
        hop_max_llm_calls per query, the most relevant passages first; the others, and any call
        that fails after its retries, keep the similarity choice (`fallback`)."""
        from ..llm.runner import run_requests_sync, runner_options

        s, judged = self.settings, self._judged
        ask = [v for v in frontier if options[v] and v not in judged][: max(0, s.hop_max_llm_calls - self.calls)]
        if self.deadline.expired or self.breaker.tripped:
            self.deadline_hit = self.deadline_hit or self.deadline.expired
            ask = []  # no time left, or no LLM there: the similarity choice stands
        if not ask:
            return {v: judged[v] for v in frontier if v in judged}
        shown = {str(v): options[v][: s.hop_llm_options] for v in ask}
        requests = [self._request(v, shown[str(v)]) for v in ask]

        def validate(obj: Any) -> list[int]:
            chosen = obj.get("helpful") if isinstance(obj, dict) else None
            if not isinstance(chosen, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in chosen):
                raise ValueError("helpful must be a list of integers")
            return chosen

        results = run_requests_sync(
            self.llm, requests, validate=validate, **runner_options(s), breaker=self.breaker, deadline=self.deadline
        )
        for v in ask:
            self.calls += 1
            chosen = results.get(str(v))
            if isinstance(chosen, list):
                opts = shown[str(v)]
                judged[v] = [opts[i] for i in dict.fromkeys(chosen) if 0 <= i < len(opts)][: s.hop_branch]
            else:
                self.failures += 1
                if isinstance(chosen, LLMError):
                    self.last_error = chosen
                    self.deadline_hit = self.deadline_hit or chosen.kind == "deadline"
                judged[v] = fallback[v]
        return {v: judged[v] for v in frontier if v in judged}

    def _request(self, v: int, opts: list[Option]) -> Any:
        from ..llm.runner import LLMRequest

        branch = self.settings.hop_branch
        schema = {
            "type": "object",
            "properties": {"helpful": {"type": "array", "items": {"type": "integer"}, "maxItems": branch}},
            "required": ["helpful"],
        }
        _, law, article, label, body, _, _ = self.st.info[v]
        prompt = (
            f"使用者的問題：{self.text}\n\n目前條文：{law} {label or article}\n{body[:800]}\n\n"
            "下列是可以從此條文繼續查閱的條文（編號. 條文｜關係｜內容開頭）：\n"
            + "\n".join(self._option_line(n, o) for n, o in enumerate(opts))
            + f"\n\n請選出最有助於回答使用者問題的條文編號（至多 {branch} 個）；"
            '都沒有幫助時回傳空陣列。以 JSON 回答：{"helpful": [編號]}'
        )
        return LLMRequest(key=str(v), prompt=prompt, schema=schema, system=_SYSTEM)

    def _option_line(self, n: int, o: Option) -> str:
        st = self.st
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
