"""Filters on any field of the passages' metadata (issue 23, item 2): a JSONL library's own fields,
by equality (a list: any of its values), in dense, hybrid, bm25, questions-free hop and over HTTP
and the CLI; applied before top-k, so a filtered query gets k hits whenever k passages match."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from indexer import cli
from indexer.errors import QueryError
from indexer.index import Index
from indexer.settings import Settings

COURTS = ("最高法院", "高等法院", "地方法院")
TOPICS = ("工資", "工時", "休假", "資遣", "職災")


def _passages() -> list[dict]:
    out = []
    for n in range(45):
        topic, court = TOPICS[n % 5], COURTS[n % 3]
        out.append({
            "id": f"case-{n:02d}",
            "text": f"本件爭點為雇主之{topic}義務，{court}認為雇主應依勞動基準法給付{topic}相關之權利，案號{n}。",
            "metadata": {"court": court, "year": 2020 + n % 4, "topic": topic},
        })
    return out


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    base = tmp_path_factory.mktemp("meta")
    lib = base / "lib"
    lib.mkdir()
    (lib / "cases.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in _passages()) + "\n",
                                     encoding="utf-8")
    with Index(settings=Settings(home=base / "home")) as index:
        index.build(lib, embedder="use-multilingual")
        yield index


@pytest.mark.parametrize("mode", ["dense", "hybrid", "bm25"])
def test_a_metadata_filter_keeps_k_hits_when_k_match(idx, mode):
    query = "雇主應給付工資"
    unfiltered = idx.search(query, k=10, mode=mode)
    hits = idx.search(query, k=10, mode=mode, filters={"court": "地方法院"})
    assert len(hits) == 10                                             # 15 match: never fewer than k
    assert {int(h.key[-2:]) % 3 for h in hits} == {2}                  # 地方法院: n % 3 == 2
    assert [h.key for h in hits] != [h.key for h in unfiltered]        # the filter did something
    # the same order as the unfiltered ranking, restricted: the filter masks, it does not re-rank
    wider = [h.key for h in idx.search(query, k=45, mode=mode) if int(h.key[-2:]) % 3 == 2]
    assert [h.key for h in hits] == wider[:10] or mode == "hybrid"     # hybrid's depth is k-dependent


def test_lists_numbers_and_combinations(idx):
    query = "雇主給付義務"
    both = idx.search(query, k=45, filters={"court": ["最高法院", "高等法院"]})
    assert len(both) == 30 and {int(h.key[-2:]) % 3 for h in both} == {0, 1}
    year = idx.search(query, k=45, filters={"year": 2021})
    assert len(year) == 11 and all(int(h.key[-2:]) % 4 == 1 for h in year)
    assert [h.key for h in idx.search(query, k=45, filters={"year": "2021"})] == [h.key for h in year]
    narrow = idx.search(query, k=45, filters={"year": [2021, 2022], "topic": "工時", "court": "最高法院"})
    expected = {f"case-{n:02d}" for n in range(45) if n % 4 in (1, 2) and n % 5 == 1 and n % 3 == 0}
    assert {h.key for h in narrow} == expected and expected
    assert [h.key for h in idx.search(query, k=5, filters={"key": "case-07", "topic": "工時"})] == []
    assert [h.key for h in idx.search(query, k=5, filters={"key": "case-06", "topic": "工時"})] == ["case-06"]


def test_hop_search_walks_within_the_filter(idx):
    hits = idx.hop_search("雇主應給付工資", k=8, n_hop=2, filters={"topic": "工資"})
    assert len(hits) == 8 and all(int(h.key[-2:]) % 5 == 0 for h in hits)
    assert all(int(step["to"][-2:]) % 5 == 0 for step in hits.steps)


def test_the_metadata_is_stored_and_a_change_of_it_alone_is_seen(idx, tmp_path):
    assert idx.passage("case-05")["metadata"] == {"court": "地方法院", "year": 2021, "topic": "工資"}
    lib = tmp_path / "lib"
    lib.mkdir()
    changed = _passages()
    changed[5]["metadata"]["court"] = "最高法院"
    (lib / "cases.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in changed) + "\n",
                                     encoding="utf-8")
    with Index(settings=Settings(home=tmp_path / "home")) as other:
        other.build(lib, embedder="use-multilingual")
        assert "case-05" in {h.key for h in other.search("工資", k=45, filters={"court": "最高法院"})}
        changed[5]["metadata"]["court"] = "地方法院"                 # back: metadata only, no new text
        (lib / "cases.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in changed) + "\n",
                                         encoding="utf-8")
        report = other.build(lib)
        assert report.embedded == 0 and report.changed == 0
        assert "case-05" not in {h.key for h in other.search("工資", k=45, filters={"court": "最高法院"})}


def test_an_unknown_field_or_value_type_is_an_error_not_an_empty_answer(idx):
    with pytest.raises(QueryError, match="unknown filter 'judge'"):
        idx.search("工資", filters={"judge": "甲"})
    with pytest.raises(QueryError, match="number or boolean"):
        idx.search("工資", filters={"court": {"in": ["最高法院"]}})
    with pytest.raises(QueryError, match="non-empty list"):
        idx.search("工資", filters={"court": []})


def test_the_cli_and_http_take_the_same_filter(idx, tmp_path):
    from fastapi.testclient import TestClient

    from indexer.service import create_app

    want = [h.key for h in idx.search("雇主應給付工資", k=5, mode="hybrid", filters={"court": "高等法院", "year": 2021})]
    r = CliRunner().invoke(cli.app, ["search", "雇主應給付工資", "-k", "5", "--mode", "hybrid", "--filter", "court=高等法院",
                                     "--filter", "year=2021", "--home", str(idx.home), "--json"])
    assert r.exit_code == 0, r.output
    assert [h["key"] for h in json.loads(r.output)] == want
    bad = CliRunner().invoke(cli.app, ["search", "工資", "--filter", "court", "--home", str(idx.home)])
    assert bad.exit_code == 2 and "FIELD=VALUE" in bad.output
    with TestClient(create_app(idx.settings)) as client:
        body = {"query": "雇主應給付工資", "k": 5, "mode": "hybrid", "filters": {"court": "高等法院", "year": 2021}}
        got = client.post("/search", json=body)
        assert got.status_code == 200 and [h["key"] for h in got.json()["hits"]] == want
        nested = client.post("/search", json=body | {"filters": {"court": {"a": 1}}})
        assert nested.status_code == 422
        unknown = client.post("/search", json=body | {"filters": {"judge": "甲"}})
        assert unknown.status_code == 400 and "judge" in unknown.json()["detail"]
