"""A fake of the Gemini REST API on 127.0.0.1: a real HTTP server the real SDK talks to.

It speaks the Developer API wire format (`POST /{version}/models/{model}:batchEmbedContents`,
`:embedContent` and `:generateContent`, key in the `x-goog-api-key` header). Embeddings are
deterministic: the same text always gives the same vector, whatever batch it arrives in.
`:generateContent` answers `{"candidates": [{"content": {"parts": [{"text": <JSON>}], "role":
"model"}, "finishReason": "STOP"}], "usageMetadata": {...}}` where the JSON is what
`responder(prompt, system, schema)` returns; the schema is generationConfig.responseJsonSchema
(or responseSchema). Faults queued with `push()` are served, one per request, before normal
answers resume; every request is recorded (the machinery is tests/fakes/http_fake.py).

Public API:
    FakeGemini(dim=, api_key=)   server; `with FakeGemini() as fake:` starts and stops it
    FakeGemini.url               base URL to pass as gemini_base_url
    FakeGemini.push(*faults)     queue faults for the next requests, in order
    FakeGemini.requests          list[Recorded]: method, path, headers, body (parsed JSON or None)
    FakeGemini.responder         (prompt, system, schema) -> dict for :generateContent
    FakeGemini.max_in_flight, .latency_s   see FakeHTTPServer
    FakeGemini.handlers          path suffix -> handler (fake, model, body) -> Reply
    Fault                        status(code, retry_after=, retry_delay=), hang(s), malformed(),
                                 wrong_count(), content(text), refused()
    fake_vector(text, dim)       the vector the fake gives a text (unnormalized, like the real API)
    error_reply(code, message, details=, headers=)   a Gemini-shaped error
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from .http_fake import FakeHTTPServer, Fault, Recorded, Reply

__all__ = ["FakeGemini", "Fault", "Recorded", "Reply", "error_reply", "fake_vector"]

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_MAX_BATCH = 100  # the real API rejects larger batchEmbedContents calls with 400


def fake_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    # Scaled so the client has to normalize: the real API does not for truncated dimensions.
    return np.random.default_rng(seed).standard_normal(dim) * 3.0


def error_reply(code: int, message: str, details: list[dict] | None = None,
                headers: dict[str, str] | None = None) -> Reply:
    err: dict[str, Any] = {"code": code, "message": message, "status": _STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        err["details"] = details
    return Reply.json(code, {"error": err}, headers)


Handler = Callable[["FakeGemini", str, Any], Reply]   # (fake, model, body) -> reply


def _texts_of(content: Any) -> str:
    parts = (content or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def _batch_embed(fake: FakeGemini, model: str, body: Any) -> Reply:
    reqs = (body or {}).get("requests")
    if not isinstance(reqs, list) or not reqs:
        return error_reply(400, "requests must be a non-empty list")
    if len(reqs) > _MAX_BATCH:
        return error_reply(400, f"* BatchEmbedContentsRequest.requests: at most {_MAX_BATCH} requests can be in one batch")
    out = []
    for r in reqs:
        if r.get("model") != model:
            return error_reply(400, f"model in request ({r.get('model')}) does not match {model}")
        dim = int(r.get("outputDimensionality") or fake.dim)
        out.append({"values": fake_vector(_texts_of(r.get("content")), dim).tolist()})
    return Reply.json(200, {"embeddings": out})


def _embed_one(fake: FakeGemini, model: str, body: Any) -> Reply:
    dim = int((body or {}).get("outputDimensionality") or fake.dim)
    return Reply.json(200, {"embedding": {"values": fake_vector(_texts_of((body or {}).get("content")), dim).tolist()}})


def _generate(fake: FakeGemini, model: str, body: Any) -> Reply:
    body = body or {}
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return error_reply(400, "* GenerateContentRequest.contents: contents is not specified")
    # the last user turn is the prompt; earlier ones are worked examples
    prompt = next((_texts_of(c) for c in reversed(contents) if isinstance(c, dict) and c.get("role", "user") == "user"),
                  "")
    system = _texts_of(body.get("systemInstruction")) or None
    cfg = body.get("generationConfig") or {}
    if cfg.get("responseJsonSchema") is not None and cfg.get("responseSchema") is not None:
        return error_reply(400, "responseSchema and responseJsonSchema cannot both be set")
    schema = cfg.get("responseJsonSchema") or cfg.get("responseSchema")
    if schema is not None and cfg.get("responseMimeType") != "application/json":
        return error_reply(400, "a response schema needs responseMimeType application/json")
    text = json.dumps(fake.responder(prompt, system, schema), ensure_ascii=False)
    n_in, n_out = len(prompt) // 4 + 1, len(text) // 4 + 1
    return Reply.json(200, {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": n_in, "candidatesTokenCount": n_out,
                          "totalTokenCount": n_in + n_out},
        "modelVersion": model.removeprefix("models/"),
        "responseId": hashlib.sha256(text.encode()).hexdigest()[:16],
    })


class FakeGemini(FakeHTTPServer):
    malformed_body = b'{"embeddings": [{"values": [0.1, 0.2'

    def __init__(self, dim: int = 64, api_key: str = "test-key") -> None:
        super().__init__()
        self.dim = dim
        self.api_key = api_key
        self.handlers: dict[str, Handler] = {
            ":batchEmbedContents": _batch_embed,
            ":embedContent": _embed_one,
            ":generateContent": _generate,
        }

    def status_reply(self, fault: Fault) -> Reply:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        details = ([{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                     "retryDelay": f"{fault.retry_delay:g}s"}] if fault.retry_delay is not None else None)
        return error_reply(fault.code, f"injected {fault.code}", details, headers)

    def answer(self, rec: Recorded) -> Reply:
        fault = rec.fault
        if rec.headers.get("x-goog-api-key") != self.api_key:
            # What the real API answers for a wrong key: 400, not 401/403.
            return error_reply(400, "API key not valid. Please pass a valid API key.", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com"}])
        route = next(((s, fn) for s, fn in self.handlers.items() if rec.path.endswith(s)), None)
        if route is None or "/models/" not in rec.path:
            return error_reply(404, f"no route for {rec.method} {rec.path}")
        suffix, handler = route
        model = "models/" + rec.path.split("/models/", 1)[1][: -len(suffix)]
        if fault is not None and fault.kind == "malformed":
            return Reply(200, self.malformed_body)
        reply = handler(self, model, rec.body)
        if fault is None or reply.status != 200:
            return reply
        obj = json.loads(reply.body)
        if fault.kind == "wrong_count":
            obj["embeddings"] = obj.get("embeddings", [])[:-1]
        elif fault.kind == "content" and obj.get("candidates"):
            obj["candidates"][0]["content"]["parts"] = [{"text": fault.text}]
        elif fault.kind == "refused" and obj.get("candidates"):
            # What a safety stop looks like: no content at all, just the reason.
            obj["candidates"] = [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}]
        return Reply.json(200, obj)
