"""The `hoprag` entry point leaves without the interpreter's module teardown (indexer/cli/exit.py):
the shell still sees each exit code, every line of output, and the exit handlers' work, and a
thread still running is waited for."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from indexer.cli.exit import exit_code

pytestmark = pytest.mark.backend_free  # never opens an index (the build's, in its own process, on SQLite)

HANDLER = (
    "import atexit, sys; atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
    # an object the interpreter's teardown would finalize: it says whether the teardown ran
    "class Witness:\n    def __del__(self): print('torn down', file=sys.stderr)\n"
    "witness = Witness()\n"
)


def _main(argv: list[str], before: str = "") -> subprocess.CompletedProcess:
    code = HANDLER + before + f"from indexer.cli import main\nmain({argv!r})\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_exit_codes_output_and_handlers(tmp_path):
    ok = _main(["--help"])
    assert ok.returncode == 0
    assert "Usage: hoprag" in ok.stdout and "search" in ok.stdout and ok.stdout.rstrip().endswith("╯")
    assert "handler ran" in ok.stderr and "torn down" not in ok.stderr  # the module teardown skipped

    user_error = _main(["search", " ", "--home", str(tmp_path / "none")])
    assert user_error.returncode == 1
    assert "no index at" in user_error.stderr and "handler ran" in user_error.stderr

    usage = _main(["search", "x", "--mode", "nope", "--home", str(tmp_path / "none")])
    assert usage.returncode == 2 and "nope" in usage.stderr


def test_a_running_thread_is_waited_for(tmp_path):
    done = tmp_path / "done"
    thread = (
        "import threading, time, pathlib\n"
        f"threading.Thread(target=lambda: (time.sleep(0.5), pathlib.Path({str(done)!r}).write_text('x'))).start()\n"
    )
    run = _main(["--help"], before=thread)
    assert run.returncode == 0 and done.read_text() == "x"  # the ordinary exit, which joined the thread


def test_a_build_that_embedded_with_two_workers_leaves_no_thread_behind(tmp_path):
    """The offline model's workers live for one embed call: a pool kept for the process would
    hold non-daemon threads at its end, and the exit would go through the teardown again."""
    lib = tmp_path / "lib"
    lib.mkdir()
    rows = [json.dumps({"id": f"p{i}", "text": f"第{i}條 雇主延長工作時間之工資，依第{i + 1}條計算。"}) for i in range(40)]
    (lib / "corpus.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    home = tmp_path / "home"
    env = {**os.environ, "HOPRAG_CPU_THREADS": "2"}  # two workers even on a one-core machine
    code = HANDLER + f"from indexer.cli import main\nmain({['build', str(lib), '--embedder', 'use-multilingual', '--home', str(home), '--json']!r})\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["embedded"] == 40
    assert "handler ran" in run.stderr and "torn down" not in run.stderr


def test_exit_code_of_sys_exit_forms(capsys):
    assert exit_code(SystemExit()) == 0
    assert exit_code(SystemExit(3)) == 3
    assert exit_code(SystemExit("went wrong")) == 1
    assert "went wrong" in capsys.readouterr().err
