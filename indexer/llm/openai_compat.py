"""The `openai:<model>` LLM: any OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp server, ...).

Wire format, one attempt per call:
    POST {settings.llm_base_url}/chat/completions
    Authorization: Bearer <settings.llm_api_key>     (only when a key is configured)
    {"model": model, "temperature": settings.llm_temperature, "max_tokens": settings.llm_max_tokens,
     "messages": [{"role": "system", "content": system},
                  {"role": "user", "content": example prompt}, {"role": "assistant", "content": example reply},
                  ..., {"role": "user", "content": prompt}],
     "response_format": <negotiated, below>}
    -> choices[0].message.content, a JSON object (``` fences tolerated)

Structured output is negotiated once per endpoint and remembered for the process:
    1. "json_schema"        {"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}
                            (OpenAI, vLLM, Ollama)
    2. "json_object+schema" {"type": "json_object", "schema": schema}     (llama-cpp-python's server,
                            which answers 1. with HTTP 500 "Input should be 'text' or 'json_object'")
    3. "json_object"        {"type": "json_object"}: JSON mode only; the caller's validation does the rest
A server that rejects a form (HTTP 400/422/500/501 whose message names response_format, json_schema,
json_object or schema) is asked again at once with the next form; that costs no retry attempt.
Strict mode on OpenAI itself wants every property required and additionalProperties false;
local servers use the schema for constrained decoding and ignore "strict".

Public API:
    OpenAICompatLLM(model, settings)
        .name                       "openai:<model>"
        .url                        the chat/completions URL
        .structured_output          the negotiated form for this endpoint ("json_schema", ...), or None yet
        .generate_json(prompt, schema, *, system=None, examples=()) -> dict   one attempt, or LLMError
        .aclose()
    STRUCTURED_FORMS                the forms above, in the order tried
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

import httpx

from ..retry import TIMEOUT_ERRORS, TRANSIENT_TRANSPORT_ERRORS, retry_after_s
from ..settings import Settings
from .base import LLMConfigError, LLMError, parse_json_object

__all__ = ["OpenAICompatLLM", "STRUCTURED_FORMS"]

log = logging.getLogger(__name__)

STRUCTURED_FORMS = ("json_schema", "json_object+schema", "json_object")
# What an endpoint accepted, by chat URL: every client of the process (each build makes its
# own) starts from the form that worked, and the step down is logged once.
_NEGOTIATED: dict[str, int] = {}
_NEGOTIATED_LOCK = threading.Lock()
_FORM_WORDS = re.compile(r"response_format|json_schema|json_object|schema", re.IGNORECASE)

# a connection that failed (transient ones are retried), or any other error of the HTTP client
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_TRANSPORT_ERRORS, httpx.HTTPError)

_BASE_URL_HINT = "set --llm-base-url / HOPRAG_LLM_BASE_URL, e.g. http://localhost:11434/v1 for Ollama"


def _schema_name(schema: dict[str, Any]) -> str:
    # OpenAI accepts [a-zA-Z0-9_-]{1,64} here.
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(schema.get("title") or "")).strip("_")[:64]
    return name or "reply"


class OpenAICompatLLM:
    def __init__(self, model: str, settings: Settings) -> None:
        if not model:
            raise LLMConfigError("openai:<model> needs a model name, e.g. openai:qwen2.5:7b")
        base = (settings.llm_base_url or "").strip().rstrip("/")
        if not base:
            raise LLMConfigError(f"openai:{model} needs an endpoint: {_BASE_URL_HINT}")
        if not re.match(r"https?://[^/]", base):
            raise LLMConfigError(f"openai:{model}: the endpoint {base!r} is not an http(s) URL; {_BASE_URL_HINT}")
        key = settings.llm_api_key.get_secret_value().strip() if settings.llm_api_key else ""
        self.model = model
        self.name = f"openai:{model}"
        self.url = f"{base}/chat/completions"
        self._key = key
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._timeout_s = settings.llm_timeout_s
        self._temperature = settings.llm_temperature
        self._max_tokens = settings.llm_max_tokens
        self._bound: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatLLM(model={self.model!r}, url={self.url!r})"

    def _http(self) -> httpx.AsyncClient:
        # httpx connections belong to one event loop, and each run_requests_sync is a new loop.
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            self._bound = (loop, httpx.AsyncClient(timeout=self._timeout_s))
        return self._bound[1]

    async def aclose(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].aclose()  # connections of a finished loop went with it

    @property
    def structured_output(self) -> str | None:
        n = _NEGOTIATED.get(self.url)
        return None if n is None else STRUCTURED_FORMS[n]

    @staticmethod
    def _response_format(form: str, schema: dict[str, Any]) -> dict[str, Any]:
        if form == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(schema), "schema": schema, "strict": True},
            }
        if form == "json_object+schema":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_object"}

    async def generate_json(
        self,
        prompt: str,
        schema: dict[str, Any],
        *,
        system: str | None = None,
        examples: Sequence[tuple[str, str]] = (),
        temperature: float | None = None,
    ) -> dict[str, Any]:
        messages = [{"role": "system", "content": system}] if system else []
        for user, assistant in examples:  # a worked example as earlier turns: small models copy its form
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": prompt})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self._temperature if temperature is None else temperature,
        }
        if self._max_tokens:
            body["max_tokens"] = self._max_tokens
        n = _NEGOTIATED.get(self.url, 0)
        while True:
            body["response_format"] = self._response_format(STRUCTURED_FORMS[n], schema)
            try:
                return await self._post(body)
            except LLMError as err:
                if not self._rejects_form(err) or n + 1 >= len(STRUCTURED_FORMS):
                    raise
                with _NEGOTIATED_LOCK:
                    if _NEGOTIATED.get(self.url, 0) <= n:
                        _NEGOTIATED[self.url] = n + 1
                        log.warning(
                            "%s at %s rejects response_format %s (%s); using %s from now on",
                            self.name,
                            self.url,
                            STRUCTURED_FORMS[n],
                            err.message[:160],
                            STRUCTURED_FORMS[n + 1],
                        )
                n = _NEGOTIATED[self.url]

    @staticmethod
    def _rejects_form(err: LLMError) -> bool:
        return err.kind == "http" and err.status in (400, 422, 500, 501) and bool(_FORM_WORDS.search(err.message))

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = await self._http().post(self.url, json=body, headers=self._headers)
        except TIMEOUT_ERRORS as exc:
            raise LLMError(
                f"{self.name}: {type(exc).__name__} (timeout {self._timeout_s:g}s; raise HOPRAG_LLM_TIMEOUT_S)",
                kind="timeout",
            ) from None
        except _CONNECTION_ERRORS as exc:
            raise LLMError(
                self._redact(f"{self.name}: {type(exc).__name__} talking to {self.url}: {exc}"), kind="connection"
            ) from None
        try:
            obj = resp.json()
        except ValueError:
            obj = None
        if not 200 <= resp.status_code < 300:
            raise LLMError(
                self._redact(self._http_message(resp, obj)),
                kind="http",
                status=resp.status_code,
                retry_after_s=retry_after_s(resp.headers, obj),
            ) from None
        if not isinstance(obj, dict):
            raise LLMError(
                f"{self.name}: the server returned a body that is not a JSON object: {resp.text[:200]!r}",
                kind="malformed",
            )
        return self._json_of(obj)

    def _json_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        choices = obj.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict):
            raise LLMError(f"{self.name}: the reply has no choices[0].message: {str(obj)[:200]}", kind="malformed")
        reason = choice.get("finish_reason")  # type: ignore[union-attr]
        if msg.get("refusal") or reason == "content_filter":
            raise LLMError(f"{self.name}: the model refused ({msg.get('refusal') or reason})", kind="refused")
        content = msg.get("content")
        if reason == "length":
            raise LLMError(
                f"{self.name}: the reply was cut off at the token limit: {str(content)[:200]!r}", kind="malformed"
            )
        if not isinstance(content, str):
            raise LLMError(
                f"{self.name}: choices[0].message.content is {type(content).__name__}, not text", kind="malformed"
            )
        return parse_json_object(content, self.name)

    def _http_message(self, resp: httpx.Response, obj: Any) -> str:
        err = obj.get("error") if isinstance(obj, dict) else None
        detail = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
        what = f"{self.name}: HTTP {resp.status_code} from {self.url} ({str(detail or resp.text)[:300] or 'no body'})"
        if resp.status_code in (401, 403):
            return f"{what}; check HOPRAG_LLM_API_KEY"
        if resp.status_code == 404:
            return f"{what}; check the model name after 'openai:' and that the base URL ends in /v1"
        return what

    def _redact(self, message: str) -> str:
        return message.replace(self._key, "[redacted]") if self._key else message
