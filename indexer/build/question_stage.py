"""The LLM stage of a build: pseudo-queries for the passages that lack them, through the cache.

A passage's answer is cached by (model, prompt version, counts, hash of its embedded text): an
unchanged passage never costs a call again. Answers and failures are written as they arrive, so
a crash keeps what was paid for; a failed passage is simply asked again by the next build.

The cache travels as JSONL (`hoprag questions export|import`): hours of a local model's answers
seed another index, a CI run or a benchmark, which then asks the LLM for nothing it already knows.

Public API:
    QuestionStage(db, llm, counts, settings)
        .run(passages, embed_hashes, progress) -> StageResult
    StageResult     questions {key: (cache_key, PseudoQueries)}, calls, failures, failed_keys,
                    unreachable (the breaker stopped asking: the rest recorded as failed, asked next build)
    export_answers(db, path) -> dict       the cache's answers (status ok) as JSONL, written atomically
    read_answers(path, max_mb=64) -> ImportedAnswers   such a file read and checked (regular file, size
                                           cap, every answer through the question filter), nothing written
    store_answers(db, answers) -> dict     into the cache (existing rows kept)
    ANSWERS_FORMAT                         the header's "format"
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select

from storage.db import Database
from storage.models import LLMResultRow, utcnow

from ..passages import Passage
from .pseudo_queries import (
    PROMPT_VERSION,
    PseudoQueries,
    QuestionCounts,
    cache_key,
    parse_reply,
    prompt_for,
    response_schema,
    screen_question,
)

__all__ = [
    "QuestionStage",
    "StageResult",
    "ImportedAnswers",
    "export_answers",
    "read_answers",
    "store_answers",
    "ANSWERS_FORMAT",
]

ANSWERS_FORMAT = "hoprag-pseudo-queries/1"

_FLUSH_EVERY = 25  # answers written per transaction while the LLM runs
_FLUSH_S = 30.0  # ... or after this long: a local model answers one passage in seconds


@dataclass
class StageResult:
    questions: dict[str, tuple[str, PseudoQueries]] = field(default_factory=dict)
    calls: int = 0
    failures: int = 0
    failed_keys: list[str] = field(default_factory=list)
    unreachable: bool = False


class QuestionStage:
    def __init__(self, db: Database, llm, counts: QuestionCounts, settings):
        self.db, self.llm, self.counts, self.settings = db, llm, counts, settings

    def _cached(self, keys: Sequence[str]) -> dict[str, LLMResultRow]:
        out: dict[str, LLMResultRow] = {}
        with self.db.session() as s:
            for i in range(0, len(keys), 500):
                for row in s.scalars(select(LLMResultRow).where(LLMResultRow.cache_key.in_(keys[i : i + 500]))):
                    out[row.cache_key] = row
        return out

    def _store(self, rows: list[dict]) -> None:
        if not rows:
            return
        with self.db.session() as s:
            self.db.insert_rows(
                s,
                cast(Table, LLMResultRow.__table__),
                rows,
                key=("cache_key",),
                update=("status", "incoming", "outgoing", "error", "attempts", "updated_at"),
            )

    def _validator(self, p: Passage):
        return lambda obj: parse_reply(obj, self.counts, law=p.law, text=p.text, label=p.article_label)

    def run(self, passages: Sequence[Passage], embed_hashes: Mapping[str, str | None], progress=None) -> StageResult:
        from ..llm.base import LLMError
        from ..llm.budget import Breaker
        from ..llm.runner import LLMRequest, run_requests_sync

        result = StageResult()
        keys: dict[str, str] = {}
        for p in passages:
            embed_hash = embed_hashes[p.key]
            assert embed_hash is not None  # a repealed passage has no text to ask about
            keys[p.key] = cache_key(self.llm.name, embed_hash, self.counts)
        cached = self._cached(sorted(set(keys.values())))
        todo: dict[str, Passage] = {}
        failed_before: dict[str, Passage] = {}
        for p in passages:
            row = cached.get(keys[p.key])
            if row is not None and row.status == "ok":
                result.questions[p.key] = (keys[p.key], PseudoQueries(tuple(row.incoming), tuple(row.outgoing)))
            else:
                # identical texts share one call; passages never asked go before those whose call
                # failed on an earlier build: stubborn ones (a small model pasting a long article)
                # take several tries each and must not hold back new text
                (todo if row is None else failed_before).setdefault(keys[p.key], p)
        todo |= failed_before  # one text, one cache row: a key is in one of the two, never both
        if not todo:
            return result

        schema = response_schema(self.counts)
        requests = []
        for ck, p in todo.items():
            ask = prompt_for(p.law, p.article_label, p.text, self.counts)
            requests.append(
                LLMRequest(
                    key=ck,
                    prompt=ask.prompt,
                    schema=schema,
                    system=ask.system,
                    examples=ask.examples,
                    validate=self._validator(p),
                    repair=ask.repair,
                )
            )
        pending: list[dict] = []
        done = 0
        flushed_at = time.monotonic()

        def on_done(key: str, outcome) -> None:
            nonlocal done, flushed_at
            done += 1
            ok = not isinstance(outcome, LLMError)
            pending.append(
                {
                    "cache_key": key,
                    "model": self.llm.name,
                    "prompt_version": PROMPT_VERSION,
                    "status": "ok" if ok else "failed",
                    "incoming": list(outcome.incoming) if ok else [],
                    "outgoing": list(outcome.outgoing) if ok else [],
                    "error": None if ok else str(outcome)[:2000],
                    "attempts": 0 if ok else getattr(outcome, "attempts", 0),
                    "updated_at": utcnow(),
                }
            )
            if len(pending) >= _FLUSH_EVERY or time.monotonic() - flushed_at > _FLUSH_S:
                self._store(pending)
                pending.clear()
                flushed_at = time.monotonic()
            if progress:
                progress("llm", done, len(requests))

        settings = self.settings
        breaker = Breaker(settings.llm_breaker_failures)
        outcomes = run_requests_sync(
            self.llm,
            requests,
            concurrency=settings.llm_concurrency,
            rpm=settings.llm_rpm,
            max_retries=settings.llm_max_retries,
            validate=lambda obj: parse_reply(obj, self.counts),
            on_done=on_done,
            repair_temperatures=tuple(settings.llm_repair_temperatures),
            breaker=breaker,
        )
        self._store(pending)
        result.calls = len(requests)
        result.unreachable = breaker.tripped
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


# ---------------------------------------------------------------- export / import
_HEX64 = re.compile(r"[0-9a-f]{64}")


def export_answers(db: Database, path: str | Path) -> dict:
    """Every answered passage of the cache, one JSON object a line after a header line."""
    from storage.files import atomic_write

    with db.session() as s:
        rows = s.scalars(select(LLMResultRow).where(LLMResultRow.status == "ok").order_by(LLMResultRow.cache_key)).all()
        lines: list[dict[str, Any]] = [
            {
                "cache_key": r.cache_key,
                "model": r.model,
                "prompt_version": r.prompt_version,
                "incoming": list(r.incoming),
                "outgoing": list(r.outgoing),
            }
            for r in rows
        ]
        failed = s.query(LLMResultRow).filter(LLMResultRow.status != "ok").count()
    models = sorted({r["model"] for r in lines})
    versions = sorted({r["prompt_version"] for r in lines})
    # the failed count tells a reader "every passage was asked, these calls failed" apart from
    # "still being asked": failures are not exported, so a later build asks for them again
    header = {
        "format": ANSWERS_FORMAT,
        "answers": len(lines),
        "failed": failed,
        "models": models,
        "prompt_versions": versions,
    }
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in [header, *lines]) + "\n"
    atomic_write(Path(path), body.encode("utf-8"))
    return {
        "path": str(path),
        "answers": len(lines),
        "failed_not_exported": failed,
        "models": models,
        "prompt_versions": versions,
    }


@dataclass
class ImportedAnswers:
    """What a questions file holds, read and checked, before anything is written."""

    path: str
    rows: dict[str, dict]
    rejected: list[str]  # "line N: why" of each answer the question filter left too little of


def read_answers(path: str | Path, max_mb: float = 64) -> ImportedAnswers:
    """Read an export: a regular file of at most `max_mb` (never a FIFO or device), each answer's
    questions through the same filter as an LLM's reply (length, form, script, repetition). A line
    that is not an answer fails the whole file (ValueError naming the line); an answer the filter
    leaves without an incoming question is rejected, counted, and asked of the LLM by the next build."""
    from storage.files import read_regular

    from ..library.jsonl import json_objects

    path = Path(path)

    def fail(reason: str, line: int | None) -> ValueError:
        return ValueError(f"{path}: line {line}: {reason}" if line else f"{path}: {reason}")

    raw = read_regular(path, int(max_mb * 2**20), "HOPRAG_QUESTIONS_IMPORT_MAX_MB")
    objs = json_objects(raw, fail, "cache_key, model, prompt_version, incoming, outgoing")
    first = next(objs, None)
    if first is None or first[1].get("format") != ANSWERS_FORMAT:
        raise fail(f'not a pseudo-query export (the first line must say "format": "{ANSWERS_FORMAT}")', 1)
    rows: dict[str, dict] = {}
    rejected: list[str] = []
    for lineno, obj in objs:
        key, model, version = obj.get("cache_key"), obj.get("model"), obj.get("prompt_version")
        if not isinstance(key, str) or not _HEX64.fullmatch(key):
            raise fail("cache_key must be 64 lower-case hex digits", lineno)
        if not isinstance(model, str) or not model or not isinstance(version, str) or not version:
            raise fail("model and prompt_version must be non-empty strings", lineno)
        qs = {d: obj.get(d) for d in ("incoming", "outgoing")}
        for d, v in qs.items():
            if not isinstance(v, list) or not all(isinstance(q, str) and q.strip() for q in v):
                raise fail(f"{d} must be a list of non-empty strings", lineno)
        if not qs["incoming"]:
            raise fail("an answer needs at least one incoming question", lineno)
        # what the filter would drop goes (5,000-character "questions" were stored and embedded);
        # what it keeps is stored as exported: an import carries answers, it does not rewrite them
        checked = cast(dict[str, list[str]], qs)  # both lists of non-empty strings, checked above
        kept = {
            d: list(dict.fromkeys(q.strip() for q in v if screen_question(q)[0] is not None))
            for d, v in checked.items()
        }
        if not kept["incoming"]:
            dropped = {screen_question(q)[1] for q in qs["incoming"]}
            rejected.append(
                f"line {lineno}: no incoming question passes the filter ({', '.join(sorted(map(str, dropped)))})"
            )
            continue
        rows[key] = {
            "cache_key": key,
            "model": model,
            "prompt_version": version,
            "status": "ok",
            "incoming": kept["incoming"],
            "outgoing": kept["outgoing"],
            "error": None,
            "attempts": 0,
            "updated_at": utcnow(),
        }
    return ImportedAnswers(str(path), rows, rejected)


def store_answers(db: Database, answers: ImportedAnswers) -> dict:
    """Write read answers into the cache. A row the cache already answers is kept as it is."""
    rows = answers.rows
    with db.session() as s:
        existing = (
            {
                r.cache_key: r
                for r in s.scalars(select(LLMResultRow).where(LLMResultRow.cache_key.in_(list(rows)))).all()
            }
            if rows
            else {}
        )
        kept = [k for k, r in existing.items() if r.status == "ok"]
        for r in existing.values():  # a cached failure gives way to an answer
            if r.status != "ok":
                s.delete(r)
        s.flush()
        new = [v for k, v in rows.items() if k not in kept]
        if new:
            s.execute(cast(Table, LLMResultRow.__table__).insert(), new)
    return {
        "path": answers.path,
        "imported": len(new),
        "already_cached": len(kept),
        "rejected": len(answers.rejected),
        "rejected_lines": answers.rejected[:20],
        "other_prompt_version": sum(1 for v in rows.values() if v["prompt_version"] != PROMPT_VERSION),
    }
