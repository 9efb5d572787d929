"""A fake of the Gemini REST API on 127.0.0.1: a real HTTP server the real SDK talks to.

It speaks the Developer API wire format (`POST /{version}/models/{model}:batchEmbedContents`
and `:embedContent`, key in the `x-goog-api-key` header) and answers with deterministic vectors:
the same text always gives the same vector, whatever batch it arrives in. Faults queued with
`push()` are served, one per request, before normal answers resume; every request is recorded.

Public API:
    FakeGemini(dim=, api_key=)   server; `with FakeGemini() as fake:` starts and stops it
    FakeGemini.url               base URL to pass as gemini_base_url
    FakeGemini.push(*faults)     queue faults for the next requests, in order
    FakeGemini.requests          list[Recorded]: method, path, headers, body (parsed JSON or None)
    FakeGemini.handlers          path suffix -> handler; add ":generateContent" here later
    Fault                        status(code, retry_after=, retry_delay=), hang(s), malformed(), wrong_count()
    fake_vector(text, dim)       the vector the fake gives a text (unnormalized, like the real API)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import numpy as np

__all__ = ["FakeGemini", "Fault", "Recorded", "fake_vector"]

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_MAX_BATCH = 100  # the real API rejects larger batchEmbedContents calls with 400


def fake_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    # Scaled so the client has to normalize: the real API does not for truncated dimensions.
    return np.random.default_rng(seed).standard_normal(dim) * 3.0


@dataclass(frozen=True)
class Fault:
    kind: str                       # "status" | "hang" | "malformed" | "wrong_count"
    code: int = 0
    retry_after: float | None = None   # Retry-After header, seconds
    retry_delay: float | None = None   # google.rpc.RetryInfo in the error body, seconds
    seconds: float = 0.0

    @classmethod
    def status(cls, code: int, retry_after: float | None = None,
               retry_delay: float | None = None) -> "Fault":
        return cls("status", code=code, retry_after=retry_after, retry_delay=retry_delay)

    @classmethod
    def hang(cls, seconds: float) -> "Fault":
        return cls("hang", seconds=seconds)

    @classmethod
    def malformed(cls) -> "Fault":
        return cls("malformed")

    @classmethod
    def wrong_count(cls) -> "Fault":
        return cls("wrong_count")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]          # lower-cased names
    body: Any                        # parsed JSON, or None if absent or unparseable
    fault: Fault | None = None


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, json.dumps(obj).encode(), headers or {})


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


def _batch_embed(fake: "FakeGemini", model: str, body: Any) -> Reply:
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


def _embed_one(fake: "FakeGemini", model: str, body: Any) -> Reply:
    dim = int((body or {}).get("outputDimensionality") or fake.dim)
    return Reply.json(200, {"embedding": {"values": fake_vector(_texts_of((body or {}).get("content")), dim).tolist()}})


class FakeGemini:
    def __init__(self, dim: int = 64, api_key: str = "test-key") -> None:
        self.dim = dim
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.handlers: dict[str, Handler] = {
            ":batchEmbedContents": _batch_embed,
            ":embedContent": _embed_one,
        }
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -----------------------------------------------------------------------
    def push(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeGemini":
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
                fake._serve(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._serve(self)

            def log_message(self, *args: Any) -> None:
                pass  # keep pytest output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # hung handlers must not block stop()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hung handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeGemini":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request handling ----------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = h.path.split("?", 1)[0]
        rec = Recorded(h.command, path, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.requests.append(rec)
        rec.fault = self._next_fault()
        reply = self._reply(rec)
        if reply is None:  # a hang: the client has given up by now
            h.close_connection = True
            return
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", "application/json; charset=UTF-8")
            h.send_header("Content-Length", str(len(reply.body)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _reply(self, rec: Recorded) -> Reply | None:
        fault = rec.fault
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.seconds)
            return None
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            details = ([{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                         "retryDelay": f"{fault.retry_delay:g}s"}] if fault.retry_delay is not None else None)
            return error_reply(fault.code, f"injected {fault.code}", details, headers)
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
            return Reply(200, b'{"embeddings": [{"values": [0.1, 0.2')
        reply = handler(self, model, rec.body)
        if fault is not None and fault.kind == "wrong_count" and reply.status == 200:
            obj = json.loads(reply.body)
            obj["embeddings"] = obj.get("embeddings", [])[:-1]
            reply = Reply.json(200, obj)
        return reply
