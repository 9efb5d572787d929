"""Passages from memory (issue 23, item 1): Index.upsert and Index.delete build the index's own
library with passages put in or taken out, with a folder build's semantics: only changed texts
embedded, edges and history following, one generation per call, the writer lock."""

from __future__ import annotations

import pytest

from indexer.build.upserts import current_library
from indexer.errors import IndexBusy, LibraryError
from indexer.index import Index
from indexer.library import read_library
from indexer.passages import Passage
from indexer.settings import Settings

from .conftest import LAWS_2022, LAWS_2024, requires_data

USE = "use-multilingual"
QUERIES = ["雇主延長工作時間之工資如何計算", "性別平等工作法的適用範圍", "個人資料的蒐集應有特定目的", "勞工請產假的天數"]


@pytest.fixture
def small(tmp_path):
    with Index(settings=Settings(home=tmp_path / "home")) as idx:
        idx.upsert([{"key": f"doc-{n}", "text": text, "metadata": {"n": n}} for n, text in enumerate(
            ["雇主應按月給付工資。", "勞工延長工作時間者，雇主應加給工資。", "勞工請假應事先申請。"])], embedder=USE)
        yield idx


def test_upsert_into_an_empty_index_then_change_one(small):
    assert small.search("勞工延長工作時間者，雇主應加給工資", k=3)[0].key == "doc-1"
    assert small.passage("doc-2")["metadata"] == {"n": 2}
    before = small.generation
    report = small.upsert([{"key": "doc-2", "text": "勞工請病假應檢具證明。"}])
    assert (report.changed, report.added, report.embedded, report.generation) == (1, 0, 1, before + 1)
    assert small.passage("doc-2")["text"] == "勞工請病假應檢具證明。"
    assert small.passage("doc-2")["metadata"] == {"n": 2}           # not given: kept
    again = small.upsert([{"key": "doc-2", "text": "勞工請病假應檢具證明。"}])
    assert (again.embedded, again.changed) == (0, 0)                # nothing new: nothing embedded
    # history is dated by day: an upsert is dated today, and the day's last text is that day's version
    versions = small.history("doc-2")
    assert [v["text"] for v in versions] == ["勞工請病假應檢具證明。"] and versions[0]["valid_to"] is None


def test_delete_takes_passages_out_and_refuses_unknown_keys(small):
    report = small.delete(["doc-0"])
    assert report.removed == 1 and small.passage("doc-0") is None
    assert "doc-0" not in [h.key for h in small.search("工資", k=5)]
    generation = small.generation
    with pytest.raises(KeyError, match="no passage 'doc-9'"):
        small.delete(["doc-1", "doc-9"])
    assert small.generation == generation and small.passage("doc-1") is not None   # nothing taken out


@pytest.mark.parametrize("bad,message", [
    ([{"text": "沒有鍵"}], "missing key"),
    ([{"key": "x", "text": "  "}], "empty text"),
    ([{"key": "x", "text": "a"}, {"key": "x", "text": "b"}], "given twice"),
    ([{"key": "x", "text": "a", "body": "?"}], "unknown field 'body'"),
    ([{"key": "x", "text": "a", "metadata": [1]}], "metadata must be an object"),
    ({"key": "x", "text": "a"}, "a list of passages"),
])
def test_bad_passages_are_refused_before_anything_changes(small, bad, message):
    generation = small.generation
    with pytest.raises(LibraryError, match=message):
        small.upsert(bad)
    assert small.generation == generation


def test_a_build_in_progress_holds_upserts_off(small):
    from storage.lock import writer_lock

    with Index(settings=small.settings) as other, writer_lock(other.db.engine, other.home / "write.lock"):
        with pytest.raises(IndexBusy):                   # another writer holds the index
            small.upsert([{"key": "doc-5", "text": "新增一條。"}])
    assert small.upsert([{"key": "doc-5", "text": "新增一條。"}]).added == 1


