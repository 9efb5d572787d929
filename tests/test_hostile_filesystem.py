"""A library on a hostile filesystem: FIFOs and devices named like law files, symlink loops,
links out of the library. A build never hangs on them (each case runs in a subprocess with a
timeout: a hang is a failure), never prints a traceback, and never repeats where a link points."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from indexer.errors import LibraryError
from indexer.library import library_fingerprint, read_file, read_library

from .conftest import write_law

ARTICLES = {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。"}


def _hoprag(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "indexer", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def lib(tmp_path):
    folder = tmp_path / "lib"
    write_law(folder, "T0000001", "測試法", ARTICLES)
    return folder


def test_fifo_in_a_library_is_skipped_not_read(lib, tmp_path):
    os.mkfifo(lib / "x.json")
    r = _hoprag("build", lib, "-e", "use-multilingual", "--home", tmp_path / "h", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["added"] == 2
    assert any("x.json (not a regular file" in s for s in report["skipped_files"]), report["skipped_files"]
    assert "Traceback" not in r.stderr


def test_fifo_as_the_library_fails_with_its_name(tmp_path):
    fifo = tmp_path / "law.json"
    os.mkfifo(fifo)
    with pytest.raises(LibraryError, match="not a regular file"):
        read_file(fifo)                      # opened non-blocking: returns at once
    r = _hoprag("build", tmp_path / "law.json", "-e", "use-multilingual", "--home", tmp_path / "h", timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_device_linked_into_a_library_is_not_read(lib):
    (lib / "zero.json").symlink_to("/dev/zero")      # outside the library, endless if read
    library = read_library(lib)
    assert [d.doc_key for d in library.documents] == ["T0000001"]
    (reason,) = [s for s in library.skipped if "zero.json" in s]
    assert "a symlink out of the library" in reason and "/dev/zero" not in reason   # where it points is not said


def test_symlink_loops(lib, tmp_path):
    (lib / "a.json").symlink_to(lib / "b.json")
    (lib / "b.json").symlink_to(lib / "a.json")
    library = read_library(lib)
    assert sorted(s.rsplit("/", 1)[-1] for s in library.skipped if "loop" in s) == [
        "a.json (a symlink loop)", "b.json (a symlink loop)"]
    assert library_fingerprint(lib) is not None
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    r = _hoprag("build", loop, "-e", "use-multilingual", "--home", tmp_path / "h")
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_file_over_the_limit_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(3 * 2**20)               # sparse: 3 MB that cost nothing to make
    with pytest.raises(LibraryError, match="over the 1 MB limit"):
        read_file(big, max_mb=1)
