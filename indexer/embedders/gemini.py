"""The `gemini:<model>` embedder: Gemini Developer API embeddings through the google-genai SDK.

The SDK sends `POST {base}/{version}/models/{model}:batchEmbedContents` with the key in the
`x-goog-api-key` header; we batch, retry and validate around it. The SDK's own retry
(HttpRetryOptions, tenacity) ignores Retry-After and is off by default, so retries are ours:
429, 5xx, timeouts and connection errors are retried with exponential backoff and jitter,
waiting at least what the server asks for (Retry-After header or google.rpc.RetryInfo).
Any other failure raises EmbedderError at once; there are never stand-in vectors.

Public API:
    GeminiEmbedder(model, settings, backoff_base_s=, backoff_max_s=, task_type=)
        .name         "gemini:<model>"
        .dim          settings.gemini_output_dim, else found by embedding one probe text
        .fingerprint  Fingerprint(name, model, "api", dim)
        .embed(texts) float32 (n, dim), rows of unit length
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..retry import TRANSIENT_TRANSPORT_ERRORS as _TRANSIENT
from ..retry import genai_http_message, wait_before_retry
from ..retry import genai_retry_after_s as _retry_after_s
from ..settings import Settings
from .base import EmbedderError, Fingerprint, check_vectors, in_batches

__all__ = ["GeminiEmbedder"]

log = logging.getLogger(__name__)

_PROBE_TEXT = "dimension probe"


class GeminiEmbedder:
    def __init__(
        self,
        model: str,
        settings: Settings,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 60.0,
        task_type: str = "RETRIEVAL_DOCUMENT",
    ) -> None:
        key = settings.gemini_api_key.get_secret_value().strip() if settings.gemini_api_key else ""
        if not key:
            raise EmbedderError(f"gemini:{model} needs an API key: set GEMINI_API_KEY")
        self.model = model
        self.name = f"gemini:{model}"
        self._key = key
        self._batch = settings.gemini_batch_size
        self._retries = settings.gemini_max_retries
        self._timeout_s = settings.gemini_timeout_s
        self._out_dim = settings.gemini_output_dim
        self._base_url = settings.gemini_base_url
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._task_type = task_type
        self._dim: int | None = settings.gemini_output_dim
        http = types.HttpOptions(
            timeout=max(1, round(settings.gemini_timeout_s * 1000)),  # the SDK takes milliseconds
            **({"base_url": settings.gemini_base_url} if settings.gemini_base_url else {}),
        )
        # vertexai=False: an ambient GOOGLE_GENAI_USE_VERTEXAI must not reroute our key elsewhere.
        self._client = genai.Client(api_key=key, vertexai=False, http_options=http)

    def __repr__(self) -> str:
        return f"GeminiEmbedder(model={self.model!r}, base_url={self._base_url!r})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = self._embed_batch([_PROBE_TEXT]).shape[1]
        return self._dim

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(name=self.name, model=self.model, revision="api", dim=self.dim, normalized=True)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = in_batches(texts, self._batch, self._embed_batch, progress)
        if self._dim is None:
            self._dim = parts[0].shape[1]
        return check_vectors(np.concatenate(parts), len(texts), self._dim, self.name)

    # -- one request, with retries ---------------------------------------------------------
    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        config = types.EmbedContentConfig(task_type=self._task_type, output_dimensionality=self._out_dim)
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            try:
                # list[Any]: the SDK's parameter is a list of a union (str, Part, PIL images, ...), and
                # list is invariant, so list[str] type-checks only while PIL is not installed
                contents: list[Any] = list(texts)
                resp = self._client.models.embed_content(model=self.model, contents=contents, config=config)
                return self._vectors(resp, len(texts))
            except genai_errors.APIError as exc:
                code = int(exc.code or 0)
                if code != 429 and not 500 <= code < 600:
                    raise EmbedderError(self._redact(self._fatal_message(exc, code))) from None
                if attempt == attempts:
                    raise EmbedderError(
                        self._redact(
                            f"{self.name}: HTTP {code} {exc.status or ''} after {attempts} attempts"
                            f" ({exc.message or 'no message'}); try again later or raise"
                            f" HOPRAG_GEMINI_MAX_RETRIES"
                        )
                    ) from None
                self._sleep(attempt, f"HTTP {code}", _retry_after_s(exc))
            except _TRANSIENT as exc:
                if attempt == attempts:
                    raise EmbedderError(
                        self._redact(
                            f"{self.name}: {type(exc).__name__} after {attempts} attempts"
                            f" (timeout {self._timeout_s:g}s); check the network or raise"
                            f" HOPRAG_GEMINI_TIMEOUT_S"
                        )
                    ) from None
                self._sleep(attempt, type(exc).__name__, None)
            except ValueError as exc:  # JSONDecodeError, pydantic ValidationError: a garbled reply
                raise EmbedderError(
                    self._redact(
                        f"{self.name}: the API returned a malformed response ({type(exc).__name__}: {str(exc)[:200]})"
                    )
                ) from None
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, why: str, server_wait: float | None) -> None:
        wait_before_retry(
            log, self.name, why, attempt, self._retries + 1, self._backoff_base_s, self._backoff_max_s, server_wait
        )

    def _vectors(self, resp: types.EmbedContentResponse, n: int) -> np.ndarray:
        embs = resp.embeddings or []
        if len(embs) != n:
            raise EmbedderError(f"{self.name}: the API returned {len(embs)} embeddings for {n} texts")
        rows = [e.values or [] for e in embs]
        dims = {len(r) for r in rows}
        if len(dims) != 1 or 0 in dims:
            raise EmbedderError(
                f"{self.name}: the API returned embeddings of differing or empty dimensions {sorted(dims)}"
            )
        (d,) = dims
        if self._dim is not None and d != self._dim:
            raise EmbedderError(f"{self.name}: the API returned {d}-d vectors, expected {self._dim}-d")
        return check_vectors(np.asarray(rows, dtype=np.float32), n, d, self.name)

    def _fatal_message(self, exc: genai_errors.APIError, code: int) -> str:
        return genai_http_message(self.name, exc, code, fallback="the request was rejected, not retried")

    def _redact(self, message: str) -> str:
        return message.replace(self._key, "[redacted]")
