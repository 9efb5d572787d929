"""The query routes: search, hop search, and a passage's edges and neighbourhood.

Public API:
    router(index, settings) -> APIRouter
        POST /search                         -> Hits
        POST /hop-search                     -> HopHits   (llm mode: its own slots and deadline)
        GET  /passages/{ref}/graph           -> {center, nodes, edges}
        GET  /passages/{ref}/neighbors       -> {neighbors}

Its /passages/{ref}/... routes must be added before GET /passages/{ref} (routes_passages), which
would otherwise take them: a key may hold a slash, so {ref} is a path parameter.
"""

# No `from __future__ import annotations`: the request models are made inside router() (their limits
# come from Settings), and FastAPI must resolve the endpoints' annotations at runtime.

import asyncio
import datetime as dt
import threading
from typing import TYPE_CHECKING, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Request

from ..index import Index
from ..llm.budget import Deadline
from ..settings import Settings
from ..store.graph import EDGE_KINDS
from .refs import resolve_passage
from .schemas import Hits, HopHits, error_responses, request_models

if TYPE_CHECKING:  # the endpoints' body types as type checkers see them; at runtime router() binds these names
    from .schemas import HopSearchRequest, SearchRequest  # noqa: F401

__all__ = ["router"]


def router(index: Index, settings: Settings) -> APIRouter:
    # The bodies FastAPI validates carry this app's limits; type checkers see the classes they
    # derive from instead (a model made at runtime is no type to them).
    if not TYPE_CHECKING:
        SearchRequest, HopSearchRequest = request_models(settings)
    hop_llm_slots = anyio.CapacityLimiter(settings.hop_llm_queries)
    kinds_pattern = rf"^({'|'.join(EDGE_KINDS)})(,({'|'.join(EDGE_KINDS)}))*$"
    api = APIRouter()

    @api.post(
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

    @api.post(
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

    @api.get(
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

    @api.get(
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

    return api


def _answer(index: Index, hits: list) -> dict:
    # one answer comes from one State, so its hits share a generation; an empty answer reports
    # the generation serving now
    generation = hits[0].generation if hits else index.retriever.state().generation
    return {"hits": [h.to_dict() for h in hits], "generation": generation}


async def _cancel_on_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set `cancel` when the client goes away (the body is read: what comes next is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    cancel.set()
