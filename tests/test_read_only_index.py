"""Issue 10, item 8: an index on read-only storage answers queries (no WAL switch, no migration, no
snapshot write needed to read) and refuses builds with one clear line. Read-only is made with the
immutable attribute, which binds root too; where `chattr` cannot set it, the test is skipped."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from .conftest import write_law


def _chattr(flag: str, path) -> bool:
    tool = shutil.which("chattr")
    return bool(tool) and subprocess.run([tool, "-R", flag, str(path)], capture_output=True).returncode == 0


def _hoprag(*args):
    return subprocess.run([sys.executable, "-m", "indexer", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def frozen_home(tmp_path):
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。"})
    home = tmp_path / "home"
    assert _hoprag("build", lib, "-e", "use-multilingual", "--home", home).returncode == 0
    if not _chattr("+i", home):
        pytest.skip("cannot make the index immutable here (chattr)")
    try:
        probe = home / "probe"
        with pytest.raises(OSError):
            probe.write_text("x")             # really read-only, for root too
        yield lib, home
    finally:
        _chattr("-i", home)


def test_read_only_index_answers_queries_and_refuses_builds(frozen_home):
    lib, home = frozen_home
    r = _hoprag("search", "延長工作時間 加給工資", "-k", "1", "--mode", "hybrid", "--home", home, "--json")
    assert r.returncode == 0, r.stderr
    assert "T0000001:2" in r.stdout and "Traceback" not in r.stderr
    r = _hoprag("stats", "--home", home, "--json")
    assert r.returncode == 0 and '"passages": 2' in r.stdout, r.stderr
    r = _hoprag("build", lib, "--home", home)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "read-only" in r.stderr, r.stderr
