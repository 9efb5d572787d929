"""The LLM stage of a build: pseudo-queries for the passages that lack them, through the cache.

A passage's answer is cached by (model, prompt version, counts, hash of its embedded text): an
unchanged passage never costs a call again. Answers and failures are written as they arrive, so
a crash keeps what was paid for; a failed passage is simply asked again by the next build.

Public API:
    QuestionStage(db, llm, counts, settings)
        .run(passages, embed_hashes, progress) -> StageResult
    StageResult     questions {key: (cache_key, PseudoQueries)}, calls, failures, failed_keys
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.db import Database
from storage.models import LLMResultRow, utcnow

from .passages import Passage
from .pseudo_queries import (PROMPT_VERSION, PseudoQueries, QuestionCounts, cache_key, parse_reply, prompt_for,
                             response_schema)

__all__ = ["QuestionStage", "StageResult"]

_FLUSH_EVERY = 25   # answers written per transaction while the LLM runs


@dataclass
class StageResult:
    questions: dict[str, tuple[str, PseudoQueries]] = field(default_factory=dict)
    calls: int = 0
    failures: int = 0
    failed_keys: list[str] = field(default_factory=list)


class QuestionStage:
    def __init__(self, db: Database, llm, counts: QuestionCounts, settings):
        self.db, self.llm, self.counts, self.settings = db, llm, counts, settings

    def _cached(self, keys: Sequence[str]) -> dict[str, LLMResultRow]:
        out: dict[str, LLMResultRow] = {}
        with self.db.session() as s:
            for i in range(0, len(keys), 500):
                for row in s.scalars(select(LLMResultRow).where(LLMResultRow.cache_key.in_(keys[i:i + 500]))):
                    out[row.cache_key] = row
        return out

    def _store(self, rows: list[dict]) -> None:
        if not rows:
            return
        with self.db.session() as s:
            stmt = sqlite_insert(LLMResultRow.__table__)
            stmt = stmt.on_conflict_do_update(index_elements=["cache_key"], set_={
                c: stmt.excluded[c] for c in ("status", "incoming", "outgoing", "error", "attempts", "updated_at")})
            s.execute(stmt, rows)

    def _validator(self, p: Passage):
        return lambda obj: parse_reply(obj, self.counts, law=p.law, text=p.text)

    def run(self, passages: Sequence[Passage], embed_hashes: Mapping[str, str | None], progress=None) -> StageResult:
        from .llm.runner import LLMRequest, run_requests_sync
        from .llm.base import LLMError

        result = StageResult()
        keys = {p.key: cache_key(self.llm.name, embed_hashes[p.key], self.counts) for p in passages}
        cached = self._cached(sorted(set(keys.values())))
        todo: dict[str, Passage] = {}
        for p in passages:
            row = cached.get(keys[p.key])
            if row is not None and row.status == "ok":
                result.questions[p.key] = (keys[p.key], PseudoQueries(tuple(row.incoming), tuple(row.outgoing)))
            else:
                todo.setdefault(keys[p.key], p)     # identical texts share one call
        if not todo:
            return result

        schema = response_schema(self.counts)
        requests = []
        for ck, p in todo.items():
            ask = prompt_for(p.law, p.article_label, p.text, self.counts)
            requests.append(LLMRequest(key=ck, prompt=ask.prompt, schema=schema, system=ask.system,
                                       examples=ask.examples, validate=self._validator(p)))
        pending: list[dict] = []
        done = 0

        def on_done(key: str, outcome) -> None:
            nonlocal done
            done += 1
            ok = not isinstance(outcome, LLMError)
            pending.append({"cache_key": key, "model": self.llm.name, "prompt_version": PROMPT_VERSION,
                            "status": "ok" if ok else "failed",
                            "incoming": list(outcome.incoming) if ok else [],
                            "outgoing": list(outcome.outgoing) if ok else [],
                            "error": None if ok else str(outcome)[:2000],
                            "attempts": 0 if ok else getattr(outcome, "attempts", 0), "updated_at": utcnow()})
            if len(pending) >= _FLUSH_EVERY:
                self._store(pending)
                pending.clear()
            if progress:
                progress("llm", done, len(requests))

        s = self.settings
        outcomes = run_requests_sync(self.llm, requests, concurrency=s.llm_concurrency, rpm=s.llm_rpm,
                                     max_retries=s.llm_max_retries, validate=lambda obj: parse_reply(obj, self.counts),
                                     on_done=on_done)
        self._store(pending)
        result.calls = len(requests)
        for p in passages:
            ck = keys[p.key]
            if ck not in todo:
                continue
            outcome = outcomes.get(ck)
            if isinstance(outcome, PseudoQueries):
                result.questions[p.key] = (ck, outcome)
            else:
                result.failed_keys.append(p.key)
        result.failures = sum(1 for o in outcomes.values() if not isinstance(o, PseudoQueries))
        return result
