"""HopRAG with a real model: Qwen2.5-Coder-1.5B-Instruct (GGUF) behind llama-cpp-python's
OpenAI-compatible server on loopback, started by `scripts/local_llm.sh start` (as `.ci/run` does).

A handful of 著作權法 articles about reproduction and its penalties go through the real client (it
negotiates llama.cpp's structured-output form), the real prompt and filter: every article gets
Traditional-Chinese questions, outgoing questions meet other articles' incoming ones (question
edges), and a hop search walks one.

Set HOPRAG_LOCAL_LLM_URL (http://127.0.0.1:8765/v1) to run it; CI (CI=true) must have it.
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from indexer.build.pseudo_queries import script_of
from indexer.index import Index
from indexer.settings import Settings

from .conftest import LAWS_2024, requires_data
from .live import free_port

URL = os.environ.get("HOPRAG_LOCAL_LLM_URL", "").rstrip("/")
# 重製權 (22), 合理使用 (65), 視為侵害 (87), 罰則 (91, 93): the penalties answer what the rights raise
ARTICLES = ("22", "65", "87", "91", "93")
# The 1.5B model still fails some articles after every repair (outgoing questions that repeat the
# incoming ones); such a failure must be recorded as one, never padded, and most must succeed.
MIN_ANSWERED = 3


def _answering(url: str) -> bool:
    try:
        # /models waits for the model while it answers another request (one at a time)
        with urllib.request.urlopen(f"{url}/models", timeout=300) as resp:
            return resp.status == 200
    except OSError:
        return False


if not URL and os.environ.get("CI") == "true":
    pytestmark = [requires_data, pytest.mark.local_llm]

    def test_ci_runs_the_real_model():
        pytest.fail("CI must start the local LLM (scripts/local_llm.sh start) and set HOPRAG_LOCAL_LLM_URL")
else:
    pytestmark = [requires_data, pytest.mark.local_llm,
                  pytest.mark.skipif(not URL, reason="HOPRAG_LOCAL_LLM_URL not set (scripts/local_llm.sh start)")]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    assert _answering(URL), f"no local LLM answering at {URL}"
    raw = json.loads((LAWS_2024 / "J0070017.json").read_text(encoding="utf-8-sig"))
    keep = {f"第 {n} 條" for n in ARTICLES}
    raw["法規內容"] = [a for a in raw["法規內容"] if a.get("條號") in keep]
    lib = tmp_path_factory.mktemp("lib")
    (lib / "J0070017.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    settings = Settings(home=tmp_path_factory.mktemp("home"), llm_base_url=URL, llm_concurrency=1,
                        llm_timeout_s=300, llm_max_retries=5)
    with Index(settings=settings) as idx:
        report = idx.build(lib, embedder="use-multilingual", llm="openai:qwen")
        yield idx, report


def test_answered_articles_get_traditional_chinese_questions(index):
    idx, report = index
    answered = [n for n in ARTICLES if idx.passage(f"J0070017:{n}")["questions"]["incoming"]]
    assert report.llm_calls == len(ARTICLES) and report.llm_failures == len(ARTICLES) - len(answered)
    assert len(answered) >= MIN_ANSWERED, report
    for n in ARTICLES:
        qs = idx.passage(f"J0070017:{n}")["questions"]
        if n not in answered:
            assert qs == {"incoming": [], "outgoing": []}     # a failure is recorded, not padded
            continue
        assert len(qs["incoming"]) >= 2 and len(qs["outgoing"]) >= 2, (n, qs)
        for q in qs["incoming"] + qs["outgoing"]:
            assert script_of(q) == "hant" and q.endswith("？"), q
            assert "本條" not in q and "本法" not in q, q
        assert not set(qs["incoming"]) & set(qs["outgoing"])


def test_question_edges_join_the_articles(index):
    idx, report = index
    assert report.edges["question"] > 0
    edges = [e for n in ARTICLES for e in idx.neighbors(f"J0070017:{n}", direction="out", kinds=["question"])]
    assert edges and all(e["question"] and e["matched_question"] and e["score"] >= 0.5 for e in edges)
    pairs = [(e["key"], e["question"]) for e in edges]
    assert len(pairs) == len(set(pairs))


def test_a_hop_search_follows_a_question_edge(index):
    idx, _ = index
    sources = [f"J0070017:{n}" for n in ARTICLES
               if idx.neighbors(f"J0070017:{n}", direction="out", kinds=["question"])]
    assert sources
    crossed = []
    for key in sources:
        # ask what a source article answers: the walk starts there and may cross to the article
        # that answers a question the source raises (or take a citation, if that leads closer)
        asked = idx.passage(key)["questions"]["incoming"][0]
        hits = idx.hop_search(asked, k=1, n_hop=1)
        crossed += [s for s in hits.steps if s["kind"] == "question"]
    assert crossed
    assert all(s["question"] and s["matched_question"] and s["from"] in sources for s in crossed)


def _complete(url: str, timeout: float = 300) -> dict:
    """One short completion in the form the client negotiates with llama-cpp-python's server."""
    schema = {"type": "object", "properties": {"article": {"type": "integer"}}, "required": ["article"]}
    body = {"model": "qwen", "temperature": 0, "max_tokens": 24,
            "messages": [{"role": "user", "content": "民法第一百八十四條是第幾條？以 JSON 回答。"}],
            "response_format": {"type": "json_object", "schema": schema}}
    req = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def test_the_server_survives_a_real_structured_generation():
    """The CPU kernels run on the first generation: a build with instructions this CPU refuses
    (AMX tiles under -march=native) answered /docs and then died here (issue 21)."""
    reply = _complete(URL)
    assert isinstance(json.loads(reply["choices"][0]["message"]["content"])["article"], int)
    assert _answering(URL)                                    # still there after generating
    assert _complete(URL)["choices"][0]["finish_reason"] in ("stop", "length")


