"""scripts/local_llm.sh without the real model: a stand-in server (a venv whose `python` serves
/docs like llama-cpp-python's, then dies on its first completion with SIGILL, as the native build
did on an AMX machine with a general protection fault) shows that `start` calls a server ready only
once it has answered a completion, and says why it died; and that a venv built with other flags
than the portable ones is not taken as it is."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "local_llm.sh"
MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

FAKE_SERVER = textwrap.dedent('''
    import os, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
            self.wfile.write(b"ok")
        def do_POST(self):
            print("generating: ggml_compute_forward ...", flush=True)
            os.kill(os.getpid(), signal.SIGILL)
        def log_message(self, *a):
            pass

    port = int(sys.argv[sys.argv.index("--port") + 1])
    print(f"listening on {port}", flush=True)
    HTTPServer(("127.0.0.1", port), H).serve_forever()
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_install(home: Path, flags: str) -> None:
    """What `install` leaves: a venv that imports llama_cpp.server, its build stamp, the model."""
    bin_ = home / "venv" / "bin"
    bin_.mkdir(parents=True)
    (home / "fake_server.py").write_text(FAKE_SERVER)
    python = bin_ / "python"
    python.write_text(f'#!/bin/bash\n[ "$1" = -c ] && exit 0\nexec python3 {home / "fake_server.py"} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    (home / "venv" / "hoprag-build.txt").write_text(flags + "\n")
    (home / MODEL).write_bytes(b"")
    (home / f"{MODEL}.sha256-ok").write_text("ok\n")


def _run(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOPRAG_LOCAL_LLM_DIR=str(home), HOPRAG_LOCAL_LLM_PORT=str(_free_port()),
               HOPRAG_LOCAL_LLM_CHECK_TIMEOUT="20")
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout)


def _portable(home: Path) -> str:
    flags = subprocess.run(["bash", str(SCRIPT), "flags"], capture_output=True, text=True, check=True,
                           env=dict(os.environ, HOPRAG_LOCAL_LLM_DIR=str(home))).stdout.strip()
    return f"llama-cpp-python[server]==0.3.36 CMAKE_ARGS={flags}"


def test_the_portable_flags_leave_out_amx_and_native():
    flags = subprocess.run(["bash", str(SCRIPT), "flags"], capture_output=True, text=True, check=True).stdout
    if os.uname().machine == "x86_64":
        assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_AVX2=ON" in flags
        assert "AMX" not in flags and "AVX512" not in flags


def test_a_server_that_dies_on_its_first_generation_is_not_ready(tmp_path):
    _fake_install(tmp_path, _portable(tmp_path))
    r = _run(tmp_path, "start")
    assert r.returncode == 1, r.stderr
    assert "ready" not in r.stderr
    assert "killed by signal 4 (ILL)" in r.stderr                 # the cause, named
    assert "AMX flags" in r.stderr and "that is the portable build" in r.stderr
    assert "generating: ggml_compute_forward" in r.stderr          # the tail of its log
    status = _run(tmp_path, "status")
    assert status.returncode == 1 and "not answering" in status.stdout


def test_a_native_build_that_dies_is_told_to_rebuild_portable(tmp_path, monkeypatch):
    monkeypatch.setenv("HOPRAG_LOCAL_LLM_BUILD", "native")
    _fake_install(tmp_path, "llama-cpp-python[server]==0.3.36 CMAKE_ARGS=-DGGML_NATIVE=ON")
    r = _run(tmp_path, "start")
    assert r.returncode == 1 and "killed by signal 4" in r.stderr
    assert "rebuild portable: HOPRAG_LOCAL_LLM_BUILD=portable" in r.stderr


@pytest.mark.parametrize("stamp", [None, "llama-cpp-python[server]==0.3.36 CMAKE_ARGS=-DGGML_NATIVE=ON"],
                         ids=["unrecorded", "native"])
def test_a_venv_built_another_way_is_rebuilt(tmp_path, stamp):
    """The old script's venv has no stamp; a native one has other flags: `install` must not keep
    either (here it starts rebuilding: the fake venv is removed and a new one created)."""
    _fake_install(tmp_path, stamp or "")
    if stamp is None:
        (tmp_path / "venv" / "hoprag-build.txt").unlink()
    # PYTHON that fails at once: the rebuild begins (old venv gone), then stops before compiling
    env = dict(os.environ, HOPRAG_LOCAL_LLM_DIR=str(tmp_path), PYTHON="false")
    r = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, env=env, timeout=60)
    assert "rebuilding" in r.stderr and r.returncode != 0
    assert not (tmp_path / "venv" / "bin" / "python").exists()
