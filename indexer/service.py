"""The HTTP service: a thin FastAPI layer over one serving `Index`, plus a build worker.

    app = create_app(Settings(home=...), api_key="s3cret", library_roots=[Path("/srv/laws")])
    run(settings, host="127.0.0.1", port=8000, api_key=None, library_roots=None)     # uvicorn

Endpoints (JSON in and out; with an api_key every one but /healthz needs `Authorization: Bearer KEY`):
    POST /search        {query, k=10, mode=dense|questions|hybrid, filters={law, pcode, key}}  -> {hits, generation}
    POST /hop-search    {query, k=10, n_hop=2, mode=similarity|llm, filters}
                                                        -> {hits, generation, llm_calls, llm_failures,
                                                            deadline_hit, steps}
    GET  /passages/{id or key}                          -> the passage            (404 if unknown)
    GET  /passages/{id or key}/neighbors?direction=out|in|both&kinds=question,citation -> {neighbors}
    POST /builds        {library, embedder?, llm?}      -> 202 the job; 409 while one is queued or running;
                                                           403 unless the library lies inside a configured root
    GET  /builds/{job id}                               -> {id, status, stage, done, total, report, error, ...}
    GET  /passages/{id or key}/graph?hops=2&limit=60    -> {center, nodes, edges}  the neighbourhood to draw
    GET  /passages/{key}/history                        -> {versions}  each later one with its `changes`
    GET  /builds                                        -> {jobs, libraries}  kept jobs, folders under the roots
    GET  /stats, GET /stats/graph (edges per law, degrees, recent builds), GET /healthz, /docs, /openapi.json
    GET  /, /ui/...                                     the web page (indexer/web): its data comes from the
                                                        endpoints above, with the same key

Status codes: 400 invalid query or library, 401 missing or wrong key, 403 library outside the roots,
404 unknown passage or job, 409 build already active or embedder mismatch, 422 request that does
not fit the schema (limits from Settings: max_query_chars, max_k, max_hops), 502 every LLM call of
an llm-mode hop search failed, 503 the index cannot answer yet (empty, embedder unavailable), 500 only for bugs.

Public API:
    create_app(settings, *, api_key=None, library_roots=None, loopback_hosts=False) -> FastAPI
    run(settings, host="127.0.0.1", port=8000, api_key=None, library_roots=None)
    ServiceConfigError      run() refuses a setup (a non-loopback address without an API key)

Every endpoint that touches the model, FAISS or the database is a plain `def`: FastAPI runs it
in its thread pool, so the event loop only parses requests and writes answers.
"""

# No `from __future__ import annotations`: the request models are made inside create_app (their
# limits come from Settings), and FastAPI must resolve the endpoints' annotations at runtime.

import asyncio
import datetime as dt
import threading
import typing
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import anyio
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from .embedders import EmbedderError, embedder_kind
from .errors import BuildBusy
from .graph import EDGE_KINDS
from .history import parse_build_date
from .index import Index
from .jobs import BuildJobs
from .llm.budget import Deadline
from .native_threads import limit_native_threads
from .refs import resolve_passage
from .serve.middleware import is_loopback, protect
from .serve.middleware import is_loopback as _is_loopback  # noqa: F401  (imported from here by tests/test_service.py)
from .serve.paths import ROOTS_HINT, check_model_path, confine, libraries
from .serve.schemas import BuildRequest, Hits, HopHits, Job, error_responses, request_models
from .settings import Settings
from .web import add_pages

if typing.TYPE_CHECKING:  # the endpoints' body types as type checkers see them; at runtime create_app binds these names
    from .serve.schemas import HopSearchRequest, SearchRequest  # noqa: F401

__all__ = ["create_app", "run", "ServiceConfigError"]


class ServiceConfigError(ValueError):
    """A service setup that run() refuses to start."""


# -------------------------------------------------------------------- helpers
def _answer(index: Index, hits: list) -> dict:
    # one answer comes from one State, so its hits share a generation; an empty answer reports
    # the generation serving now
    generation = hits[0].generation if hits else index.retriever.state().generation
    return {"hits": [h.to_dict() for h in hits], "generation": generation}


def _check_embedder(name: str) -> None:
    # By grammar only: making the embedder may load a model or reach the hub, which a request
    # must not wait for; the build itself reports a name that does not work.
    try:
        embedder_kind(name)
    except EmbedderError as exc:
        raise HTTPException(400, str(exc)) from None


def _check_llm(name: str, settings: Settings) -> None:
    from .llm.runner import get_llm

    try:
        get_llm(name, settings)
    except ValueError as exc:  # unknown name, missing key or endpoint: LLMConfigError
        raise HTTPException(400, str(exc)) from None


