"""HopRAG question edges and hop search: match_questions on hand-made vectors (distinct targets,
no parallel edges, threshold, caps, keywords, generic questions, IVF), then hop search on
勞動基準法 and its 施行細則 with question edges from a fake OpenAI-compatible LLM on loopback:
reversed citations, the "none" choice, IMP, and the bounded, memoized, fault-tolerant llm mode."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from indexer.build.edges import EdgeParams, generic_questions, match_questions, total_cap
from indexer.index import Index
from indexer.retrieval import HopHits, HopLLMError
from indexer.settings import Settings

from .conftest import LAWS_2024, WALK_MECHANICS, requires_data
from .fakes.legal_llm import legal_questions
from .fakes.openai_server import Fault

USE = "use-multilingual"
OVERTIME = "雇主延長工作時間之工資如何計算"
# Everyday questions about 勞動基準法: a walk that helps shows up on some of them.
QUERIES = ["雇主延長工作時間之工資如何計算", "雇主違反工資給付規定會被罰多少", "加班費怎麼算，延長工時有沒有上限",
           "雇主未依規定給付延長工時工資的處罰", "童工的工作時間限制", "雇主資遣勞工的預告期間", "退休金的給與標準",
           "女性勞工夜間工作", "職業災害的補償", "雇主違反特別休假規定的罰則"]


# ------------------------------------------------------------------ match_questions
D = 16


def unit(*pairs: tuple[int, float]) -> np.ndarray:
    v = np.zeros(D, np.float32)
    for i, x in pairs:
        v[i] = x
    return v / np.linalg.norm(v)


def match(outgoing, incoming, keywords=None, **params):
    """outgoing / incoming: lists of (owner passage, vector); question ids are 100+i and 200+i."""
    o_ids = np.arange(100, 100 + len(outgoing), dtype=np.int64)
    i_ids = np.arange(200, 200 + len(incoming), dtype=np.int64)
    return match_questions(o_ids, np.array([p for p, _ in outgoing], np.int64), np.stack([v for _, v in outgoing]),
                           i_ids, np.array([p for p, _ in incoming], np.int64), np.stack([v for _, v in incoming]),
                           EdgeParams(**params), keywords)


def pairs(edges) -> list[tuple[int, int]]:
    return list(zip(edges.source.tolist(), edges.target.tolist()))


def test_top_k_counts_distinct_target_passages():
    # passage 2 answers the question twice; with top_k=2 the second slot goes to passage 3
    e = match([(1, unit((0, 1)))],
              [(2, unit((0, 1))), (2, unit((0, 1), (1, 0.1))), (3, unit((0, 1), (1, 0.3))), (4, unit((0, 1), (1, 0.6)))],
              top_k=2, generic_passages=0)
    assert pairs(e) == [(1, 2), (1, 3)]
    assert e.in_q[0] == 200 and e.score[0] == pytest.approx(1.0)


def test_one_edge_per_source_target_with_the_best_score():
    # two outgoing questions of passage 1 both lead to passage 2: one edge, the better match
    e = match([(1, unit((0, 1), (1, 0.5))), (1, unit((0, 1), (1, 0.05)))],
              [(2, unit((0, 1))), (3, unit((5, 1)))], generic_passages=0)
    assert pairs(e) == [(1, 2)]
    assert e.out_q[0] == 101 and e.score[0] == pytest.approx(float(unit((0, 1), (1, 0.05))[0]), abs=1e-5)


def test_threshold_and_own_questions():
    e = match([(1, unit((0, 1)))], [(1, unit((0, 1))), (2, unit((0, 1), (1, 1.2))), (3, unit((0, 1), (1, 0.5)))],
              threshold=0.7, top_k=5, generic_passages=0)
    assert pairs(e) == [(1, 3)]                                  # not itself; 2 is at cos 0.64


def test_max_per_passage_keeps_the_best_targets():
    out = [(1, unit((i, 1))) for i in range(4)]
    inc = [(10 + i, unit((i, 1), (8, 0.1 * i))) for i in range(4)]      # target 10 is the best match
    e = match(out, inc, max_per_passage=2, generic_passages=0)
    assert sorted(pairs(e)) == [(1, 10), (1, 11)]


def test_total_cap_keeps_the_best_edges():
    assert total_cap(2) == 1
    e = match([(1, unit((0, 1))), (2, unit((1, 1)))], [(2, unit((0, 1))), (1, unit((1, 1), (2, 0.2)))],
              generic_passages=0)
    assert pairs(e) == [(1, 2)]


def test_keyword_weight_can_change_the_target():
    words = {100: frozenset({"延長", "工時", "工資"}), 200: frozenset({"特別", "休假"}),
             201: frozenset({"延長", "工時", "工資"})}
    out = [(1, unit((0, 1)))]
    inc = [(2, unit((0, 0.9), (1, (1 - 0.81) ** 0.5))), (3, unit((0, 0.8), (2, 0.6)))]   # cos 0.9 and 0.8
    dense = match(out, inc, keywords=words.__getitem__, top_k=1, generic_passages=0)
    assert pairs(dense) == [(1, 2)]
    mixed = match(out, inc, keywords=words.__getitem__, top_k=1, keyword_weight=0.5, generic_passages=0)
    assert pairs(mixed) == [(1, 3)] and mixed.score[0] == pytest.approx(0.9, abs=1e-5)


def test_generic_incoming_questions_make_no_edges():
    generic = [(p, unit((0, 1), (1 + p, 0.05))) for p in (2, 3, 4, 5)]    # "X法第N條規定什麼？" four times
    specific = [(6, unit((0, 1), (9, 0.6)))]
    owner = np.array([p for p, _ in generic + specific])
    vecs = np.stack([v for _, v in generic + specific])
    assert generic_questions(owner, vecs, EdgeParams()).tolist() == [True] * 4 + [False]
    assert not generic_questions(owner, vecs, EdgeParams(generic_passages=0)).any()
    assert not generic_questions(owner, vecs, EdgeParams(generic_cosine=0)).any()
    assert not generic_questions(owner, vecs, EdgeParams(generic_passages=4)).any()   # 3 others each
    e = match([(1, unit((0, 1)))], generic + specific, top_k=2)
    assert pairs(e) == [(1, 6)]
    every = match([(1, unit((0, 1)))], generic + specific, top_k=2, generic_passages=0)
    assert len(every) == 2 and 6 not in every.target.tolist()


def test_ivf_search_agrees_with_exact_on_an_easy_case():
    rng = np.random.default_rng(1)
    n = 60
    base = rng.normal(size=(n, D)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    noisy = base + 0.05 * rng.normal(size=base.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    out = [(i, noisy[(i + 1) % n]) for i in range(n)]             # passage i asks what i+1 answers
    inc = [(i, base[i]) for i in range(n)]
    exact = match(out, inc, top_k=1, threshold=0.9, generic_passages=0)
    ivf = match(out, inc, top_k=1, threshold=0.9, generic_passages=0, exact_limit=0)
    assert sorted(pairs(exact)) == sorted(pairs(ivf)) == [(i, (i + 1) % n) for i in range(n)]


# ------------------------------------------------------------------ hop search on real laws
@pytest.fixture(scope="module")
def fake(legal_llm):
    return legal_llm


@pytest.fixture(scope="module")
def idx(tmp_path_factory, fake):
    if not LAWS_2024.is_dir():
        pytest.skip("real data not found")
    lib = tmp_path_factory.mktemp("lib")
    for pcode in ("N0030001", "N0030002"):
        shutil.copy(LAWS_2024 / f"{pcode}.json", lib)
    home = tmp_path_factory.mktemp("home")
    with Index(settings=Settings(home=home, llm_base_url=fake.url, llm_max_retries=1, **WALK_MECHANICS)) as index:
        report = index.build(lib, embedder=USE, llm="openai:fake")
        assert report.llm_failures == 0 and report.edges["question"] > 0
        yield index


@pytest.fixture
def llm(fake, idx, monkeypatch):
    """The fake answers hop prompts with `fake.choose(options)` (index list) and counts them."""
    prompts: list[str] = []

    def responder(prompt, system, schema):
        if "使用者的問題" not in prompt:
            return legal_questions(prompt, system, schema)
        prompts.append(prompt)
        return {"helpful": fake.choose(_options(prompt))}
    monkeypatch.setattr(fake, "responder", responder)
    monkeypatch.setattr(fake, "choose", lambda options: [0], raising=False)
    monkeypatch.setattr(idx.settings, "llm_max_retries", 1)
    fake.requests.clear()
    yield prompts
    fake.clear_faults()


def _options(prompt: str) -> list[str]:
    return re.findall(r"^\d+\. (.*)$", prompt, flags=re.M)


def _current(prompt: str) -> str:
    return re.search(r"目前條文：(.*)", prompt).group(1)


def _chat_requests(fake) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


@requires_data
def test_questions_mode_returns_matched_question(idx):
    hits = idx.search(OVERTIME, k=5, mode="questions")
    assert hits and all(h.matched_question for h in hits)


@requires_data
def test_no_parallel_edges(idx):
    e = idx.retriever.state().edges
    triples = list(zip(e["source"].tolist(), e["target"].tolist(), e["kind"].tolist()))
    assert len(triples) == len(set(triples))
    q = e[e["kind"] == 0]
    assert len(q) and len(set(zip(q["source"].tolist(), q["target"].tolist()))) == len(q)


@requires_data
def test_similarity_hop_follows_a_citation_backwards(idx):
    """The walk reaches a passage that cites an entry (and is no entry itself) from that entry."""
    found = []
    for text in QUERIES:
        for k in (3, 5, 10):
            entries = {h.key for h in idx.hop_search(text, k=k, n_hop=0)}
            for h in idx.hop_search(text, k=k, n_hop=2):
                last = h.path[-1] if h.path else None
                if last and last["direction"] == "in" and h.key not in entries:
                    found.append((h, last))
    assert found
    for h, last in found:
        assert last["to"] == h.key and last["kind"] in ("citation", "structural")
        cites = idx.neighbors(h.key, direction="out", kinds=[last["kind"]])
        assert last["from"] in [n["key"] for n in cites]          # h cites the passage it came from


@requires_data
def test_no_hop_when_nothing_is_relevant_enough(idx, monkeypatch):
    flat = idx.hop_search(OVERTIME, k=10, n_hop=0)
    walked = idx.hop_search(OVERTIME, k=10, n_hop=2)
    assert any(h.path or h.imp < 1 for h in walked)      # the walk reached something
    monkeypatch.setattr(idx.settings, "hop_min_sim", 1.5)          # "none" at every passage
    none = idx.hop_search(OVERTIME, k=10, n_hop=2)
    assert [(h.key, h.score) for h in none] == [(h.key, h.score) for h in flat]
    assert all(h.path == () and h.imp == 1 for h in none)      # entries only: one visit each


@requires_data
def test_imp_lets_a_reached_passage_outrank_an_entry(idx):
    w = idx.settings.hop_imp_weight
    outranked = []
    for text in QUERIES:
        entries = {h.key for h in idx.hop_search(text, k=10, n_hop=0)}
        hits = idx.hop_search(text, k=10, n_hop=2)
        assert isinstance(hits, HopHits) and (hits.llm_calls, hits.llm_failures) == (0, 0)
        assert all(0 <= h.imp <= 1 and 0 <= h.sim <= 1 for h in hits)
        # IMP = visits / most visits: an entry counts one, each step that arrives one more
        visits = Counter(entries) + Counter(step["to"] for step in hits.steps)
        assert all(h.imp == pytest.approx(visits[h.key] / max(visits.values()), abs=1e-6) for h in hits)
        for h in hits:
            assert h.score == pytest.approx((1 - w) * h.sim + w * h.imp, abs=1e-5)
        for i, r in enumerate(hits):
            if r.key not in entries and r.path:
                outranked += [(r, e) for e in hits[i + 1:] if e.key in entries and e.sim > r.sim]
    assert outranked
    for r, e in outranked:
        assert r.imp > e.imp and r.score > e.score


@requires_data
def test_entries_are_bounded_for_a_query_naming_many_articles(idx):
    text = "勞基法" + "、".join(f"第{i}條" for i in range(1, 41))
    for n_hop in (0, 2):
        hits = idx.hop_search(text, k=5, n_hop=n_hop)
        assert len(hits) == 5 and all(h.cited for h in hits)
    assert {h.key for h in idx.hop_search(text, k=5, n_hop=0)} == {f"N0030001:{i}" for i in range(1, 6)}


@requires_data
def test_a_legal_role_passes_relevance_to_the_article_at_the_other_end(idx, monkeypatch):
    """勞基法 79 punishes breaches of 24 (overtime pay): the edge says so, both ways. With
    hop_role_weight w, a walk from 24 reaches 79 against the citation with SIM >= w·SIM(24), even
    though 79 alone (a list of article numbers and fines) matches the question poorly; at w = 0
    roles weigh nothing, and the walk is the same before and after."""
    cited_by = {n["key"]: n for n in idx.neighbors("N0030001:24", direction="in", kinds=["citation"])}
    assert cited_by["N0030001:79"]["role"] == "punishes"
    assert "role" not in cited_by["N0030001:32-1"]          # 依第二十四條規定: a mention, no role
    flat = idx.hop_search(OVERTIME, k=3, n_hop=0)
    by_key = {h.key: h for h in flat}
    assert "N0030001:24" in by_key and "N0030001:79" not in by_key
    monkeypatch.setattr(idx.settings, "hop_min_sim", 0.5)
    monkeypatch.setattr(idx.settings, "hop_role_weight", 0.0)
    before = [(h.key, h.score) for h in idx.hop_search(OVERTIME, k=3, n_hop=1)]
    monkeypatch.setattr(idx.settings, "hop_role_weight", 0.9)
    hits = {h.key: h for h in idx.hop_search(OVERTIME, k=10, n_hop=1)}
    penalty = hits["N0030001:79"]
    assert penalty.path[-1] == {"from": "N0030001:24", "to": "N0030001:79", "kind": "citation",
                                "direction": "in", "role": "punishes"}
    own = {h.key: h.sim for h in idx.hop_search(OVERTIME, k=50, n_hop=0)}.get("N0030001:79", 0.0)
    assert penalty.sim > own and penalty.sim >= 0.9 * hits["N0030001:24"].sim - 1e-6
    monkeypatch.setattr(idx.settings, "hop_role_weight", 0.0)
    assert [(h.key, h.score) for h in idx.hop_search(OVERTIME, k=3, n_hop=1)] == before


# ------------------------------------------------------------------ llm mode
@requires_data
def test_llm_mode_is_bounded(idx, fake, llm, monkeypatch):
    hits = idx.hop_search(OVERTIME, k=50, n_hop=4, mode="llm")
    budget = idx.settings.hop_max_llm_calls
    assert hits.llm_calls == len(llm) == _chat_requests(fake) == budget and hits.llm_failures == 0
    assert len(hits) == 50 and any(h.path for h in hits)
    for prompt in llm:                                           # the best options, labelled, with text
        options = _options(prompt)
        assert 1 <= len(options) <= idx.settings.hop_llm_options
        assert all(re.match(r"勞動基準法(施行細則)? 第", o) and o.count("｜") >= 2 for o in options)
    assert any("問題：" in o and "對應：" in o for p in llm for o in _options(p))
    monkeypatch.setattr(idx.settings, "hop_max_llm_calls", 3)
    assert idx.hop_search(OVERTIME, k=50, n_hop=4, mode="llm").llm_calls == 3


@requires_data
def test_llm_mode_judges_each_passage_once(idx, llm):
    hits = idx.hop_search(OVERTIME, k=3, n_hop=4, mode="llm")
    judged = [_current(p) for p in llm]
    assert len(judged) == len(set(judged)) == hits.llm_calls > 3          # the walk went past the entries
    entries = {h.key for h in idx.hop_search(OVERTIME, k=3, n_hop=0)}
    assert any(step["from"] not in entries for step in hits.steps)       # a hop from a passage reached by one


@requires_data
def test_llm_may_choose_none(idx, fake, llm):
    fake.choose = lambda options: []
    flat = idx.hop_search(OVERTIME, k=10, n_hop=0)
    none = idx.hop_search(OVERTIME, k=10, n_hop=2, mode="llm")
    assert none.llm_calls == 10 and [h.key for h in none] == [h.key for h in flat]
    assert all(h.path == () for h in none)


@requires_data
def test_llm_choice_is_followed(idx, fake, llm):
    fake.choose = lambda options: [len(options) - 1]               # the least similar option
    idx.hop_search(OVERTIME, k=5, n_hop=2, mode="llm")
    first = [p for p in llm if _current(p) in _entry_labels(idx, OVERTIME, 5)]
    later = [p for p in llm if p not in first]
    chosen = {_options(p)[-1].split("｜")[0].strip() for p in first}
    assert first and later
    # the second round judges exactly the passages the LLM chose in the first (each once)
    assert {_current(p) for p in later} <= chosen and len(later) == len({_current(p) for p in later})


def _entry_labels(idx, text: str, k: int) -> set[str]:
    return {f"{h.law} {h.label or h.article}" for h in idx.hop_search(text, k=k, n_hop=0)}


@requires_data
def test_llm_partial_failure_falls_back_to_similarity(idx, fake, llm, monkeypatch):
    monkeypatch.setattr(idx.settings, "hop_max_llm_calls", 4)
    # 4 calls with 2 attempts each: 6 faults fail at least one call and at most three
    fake.push(*[Fault.status(500)] * 6)
    hits = idx.hop_search(OVERTIME, k=10, n_hop=1, mode="llm")
    assert hits.llm_calls == 4 and 1 <= hits.llm_failures <= 3
    assert len(hits) == 10 and any(h.path or h.imp < 1 for h in hits)     # the walk went on
    # 6 faults = the first attempts of some calls + both attempts of the failed ones
    assert _chat_requests(fake) == 4 + 6 - hits.llm_failures


@requires_data
def test_llm_all_failed_is_an_error(idx, fake, llm, monkeypatch):
    monkeypatch.setattr(idx.settings, "hop_max_llm_calls", 2)
    fake.push(*[Fault.status(500)] * 4)
    with pytest.raises(HopLLMError, match="every LLM call"):
        idx.hop_search(OVERTIME, k=10, n_hop=2, mode="llm")
    assert _chat_requests(fake) == 4


@requires_data
def test_service_reports_llm_calls(idx, fake, llm):
    from indexer.service import create_app

    from .live import LiveServer
    settings = Settings(home=idx.home, llm_base_url=fake.url, llm_max_retries=1, hop_max_llm_calls=2)
    with LiveServer(create_app(settings)) as server, server.client() as c:
        body = {"query": OVERTIME, "k": 5, "n_hop": 2}
        r = c.post("/hop-search", json=body)
        assert r.status_code == 200 and (r.json()["llm_calls"], r.json()["llm_failures"]) == (0, 0)
        r = c.post("/hop-search", json=body | {"mode": "llm"})
        assert r.status_code == 200 and r.json()["llm_calls"] == 2, r.text
        fake.push(*[Fault.status(500)] * 4)
        r = c.post("/hop-search", json=body | {"mode": "llm"})
        assert r.status_code == 502, r.text


@requires_data
def test_question_weight_and_rrf_k_shape_the_fusion(idx, monkeypatch):
    from indexer.retrieve.channels import fused, fusion

    r = idx.retriever
    st = r.state()
    qv = r.embed_query(OVERTIME, st)
    top2 = 2 / (idx.settings.rrf_k + 1)                          # first in two lists
    assert fusion(st, OVERTIME, qv, 50, idx.settings).max() > top2   # three lists agree on the top
    monkeypatch.setattr(idx.settings, "question_weight", 0.0)
    assert fusion(st, OVERTIME, qv, 50, idx.settings).max() <= top2 + 1e-12
    assert max(s for _, s in fused(st, OVERTIME, qv, 10, None, idx.settings)) <= top2 + 1e-12
    monkeypatch.setattr(idx.settings, "rrf_k", 1)
    assert fusion(st, OVERTIME, qv, 50, idx.settings).max() > top2


# ------------------------------------------------------------------ llm mode: every wait bounded
def _closed_url() -> str:
    from .live import free_port

    return f"http://127.0.0.1:{free_port()}/v1"


@requires_data
@pytest.mark.parametrize("endpoint", ["closed", "503", "hanging"])
def test_llm_hop_answers_within_its_deadline(idx, endpoint):
    """A closed port, a server answering 503, and one that never answers: each llm-mode query over
    HTTP answers within the deadline + 2 s (not 48 s, 96 attempts, or hours), without the URL."""
    import time

    from indexer.service import create_app

    from .fakes.openai_server import FakeOpenAI
    from .live import LiveServer
    with FakeOpenAI() as upstream:
        upstream.push(*[Fault.status(503) if endpoint == "503" else Fault.hang(120)] * 500)
        url = _closed_url() if endpoint == "closed" else upstream.url
        settings = Settings(home=idx.home, llm_base_url=url, llm_timeout_s=120, hop_llm_deadline_s=3)
        with LiveServer(create_app(settings)) as server, server.client() as c:
            t0 = time.monotonic()
            r = c.post("/hop-search", json={"query": OVERTIME, "k": 5, "n_hop": 2, "mode": "llm"})
            elapsed = time.monotonic() - t0
    assert elapsed < 3 + 2, (endpoint, elapsed)
    assert "127.0.0.1" not in r.text and "/v1" not in r.text
    if endpoint == "closed":     # the breaker: nothing answered, nothing to wait for
        assert r.status_code == 502 and "unreachable" in r.json()["detail"], r.text
    else:                        # time ran out: the walk's similarity choice stands
        body = r.json()
        assert r.status_code == 200 and body["deadline_hit"] is True and len(body["hits"]) == 5, r.text
        assert body["llm_calls"] >= 1 and body["llm_failures"] == body["llm_calls"]
        assert elapsed >= 3


@requires_data
def test_llm_hop_stops_when_its_client_goes_away(idx):
    """One llm-mode slot; the first walk hangs on the LLM, its client disconnects: the slot is free
    at once for the next walk (else it would wait out the first one's 60 s deadline)."""
    import socket
    import time

    from indexer.service import create_app

    from .fakes.openai_server import FakeOpenAI
    from .live import LiveServer
    with FakeOpenAI() as upstream:
        upstream.responder = lambda prompt, system, schema: {"helpful": [0]}
        upstream.push(*[Fault.hang(120)] * 4)                  # the first walk's calls (hop_max_llm_calls)
        settings = Settings(home=idx.home, llm_base_url=upstream.url, llm_timeout_s=120, hop_llm_deadline_s=60,
                            hop_llm_queries=1, hop_max_llm_calls=4)
        with LiveServer(create_app(settings)) as server, server.client() as c:
            host, port = server.url.removeprefix("http://").split(":")
            body = json.dumps({"query": OVERTIME, "k": 5, "n_hop": 1, "mode": "llm"}).encode()
            with socket.create_connection((host, int(port))) as raw:
                raw.sendall(b"POST /hop-search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                deadline = time.monotonic() + 10
                while not upstream.requests and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert upstream.requests, "the first walk never asked the LLM"
            t0 = time.monotonic()                              # the client is gone
            r = c.post("/hop-search", json={"query": OVERTIME, "k": 5, "n_hop": 1, "mode": "llm"})
            elapsed = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["deadline_hit"] is False and r.json()["llm_calls"] >= 1, r.text
    assert elapsed < 5
