"""What stands between a request and the routes: the API key, the body limit, the loopback Host
check, the last-resort 500 and the error handlers that turn the index's exceptions into answers.

Public API:
    protect(app, max_body_bytes, api_key=None, loopback_hosts=False)
                                  the error handlers and middleware in their order; with a key the
                                  OpenAPI schema declares the bearer scheme
    guard(app, max_body_bytes, api_key=None) -> ASGI app
                                  the same key, Host and body rules around another ASGI app (the
                                  MCP server's streamable HTTP transport): with a key, the key;
                                  without, loopback Host names only
    is_loopback(host) -> bool     a host name or address that only this machine reaches
    OPEN_PATHS                    paths open without the key (/healthz)
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import HTTP_STATUS
from ..web import is_page_path

__all__ = ["protect", "guard", "is_loopback", "OPEN_PATHS"]

log = logging.getLogger("indexer.service")  # the name the service's log lines have always carried

OPEN_PATHS = frozenset({"/healthz"})
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def protect(app: FastAPI, max_body_bytes: int, api_key: str | None = None, loopback_hosts: bool = False) -> None:
    """Add the error handlers and the middleware. The last added runs first: the key or Host check,
    then the body limit, then the last resort around the routes."""
    _add_error_handlers(app)
    app.add_middleware(_LastResort)
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    if api_key:
        app.add_middleware(_BearerAuth, key=api_key)
        _declare_bearer(app)
    elif loopback_hosts:
        app.add_middleware(_LoopbackHosts)


def guard(app: ASGIApp, max_body_bytes: int, api_key: str | None = None) -> ASGIApp:
    """`app` behind the rules `hoprag serve` keeps: the body limit, then the key (with one) or the
    loopback Host check (without: a server without a key is for this machine only)."""
    guarded: ASGIApp = _BodyLimit(app, limit=max_body_bytes)
    return _BearerAuth(guarded, key=api_key) if api_key else _LoopbackHosts(guarded)


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


async def _refuse(scope: Scope, receive: Receive, send: Send, response: JSONResponse) -> None:
    """The answer to a request turned away; a websocket (or any other scope) is closed instead."""
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1008})
        return
    await response(scope, receive, send)


class _BearerAuth:
    """Every path but OPEN_PATHS and the web page's shells needs `Authorization: Bearer <key>`;
    /docs and 404s included, so nothing is reachable by accident. The shells hold no data: the page
    fetches it from the API with the key. Digests are compared, in constant time and equal length."""

    def __init__(self, app: ASGIApp, key: str):
        self.app = app
        self._key = _digest(key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (
            scope["type"] == "http" and (scope["path"] in OPEN_PATHS or is_page_path(scope["path"]))
        ):
            return await self.app(scope, receive, send)
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(_digest(token.strip()), self._key):
            return await self.app(scope, receive, send)
        response = JSONResponse(
            {"detail": "missing or wrong API key: send the header Authorization: Bearer <key>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await _refuse(scope, receive, send, response)


class _BodyLimit:
    """Reads at most `limit` bytes of a request body (413 beyond): a 200 MB body must not cost
    memory before validation refuses it. The body is buffered (≤ limit) and replayed to the app."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            return await self._too_large(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await self._too_large(scope, receive, send)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.limit} bytes (HOPRAG_MAX_BODY_BYTES)"}, status_code=413
        )
        await response(scope, receive, send)


class _LoopbackHosts:
    """Without an API key the service listens on loopback only; it also answers only requests
    whose Host header names loopback, so that a web page that rebinds its DNS name to 127.0.0.1
    cannot read the index or start builds from a browser."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = Headers(scope=scope).get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if is_loopback(name):
            return await self.app(scope, receive, send)
        response = JSONResponse(
            {
                "detail": "this service answers only requests for localhost (Host header); to serve other "
                "names, start it with --api-key"
            },
            status_code=421,
        )
        await _refuse(scope, receive, send, response)


class _LastResort:
    """An unhandled error becomes a 500 JSON answer without a traceback (the log keeps it).

    Not an exception handler for Exception: Starlette runs those in ServerErrorMiddleware, which
    re-raises afterwards, and uvicorn then drops the client's keep-alive connection."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for another answer
                raise
            response = JSONResponse({"detail": "internal error; the service log has the details"}, status_code=500)
            await response(scope, receive, send)


def _add_error_handlers(app: FastAPI) -> None:
    def answer(status: int):
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            # the class, for clients that raise what the index raised (indexer.client)
            return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)

        return handle

    for exc_type, status in HTTP_STATUS.items():
        app.add_exception_handler(exc_type, answer(status))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors, lines = [], []
        for e in exc.errors():
            loc = [p for p in e.get("loc", ()) if p != "body"]
            msg = e.get("msg", "invalid")
            if e.get("type") == "json_invalid":
                msg = f"the body is not valid JSON ({(e.get('ctx') or {}).get('error', 'decode error')})"
                loc = []
            errors.append({"loc": [str(p) for p in loc], "msg": msg, "type": e.get("type", "")})
            lines.append(f"{'.'.join(map(str, loc)) or 'body'}: {msg}")
        return JSONResponse({"detail": "; ".join(lines), "errors": errors}, status_code=422)


def _declare_bearer(app: FastAPI) -> None:
    """State the bearer scheme in the OpenAPI schema (the middleware enforces it)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
            for path, operations in schema.get("paths", {}).items():
                if path in OPEN_PATHS:
                    continue
                for op in operations.values():
                    op["security"] = [{"bearer": []}]
                    op.setdefault("responses", {})["401"] = {
                        "description": "missing or wrong API key",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
