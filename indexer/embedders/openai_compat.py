"""The `openai:<model>` embedder: any OpenAI-compatible `/embeddings` endpoint (Ollama, Text
Embeddings Inference, vLLM, infinity, llama.cpp's `llama-server --embedding`), e.g. BGE-M3 served
by Ollama as `openai:bge-m3` with `HOPRAG_EMBED_BASE_URL=http://localhost:11434/v1`.

`POST {base}/embeddings` with `{"model", "input": [texts]}`; the answer's `data[i].embedding`,
placed by `data[i].index`. Batched (HOPRAG_EMBED_BATCH_SIZE); 429, 5xx, timeouts and connection
errors retried with exponential backoff and jitter, never sooner than Retry-After; anything else is
an EmbedderError at once, never a stand-in vector. Vectors come back L2-normalized whatever the
server sends (a zero vector is refused); a dimension other than the first answer's, a count other
than the texts', or a list of per-token vectors for one input (a model served without pooling)
is an error that says so.

Public API:
    OpenAIEmbedder(model, settings, backoff_base_s=, backoff_max_s=)
        .name         "openai:<model>"
        .dim          found by embedding one probe text (once)
        .fingerprint  Fingerprint(name, model, "served:<the model the server says it ran>", dim)
        .embed(texts) float32 (n, dim), rows of unit length
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np

from ..retry import TRANSIENT_TRANSPORT_ERRORS, retry_after_s, wait_before_retry
from ..settings import Settings
from .base import EmbedderError, Fingerprint, check_vectors, in_batches, l2_normalize

__all__ = ["OpenAIEmbedder"]

log = logging.getLogger(__name__)

_PROBE_TEXT = "dimension probe"


class OpenAIEmbedder:
    def __init__(
        self, model: str, settings: Settings, *, backoff_base_s: float = 0.5, backoff_max_s: float = 60.0
    ) -> None:
        base = (settings.embed_base_url or "").strip().rstrip("/")
        if not base:
            raise EmbedderError(
                f"openai:{model} needs the endpoint: set HOPRAG_EMBED_BASE_URL (or embed_base_url in "
                f"hoprag.toml, or --embed-base-url), e.g. http://localhost:11434/v1 for Ollama"
            )
        self.model = model
        self.name = f"openai:{model}"
        self._url = f"{base}/embeddings"
        key = settings.embed_api_key.get_secret_value().strip() if settings.embed_api_key else ""
        self._key = key
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._batch = settings.embed_batch_size
        self._retries = settings.embed_max_retries
        self._timeout_s = settings.embed_timeout_s
        self._backoff = (backoff_base_s, backoff_max_s)
        self._dim: int | None = None
        self._served: str | None = None  # the model name the server answers with
        self._client = httpx.Client(timeout=settings.embed_timeout_s)

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, url={self._url!r})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._embed_batch([_PROBE_TEXT])
        assert self._dim is not None
        return self._dim

    @property
    def fingerprint(self) -> Fingerprint:
        dim = self.dim  # the probe also learns the served model's name
        return Fingerprint(name=self.name, model=self.model, revision=f"served:{self._served}", dim=dim)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = in_batches(texts, self._batch, self._embed_batch, progress)
        assert self._dim is not None
        return check_vectors(np.concatenate(parts), len(texts), self._dim, self.name)

    # -- one request, with retries ---------------------------------------------------------
    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            try:
                resp = self._client.post(self._url, json={"model": self.model, "input": texts}, headers=self._headers)
            except TRANSIENT_TRANSPORT_ERRORS as exc:
                if attempt == attempts:
                    raise EmbedderError(
                        self._redact(
                            f"{self.name}: {type(exc).__name__} from {self._url} after {attempts} attempts "
                            f"(timeout {self._timeout_s:g}s); is the server running? raise HOPRAG_EMBED_TIMEOUT_S "
                            f"for a slow one"
                        )
                    ) from None
                self._sleep(attempt, type(exc).__name__, None)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt == attempts:
                    raise EmbedderError(
                        self._redact(
                            f"{self.name}: HTTP {resp.status_code} from {self._url} after {attempts} attempts "
                            f"({_message(resp)}); try again later or raise HOPRAG_EMBED_MAX_RETRIES"
                        )
                    )
                self._sleep(attempt, f"HTTP {resp.status_code}", retry_after_s(resp.headers))
                continue
            if resp.status_code != 200:
                hint = " (check HOPRAG_EMBED_API_KEY)" if resp.status_code in (401, 403) else ""
                raise EmbedderError(
                    self._redact(f"{self.name}: HTTP {resp.status_code} from {self._url}: {_message(resp)}{hint}")
                )
            return self._vectors(resp, len(texts))
        raise AssertionError("unreachable")

    def _vectors(self, resp: httpx.Response, n: int) -> np.ndarray:
        try:
            body = resp.json()
            data = sorted(body["data"], key=lambda d: int(d.get("index", 0)))
            rows = [d["embedding"] for d in data]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbedderError(
                f"{self.name}: {self._url} answered no OpenAI embeddings list ({type(exc).__name__}: "
                f"{resp.text[:200]!r})"
            ) from None
        if len(rows) != n:
            raise EmbedderError(f"{self.name}: the server returned {len(rows)} embeddings for {n} texts")
        if any(isinstance(r, list) and r and isinstance(r[0], list) for r in rows):
            first = next(r for r in rows if r and isinstance(r[0], list))
            raise EmbedderError(
                f"{self.name}: the server returned per-token vectors ({len(first)} vectors of {len(first[0])} for "
                f"one input) instead of one vector per input: it serves the model without pooling (llama.cpp's "
                f"server with a decoder GGUF does); serve an embedding model with pooling (llama-server "
                f"--embedding --pooling mean or cls, Ollama, TEI or infinity)"
            )
        if any(not isinstance(r, list) for r in rows):
            raise EmbedderError(f"{self.name}: the server returned embeddings that are not lists of numbers")
        dims = {len(r) for r in rows}
        if len(dims) != 1 or 0 in dims:
            raise EmbedderError(
                f"{self.name}: the server returned embeddings of differing or empty sizes {sorted(dims)}"
            )
        (d,) = dims
        if self._dim is not None and d != self._dim:
            raise EmbedderError(
                f"{self.name}: the server returned {d}-d vectors where it returned {self._dim}-d before: another "
                f"model answers at {self._url}; vectors of two models cannot be mixed"
            )
        served = str(body.get("model") or self.model)
        if self._served is not None and served != self._served:
            raise EmbedderError(
                f"{self.name}: the server now answers with model {served!r}, before with {self._served!r}; "
                f"vectors of two models cannot be mixed"
            )
        try:
            vectors = l2_normalize(np.asarray(rows, dtype=np.float32))  # servers differ in whether they do
        except ValueError as exc:
            raise EmbedderError(f"{self.name}: the server returned non-numeric embeddings ({exc})") from None
        self._dim, self._served = d, served
        return vectors

    def _sleep(self, attempt: int, why: str, server_wait: float | None) -> None:
        wait_before_retry(log, self.name, why, attempt, self._retries + 1, *self._backoff, server_wait)

    def _redact(self, message: str) -> str:
        return message.replace(self._key, "[redacted]") if self._key else message


def _message(resp: httpx.Response) -> str:
    try:
        body: Any = resp.json()
        err = body.get("error", body) if isinstance(body, dict) else body
        msg = err.get("message", err) if isinstance(err, dict) else err
        return str(msg)[:300]
    except ValueError:
        return resp.text[:300] or "no body"
