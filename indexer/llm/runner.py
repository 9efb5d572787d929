"""Many LLM requests through one client: bounded concurrency (halved on each timeout, down to
one request at a time), a requests-per-minute limit,
retries with exponential backoff and jitter that honour Retry-After / RetryInfo, a per-call
timeout. A request that still fails is returned as its LLMError and the run goes on; there
are never stand-in answers.

Public API:
    LLMRequest(key, prompt, schema, system=None, examples=(), validate=None, repair=None)
    run_requests(client, requests, *, concurrency, rpm, max_retries, validate,
                 backoff_base_s=1.0, backoff_max_s=60.0, on_done=None, timeout_s=None,
                 rpm_window_s=60.0, breaker=None, deadline=None) -> dict[key, T | LLMError]  (async)
                                 breaker (llm.budget.Breaker): once it trips, every request not yet
                                 answered ends at once as LLMError kind "unreachable"; deadline
                                 (llm.budget.Deadline): bounds every wait, and on expiry or
                                 cancellation the rest end as kind "deadline"
    run_requests_sync(client, requests, **same keywords) -> dict[key, T | LLMError]
                                 asyncio.run around run_requests, then releases the client's connections
    runner_options(settings) -> dict   concurrency / rpm / max_retries / timeout_s from Settings
    get_llm(name, settings) -> LLMClient | None   "none" | "gemini:<model>" | "openai:<model>"
    RateLimiter(per_window, window_s=60.0)   sliding-window start limiter with a shared pause
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..errors import require
from ..settings import Settings
from .base import LLMClient, LLMError
from .budget import Breaker, Deadline

__all__ = ["LLMRequest", "RateLimiter", "get_llm", "run_requests", "run_requests_sync", "runner_options"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often a run with a breaker or a deadline looks whether it must stop: the requests in flight
# are then cancelled, so a hanging server holds the run no longer than this after the decision.
_POLL_S = 0.1

# What a sloppy `validate` raises for a reply of the wrong shape (reply["x"] on a missing key,
# len() of None): all mean "the reply does not fit", never a reason to abort the whole run.
_MISFIT = (ValueError, TypeError, KeyError, IndexError)

_ACCEPTED = (
    "none | gemini:<model> (e.g. gemini:gemini-2.5-flash) | "
    "openai:<model> (e.g. openai:qwen2.5:7b, with --llm-base-url)"
)


@dataclass(frozen=True)
class LLMRequest:
    key: str
    prompt: str
    schema: dict[str, Any] = field(hash=False)
    system: str | None = None
    examples: tuple[tuple[str, str], ...] = ()  # (prompt, reply) turns shown before the prompt
    # this request's own check of the reply (it knows its passage), in place of run_requests' validate
    validate: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)
    # when a reply does not fit: repair(reason) -> the next user turn, sent after the prompt and the
    # reply that failed (a small model mends a named mistake far more often than a blind re-ask)
    repair: Callable[[str], str] | None = field(default=None, compare=False)
    temperature: float | None = None  # None: the client's configured one


class _Slots:
    """At most `limit` requests in flight; a timeout halves the limit (down to 1). A server that
    answers one request at a time (llama-cpp-python's) keeps the others waiting in its queue,
    where they time out and are asked again, and the server, still working on the abandoned
    ones, never catches up: after a few timeouts the run sends one at a time instead."""

    def __init__(self, limit: int, who: str) -> None:
        self.limit, self.busy, self.who = limit, 0, who
        self._cond = asyncio.Condition()

    def halve(self) -> None:
        if self.limit > 1:
            self.limit = max(1, self.limit // 2)
            log.warning(
                "%s: a request timed out; at most %d in flight from now on (set HOPRAG_LLM_CONCURRENCY "
                "to what the server really runs at once)",
                self.who,
                self.limit,
            )

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.busy < self.limit)
            self.busy += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.busy -= 1
            self._cond.notify_all()


class RateLimiter:
    """At most `per_window` starts in any `window_s` seconds; `pause()` holds every start."""

    def __init__(self, per_window: int | None, window_s: float = 60.0) -> None:
        if per_window is not None and per_window < 1:
            raise ValueError("per_window must be at least 1 (or None for no limit)")
        self._per_window = per_window
        self._window_s = window_s
        self._starts: deque[float] = deque()
        self._not_before = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        # A quota 429 covers the whole key: starting others now would only collect more 429s.
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    async def acquire(self) -> None:
        async with self._lock:  # one waiter at a time keeps starts in arrival order
            while True:
                now = time.monotonic()
                if now < self._not_before:
                    await asyncio.sleep(self._not_before - now)
                    continue
                if self._per_window is None:
                    return
                while self._starts and now - self._starts[0] >= self._window_s:
                    self._starts.popleft()
                if len(self._starts) < self._per_window:
                    self._starts.append(now)
                    return
                await asyncio.sleep(self._starts[0] + self._window_s - now)


async def run_requests(
    client: LLMClient,
    requests: Sequence[LLMRequest],
    *,
    concurrency: int,
    rpm: int | None,
    max_retries: int,
    validate: Callable[[dict[str, Any]], T],
    backoff_base_s: float = 1.0,
    backoff_max_s: float = 60.0,
    on_done: Callable[[str, T | LLMError], None] | None = None,
    timeout_s: float | None = None,
    rpm_window_s: float = 60.0,
    repair_temperatures: Sequence[float] = (),
    breaker: Breaker | None = None,
    deadline: Deadline | None = None,
) -> dict[str, T | LLMError]:
    keys = [r.key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("LLMRequest keys must be unique")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    slots = _Slots(concurrency, client.name)
    limiter = RateLimiter(rpm, rpm_window_s)
    attempts = max_retries + 1
    results: dict[str, T | LLMError] = {}

    def stopped() -> LLMError | None:
        if deadline is not None and deadline.expired:
            return deadline.error()
        if breaker is not None and breaker.tripped:
            return breaker.error()
        return None

    async def attempt(req: LLMRequest) -> T:
        async with slots:
            await limiter.acquire()
            stop = stopped()
            if stop is not None:
                raise stop
            wait = timeout_s
            if deadline is not None:
                wait = min(wait, deadline.remaining()) if wait else deadline.remaining()
            call = client.generate_json(
                req.prompt, req.schema, system=req.system, examples=req.examples, temperature=req.temperature
            )
            try:
                try:
                    reply = await (asyncio.wait_for(call, wait) if wait is not None else call)
                except asyncio.TimeoutError:
                    if deadline is not None and deadline.expired:
                        raise deadline.error() from None
                    raise LLMError(f"{client.name}: no reply within {wait:g}s", kind="timeout") from None
            except LLMError as err:
                if breaker is not None:
                    breaker.record(err)
                if err.kind == "timeout":  # the client's own timeout or the runner's
                    slots.halve()
                raise
            if breaker is not None:
                breaker.record(None)
        try:
            return (req.validate or validate)(reply)
        except _MISFIT as exc:
            malformed = LLMError(
                f"{client.name}: the reply does not fit ({type(exc).__name__}: {str(exc)[:200]})", kind="malformed"
            )
            malformed.misfit = (reply, str(exc))
            raise malformed from None

    async def one(req: LLMRequest) -> None:
        outcome: T | LLMError
        ask = req
        repairs = 0
        for n in range(1, attempts + 1):
            try:
                outcome = await attempt(ask)
                break
            except LLMError as err:
                misfit = err.misfit
                if misfit is not None and req.repair is not None:
                    reply, reason = misfit
                    # the original prompt and the failed reply become earlier turns; always from
                    # the original request, so turns do not pile up over several repairs
                    # Warmer each time, and every other time a fresh ask instead of a repair turn:
                    # asked again at the same temperature, or with its failed reply in view, a small
                    # model tends to repeat its mistake. Measured on the last 4 failing 著作權法
                    # articles: repair turns at 0.3 brought none through, fresh asks at 0.9 three.
                    repairs += 1
                    ladder = repair_temperatures
                    warmer = ladder[min(repairs, len(ladder)) - 1] if ladder else req.temperature
                    if repairs % 2:
                        ask = replace(
                            req,
                            prompt=req.repair(reason),
                            examples=req.examples + ((req.prompt, json.dumps(reply, ensure_ascii=False)),),
                            temperature=warmer,
                        )
                    else:
                        ask = replace(req, temperature=warmer)
                if err.kind in ("unreachable", "deadline"):
                    outcome = err  # the run stopped asking: said once, by the run
                    break
                if not err.retriable or n == attempts:
                    outcome = err.after(n)
                    log.warning("%s: request %s failed: %s", client.name, req.key, outcome)
                    break
                if err.retry_after_s:
                    limiter.pause(err.retry_after_s)
                # a reply that does not fit is no sign of an overloaded server: ask again at once
                from ..retry import backoff_s  # httpx comes with it: not for a build without an LLM

                delay = 0.0 if misfit is not None else backoff_s(n, backoff_base_s, backoff_max_s, err.retry_after_s)
                if deadline is not None:
                    delay = min(delay, deadline.remaining())
                log.info(
                    "%s: request %s: %s on attempt %d of %d; retrying in %.2fs",
                    client.name,
                    req.key,
                    err.message,
                    n,
                    attempts,
                    delay,
                )
                await asyncio.sleep(delay)
        results[req.key] = outcome
        if on_done is not None:
            on_done(req.key, outcome)

    tasks = [asyncio.create_task(one(r)) for r in requests]
    poll = _POLL_S if breaker is not None or deadline is not None else None
    try:
        pending: set[asyncio.Task] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, timeout=poll, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()  # a bug raises here
            stop = stopped() if pending else None
            if stop is not None:
                # requests in flight are abandoned (a hanging server would hold each one until its
                # timeout); every request not answered ends with the one reason, said once here
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                pending = set()
                for k in keys:
                    if k not in results:
                        results[k] = stop
                        if on_done is not None:
                            on_done(k, stop)
    except BaseException:
        # A bug (in the client, validate or on_done) stops the run rather than half-finishing it.
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    stops = [r for r in results.values() if isinstance(r, LLMError) and r.kind in ("unreachable", "deadline")]
    if stops:
        log.warning("%s: %s; %d of %d requests ended unanswered", client.name, stops[0].message, len(stops), len(keys))
    return {k: results[k] for k in keys}


def run_requests_sync(client: LLMClient, requests: Sequence[LLMRequest], **kwargs: Any) -> dict[str, Any]:
    """run_requests on a fresh event loop (the build runs in a plain thread)."""

    async def main() -> dict[str, Any]:
        try:
            return await run_requests(client, requests, **kwargs)
        finally:
            await client.aclose()  # its connections die with this loop anyway

    return asyncio.run(main())


def runner_options(settings: Settings) -> dict[str, Any]:
    return {
        "concurrency": settings.llm_concurrency,
        "rpm": settings.llm_rpm,
        "max_retries": settings.llm_max_retries,
        "timeout_s": settings.llm_timeout_s,
        "repair_temperatures": tuple(settings.llm_repair_temperatures),
    }


def get_llm(name: str, settings: Settings) -> LLMClient | None:
    spec = name.strip()
    if spec.lower() == "none":
        return None
    kind, sep, model = spec.partition(":")
    model = model.strip()
    if sep and model and kind == "gemini":
        require("google.genai", "gemini", f"the LLM {name!r}")
        from .gemini import GeminiLLM  # the SDK import is slow; pay it only when asked

        return GeminiLLM(model, settings)
    if sep and model and kind == "openai":
        from .openai_compat import OpenAICompatLLM

        return OpenAICompatLLM(model, settings)
    raise ValueError(f"unknown LLM {name!r}: use {_ACCEPTED}")
