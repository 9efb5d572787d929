"""The build worker behind POST /builds keeps what a client may ask for (status, report), not the
parsed library it was given: up to 100 finished jobs must not hold 100 libraries in memory."""

from __future__ import annotations

import gc
import time
import weakref

from indexer.jobs import BuildJobs
from indexer.library import read_library
from indexer.settings import Settings

from .conftest import write_law


def test_finished_jobs_do_not_keep_their_library(tmp_path):
    write_law(tmp_path / "lib", "T0000001", "測試法", {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。"})
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
