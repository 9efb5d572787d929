"""The passage routes: one passage, its versions, and what changed between two dates.

Public API:
    router(index) -> APIRouter
        GET /passages/{key}/history          -> {key, versions}
        GET /passages/{ref}?as_of=DATE       -> the passage (by numeric id or key)
        GET /diff?from=DATE&to=DATE&law=L    -> {added, changed, removed, relabeled, renamed_laws, counts}
        POST /passages:upsert {passages}     -> the build's report (Index.upsert); 409 while a build runs
        POST /passages:delete {keys}         -> the build's report (Index.delete); 404 for an unknown key
"""

import datetime as dt

from fastapi import APIRouter, HTTPException, Query

from ..errors import BuildBusy
from ..index import Index
from .jobs import BuildJobs
from .refs import resolve_passage
from .schemas import DeleteRequest, UpsertRequest, error_responses

__all__ = ["router"]


def router(index: Index, jobs: BuildJobs) -> APIRouter:
    api = APIRouter()

    # Answered in the request's thread, like a query: an upsert embeds only its own new texts.
    # While a build job is queued or running, 409 at once (the writer lock would say so later).
    @api.post("/passages:upsert", tags=["passages"], responses=error_responses(400, 409, invalid=True))
    def upsert(body: UpsertRequest) -> dict:
        """Put passages in by key: only their new texts are embedded; one new generation."""
        if jobs.busy:
            raise BuildBusy("a build is queued or running; upsert when it is done")
        return index.upsert([p.model_dump(exclude_none=True) for p in body.passages]).to_dict()

    @api.post("/passages:delete", tags=["passages"], responses=error_responses(404, 409, invalid=True))
    def delete(body: DeleteRequest) -> dict:
        """Take passages out by key; an unknown key changes nothing (404)."""
        if jobs.busy:
            raise BuildBusy("a build is queued or running; delete when it is done")
        try:
            return index.delete(body.keys).to_dict()
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None

    @api.get("/passages/{key:path}/history", tags=["passages"], responses=error_responses(404))
    def history(key: str) -> dict:
        """The versions of one article (by key) with the dates each was in force."""
        versions = index.history(key)
        if not versions:
            raise HTTPException(404, f"no versions of {key!r} in this index")
        return {"key": key, "versions": versions}

    @api.get("/passages/{ref:path}", tags=["passages"], responses=error_responses(404, invalid=True))
    def passage(ref: str, as_of: dt.date | None = Query(None, description="the version in force on this date")) -> dict:
        """One passage by numeric id or key (N0030001:24), with its pseudo-queries; as of a date,
        the version of that key then (with its interval)."""
        try:
            return resolve_passage(ref, lambda p: index.passage(p, as_of=as_of), as_of)
        except KeyError:
            raise HTTPException(404, f"no passage {ref!r} in this index" + (f" on {as_of}" if as_of else "")) from None

    @api.get("/diff", tags=["passages"], responses=error_responses(invalid=True))
    def diff(
        date_from: dt.date = Query(..., alias="from", description="YYYY-MM-DD"),
        date_to: dt.date = Query(..., alias="to", description="YYYY-MM-DD"),
        law: str | None = Query(None, max_length=200, description="one law: its name (either date's) or pcode"),
    ) -> dict:
        """Articles added, changed (with a text diff), removed and relabeled between two dates,
        and renamed laws."""
        return index.diff(date_from, date_to, law=law)

    return api
