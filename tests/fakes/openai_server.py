"""A fake OpenAI-compatible chat endpoint (what Ollama, vLLM and llama.cpp serve) on 127.0.0.1.

`POST /v1/chat/completions` with `{"model", "messages", "temperature", "response_format"}`
answers `{"id", "object": "chat.completion", "created", "model", "choices": [{"index": 0,
"message": {"role": "assistant", "content": <JSON>}, "finish_reason": "stop"}], "usage": {...}}`
where the JSON is what `responder(prompt, system, schema)` returns; the schema is
response_format.json_schema.schema. With `api_key` set, requests need `Authorization: Bearer
<key>`; a wrong key gets a 401 that, like some servers, quotes the key it was sent.
Faults and recording come from tests/fakes/http_fake.py.

`accepts` is the set of response_format forms the server takes ("json_schema", "json_object+schema",
"json_object"); any other form gets what llama-cpp-python's server answers to json_schema: HTTP 500
with a validation message ("Input should be 'text' or 'json_object'").

Public API:
    FakeOpenAI(api_key=None)     server; `with FakeOpenAI() as fake:` starts and stops it
    FakeOpenAI.url               http://127.0.0.1:<port>/v1, to pass as llm_base_url
    FakeOpenAI.push(*faults), .requests, .responder, .max_in_flight, .latency_s   see FakeHTTPServer
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from .http_fake import FakeHTTPServer, Fault, Recorded, Reply

__all__ = ["FakeOpenAI", "Fault", "Recorded"]

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def error_reply(code: int, message: str, headers: dict[str, str] | None = None,
                error_code: str | None = None) -> Reply:
    return Reply.json(code, {"error": {"message": message, "type": _ERROR_TYPES.get(code, "api_error"),
                                       "param": None, "code": error_code}}, headers)


class FakeOpenAI(FakeHTTPServer):
    malformed_body = b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "{\\"q'

    ALL_FORMS = frozenset({"json_schema", "json_object+schema", "json_object"})

    def __init__(self, api_key: str | None = None, accepts: frozenset[str] = ALL_FORMS) -> None:
        super().__init__()
        self.api_key = api_key
        self.accepts = accepts
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return super().url + "/v1"

    def status_reply(self, fault: Fault) -> Reply:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return error_reply(fault.code, f"injected {fault.code}", headers)

    def answer(self, rec: Recorded) -> Reply:
        if self.api_key is not None and rec.headers.get("authorization") != f"Bearer {self.api_key}":
            sent = rec.headers.get("authorization", "").removeprefix("Bearer ")
            return error_reply(401, f"Incorrect API key provided: {sent}.", error_code="invalid_api_key")
        if rec.method != "POST" or rec.path != "/v1/chat/completions":
            return error_reply(404, f"no route for {rec.method} {rec.path}")
        body = rec.body if isinstance(rec.body, dict) else {}
        messages = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(messages, list) or not messages:
            return error_reply(400, "'model' and a non-empty 'messages' are required")
        if rec.fault is not None and rec.fault.kind == "malformed":
            return Reply(200, self.malformed_body)
        # the last user turn is the prompt; earlier ones are worked examples
        prompt = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        system = next((str(m.get("content")) for m in messages if m.get("role") == "system"), None)
        fmt = body.get("response_format") or {}
        form = fmt.get("type") if fmt.get("type") != "json_object" else (
            "json_object+schema" if "schema" in fmt else "json_object")
        if fmt and form not in self.accepts:
            return error_reply(500, "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                                    "'msg': \"Input should be 'text' or 'json_object'\"}]")
        schema = ((fmt.get("json_schema") or {}).get("schema") if form == "json_schema"
                  else fmt.get("schema") if form == "json_object+schema" else None)
        message: dict[str, Any] = {"role": "assistant",
                                   "content": json.dumps(self.responder(prompt, system, schema), ensure_ascii=False)}
        if rec.fault is not None and rec.fault.kind == "content":
            message["content"] = rec.fault.text
        elif rec.fault is not None and rec.fault.kind == "refused":
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        n_in, n_out = len(prompt) // 4 + 1, len(message["content"] or "") // 4 + 1
        return Reply.json(200, {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        })
