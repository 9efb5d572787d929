"""One writer at a time across processes; a lock left by a killed writer is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from indexer.index import Index, IndexBusy
from storage.lock import WriterLock

from .conftest import write_law

HOLD = textwrap.dedent("""
    import sys, time
    from storage.lock import WriterLock
    with WriterLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def _holder(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.sqlite_only  # the index is its home folder here: its file lock, held by a subprocess
def test_second_writer_is_refused_with_the_holder(tmp_path):
    home = tmp_path / "h"
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", {"1": "雇主應給付工資。"})
    proc = _holder(home / "write.lock")
    try:
        with Index(home) as idx:
            with pytest.raises(IndexBusy, match=f"pid {proc.pid}"):
                idx.build(lib, embedder="use-multilingual")
            assert idx.generation == 0
    finally:
        proc.kill()
        proc.wait()
    with Index(home) as idx:                       # the killed holder's lock is free again
        assert idx.build(lib, embedder="use-multilingual").generation == 1


def test_stale_lock_file_is_taken_over(tmp_path, caplog):
    path = tmp_path / "write.lock"
    proc = _holder(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert str(proc.pid) in path.read_text()       # the dead holder's pid is still written there
    with WriterLock(path):
        assert str(os.getpid()) in path.read_text()
    assert any("took over" in r.message for r in caplog.records)


def test_lock_is_exclusive_within_one_process(tmp_path):
    with WriterLock(tmp_path / "l"):
        with pytest.raises(IndexBusy):
            WriterLock(tmp_path / "l").acquire()
    with WriterLock(tmp_path / "l"):
        pass
