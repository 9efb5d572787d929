"""The `gemini:<model>` LLM: Gemini Developer API structured output through google-genai's async API.

The SDK sends `POST {base}/v1beta/models/{model}:generateContent` with the key in the
`x-goog-api-key` header and our JSON schema as `generationConfig.responseJsonSchema` (the
field that takes a plain JSON-Schema dict; `responseSchema` wants the OpenAPI subset) next to
`responseMimeType: application/json`. One call is one attempt: the SDK's own retries are off
by default and stay off, the runner retries.

Public API:
    GeminiLLM(model, settings)      key: settings.gemini_api_key (GEMINI_API_KEY); endpoint:
                                    settings.gemini_base_url; timeout: settings.llm_timeout_s
        .name                       "gemini:<model>"
        .generate_json(prompt, schema, *, system=None, examples=()) -> dict   one attempt, or LLMError
        .aclose()
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..retry import TIMEOUT_ERRORS, TRANSIENT_TRANSPORT_ERRORS, genai_http_message, genai_retry_after_s
from ..settings import Settings
from .base import LLMConfigError, LLMError, parse_json_object

__all__ = ["GeminiLLM"]

# Finish reasons that mean the model declined or was stopped by policy: asking again won't help.
_REFUSED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}


class GeminiLLM:
    def __init__(self, model: str, settings: Settings) -> None:
        key = settings.gemini_api_key.get_secret_value().strip() if settings.gemini_api_key else ""
        if not key:
            raise LLMConfigError(f"gemini:{model} needs an API key: set GEMINI_API_KEY")
        if not model:
            raise LLMConfigError("gemini:<model> needs a model name, e.g. gemini:gemini-2.5-flash")
        self.model = model
        self.name = f"gemini:{model}"
        self._key = key
        self._base_url = settings.gemini_base_url
        self._timeout_s = settings.llm_timeout_s
        self._temperature = settings.llm_temperature
        self._bound: tuple[asyncio.AbstractEventLoop, genai.Client, httpx.AsyncClient] | None = None

    def __repr__(self) -> str:
        return f"GeminiLLM(model={self.model!r}, base_url={self._base_url!r})"

    def _client(self) -> genai.Client:
        # httpx connections belong to one event loop, and each run_requests_sync is a new loop.
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            self._drop()
            # Our own httpx client keeps the SDK off aiohttp, whose transport retries itself.
            http = httpx.AsyncClient(timeout=self._timeout_s)
            opts = types.HttpOptions(
                timeout=max(1, round(self._timeout_s * 1000)),  # the SDK takes milliseconds
                httpx_async_client=http,
                **({"base_url": self._base_url} if self._base_url else {}),
            )
            # vertexai=False: an ambient GOOGLE_GENAI_USE_VERTEXAI must not reroute our key elsewhere.
            self._bound = (loop, genai.Client(api_key=self._key, vertexai=False, http_options=opts), http)
        return self._bound[1]

    def _drop(self) -> None:
        if self._bound is not None:
            self._bound[1].close()  # the SDK's sync transport; the async one is ours
            self._bound = None

    async def aclose(self) -> None:
        bound = self._bound
        self._drop()
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[2].aclose()  # connections of a finished loop went with it

    async def generate_json(
        self,
        prompt: str,
        schema: dict[str, Any],
        *,
        system: str | None = None,
        examples: Sequence[tuple[str, str]] = (),
        temperature: float | None = None,
    ) -> dict[str, Any]:
        contents: Any = prompt
        if examples:
            contents = [
                types.Content(role=role, parts=[types.Part(text=text)])
                for user, reply in examples
                for role, text in (("user", user), ("model", reply))
            ]
            contents.append(types.Content(role="user", parts=[types.Part(text=prompt)]))
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=self._temperature if temperature is None else temperature,
            response_mime_type="application/json",
            response_json_schema=schema,
        )
        try:
            resp = await self._client().aio.models.generate_content(model=self.model, contents=contents, config=config)
        except genai_errors.APIError as exc:
            code = int(exc.code or 0)
            raise LLMError(
                self._redact(self._http_message(exc, code)),
                kind="http",
                status=code,
                retry_after_s=genai_retry_after_s(exc),
            ) from None
        except TIMEOUT_ERRORS as exc:
            raise LLMError(
                f"{self.name}: {type(exc).__name__} (timeout {self._timeout_s:g}s; raise HOPRAG_LLM_TIMEOUT_S)",
                kind="timeout",
            ) from None
        except TRANSIENT_TRANSPORT_ERRORS as exc:
            raise LLMError(self._redact(f"{self.name}: {type(exc).__name__}: {exc}"), kind="connection") from None
        except ValueError as exc:  # JSONDecodeError, pydantic ValidationError: a garbled body
            raise LLMError(
                self._redact(
                    f"{self.name}: the API returned a malformed response ({type(exc).__name__}: {str(exc)[:200]})"
                ),
                kind="malformed",
            ) from None
        return self._json_of(resp)

    def _json_of(self, resp: types.GenerateContentResponse) -> dict[str, Any]:
        blocked = resp.prompt_feedback.block_reason if resp.prompt_feedback else None
        if blocked:
            raise LLMError(f"{self.name}: the prompt was blocked ({_value(blocked)})", kind="refused")
        if not resp.candidates:
            raise LLMError(f"{self.name}: the reply has no candidates", kind="malformed")
        cand = resp.candidates[0]
        reason = _value(cand.finish_reason)
        if reason in _REFUSED:
            raise LLMError(f"{self.name}: the model stopped with finishReason {reason}", kind="refused")
        parts = (cand.content.parts if cand.content else None) or []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        if reason == "MAX_TOKENS":
            raise LLMError(f"{self.name}: the reply was cut off at the token limit: {text[:200]!r}", kind="malformed")
        return parse_json_object(text, self.name)

    def _http_message(self, exc: genai_errors.APIError, code: int) -> str:
        return genai_http_message(self.name, exc, code)

    def _redact(self, message: str) -> str:
        return message.replace(self._key, "[redacted]")


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str) or "")
