"""The one small interface every LLM client implements, and its error type.

A client makes exactly ONE attempt per call; retries, pacing and concurrency live in
`indexer.llm.runner`, so every backend gets the same policy.

Public API:
    LLMClient                   Protocol: .name, .model, async generate_json(prompt, schema, *, system=None,
                                examples=())
                                -> dict, async aclose()
    LLMError(message, *, kind, status=None, attempts=1, retry_after_s=None)
        .kind                   "http" | "timeout" | "connection" | "malformed" | "refused"
                                | "unreachable" | "deadline" (the run stopped asking: llm.budget)
        .status                 HTTP status for kind "http", else None
        .attempts               attempts made before giving up
        .retry_after_s          what the server asked us to wait (Retry-After / RetryInfo), if anything
        .misfit                 (reply, reason) when a reply arrived but did not fit (the runner sets it)
        .retriable              http 429/5xx, timeout, connection, malformed
        .after(attempts)        the final error, naming how many attempts were made
    LLMConfigError(ValueError)  a client cannot be built from the settings (no key, no base URL)
    parse_json_object(text, who) -> dict   a reply's text as a JSON object (``` fences tolerated)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["LLMClient", "LLMConfigError", "LLMError", "LLMErrorKind", "parse_json_object"]

# unreachable: a circuit breaker stopped asking (llm.budget); deadline: the caller's time ran out
LLMErrorKind = Literal["http", "timeout", "connection", "malformed", "refused", "unreachable", "deadline"]
_KINDS = ("http", "timeout", "connection", "malformed", "refused", "unreachable", "deadline")


class LLMError(Exception):
    """The failure of one request: of one attempt inside a client, of all attempts from the runner."""

    def __init__(
        self,
        message: str,
        *,
        kind: LLMErrorKind,
        status: int | None = None,
        attempts: int = 1,
        retry_after_s: float | None = None,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown LLMError kind {kind!r}")
        super().__init__(message)
        self.message = message
        self.kind: LLMErrorKind = kind
        self.status = status
        self.attempts = attempts
        self.retry_after_s = retry_after_s
        # a reply that arrived but does not fit: (the reply, why), for a repair turn (runner)
        self.misfit: tuple[dict[str, Any], str] | None = None

    @property
    def retriable(self) -> bool:
        # A malformed reply is retried: sampling is not deterministic and the next one may fit.
        if self.kind == "http":
            return self.status == 429 or (self.status is not None and 500 <= self.status < 600)
        return self.kind not in ("refused", "unreachable", "deadline")

    def after(self, attempts: int) -> LLMError:
        what = "attempt" if attempts == 1 else "attempts"
        return LLMError(
            f"{self.message} (gave up after {attempts} {what})",
            kind=self.kind,
            status=self.status,
            attempts=attempts,
            retry_after_s=self.retry_after_s,
        )

    def __reduce__(self) -> Any:
        # Keyword-only arguments defeat Exception's default pickling (process pools, caches).
        return (_rebuild, (self.message, self.kind, self.status, self.attempts, self.retry_after_s))

    def __repr__(self) -> str:
        return f"LLMError({self.message!r}, kind={self.kind!r}, status={self.status!r}, attempts={self.attempts!r})"


def _rebuild(
    message: str, kind: LLMErrorKind, status: int | None, attempts: int, retry_after_s: float | None
) -> LLMError:
    return LLMError(message, kind=kind, status=status, attempts=attempts, retry_after_s=retry_after_s)


class LLMConfigError(ValueError):
    """The settings cannot make this client (a missing key or endpoint): fix the configuration."""


@runtime_checkable
class LLMClient(Protocol):
    name: str  # "gemini:gemini-2.5-flash", "openai:qwen2.5:7b"
    model: str

    async def generate_json(
        self,
        prompt: str,
        schema: dict[str, Any],
        *,
        system: str | None = None,
        examples: Sequence[tuple[str, str]] = (),
        temperature: float | None = None,
    ) -> dict[str, Any]:
        """One attempt: the reply parsed as a JSON object, or LLMError. `examples` are
        (prompt, reply) pairs sent as earlier turns of the conversation; `temperature` overrides
        the configured one for this call."""
        ...

    async def aclose(self) -> None:
        """Release connections; a later call may open new ones."""
        ...


_FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*[ \t]*\r?\n?(.*?)\r?\n?```\s*\Z", re.DOTALL)


def parse_json_object(text: str | None, who: str) -> dict[str, Any]:
    if text is None or not text.strip():
        raise LLMError(f"{who}: the reply has no text", kind="malformed")
    m = _FENCE.match(text)  # some servers wrap structured output in a markdown fence anyway
    body = m.group(1) if m else text
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise LLMError(f"{who}: the reply is not JSON ({exc}): {text[:200]!r}", kind="malformed") from None
    if not isinstance(obj, dict):
        raise LLMError(
            f"{who}: the reply is JSON {type(obj).__name__}, not an object: {text[:200]!r}", kind="malformed"
        )
    return obj
