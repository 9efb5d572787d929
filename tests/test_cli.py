"""The `hoprag` command line: JSON shapes, human output, exit codes (0 ok, 1 user error, 2 usage)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from indexer.cli import app

from .conftest import write_law

runner = CliRunner()
BUILD_KEYS = {"added", "changed", "removed", "unchanged", "embedded", "cache_hits", "seconds"}
HIT_KEYS = {"passage_id", "key", "law", "article", "score", "text"}


@pytest.fixture
def lib(tmp_path):
    folder = tmp_path / "lib"
    write_law(folder, "N0030001", "勞動基準法", {
        "24": "雇主延長勞工工作時間者，其延長工作時間之工資，依下列標準加給：\n一、延長工作時間在二小時以內者，按平日每小時工資額加給三分之一以上。",
        "30": "勞工正常工作時間，每日不得超過八小時，每週不得超過四十小時。",
        "15-1": "未符合下列規定之一，雇主不得與勞工為最低服務年限之約定。",
    })
    return folder


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_build_query_stats_json(tmp_path, lib):
    home = tmp_path / "home"
    r = _run("build", lib, "--embedder", "use-multilingual", "--home", home, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert set(report) >= BUILD_KEYS
    assert (report["added"], report["embedded"], report["generation"]) == (3, 3, 1)

    r = _run("query", "加班費怎麼算 延長工作時間之工資", "-k", "2", "--home", home, "--json")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert len(hits) == 2 and all(set(h) >= HIT_KEYS for h in hits)
    assert hits[0]["key"] == "N0030001:24" and hits[0]["article"] == "24" and hits[0]["law"] == "勞動基準法"

    r = _run("stats", "--home", home, "--json")
    s = json.loads(r.output)
    assert (s["laws"], s["passages"], s["vectors"]) == (1, 3, 3)
    assert s["embedder"]["name"] == "use-multilingual"

    r = _run("build", lib, "--home", home, "--json")
    assert json.loads(r.output)["embedded"] == 0


def test_human_output(tmp_path, lib):
    home = tmp_path / "home"
    r = _run("build", lib, "-e", "use-multilingual", "--home", home)
    assert r.exit_code == 0 and "added 3" in r.output and "embedded 3 texts" in r.output
    r = _run("query", "最低服務年限", "-k", "1", "--home", home)
    assert "勞動基準法 第15-1條" in r.output and "[N0030001:15-1]" in r.output
    r = _run("passage", "N0030001:30", "--home", home)
    assert r.exit_code == 0 and "每日不得超過八小時" in r.output
    r = _run("stats", "--home", home)
    assert "1 laws, 3 passages" in r.output


@pytest.mark.sqlite_only  # the index is its home folder here: "no index at" means no SQLite file
def test_user_errors_exit_1_with_one_message(tmp_path, lib):
    missing = tmp_path / "missing-home"
    r = _run("query", "雇主", "--home", missing)
    assert r.exit_code == 1 and r.output.startswith("error: no index at")
    assert not missing.exists()                     # reading never creates an index
    r = _run("build", tmp_path / "nope", "--home", tmp_path / "h")
    assert r.exit_code == 1 and "no such file or folder" in r.output
    r = _run("build", lib, "--embedder", "word2vec", "--home", tmp_path / "h")
    assert r.exit_code == 1 and "unknown embedder 'word2vec'" in r.output
    r = _run("passage", "X:1", "--home", tmp_path / "h")
    assert r.exit_code == 1 and "no passage" in r.output


def test_usage_errors_exit_2(tmp_path):
    assert _run("build").exit_code == 2
    assert _run("query", "x", "-k", "0").exit_code == 2
    assert _run("frobnicate").exit_code == 2


def test_console_script_runs_as_a_process(tmp_path, lib):
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-m", "indexer", "build", str(lib), "-e", "use-multilingual",
                           "--home", str(home), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["added"] == 3
    assert proc.stderr == ""                        # no progress bar on a pipe


def test_questions_export_import_and_a_bad_file(tmp_path, lib):
    home = tmp_path / "home"
    assert _run("build", lib, "--embedder", "use-multilingual", "--home", home).exit_code == 0
    r = _run("questions", "export", tmp_path / "q.jsonl", "--home", home, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["answers"] == 0      # built without an LLM: nothing to export
    (tmp_path / "bad.jsonl").write_text('{"format": "other"}\n', encoding="utf-8")
    r = _run("questions", "import", tmp_path / "bad.jsonl", "--home", home)
    assert r.exit_code == 1 and r.output.startswith("error: ") and "not a pseudo-query export" in r.output
    r = _run("questions", "import", tmp_path / "q.jsonl", "--home", home, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["imported"] == 0


def test_eval_split_choices(tmp_path, lib):
    home = tmp_path / "home"
    assert _run("build", lib, "--embedder", "use-multilingual", "--home", home).exit_code == 0
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps({"id": str(i), "question": "加班費如何計算", "relevant": ["N0030001:24"]})
                                 for i in range(20)), encoding="utf-8")
    sizes = {}
    for split in ("dev", "test", "all"):
        r = _run("eval", queries, "--modes", "dense", "--split", split, "--home", home, "--json")
        assert r.exit_code == 0, r.output
        sizes[split] = json.loads(r.output)["queries_scored"]
    assert sizes["dev"] + sizes["test"] == sizes["all"] == 20 and 0 < sizes["dev"] < 20
    r = _run("eval", queries, "--split", "train", "--home", home)
    assert r.exit_code == 2 and "dev" in r.output and "test" in r.output   # an enum: usage error


def test_cli_mirrors_the_api(tmp_path, lib, monkeypatch):
    """Command = method, option = keyword: the same answers as Index.search / hop_search / neighbors."""
    from indexer import Index
    home = tmp_path / "home"
    assert _run("build", lib, "-e", "use-multilingual", "--home", home).exit_code == 0
    q = "延長工作時間之工資"
    with Index(home, create=False) as idx:
        api = [h.key for h in idx.search(q, k=3, mode="hybrid")]
        api_hop = [h.key for h in idx.hop_search(q, k=2, n_hop=1)]
        only = [h.key for h in idx.search(q, k=3, filters={"key": ["N0030001:30"]})]
    for command in ("search", "query"):                 # `query` stays as an alias
        r = _run(command, q, "-k", 3, "--mode", "hybrid", "--home", home, "--json")
        assert r.exit_code == 0, r.output
        assert [h["key"] for h in json.loads(r.output)] == api
    r = _run("search", q, "-k", 3, "--key", "N0030001:30", "--home", home, "--json")
    assert [h["key"] for h in json.loads(r.output)] == only == ["N0030001:30"]
    r = _run("hop", q, "-k", 2, "--n-hop", 1, "--home", home, "--json")
    assert r.exit_code == 0, r.output
    answer = json.loads(r.output)                   # the object POST /hop-search answers
    assert [h["key"] for h in answer["hits"]] == api_hop
    assert set(answer) == {"hits", "generation", "llm_calls", "llm_failures", "deadline_hit", "steps"}
    assert answer["generation"] >= 1 and answer["llm_calls"] == 0
    r = _run("neighbors", "N0030001:24", "--direction", "both", "--kinds", "citation", "--home", home, "--json")
    assert r.exit_code == 0 and json.loads(r.output) == []
    # kinds as over HTTP (comma-separated); repeating the option adds to the list
    with Index(home, create=False) as idx:
        api_both = [n["key"] for n in idx.neighbors("N0030001:30", direction="both", kinds=["question", "structural"])]
    for form in (["--kinds", "question,structural"], ["--kinds", "question", "--kinds", "structural"]):
        r = _run("neighbors", "N0030001:30", "--direction", "both", *form, "--home", home, "--json")
        assert r.exit_code == 0 and [n["key"] for n in json.loads(r.output)] == api_both, r.output
    r = _run("neighbors", "N0030001:30", "--kinds", "question,friendship", "--home", home)
    assert r.exit_code == 2 and "friendship" in r.output and "citation" in r.output
    # one name per concept: --hops is the neighbourhood's radius, not a hop search's rounds
    assert _run("hop", q, "--hops", 1, "--home", home).exit_code == 2

    # fixed choices are enums: a typo is a usage error that lists the choices
    r = _run("search", q, "--mode", "hybird", "--home", home)
    assert r.exit_code == 2 and "dense" in r.output and "hybrid" in r.output
    r = _run("neighbors", "N0030001:24", "--direction", "sideways", "--home", home)
    assert r.exit_code == 2 and "both" in r.output
    r = _run("graph", "export", "--format", "gexf", "--out", tmp_path / "g", "--home", home)
    assert r.exit_code == 2 and "graphml" in r.output
    # -k is bounded by the same setting as the HTTP API
    monkeypatch.setenv("HOPRAG_MAX_K", "5")
    r = _run("search", q, "-k", 6, "--home", home)
    assert r.exit_code == 2 and "between 1 and 5" in r.output
    assert _run("search", q, "-k", 5, "--home", home).exit_code == 0


def test_importing_the_cli_configures_no_logging():
    code = "import logging, indexer.cli, indexer; print(len(logging.getLogger().handlers))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stderr


def test_cli_choices_are_the_apis():
    from indexer import cli
    from indexer.retrieval import HOP_MODES, MODES
    assert tuple(m.value for m in cli.SearchMode) == MODES
    assert tuple(m.value for m in cli.HopMode) == HOP_MODES


def test_hostile_cli_input_gives_one_error_line(tmp_path, lib, monkeypatch):
    """Issue 10, item 8: a home that is a file, and a file name that carries a newline and an
    escape sequence, each end in exactly one `error:` line (exit 1), no traceback, no forged line."""
    home_file = tmp_path / "home-is-a-file"
    home_file.write_text("not a folder", encoding="utf-8")
    for args in (("build", lib, "-e", "use-multilingual"), ("serve", "--port", "1")):
        r = _run(*args, "--home", home_file)
        assert r.exit_code == 1, (args, r.output)
        assert r.output.count("\n") == 1 and "is a file, not a folder" in r.output, r.output
    evil = tmp_path / "law\nerror: forged\x1b[2J.json"
    evil.write_bytes(b"")
    r = _run("build", evil, "--home", tmp_path / "h")
    assert r.exit_code == 1 and r.output.startswith("error: ") and r.output.count("\n") == 1, repr(r.output)
    assert "\\nerror: forged\\x1b[2J" in r.output and "\x1b" not in r.output
    empty_key = tmp_path / "key"
    empty_key.write_text("\n", encoding="utf-8")
    r = _run("serve", "--api-key-file", empty_key, "--home", tmp_path / "h2")
    assert r.exit_code == 1 and "is empty" in r.output
