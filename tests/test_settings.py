"""Settings from a config file: arguments > HOPRAG_* environment > the file > defaults; the file is
--config / $HOPRAG_CONFIG, else <home>/hoprag.toml, else [tool.hoprag] of ./pyproject.toml; a file
with an unknown name or a secret in it is refused by name; `hoprag config` says where each value came from."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from indexer.cli import app
from indexer.index import Index
from indexer.settings import ConfigFileError, Settings, config_file


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("HOPRAG_CONFIG", "HOPRAG_HOME", "HOPRAG_HOP_MIN_SIM", "HOPRAG_MAX_K", "HOPRAG_LLM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)          # no pyproject.toml of the repository in the way


def test_precedence_argument_environment_file_default(tmp_path, monkeypatch):
    home = tmp_path / "h"
    home.mkdir()
    (home / "hoprag.toml").write_text('hop_min_sim = 0.25\nmax_k = 30\nllm = "openai:qwen"\n')
    s = Settings.load(home)
    assert (s.hop_min_sim, s.max_k, s.llm, s.hop_imp_weight) == (0.25, 30, "openai:qwen", 0.1)
    monkeypatch.setenv("HOPRAG_MAX_K", "40")
    s = Settings.load(home, hop_min_sim=0.5)
    assert (s.hop_min_sim, s.max_k, s.llm) == (0.5, 40, "openai:qwen")
    with Index(home) as idx:                                   # the Python API reads the home's file too
        assert (idx.settings.hop_min_sim, idx.settings.max_k) == (0.25, 40)
    assert Settings().hop_min_sim == 0.4                       # a plain Settings() reads no file


def test_the_file_is_named_or_found_in_the_home_or_the_project(tmp_path, monkeypatch):
    assert config_file(tmp_path / "none") is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n\n[tool.hoprag]\nmax_k = 12\n')
    path, table = config_file(tmp_path / "none")
    assert (path.name, table) == ("pyproject.toml", ("tool", "hoprag"))
    assert Settings.load(tmp_path / "none").max_k == 12
    named = tmp_path / "team.toml"
    named.write_text("max_k = 7\n")
    assert Settings.load(tmp_path / "none", config=named).max_k == 7
    monkeypatch.setenv("HOPRAG_CONFIG", str(named))
    assert Settings.load(tmp_path / "none").max_k == 7
    monkeypatch.setenv("HOPRAG_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigFileError, match=r"missing\.toml: no such config file"):
        Settings.load()


@pytest.mark.parametrize("body,message", [
    ("max_kk = 3\n", "unknown setting 'max_kk'"),
    ('llm_api_key = "sk-123"\n', "'llm_api_key' is a secret"),
    ("max_k = \n", r"bad\.toml"),
])
def test_a_bad_file_is_refused_by_name(tmp_path, body, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(body)
    with pytest.raises(ConfigFileError, match=message):
        Settings.load(config=bad)


def test_cli_config_shows_each_source_and_uses_the_file(tmp_path, monkeypatch):
    home = tmp_path / "h"
    home.mkdir()
    (home / "hoprag.toml").write_text("hop_min_sim = 0.25\n")
    monkeypatch.setenv("HOPRAG_MAX_K", "40")
    r = CliRunner().invoke(app, ["config", "--home", str(home), "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["hop_min_sim"] == {"name": "hop_min_sim", "value": 0.25, "source": f"file {home / 'hoprag.toml'}"}
    assert rows["max_k"]["source"] == "environment HOPRAG_MAX_K" and rows["max_k"]["value"] == 40
    assert rows["home"]["source"] == "argument" and rows["rrf_k"]["source"] == "default"
    assert rows["llm_api_key"]["value"] is None
    other = tmp_path / "other.toml"
    other.write_text("hop_min_sim = 0.75\n")
    r = CliRunner().invoke(app, ["--config", str(other), "config", "--home", str(home), "--json"])
    assert {row["name"]: row["value"] for row in json.loads(r.output)}["hop_min_sim"] == 0.75
    other.write_text("nonsense = 1\n")
    r = CliRunner().invoke(app, ["--config", str(other), "config", "--home", str(home)])
    assert r.exit_code == 1 and "unknown setting 'nonsense'" in r.output
