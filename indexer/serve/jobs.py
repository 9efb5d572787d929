"""Build jobs for the HTTP service: one build at a time, each in its own process.

A build runs in a child process (spawned, so it shares no threads, locks or GIL with the
server) at a lower CPU priority and with `build_threads` embedder threads: queries keep a core and
win the scheduler while the embedder works. The child opens its own `Index` on the same home and
database, so it commits a generation exactly as `hoprag build` does, and the serving `Index` sees it
on its next query. Progress, the report or the error come back as JSON lines over a pipe; settings
go out the same way (secrets included: a pipe, not argv or the environment of a listing). A build
that dies (killed, out of memory) fails the job and leaves the index at its last whole generation,
as any crash does. With `build_worker="thread"` the build runs in a thread of the server instead.

Public API:
    BuildJobs(settings, keep=100, on_start=None)   on_start(process): called as each build process starts
                                                    (a supervisor's hook; the crash tests kill it there)
        .submit(library, embedder=None, llm=None) -> dict   the queued job; BuildBusy if one is active
        .get(job_id) -> dict | None                         a consistent copy of the job's state
        .list() -> list[dict]                               every kept job, newest first
        .busy -> bool                                       a job is queued or running
        .close(timeout=5.0)                                 stop the worker after the current job
    BuildBusy                                               a build is already queued or running
    run_build(settings, library, embedder, llm, progress, as_of=None) -> BuildReport   what the worker runs
    run_build_process(settings, root, embedder, llm, progress, as_of=None) -> dict     the same in a child
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import queue
import re
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..build.builder import BuildReport, ProgressFn
from ..errors import USER_ERRORS, BuildBusy
from ..passages import Library
from ..settings import Settings

__all__ = ["BuildJobs", "BuildBusy", "run_build", "run_build_process", "BuildProcessError"]

log = logging.getLogger(__name__)


def run_build(
    settings: Settings,
    library: Library | str | Path,
    embedder: str | None,
    llm: str | None,
    progress: ProgressFn,
    as_of: str | None = None,
) -> BuildReport:
    from ..index import Index

    with Index(settings=settings) as idx:
        return idx.build(library, embedder=embedder, llm=llm, progress=progress, as_of=as_of)


class BuildProcessError(RuntimeError):
    """The build process failed: `message` is what it said (or how it died)."""


def _settings_payload(settings: Settings) -> dict[str, Any]:
    """Settings as JSON types, secrets revealed (they travel over a pipe to our own child)."""
    from pydantic import SecretStr

    out = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, list):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        out[name] = value
    return out


def _child(conn, payload: bytes) -> None:  # pragma: no cover - runs in the spawned process
    job = json.loads(payload)
    settings_dict = job["settings"]
    threads = int(settings_dict.get("build_threads") or 0)
    if threads:
        # before torch or onnx import: their pools size themselves from these
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
        settings_dict["cpu_threads"] = threads
    with contextlib.suppress(OSError):
        os.nice(int(settings_dict.get("build_nice") or 0))
    _die_with_parent()

    def send(message: dict) -> None:
        conn.send_bytes(json.dumps(message, ensure_ascii=False).encode())

    def progress(stage: str, done: int, total: int) -> None:
        send({"progress": [stage, int(done), int(total)]})

    try:
        # cpu_threads reaches the embedders (torch's pool is set where a sentence-transformers model loads)
        settings = Settings(**settings_dict)
        report = run_build(settings, job["root"], job["embedder"], job["llm"], progress, job["as_of"])
        send({"report": report.to_dict()})
    except BaseException as exc:
        if isinstance(exc, USER_ERRORS):
            message = str(exc)
        else:
            import traceback

            traceback.print_exc()  # to the server's stderr: the job says what, the log says where
            message = f"{type(exc).__name__}: {exc}"
        send({"error": message})
    finally:
        conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing left to do: skip the interpreter's teardown of torch and the model


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to this process when the server dies, so a killed server
    leaves no build behind holding the writer lock (the build is crash-safe either way)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_build_process(
    settings: Settings,
    root: str,
    embedder: str | None,
    llm: str | None,
    progress: ProgressFn,
    as_of: str | None = None,
    started: Any = None,
) -> dict[str, Any]:
    """Build the library at `root` in a spawned child; its report as a dict, or BuildProcessError.
    `started(process)` is called once the child runs (the caller may terminate it)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    from ..store.vector_engines import engine_for

    # resolved here, so that the child writes exactly where this server reads (the default SQLite
    # file of its home, the Milvus collections of its engine)
    resolved = _settings_payload(settings) | {"database_url": settings.database_url_for()}
    resolved |= engine_for(settings).settings()
    payload = {
        "settings": resolved,
        "root": root,
        "embedder": embedder,
        "llm": llm,
        "as_of": as_of,
    }
    proc = ctx.Process(target=_child, args=(child, json.dumps(payload).encode()), name="hoprag-build", daemon=True)
    proc.start()
    child.close()  # the child's end: EOF here once the child exits, however it exits
    if started is not None:
        started(proc)
    outcome: dict[str, Any] | None = None
    try:
        while outcome is None:
            try:
                message = json.loads(parent.recv_bytes())
            except EOFError:
                break
            if "progress" in message:
                progress(*message["progress"])
            else:
                outcome = message
    finally:
        parent.close()
    if outcome is None:
        proc.join()
    else:
        # the commit is done when the report arrives: the job says so now, not after the child's
        # interpreter has torn torch down (seconds, at nice 10 under load)
        threading.Thread(target=proc.join, name="hoprag-build-reap", daemon=True).start()
    if outcome is None:
        raise BuildProcessError(f"the build process died (exit code {proc.exitcode}) before it reported")
    if "error" in outcome:
        raise BuildProcessError(outcome["error"])
    return outcome["report"]


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
    def __init__(self, settings: Settings, *, keep: int = 100, on_start: Callable[[Any], None] | None = None):
        self.settings = settings
        self._on_start = on_start
        self._keep = keep
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._active: _Job | None = None
        self._worker: threading.Thread | None = None
        self._process: Any = None  # the running build process, for close()

    def _public(self, message: str) -> str:
        """A job's error as any client may read it: the server's own places (its index home, the
        model cache, the LLM endpoint, the user's home folder) named, not spelled out. The
        library's path is the client's own input and stays."""
        places: list[tuple[str, str]] = [(str(Path(self.settings.home).resolve()), "<index home>")]
        if self.settings.llm_base_url:
            places.append((self.settings.llm_base_url.rstrip("/"), "<the LLM endpoint>"))
        # huggingface_hub's defaults, without importing it (the build ran in another process)
        hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
        places += [(os.environ.get("HF_HUB_CACHE") or "", "<the model cache>"), (hf_home, "<the model cache>")]
        places.append((str(Path.home()), "~"))
        for place, name in sorted(places, key=lambda p: -len(p[0])):  # the longest first: nested places
            if place and place not in ("/", "~"):
                # a whole path component: /root is the home folder, /roots is not
                message = re.sub(rf"{re.escape(place)}(?![\w.-])", name.replace("\\", r"\\"), message)
        return message

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._active is not None

    def submit(
        self,
        library: Library | str | Path,
        embedder: str | None = None,
        llm: str | None = None,
        as_of: str | None = None,
    ) -> dict[str, Any]:
        """Queue a build of `library`: a folder the worker reads (the service's way: nothing is
        parsed in a request thread), or a Library already read."""
        with self._lock:
            if self._active is not None:
                raise BuildBusy(
                    f"build {self._active.id} is {self._active.status}; one build runs at a time — "
                    f"poll GET /builds/{self._active.id} and submit again when it has finished"
                )
            parsed = library if isinstance(library, Library) else None
            root = library.root if isinstance(library, Library) else str(library)
            job = _Job(id=uuid.uuid4().hex[:12], library=parsed, root=root, embedder=embedder, llm=llm, as_of=as_of)
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

    def list(self) -> list[dict[str, Any]]:
        """The jobs kept in memory, newest first."""
        with self._lock:
            return [job.to_dict() for job in reversed(self._jobs.values())]

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.to_dict() if job else None

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        proc = self._process
        if proc is not None and proc.is_alive():
            proc.terminate()  # a build is crash-safe: stopping the server stops it, the index stays whole
        if self._worker is not None:
            self._worker.join(timeout)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)

    def _started(self, proc: Any) -> None:
        self._process = proc
        if self._on_start is not None:
            self._on_start(proc)

    def _run(self, job: _Job) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            with self._lock:
                job.stage, job.done, job.total = stage, int(done), int(total)

        with self._lock:
            job.status, job.started_at = "running", _now()
            library, job.library = job.library, None  # a finished job keeps its report, not its input
        try:
            if self.settings.build_worker == "process":
                report = run_build_process(
                    self.settings, job.root, job.embedder, job.llm, progress, job.as_of, self._started
                )
            else:
                source = library if library is not None else job.root
                report = run_build(self.settings, source, job.embedder, job.llm, progress, job.as_of).to_dict()
        except Exception as exc:  # the worker must survive any build failure and say why
            if isinstance(exc, (*USER_ERRORS, BuildProcessError)):
                log.warning("build %s failed: %s", job.id, exc)
                message = str(exc)
            else:
                log.exception("build %s failed", job.id)
                message = f"{type(exc).__name__}: {exc}"
            with self._lock:
                job.status, job.error, job.finished_at = "failed", self._public(message), _now()
                self._active = None
            return
        finally:
            self._process = None
        with self._lock:
            job.status, job.report, job.finished_at = "committed", report, _now()
            job.stage = "done"
            self._active = None
