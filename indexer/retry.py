"""Retry helpers shared by the API clients (the Gemini embedder and the LLM clients).

Public API:
    TRANSIENT_TRANSPORT_ERRORS   transport exceptions worth retrying (httpx, httpx2, aiohttp when installed)
    TIMEOUT_ERRORS               the subset that means "the server did not answer in time"
    retry_after_s(headers, details=None) -> float | None
                                 what the server asked us to wait: Retry-After-Ms / Retry-After header
                                 (seconds or HTTP date) or a google.rpc.RetryInfo detail of an error body
    genai_retry_after_s(exc)     the same for a google.genai APIError
    backoff_s(attempt, base_s, max_s, server_wait_s=None) -> float
                                 exponential backoff with jitter, never less than the server's wait
    wait_before_retry(log, who, why, attempt, attempts, base_s, max_s, server_wait_s=None)
                                 log the retry and sleep the backoff (the embedding clients)
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import httpx

__all__ = [
    "TIMEOUT_ERRORS",
    "TRANSIENT_TRANSPORT_ERRORS",
    "backoff_s",
    "genai_retry_after_s",
    "retry_after_s",
    "wait_before_retry",
]


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    # The google-genai SDK picks httpx2 when installed, else httpx (or aiohttp for its async
    # client); their exception trees are separate, so each is listed.
    timeouts: list[type[BaseException]] = [asyncio.TimeoutError, TimeoutError]
    others: list[type[BaseException]] = []
    mods: list[Any] = [httpx]
    try:
        import httpx2

        mods.append(httpx2)
    except ImportError:
        pass
    for m in mods:
        timeouts.append(m.TimeoutException)
        others += [m.NetworkError, m.RemoteProtocolError]
    try:
        import aiohttp

        timeouts.append(aiohttp.ServerTimeoutError)
        others.append(aiohttp.ClientConnectionError)
    except ImportError:
        pass
    return tuple(timeouts), tuple(timeouts + others)


TIMEOUT_ERRORS, TRANSIENT_TRANSPORT_ERRORS = _transport_errors()

_RETRY_DELAY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)s\s*")


def retry_after_s(headers: Mapping[str, str] | None, details: Any = None) -> float | None:
    """What the server asked us to wait, from the Retry-After header or a RetryInfo detail.

    `details` is a parsed error body: `{"error": {"details": [...]}}` or its inner object.
    """
    ms = headers.get("retry-after-ms") if headers is not None else None  # OpenAI's finer variant
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
            except (TypeError, ValueError):
                pass
    inner = details.get("error", details) if isinstance(details, dict) else {}
    for d in (inner.get("details") or []) if isinstance(inner, dict) else []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = _RETRY_DELAY.fullmatch(str(d.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    return None


def genai_retry_after_s(exc: Any) -> float | None:
    """retry_after_s for a google.genai.errors.APIError (its response headers and details)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return retry_after_s(headers, getattr(exc, "details", None))


def backoff_s(attempt: int, base_s: float, max_s: float, server_wait_s: float | None = None) -> float:
    """The wait before attempt `attempt + 1`: base * 2^(attempt-1), capped, with jitter."""
    backoff = min(max_s, base_s * 2 ** (attempt - 1))
    delay = backoff * random.uniform(0.5, 1.0)  # jitter spreads out clients that failed together
    # The server's own figure wins even over the cap: asking again sooner only earns another 429.
    return max(delay, server_wait_s) if server_wait_s is not None else delay


def genai_http_message(who: str, exc: Any, code: int, fallback: str = "") -> str:
    """A Gemini API rejection as one line, with the hint the status calls for (else `fallback`)."""
    what = f"{who}: HTTP {code} {exc.status or ''} ({exc.message or 'no message'})"
    text = str(exc.details)
    if code in (401, 403) or "API_KEY_INVALID" in text or "API key" in text:
        return f"{what}; check GEMINI_API_KEY"
    if code == 404:
        return f"{what}; check the model name after 'gemini:'"
    return f"{what}; {fallback}" if fallback else what


def wait_before_retry(
    log: Any,
    who: str,
    why: str,
    attempt: int,
    attempts: int,
    base_s: float,
    max_s: float,
    server_wait_s: float | None = None,
) -> None:
    delay = backoff_s(attempt, base_s, max_s, server_wait_s)
    log.warning("%s: %s on attempt %d of %d; retrying in %.2fs", who, why, attempt, attempts, delay)
    time.sleep(delay)