async def _cancel_on_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set `cancel` when the client goes away (the body is read: what comes next is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    cancel.set()


# -------------------------------------------------------------------- the app
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
    index = Index(settings=settings.model_copy(update={"cpu_threads": settings.serve_threads}))
    # a client's `st:` model is a hub id or an absolute folder under the roots, never a path
    # relative to the server's working directory
    jobs = BuildJobs(settings.model_copy(update={"st_relative_folders": False, "read_within": roots}))

    # The bodies FastAPI validates carry this app's limits; type checkers see the classes they
    # derive from instead (a model made at runtime is no type to them).
    if not typing.TYPE_CHECKING:
        SearchRequest, HopSearchRequest = request_models(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await anyio.to_thread.run_sync(jobs.close, 5.0)
        index.close()

    hop_llm_slots = anyio.CapacityLimiter(settings.hop_llm_queries)
    app = FastAPI(
        title="hoprag-index",
        version="0.1.0",
        lifespan=lifespan,
        description="HopRAG index of Taiwan laws: dense, question, hybrid and multi-hop search.",
        # the default pages load Swagger UI and ReDoc from a CDN, unpinned: /docs is served below
        docs_url=None,
        redoc_url=None,
    )
    app.state.index, app.state.jobs, app.state.library_roots = index, jobs, roots
    protect(app, settings.max_body_bytes, api_key=api_key, loopback_hosts=loopback_hosts)

    @app.post(
        "/search",
        response_model=Hits,
        response_model_exclude_none=True,
        tags=["query"],
        responses=error_responses(400, 503, invalid=True),
    )
    def search(body: SearchRequest) -> dict:
        """Top-k passages; an article the query names (勞基法第24條) comes first, marked cited."""
        filters = body.filters.as_dict() if body.filters else None
        return _answer(index, index.search(body.query, k=body.k, mode=body.mode, filters=filters, as_of=body.as_of))

    @app.post(
        "/hop-search",
        response_model=HopHits,
        response_model_exclude_none=True,
        tags=["query"],
        responses=error_responses(400, 502, 503, invalid=True),
    )
    async def hop_search(body: HopSearchRequest, request: Request) -> dict:
        """HopRAG retrieve-reason-prune over the passage graph; each hit carries the path that reached it.
        llm mode: within hop_llm_deadline_s of the request's arrival (then the similarity choice
        stands: deadline_hit), at most hop_llm_queries at once, stopped when the client goes away."""
        filters = body.filters.as_dict() if body.filters else None

        def walk(deadline: Deadline | None = None) -> dict:
            if deadline is not None and deadline.cancelled:
                return {"hits": [], "generation": 0}  # the client left while this waited: nobody reads it
            hits = index.hop_search(
                body.query,
                k=body.k,
                n_hop=body.n_hop,
                mode=body.mode,
                filters=filters,
                as_of=body.as_of,
                deadline=deadline,
            )
            return hits.to_dict()

        if body.mode != "llm" or body.n_hop == 0:
            return await anyio.to_thread.run_sync(walk)
        # Its own slots: an LLM walk holds its thread for seconds, and in the shared pool forty of
        # them would leave /healthz and similarity queries waiting behind them. The deadline runs
        # from arrival, so a walk that waited for its slot has that much less time for the LLM.
        cancel = threading.Event()
        deadline = Deadline(settings.hop_llm_deadline_s, cancel)
        # a task beside the walk, not a task group around it: the walk's errors (HopLLMError → 502)
        # must reach the handlers as themselves, not wrapped in an ExceptionGroup
        watcher = asyncio.ensure_future(_cancel_on_disconnect(request, cancel))
        try:
            return await anyio.to_thread.run_sync(walk, deadline, limiter=hop_llm_slots)
        finally:
            watcher.cancel()

    kinds_pattern = rf"^({'|'.join(EDGE_KINDS)})(,({'|'.join(EDGE_KINDS)}))*$"

    # {ref:path}: keys of JSONL libraries may hold a slash; the neighbors route must come first
    @app.get(
        "/passages/{ref:path}/graph",
        tags=["passages"],
        responses=error_responses(404, 503, invalid=True),
    )
    def neighbourhood(
        ref: str,
        hops: int = Query(2, ge=0, le=2, description="rings of neighbours: 1 or 2"),
        limit: int = Query(60, ge=1, le=300, description="at most this many passages drawn"),
        as_of: dt.date | None = Query(None, description="among the articles in force on this date (by key)"),
    ) -> dict:
        """A passage's neighbourhood to draw: passages one and two edges away (both directions), the
        nearer and stronger first, and the edges among them with questions and citation spans."""
        try:
            return resolve_passage(ref, lambda p: index.neighbourhood(p, hops=hops, limit=limit, as_of=as_of), as_of)
        except KeyError:
            raise HTTPException(404, f"no passage {ref!r} in this index" + (f" on {as_of}" if as_of else "")) from None

    @app.get(
        "/passages/{ref:path}/neighbors",
        tags=["passages"],
        responses=error_responses(400, 404, 503, invalid=True),
    )
    def neighbors(
        ref: str,
        direction: Literal["out", "in", "both"] = "out",
        kinds: str | None = Query(
            None, pattern=kinds_pattern, max_length=200, description=f"comma-separated: {','.join(EDGE_KINDS)}"
        ),
        as_of: dt.date | None = Query(None, description="among the articles in force on this date (by key)"),
    ) -> dict:
        """Edges of one passage (by numeric id or key), strongest first."""
        wanted = kinds.split(",") if kinds else None
        try:
            found = resolve_passage(
                ref, lambda p: index.neighbors(p, direction=direction, kinds=wanted, as_of=as_of), as_of
            )
        except KeyError:
            raise HTTPException(404, f"no passage {ref!r} in this index") from None
        return {"neighbors": found}

    @app.get("/passages/{ref:path}/history", tags=["passages"], responses=error_responses(404))
    def history(ref: str) -> dict:
        """The versions of one article (by key) with the dates each was in force."""
        versions = index.history(ref)
        if not versions:
            raise HTTPException(404, f"no versions of {ref!r} in this index")
        return {"key": ref, "versions": versions}

    @app.get("/passages/{ref:path}", tags=["passages"], responses=error_responses(404, invalid=True))
    def passage(ref: str, as_of: dt.date | None = Query(None, description="the version in force on this date")) -> dict:
        """One passage by numeric id or key (N0030001:24), with its pseudo-queries; as of a date,
        the version of that key then (with its interval)."""
        try:
            return resolve_passage(ref, lambda p: index.passage(p, as_of=as_of), as_of)
        except KeyError:
            raise HTTPException(404, f"no passage {ref!r} in this index" + (f" on {as_of}" if as_of else "")) from None

    @app.get("/diff", tags=["passages"], responses=error_responses(invalid=True))
    def diff(
        date_from: dt.date = Query(..., alias="from", description="YYYY-MM-DD"),
        date_to: dt.date = Query(..., alias="to", description="YYYY-MM-DD"),
        law: str | None = Query(None, max_length=200, description="one law: its name (either date's) or pcode"),
    ) -> dict:
        """Articles added, changed (with a text diff), removed and relabeled between two dates,
        and renamed laws."""
        return index.diff(date_from, date_to, law=law)

    @app.post(
        "/builds",
        status_code=202,
        response_model=Job,
        tags=["builds"],
        responses=error_responses(400, 403, 409, invalid=True),
    )
    def create_build(body: BuildRequest, response: Response) -> dict:
        """Queue a build of a library inside the configured roots; poll GET /builds/{id}."""
        if not roots:
            raise HTTPException(
                403, f"builds over HTTP are disabled because no library roots are configured; {ROOTS_HINT}"
            )
        path = confine(body.library, roots)
        if body.as_of is not None:
            parse_build_date(body.as_of)  # a date to come: 400 now, not a failed job later
        if jobs.busy:  # before anything costs time: a second request must not parse a thing
            raise BuildBusy("a build is already queued or running; one build runs at a time")
        if body.embedder:
            _check_embedder(body.embedder)
            if body.embedder.startswith("st:"):
                check_model_path(body.embedder[3:], roots)
        if body.llm:
            _check_llm(body.llm, settings)
        if not path.exists():
            raise HTTPException(400, f"cannot read library {body.library!r}: no such file or folder")
        # Not parsed here: the build reads it, in its own process, within the roots and the
        # HOPRAG_PDF_* limits; a file it cannot read fails the job with the file's name.
        as_of = body.as_of.isoformat() if body.as_of else None
        job = jobs.submit(path, embedder=body.embedder, llm=body.llm, as_of=as_of)
        response.headers["Location"] = f"/builds/{job['id']}"
        return job

    @app.get("/builds", tags=["builds"])
    def list_builds() -> dict:
        """The builds this service ran since it started (newest first) and the library folders
        under its roots that a build may read."""
        return {"jobs": jobs.list(), "libraries": libraries(roots)}

    @app.get("/builds/{job_id}", response_model=Job, tags=["builds"], responses=error_responses(404))
    def get_build(job_id: str) -> dict:
        """A build's status and progress (stage, done, total); the report once committed."""
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no build {job_id!r} (jobs are kept in memory until the service restarts)")
        return job

    @app.get("/stats", tags=["index"])
    def stats() -> dict:
        """Counts, embedder, generation, snapshot and the last build report."""
        return index.stats()

    @app.get("/stats/graph", tags=["index"])
    def graph_stats() -> dict:
        """Passages and edges per law by kind, a histogram of passage degrees, the newest builds."""
        return index.graph_summary()

    @app.get("/healthz", tags=["index"])
    def healthz() -> dict:
        """Liveness and the committed generation; open without an API key."""
        return {"status": "ok", "generation": index.generation}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        vendor = "/ui/static/vendor"
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="hoprag-index API",
            swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    add_pages(app)
    return app


def run(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    library_roots: list[Path] | None = None,
) -> None:
    """Serve with uvicorn; anything but a loopback address needs an API key."""
    api_key = (api_key or "").strip() or None
    if not is_loopback(host) and not api_key:
        raise ServiceConfigError(
            f"refusing to listen on {host!r} without an API key: anyone who can reach that address could "
            f"query and rebuild the index. Pass --api-key KEY (or set HOPRAG_API_KEY), or bind 127.0.0.1"
        )
    import uvicorn

    limit_native_threads(settings.serve_threads)
    # without a key the service is loopback-only, and so are the Host names it answers
    app = create_app(settings, api_key=api_key, library_roots=library_roots, loopback_hosts=not api_key)
    uvicorn.run(app, host=host, port=port, log_level="info")
