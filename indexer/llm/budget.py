"""Bounds on waiting for an LLM: a circuit breaker for an endpoint that stopped answering, and a
deadline (with cancellation) for work a caller is waiting on.

Without them a dead endpoint costs every request all its retries (a build of 30 laws against a
killed server: 6 attempts × every passage), and an llm-mode query against a hanging server waits
the per-call timeout times the calls it makes. Both are plain objects shared by the requests of
one run (a build's question stage, one hop search), checked by `run_requests`.

Public API:
    Breaker(threshold)          trips after `threshold` consecutive transport failures (0: never)
        .record(err | None)     an attempt's outcome: None or any reply from the server resets the count
        .tripped, .reason       whether it tripped, and the last failure then
        .error()                the LLMError every request not yet answered ends with
    Deadline(seconds, cancel=None)   a point in time (monotonic), and an optional threading.Event
        .remaining() -> float   seconds left (0 once expired or cancelled)
        .expired -> bool        past the point in time, or cancelled
        .cancelled -> bool      the caller went away (the event is set)
        .error()                the LLMError every request not yet answered ends with
    is_transport_failure(err) -> bool   what the breaker counts
"""

from __future__ import annotations

import threading
import time

from .base import LLMError

__all__ = ["Breaker", "Deadline", "is_transport_failure"]

# HTTP 502/504 come from a proxy in front of a backend that does not answer: the same as no answer.
# A 503 or 429 is the server itself answering "busy", which retries with backoff handle.
_GATEWAY = (502, 504)


def is_transport_failure(err: LLMError) -> bool:
    return err.kind in ("connection", "timeout") or (err.kind == "http" and err.status in _GATEWAY)


class Breaker:
    def __init__(self, threshold: int) -> None:
        if threshold < 0:
            raise ValueError("threshold must be >= 0 (0: never trips)")
        self.threshold = threshold
        self.consecutive = 0
        self.tripped = False
        self.reason = ""
        self._lock = threading.Lock()

    def record(self, err: LLMError | None) -> None:
        with self._lock:
            if err is None or not is_transport_failure(err):
                self.consecutive = 0  # the server answered something: it is there
                return
            self.consecutive += 1
            if self.threshold and self.consecutive >= self.threshold and not self.tripped:
                self.tripped = True
                self.reason = err.message

    def error(self) -> LLMError:
        return LLMError(
            f"LLM unreachable: {self.consecutive} consecutive transport failures, the last: {self.reason}",
            kind="unreachable",
        )


class Deadline:
    def __init__(self, seconds: float, cancel: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.cancel = cancel

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    @property
    def expired(self) -> bool:
        return self.cancelled or time.monotonic() >= self.at

    def remaining(self) -> float:
        return 0.0 if self.cancelled else max(0.0, self.at - time.monotonic())

    def error(self) -> LLMError:
        if self.cancelled:
            return LLMError("the caller went away before the LLM answered", kind="deadline")
        return LLMError(f"no LLM answer within the deadline of {self.seconds:g}s", kind="deadline")
