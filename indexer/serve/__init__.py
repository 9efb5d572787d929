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

An all-digit {id or key} is an id first, then a key, as in the CLI (indexer/refs.py).

Status codes: 400 invalid query or library, 401 missing or wrong key, 403 library outside the roots,
404 unknown passage or job, 409 build already active or embedder mismatch, 422 request that does
not fit the schema (limits from Settings: max_query_chars, max_k, max_hops), 502 every LLM call of
an llm-mode hop search failed, 503 the index cannot answer yet (empty, embedder unavailable), 500 only for bugs.

Public API:
    create_app(settings, *, api_key=None, library_roots=None, loopback_hosts=False) -> FastAPI
    run(settings, host="127.0.0.1", port=8000, api_key=None, library_roots=None)
    ServiceConfigError      run() refuses a setup (a non-loopback address without an API key)

The modules, one job each:
    app               create_app and run: the index, the build worker, the parts below put together
    schemas           request and response models (what the OpenAPI schema states)
    middleware        API key, body limit, loopback Host check, last-resort 500, error handlers
    paths             client paths confined to the library roots
    routes_queries    /search, /hop-search, /passages/{ref}/graph and /neighbors
    routes_passages   /passages/{ref}, its /history, /diff
    routes_builds     /builds
    routes_index      /stats, /stats/graph, /healthz, /docs
    jobs              build jobs: one at a time, in a child process
    refs              what a passage ref names (the CLI's rule too)
    mcp_server        the MCP server (tools and resources) and its HTTP transport

Every endpoint that touches the model, FAISS or the database is a plain `def`: FastAPI runs it
in its thread pool, so the event loop only parses requests and writes answers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["create_app", "run", "ServiceConfigError"]

if TYPE_CHECKING:
    from .app import ServiceConfigError, create_app, run


def __getattr__(name: str) -> Any:
    # loaded on first use: the CLI reads serve.refs without loading FastAPI (and numpy behind it)
    if name not in __all__:
        raise AttributeError(f"module 'indexer.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(".app", __name__), name)
