"""The build routes: queue a build of a library inside the roots, and watch it.

Public API:
    router(jobs, settings, roots) -> APIRouter
        POST /builds {library, embedder?, llm?, as_of?}   -> 202 Job (Location: /builds/{id});
                                                             403 outside the roots or without any,
                                                             409 while one is queued or running
        GET  /builds                                      -> {jobs, libraries}
        GET  /builds/{job_id}                             -> Job
"""

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response

from ..embedders import EmbedderError, embedder_kind
from ..errors import BuildBusy
from ..settings import Settings
from ..store.history import parse_build_date
from .jobs import BuildJobs
from .paths import ROOTS_HINT, check_model_path, confine, libraries
from .schemas import BuildRequest, Job, error_responses

__all__ = ["router"]


def router(jobs: BuildJobs, settings: Settings, roots: list[Path]) -> APIRouter:
    api = APIRouter()

    @api.post(
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

    @api.get("/builds", tags=["builds"])
    def list_builds() -> dict:
        """The builds this service ran since it started (newest first) and the library folders
        under its roots that a build may read."""
        return {"jobs": jobs.list(), "libraries": libraries(roots)}

    @api.get("/builds/{job_id}", response_model=Job, tags=["builds"], responses=error_responses(404))
    def get_build(job_id: str) -> dict:
        """A build's status and progress (stage, done, total); the report once committed."""
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no build {job_id!r} (jobs are kept in memory until the service restarts)")
        return job

    return api


def _check_embedder(name: str) -> None:
    # By grammar only: making the embedder may load a model or reach the hub, which a request
    # must not wait for; the build itself reports a name that does not work.
    try:
        embedder_kind(name)
    except EmbedderError as exc:
        raise HTTPException(400, str(exc)) from None


def _check_llm(name: str, settings: Settings) -> None:
    from ..llm.runner import get_llm  # the LLM clients load only when a build names one

    try:
        get_llm(name, settings)
    except ValueError as exc:  # unknown name, missing key or endpoint: LLMConfigError
        raise HTTPException(400, str(exc)) from None
