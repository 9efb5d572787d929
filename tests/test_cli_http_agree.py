"""The CLI and the HTTP API decide alike: what a passage ref names (an all-digit ref is an id first,
then a key; as of a date, a key only: indexer/refs.py), and the limits of the index home's settings,
which every CLI command reads one way."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from indexer.cli import app as cli
from indexer.index import Index
from indexer.serve.refs import passage_refs, resolve_passage
from indexer.service import create_app
from indexer.settings import Settings

from .live import LiveServer

# a JSONL library's keys are its ids, and may be all digits: "1" is also the row id of another
# passage, "100000" is no row id
PASSAGES = [
    ("a:1", "雇主延長勞工工作時間者，應加給工資。"),
    ("100000", "勞工之特別休假，依其工作年資定之。"),
    ("1", "勞工正常工作時間，每日不得超過八小時。"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("refs")
    lib, home = base / "lib", base / "home"
    lib.mkdir()
    rows = [json.dumps({"id": key, "text": text}, ensure_ascii=False) for key, text in PASSAGES]
    (lib / "corpus.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with Index(home) as idx:
        idx.build(lib, embedder="use-multilingual")
        ids = {key: idx.passage(key)["passage_id"] for key, _ in PASSAGES}
    with LiveServer(create_app(Settings(home=home))) as server, server.client() as client:
        yield {"home": home, "ids": ids, "client": client}


def _cli(*args) -> tuple[int, object]:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, (json.loads(r.output) if r.exit_code == 0 else None)


def _http(client, path: str, **params) -> tuple[int, object]:
    r = client.get(path, params=params)
    return r.status_code, (r.json() if r.status_code == 200 else None)


def test_the_rule():
    assert passage_refs("24") == [24, "24"]
    assert passage_refs("24", as_of="2024-01-01") == ["24"]
    # not ASCII digits, or past a SQLite integer: a key only, never an int() error
    assert passage_refs("²") == ["²"] and passage_refs("9" * 20) == ["9" * 20]
    assert passage_refs("N0030001:24") == ["N0030001:24"]
    found = {7: None, "7": "by key"}
    assert resolve_passage("7", found.get) == "by key"  # the id names nothing: the key is tried
    with pytest.raises(KeyError):
        resolve_passage("8", found.get)


def test_an_all_digit_ref_and_a_key_name_the_same_passage_on_both_surfaces(served):
    client, home, ids = served["client"], served["home"], served["ids"]
    by_id = {pid: key for key, pid in ids.items()}
    assert ids["1"] != 1 and 1 in by_id and 100000 not in by_id  # the library is as the cases need it
    # "1" is an id and a key: the id wins, on both surfaces; "100000" is a key only
    cases = {"1": by_id[1], "100000": "100000", "a:1": "a:1", str(ids["1"]): "1"}
    for ref, key in cases.items():
        cli_code, cli_passage = _cli("passage", ref, "--home", home, "--json")
        http_code, http_passage = _http(client, f"/passages/{ref}")
        assert (cli_code, http_code, cli_passage) == (0, 200, http_passage), ref
        assert (http_passage["key"], http_passage["passage_id"]) == (key, ids[key]), ref
        cli_code, cli_rows = _cli("neighbors", ref, "--direction", "both", "--home", home, "--json")
        http_code, http_rows = _http(client, f"/passages/{ref}/neighbors", direction="both")
        assert (cli_code, http_code, cli_rows) == (0, 200, http_rows["neighbors"]), ref


def test_an_unknown_ref_and_a_date_fail_or_answer_alike(served):
    client, home, ids = served["client"], served["home"], served["ids"]
    today = dt.date.today().isoformat()
    assert _cli("passage", "999999", "--home", home)[0] == 1
    assert _http(client, "/passages/999999")[0] == 404
    # as of a date an all-digit ref is a key: "1" is the key "1" (not the passage of id 1), and the
    # id of "100000" names nothing
    for ref, key in (("1", "1"), ("100000", "100000"), (str(ids["100000"]), None)):
        cli_code, cli_version = _cli("passage", ref, "--as-of", today, "--home", home, "--json")
        http_code, http_version = _http(client, f"/passages/{ref}", as_of=today)
        assert (cli_code, http_code) == ((0, 200) if key else (1, 404)), ref
        assert cli_version == http_version and (key is None or http_version["key"] == key), ref


def test_k_is_bounded_by_the_homes_settings_on_both_surfaces(tmp_path, monkeypatch):
    """-k is checked against the max_k of the --home it names (its hoprag.toml), as the service
    started on that home checks k."""
    for name in ("HOPRAG_MAX_K", "HOPRAG_CONFIG", "HOPRAG_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hoprag.toml").write_text("max_k = 3\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["search", "工資", "-k", "4", "--home", str(home)])
    assert r.exit_code == 2 and "between 1 and 3" in r.output, r.output
    with LiveServer(create_app(Settings.load(home))) as server, server.client() as client:
        r = client.post("/search", json={"query": "工資", "k": 4})
    assert r.status_code == 422 and "k" in r.json()["detail"]


def test_every_command_reads_its_settings_one_way(tmp_path, monkeypatch):
    """A bad HOPRAG_* value is the same one `error:` line whichever command reads it (`config` too,
    which printed a traceback)."""
    monkeypatch.setenv("HOPRAG_MAX_K", "many")
    for args in (["config"], ["stats"], ["search", "工資"], ["doctor"]):
        r = CliRunner().invoke(cli, [*args, "--home", str(tmp_path / "home")])
        # a traceback would be exit 1 too, with the exception itself instead of SystemExit
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (args, r.exception)
        assert r.output.startswith("error: invalid setting: max_k") and r.output.count("\n") == 1, (args, r.output)
