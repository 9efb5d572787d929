"""scripts/local_llm.sh without the real model: a stand-in server (a venv whose `python` serves
/docs like llama-cpp-python's, then dies on its first completion with SIGILL, as the native build
did on an AMX machine with a general protection fault) shows that `start` calls a server ready only
once it has answered a completion, and says why it died; and that a venv built with other flags
than the portable ones is not taken as it is."""

from __future__ import annotations

import os
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from .live import free_port

pytestmark = pytest.mark.backend_free  # never opens an index

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


def _fake_install(home: Path, flags: str) -> None:
    """What `install` leaves: a venv that imports llama_cpp.server, its build stamp, the model."""
    bin_ = home / "venv" / "bin"
    bin_.mkdir(parents=True)
    (home / "fake_server.py").write_text(FAKE_SERVER)
    python = bin_ / "python"
    python.write_text(f'#!/bin/bash\n[ "$1" = -c ] && exit 0\nexec python3 {home / "fake_server.py"} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    (home / "venv" / "hoprag-build.txt").write_text(flags.strip() + "\n")
    (home / MODEL).write_bytes(b"")
    (home / f"{MODEL}.sha256-ok").write_text("ok\n")


def _run(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOPRAG_LOCAL_LLM_DIR=str(home), HOPRAG_LOCAL_LLM_PORT=str(free_port()),
               HOPRAG_LOCAL_LLM_CHECK_TIMEOUT="20")
    env.setdefault("HOPRAG_LOCAL_LLM_BUILD", "portable")
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout)


def _script(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=dict(os.environ, **env))


def _portable(home: Path) -> str:
    return _script("stamp", HOPRAG_LOCAL_LLM_DIR=str(home), HOPRAG_LOCAL_LLM_BUILD="portable").stdout.strip()


def _cpuinfo(tmp_path: Path, flags: str) -> str:
    f = tmp_path / f"cpuinfo-{abs(hash(flags))}"
    f.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx avx2 fma f16c bmi2 {flags}\n")
    return str(f)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the x86-64 build choice")
@pytest.mark.parametrize("extra, build", [
    ("", "portable"),                                                    # AVX2 only
    ("avx512f avx512bw avx512vl avx512_vnni", "native"),                 # AVX-512, no AMX: it pays
    ("avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16", "portable"),  # the crash
], ids=["avx2", "avx512", "amx"])
def test_auto_builds_native_only_on_avx512_without_amx(tmp_path, extra, build):
    r = _script("stamp", HOPRAG_LOCAL_LLM_CPUINFO=_cpuinfo(tmp_path, extra))
    assert r.returncode == 0, r.stderr
    if build == "portable":
        assert "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON" in r.stdout and "AVX512" not in r.stdout
        assert "AMX" not in r.stdout and "CPU=" not in r.stdout
    else:       # a native build is for the CPU it was made on: another CPU rebuilds it
        assert "-DGGML_NATIVE=ON" in r.stdout and "CPU=Test CPU FLAGS-SHA=" in r.stdout
        other = _script("stamp", HOPRAG_LOCAL_LLM_CPUINFO=_cpuinfo(tmp_path, extra + " avx512_bf16"))
        assert other.stdout != r.stdout


def test_a_native_build_is_refused_on_an_amx_cpu(tmp_path):
    r = _script("install", HOPRAG_LOCAL_LLM_BUILD="native", HOPRAG_LOCAL_LLM_DIR=str(tmp_path),
                HOPRAG_LOCAL_LLM_CPUINFO=_cpuinfo(tmp_path, "avx512f amx_tile amx_int8"))
    assert r.returncode == 2 and "amx_tile" in r.stderr and not (tmp_path / "venv").exists()


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
    cpuinfo = _cpuinfo(tmp_path, "avx512f avx512_vnni")
    monkeypatch.setenv("HOPRAG_LOCAL_LLM_BUILD", "native")
    monkeypatch.setenv("HOPRAG_LOCAL_LLM_CPUINFO", cpuinfo)
    _fake_install(tmp_path, _script("stamp", HOPRAG_LOCAL_LLM_BUILD="native", HOPRAG_LOCAL_LLM_CPUINFO=cpuinfo).stdout)
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
    env = dict(os.environ, HOPRAG_LOCAL_LLM_DIR=str(tmp_path), PYTHON="false", HOPRAG_LOCAL_LLM_BUILD="portable")
    r = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, env=env, timeout=60)
    assert "rebuilding" in r.stderr and r.returncode != 0
    assert not (tmp_path / "venv" / "bin" / "python").exists()
