"""Build jobs for the HTTP service: one worker thread runs one build at a time.

Each build opens its own `Index` on the service's home and closes it afterwards. The serving
`Index` is never the one that builds: a build updates its base vector sets in place before it
commits, so building through the serving instance could show a query half of the next generation.
A fresh instance per job also means a failed build leaves nothing behind in memory.

Public API:
    BuildJobs(settings, keep=100)
        .submit(library, embedder=None, llm=None) -> dict   the queued job; BuildBusy if one is active
        .get(job_id) -> dict | None                         a consistent copy of the job's state
        .busy -> bool                                       a job is queued or running
        .close(timeout=5.0)                                 stop the worker after the current job
    BuildBusy                                               a build is already queued or running
    run_build(settings, library, embedder, llm, progress, as_of=None) -> BuildReport   what the worker runs
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .build import BuildReport, ProgressFn
from .errors import USER_ERRORS, BuildBusy
from .passages import Library
from .settings import Settings

__all__ = ["BuildJobs", "BuildBusy", "run_build"]

log = logging.getLogger(__name__)


def run_build(
    settings: Settings,
    library: Library | str | Path,
    embedder: str | None,
    llm: str | None,
    progress: ProgressFn,
    as_of: str | None = None,
) -> BuildReport:
    from .index import Index

    with Index(settings=settings) as idx:
        return idx.build(library, embedder=embedder, llm=llm, progress=progress, as_of=as_of)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class _Job:
    id: str
    library: Library | None  # the parsed input, dropped when the job ends (up to `keep` jobs are kept)
    root: str
    embedder: str | None
    llm: str | None
    as_of: str | None = None
    status: str = "queued"
    stage: str | None = None
    done: int = 0
    total: int = 0
    report: dict | None = None
    error: str | None = None
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "report": self.report,
            "error": self.error,
            "library": self.root,
            "embedder": self.embedder,
            "llm": self.llm,
            "as_of": self.as_of,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class BuildJobs:
    def __init__(self, settings: Settings, *, keep: int = 100):
        self.settings = settings
        self._keep = keep
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._active: _Job | None = None
        self._worker: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._active is not None

    def submit(
        self, library: Library, embedder: str | None = None, llm: str | None = None, as_of: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            if self._active is not None:
                raise BuildBusy(
                    f"build {self._active.id} is {self._active.status}; one build runs at a time — "
                    f"poll GET /builds/{self._active.id} and submit again when it has finished"
                )
            job = _Job(
                id=uuid.uuid4().hex[:12], library=library, root=library.root, embedder=embedder, llm=llm, as_of=as_of
            )
            self._active = job
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                self._jobs.popitem(last=False)
            snapshot = job.to_dict()
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="hoprag-build", daemon=True)
                self._worker.start()
        self._queue.put(job)
        return snapshot

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.to_dict() if job else None

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)

    def _run(self, job: _Job) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            with self._lock:
                job.stage, job.done, job.total = stage, int(done), int(total)

        with self._lock:
            job.status, job.started_at = "running", _now()
            library, job.library = job.library, None  # a finished job keeps its report, not its input
        assert library is not None
        try:
            report = run_build(self.settings, library, job.embedder, job.llm, progress, job.as_of)
        except Exception as exc:  # the worker must survive any build failure and say why
            if isinstance(exc, USER_ERRORS):
                log.warning("build %s failed: %s", job.id, exc)
                message = str(exc)
            else:
                log.exception("build %s failed", job.id)
                message = f"{type(exc).__name__}: {exc}"
            with self._lock:
                job.status, job.error, job.finished_at = "failed", message, _now()
                self._active = None
            return
        with self._lock:
            job.status, job.report, job.finished_at = "committed", report.to_dict(), _now()
            job.stage = "done"
            self._active = None
