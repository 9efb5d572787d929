"""The service assembled: one serving `Index`, a build worker, the routers, the middleware.

    app = create_app(Settings(home=...), api_key="s3cret", library_roots=[Path("/srv/laws")])
    run(settings, host="127.0.0.1", port=8000, api_key=None, library_roots=None)     # uvicorn

Public API:
    create_app(settings, *, api_key=None, library_roots=None, loopback_hosts=False) -> FastAPI
    run(settings, host="127.0.0.1", port=8000, api_key=None, library_roots=None)
    ServiceConfigError      create_app() or run() refuses a setup (a root that is not a folder,
                            a non-loopback address without an API key)
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI

from ..index import Index
from ..native_threads import limit_native_threads
from ..settings import Settings
from ..web import add_pages
from .jobs import BuildJobs
from .middleware import is_loopback, protect
from .routes_builds import router as builds_routes
from .routes_index import router as index_routes
from .routes_passages import router as passages_routes
from .routes_queries import router as queries_routes

__all__ = ["create_app", "run", "ServiceConfigError"]


class ServiceConfigError(ValueError):
    """A service setup that run() refuses to start."""


def create_app(
    settings: Settings,
    *,
    api_key: str | None = None,
    library_roots: list[Path] | None = None,
    loopback_hosts: bool = False,
) -> FastAPI:
    """The app over the index at settings.home (created empty if missing). Builds over HTTP read
    only inside `library_roots`; without roots they are refused. An empty api_key means none.
    loopback_hosts: answer only Host headers that name loopback (what `run` does without a key)."""
    api_key = (api_key or "").strip() or None
    roots = []
    for r in library_roots or []:
        root = Path(r).resolve()
        if not root.is_dir():
            raise ServiceConfigError(f"library root {r} is not a folder")
        roots.append(root)
    # the serving index embeds one query per request; builds run elsewhere with their own threads
    threads = {"cpu_threads": settings.serve_threads, "query_threads": settings.serve_threads}
    index = Index(settings=settings.model_copy(update=threads))
    # a client's `st:` model is a hub id or an absolute folder under the roots, never a path
    # relative to the server's working directory
    jobs = BuildJobs(settings.model_copy(update={"st_relative_folders": False, "read_within": roots}))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await anyio.to_thread.run_sync(jobs.close, 5.0)
        index.close()

    app = FastAPI(
        title="hoprag-index",
        version="0.1.0",
        lifespan=lifespan,
        description="HopRAG index of Taiwan laws: dense, question, hybrid and multi-hop search.",
        # the default pages load Swagger UI and ReDoc from a CDN, unpinned: /docs is routes_index's
        docs_url=None,
        redoc_url=None,
    )
    app.state.index, app.state.jobs, app.state.library_roots = index, jobs, roots
    protect(app, settings.max_body_bytes, api_key=api_key, loopback_hosts=loopback_hosts)
    # in this order, which is also the schema's: the queries' /passages/{ref}/graph and /neighbors
    # before GET /passages/{ref}, whose path parameter would take them
    app.include_router(queries_routes(index, settings))
    app.include_router(passages_routes(index, jobs))
    app.include_router(builds_routes(jobs, settings, roots))
    app.include_router(index_routes(index))
    add_pages(app)
    return app


def check_bind(host: str, api_key: str | None) -> str | None:
    """The key to serve with (None: none); ServiceConfigError for a non-loopback address without one."""
    api_key = (api_key or "").strip() or None
    if not is_loopback(host) and not api_key:
        raise ServiceConfigError(
            f"refusing to listen on {host!r} without an API key: anyone who can reach that address could "
            f"query and rebuild the index. Pass --api-key KEY (or set HOPRAG_API_KEY), or bind 127.0.0.1"
        )
    return api_key


def run(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    library_roots: list[Path] | None = None,
) -> None:
    """Serve with uvicorn; anything but a loopback address needs an API key."""
    api_key = check_bind(host, api_key)
    import uvicorn

    limit_native_threads(settings.serve_threads)
    # without a key the service is loopback-only, and so are the Host names it answers
    app = create_app(settings, api_key=api_key, library_roots=library_roots, loopback_hosts=not api_key)
    uvicorn.run(app, host=host, port=port, log_level="info")