def _start_second_server(port: int):
    """Another llama.cpp server from the same venv and model (scripts/local_llm.sh's), to kill."""
    import subprocess
    import time
    from pathlib import Path

    model = Path(subprocess.run(["bash", str(Path(__file__).parents[1] / "scripts" / "local_llm.sh"), "path"],
                                capture_output=True, text=True, check=True).stdout.strip())
    python = model.parent / "venv" / "bin" / "python"
    assert model.is_file() and python.is_file(), (model, python)
    proc = subprocess.Popen([str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "qwen",
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the second server exited"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("the second server did not start")


def test_a_real_server_killed_mid_build(tmp_path):
    """SIGKILL to the llama.cpp server after its first answer: the build finishes within ~30 s of
    the kill, says llm_unreachable, keeps what was answered; with a server back, the next build asks
    exactly the passages that were not answered. Three articles: each answer costs ~45 s of this
    model on 2 cores, and one answered, one failing in flight and one never sent is every case."""
    import signal
    import time

    port = free_port()
    raw = json.loads((LAWS_2024 / "J0070017.json").read_text(encoding="utf-8-sig"))
    keep = {f"第 {n} 條" for n in ("22", "65", "91")}
    raw["法規內容"] = [a for a in raw["法規內容"] if a.get("條號") in keep]
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "J0070017.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")

    proc, url = _start_second_server(port)
    killed: list[float] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "llm" and done == 1 and not killed:
            proc.send_signal(signal.SIGKILL)
            killed.append(time.monotonic())

    settings = Settings(home=tmp_path / "home", llm_base_url=url, llm_concurrency=1, llm_timeout_s=300,
                        llm_max_retries=5)
    try:
        with Index(settings=settings) as idx:
            report = idx.build(lib, embedder="use-multilingual", llm="openai:qwen", progress=progress)
            ended = time.monotonic()
            assert killed and report.llm_unreachable and report.llm_calls == 3
            assert 2 <= report.llm_failures <= 3 and ended - killed[0] < 30, (report, ended - killed[0])
            # the rest of the build happened: embedded, committed, searchable
            assert report.generation == 1 and idx.stats()["passages"] == 3
            assert idx.search("擅自重製他人著作的處罰", k=1)[0].key.startswith("J0070017:")
    finally:
        proc.kill()
        proc.wait()

    proc, url = _start_second_server(port)
    try:
        with Index(settings=settings.model_copy(update={"llm_base_url": url})) as idx:
            again = idx.build(lib, llm="openai:qwen")
            assert again.llm_calls == report.llm_failures and not again.llm_unreachable, again
    finally:
        proc.kill()
        proc.wait()
