"""The build worker behind POST /builds keeps what a client may ask for (status, report), not the
parsed library it was given: up to 100 finished jobs must not hold 100 libraries in memory."""

from __future__ import annotations

import gc
import time
import weakref

from indexer.library import read_library
from indexer.serve.jobs import BuildJobs
from indexer.settings import Settings

from .conftest import write_law


def test_finished_jobs_do_not_keep_their_library(tmp_path):
    write_law(
        tmp_path / "lib", "T0000001", "測試法", {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。"}
    )
    library = read_library(tmp_path / "lib")
    held = weakref.ref(library)
    jobs = BuildJobs(Settings(home=tmp_path / "home"))
    job = jobs.submit(library, embedder="use-multilingual")
    del library
    deadline = time.monotonic() + 120
    while (state := jobs.get(job["id"]))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    jobs.close()
    assert state["status"] == "committed" and state["report"]["added"] == 2, state
    assert state["library"] == str((tmp_path / "lib").resolve())
    gc.collect()
    assert held() is None, "a finished job still holds its parsed library"


def _wait(jobs: BuildJobs, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (state := jobs.get(job_id))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.02)
    return state


def test_a_build_runs_in_its_own_process_and_its_errors_come_back(tmp_path):
    """The default worker: the build is a child process (another pid, lower priority); its report
    and a user error (the library vanished after it was queued) come back as the job's state."""
    import os

    write_law(
        tmp_path / "lib", "T0000001", "測試法", {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。"}
    )
    seen: list = []
    jobs = BuildJobs(Settings(home=tmp_path / "home"), on_start=seen.append)
    job = jobs.submit(read_library(tmp_path / "lib"), embedder="use-multilingual")
    state = _wait(jobs, job["id"])
    assert state["status"] == "committed" and state["report"]["added"] == 2 and state["stage"] == "done", state
    deadline = time.monotonic() + 30  # the job reaps its child in the background
    while seen[0].exitcode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(seen) == 1 and seen[0].pid != os.getpid() and seen[0].exitcode == 0

    library = read_library(tmp_path / "lib")
    (tmp_path / "lib" / "T0000001.json").unlink()
    state = _wait(jobs, jobs.submit(library, embedder="use-multilingual")["id"])
    jobs.close()
    assert state["status"] == "failed" and "no law files" in state["error"], state


def test_a_killed_build_process_fails_the_job_and_the_index_stays_whole(tmp_path):
    import os
    import signal

    from indexer.index import Index

    write_law(tmp_path / "lib", "T0000001", "測試法", {"1": "雇主應給付工資。"})
    settings = Settings(home=tmp_path / "home")
    with Index(settings=settings) as idx:
        first = idx.build(tmp_path / "lib", embedder="use-multilingual")
    write_law(tmp_path / "lib", "T0000001", "測試法", {"1": "雇主應給付工資。", "2": "勞工請假應事先申請。"})
    jobs = BuildJobs(settings, on_start=lambda proc: os.kill(proc.pid, signal.SIGKILL))
    state = _wait(jobs, jobs.submit(read_library(tmp_path / "lib"), embedder="use-multilingual")["id"])
    jobs.close()
    assert state["status"] == "failed" and "died" in state["error"] and "-9" in state["error"], state
    with Index(settings=settings) as idx:
        assert idx.stats()["generation"] == first.generation
        assert [h.key for h in idx.search("雇主應給付工資", k=5)] == ["T0000001:1"]