@requires_data
def test_upserting_an_amendment_equals_a_folder_build(tmp_path, laws_index):
    """The 2024 amendment as upserts (the 444 texts whose embedding changed) and deletes (the
    articles gone) into an index of 2022: 444 embedded, and the same answers as the folder build."""
    with Index(settings=Settings(home=tmp_path / "home")) as idx:
        idx.build(LAWS_2022, embedder=USE)
        now = {p.key: p for p in current_library(idx.db).passages}
        new = read_library(LAWS_2024)
        changed = [p for p in new.passages if p.key not in now or now[p.key].embed_text != p.embed_text
                   or now[p.key].text != p.text]
        gone = sorted(set(now) - {p.key for p in new.passages})
        report = idx.upsert(changed)
        assert report.embedded == 444 == laws_index["reports"][1].embedded
        if gone:
            idx.delete(gone)
        with Index(laws_index["home"], create=False) as folder:
            for q in QUERIES:
                for mode in ("dense", "hybrid"):
                    assert [h.key for h in idx.search(q, k=10, mode=mode)] == [
                        h.key for h in folder.search(q, k=10, mode=mode)], (q, mode)
                    assert [h.text for h in idx.search(q, k=3, mode=mode)] == [
                        h.text for h in folder.search(q, k=3, mode=mode)]


def test_passages_keep_their_structure_when_given_as_passages(small):
    law = Passage(key="T0000001:1", doc_key="T0000001", law="測試法", article="1", text="本法之主管機關為勞動部。",
                  chapters=("第一章 總則",))
    small.upsert([law])
    got = small.passage("T0000001:1")
    assert (got["law"], got["article"], got["label"]) == ("測試法", "1", "第1條")
    small.upsert([{"key": "T0000001:1", "text": "本法之主管機關為勞動部；在地方為縣市政府。"}])
    got = small.passage("T0000001:1")
    assert (got["law"], got["label"]) == ("測試法", "第1條") and "縣市政府" in got["text"]


def test_the_cli_reads_jsonl_from_a_file_or_stdin(tmp_path):
    import json

    from typer.testing import CliRunner

    from indexer import cli

    home = tmp_path / "home"
    lines = [{"key": "a", "text": "雇主應按月給付工資。", "metadata": {"court": "甲"}}, {"key": "b", "text": "勞工請假應事先申請。"}]
    path = tmp_path / "new.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(cli.app, ["upsert", str(path), "-e", USE, "--home", str(home), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["added"] == 2
    r = runner.invoke(cli.app, ["upsert", "-", "--home", str(home), "--json"],
                      input=json.dumps({"key": "b", "text": "勞工請病假應檢具證明。"}, ensure_ascii=False) + "\n")
    assert r.exit_code == 0 and json.loads(r.output)["changed"] == 1, r.output
    r = runner.invoke(cli.app, ["upsert", "-", "--home", str(home)], input="{not json\n")
    assert r.exit_code == 2 and "line 1" in r.output
    r = runner.invoke(cli.app, ["delete", "a", "zzz", "--home", str(home)])
    assert r.exit_code == 1 and "no passage 'zzz'" in r.output
    r = runner.invoke(cli.app, ["delete", "a", "--home", str(home), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["removed"] == 1
    with Index(home, create=False) as idx:
        assert [h.key for h in idx.search("請假", k=5)] == ["b"]


def test_http_and_the_client_upsert_and_delete(small):
    from indexer.client import Client
    from indexer.service import create_app

    from .live import LiveServer

    with LiveServer(create_app(small.settings)) as server, Client(server.url) as client:
        report = client.upsert([{"key": "doc-7", "text": "雇主不得強制勞工加班。", "metadata": {"n": 7}}])
        assert report.added == 1 and report.embedded == 1
        assert client.search("強制加班", k=1)[0].key == "doc-7"
        assert small.passage("doc-7")["metadata"] == {"n": 7}
        with pytest.raises(KeyError, match="doc-99"):
            client.delete(["doc-7", "doc-99"])
        assert client.delete("doc-7").removed == 1
        import httpx

        bad = httpx.post(server.url + "/passages:upsert", json={"passages": [{"key": "x"}]})
        assert bad.status_code == 422 and "text" in bad.json()["detail"]
        empty = httpx.post(server.url + "/passages:delete", json={"keys": []})
        assert empty.status_code == 422


def test_a_later_folder_build_describes_the_whole_library(tmp_path):
    import json

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "cases.jsonl").write_text(json.dumps({"id": "c1", "text": "雇主應按月給付工資。"}, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    with Index(settings=Settings(home=tmp_path / "home")) as idx:
        idx.build(lib, embedder=USE)
        idx.upsert([{"key": "memo", "text": "勞工請假應事先申請。"}, {"key": "c1", "text": "雇主應按月全額給付工資。"}])
        assert {h.key for h in idx.search("工資", k=5)} == {"c1", "memo"}
        report = idx.build(lib)                    # the folder again: it is the library
        assert report.removed == 1 and report.changed == 1
        assert idx.passage("memo") is None and idx.passage("c1")["text"] == "雇主應按月給付工資。"
