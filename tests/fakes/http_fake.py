"""The machinery shared by the API fakes: a real HTTP server on 127.0.0.1 (a free port, a
background thread), request recording, in-flight counting and scripted faults.

A subclass says what the API looks like: `status_reply()` (its error body), `answer()` (auth,
routes, normal replies) and optionally `malformed_body`. Faults queued with `push()` are
served one per request, in order, before normal answers resume.

Public API:
    FakeHTTPServer               base class; `with Sub() as fake:` starts and stops it
        .url                     http://127.0.0.1:<port>
        .push(*faults)           queue faults for the next requests
        .requests                list[Recorded], every request in arrival order
        .max_in_flight           most requests the server was handling at once (settable, e.g. to 0)
        .latency_s               delay before every reply, so that concurrent requests overlap
        .serial                  answer one request at a time, the others wait (llama-cpp-python's server)
        .responder               (prompt, system, schema) -> dict: what an LLM fake answers
        .kill()                  die mid-run: open connections closed unanswered, new ones refused
    Fault                        status(code, retry_after=, retry_delay=), hang(s), malformed(),
                                 wrong_count(), content(text), refused()
    Recorded                     method, path, headers (lower-cased names), body (parsed JSON or None), fault,
                                 at (time.monotonic() when the request had arrived, body read)
    Reply                        status, body bytes, headers; Reply.json(status, obj, headers=)
    Responder                    the responder's type
    echo_responder               the default responder: a schema-shaped object echoing the prompt
    schema_example(schema, text) a value that fits a JSON schema; strings are `text` plus a counter
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeHTTPServer", "Fault", "Recorded", "Reply", "Responder", "echo_responder", "schema_example"]

Responder = Callable[[str, "str | None", "dict | None"], dict]


@dataclass(frozen=True)
class Fault:
    kind: str                       # "status" | "hang" | "malformed" | "wrong_count" | "content" | "refused"
    code: int = 0
    retry_after: float | None = None   # Retry-After header, seconds
    retry_delay: float | None = None   # google.rpc.RetryInfo in the error body, seconds
    seconds: float = 0.0
    text: str = ""                     # the reply content for "content"

    @classmethod
    def status(cls, code: int, retry_after: float | None = None,
               retry_delay: float | None = None) -> Fault:
        return cls("status", code=code, retry_after=retry_after, retry_delay=retry_delay)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Read the request, then answer nothing for `seconds` (beyond the client's timeout)."""
        return cls("hang", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """A 200 whose body is not JSON at all (a broken server or proxy)."""
        return cls("malformed")

    @classmethod
    def wrong_count(cls) -> Fault:
        return cls("wrong_count")

    @classmethod
    def content(cls, text: str) -> Fault:
        """A well-formed reply whose model output is `text` (not JSON, or JSON of the wrong shape)."""
        return cls("content", text=text)

    @classmethod
    def refused(cls) -> Fault:
        """A well-formed reply in which the model declined (safety stop, refusal)."""
        return cls("refused")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]          # lower-cased names
    body: Any                        # parsed JSON, or None if absent or unparseable
    fault: Fault | None = None
    at: float = field(default_factory=time.monotonic)   # arrival, on the clock the client's waits use


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(obj, ensure_ascii=False).encode(), headers or {})


def schema_example(schema: dict | None, text: str = "example") -> Any:
    counter = itertools.count(1)

    def walk(s: Any) -> Any:
        if not isinstance(s, dict):
            return f"{text} {next(counter)}"
        if "const" in s:
            return s["const"]
        if s.get("enum"):
            return s["enum"][0]
        for alt in ("anyOf", "oneOf"):
            if s.get(alt):
                return walk(s[alt][0])
        kind = s.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in s:
            return {k: walk(v) for k, v in (s.get("properties") or {}).items()}
        if kind == "array":
            n = max(1, int(s.get("minItems") or 1))
            n = min(n, int(s.get("maxItems") or n))
            return [walk(s.get("items")) for _ in range(n)]
        if kind == "integer":
            return int(s.get("minimum") or 0)
        if kind == "number":
            return float(s.get("minimum") or 0.0)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return f"{text} {next(counter)}"

    return walk(schema)


def echo_responder(prompt: str, system: str | None, schema: dict | None) -> dict:
    if not schema:
        return {"echo": prompt}
    value = schema_example(schema, f"echo: {prompt[:40]}")
    return value if isinstance(value, dict) else {"value": value}


class FakeHTTPServer:
    malformed_body = b'{"truncated": [0.1, 0.2'

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.responder: Responder = echo_responder
        self.latency_s = 0.0
        self.serial = False
        self._one_at_a_time = threading.Lock()
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._dead = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what a subclass provides -------------------------------------------------------
    def status_reply(self, fault: Fault) -> Reply:
        """The API's error reply for an injected status fault."""
        raise NotImplementedError

    def answer(self, rec: Recorded) -> Reply:
        """Auth, routing and the normal reply; rec.fault may still be malformed/content/refused/..."""
        raise NotImplementedError

    # -- scripting -----------------------------------------------------------------------
    def push(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        """Drop the faults not yet served (a failed test must not leave them for the next)."""
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Any:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffered, so headers and body leave in one segment: two small writes meet Nagle
            # and delayed ACKs and cost ~40 ms a request on keep-alive connections.
            wbufsize = -1

            def do_POST(self) -> None:
                fake._serve(self)

            def do_GET(self) -> None:
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

    def kill(self) -> None:
        """Die as a killed process does: no more answers on open keep-alive connections (closed
        unanswered), and the port refuses new ones."""
        self._dead = True
        self.stop()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request handling ----------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._handle(h)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if self._dead:
            h.close_connection = True
            return
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
        if reply is None or self._dead:  # a hang (the client has given up by now), or killed meanwhile
            h.close_connection = True
            return
        if self.latency_s:
            if self.serial:
                with self._one_at_a_time:        # the work of a reply, one at a time
                    self._stopping.wait(self.latency_s)
            else:
                self._stopping.wait(self.latency_s)
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
            return self.status_reply(fault)
        return self.answer(rec)
