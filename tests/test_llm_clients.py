"""GeminiLLM and OpenAICompatLLM through their real SDK/HTTP code against real HTTP fakes
(tests/fakes/gemini_server.py, tests/fakes/openai_server.py), and the runner around them."""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from indexer.llm import LLMConfigError, LLMError, LLMRequest, get_llm, openai_compat, run_requests_sync, runner_options
from indexer.llm.base import LLMClient
from indexer.llm.budget import Breaker, Deadline
from indexer.llm.gemini import GeminiLLM
from indexer.llm.openai_compat import OpenAICompatLLM
from indexer.settings import Settings
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.http_fake import FakeHTTPServer, Fault
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.sleeps import record_sleeps

from .live import free_port

pytestmark = pytest.mark.backend_free  # never opens an index

GEMINI_KEY = "AIza-test-key-0123456789"
OPENAI_KEY = "sk-test-key-0123456789"
GEMINI_MODEL = "gemini-2.5-flash"
OPENAI_MODEL = "qwen2.5:7b"
SYSTEM = "你是台灣法律助理。"
SCHEMA: dict[str, Any] = {
    "title": "pseudo queries",
    "type": "object",
    "properties": {"questions": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}},
    "required": ["questions"],
    "additionalProperties": False,
}


@pytest.fixture
def runner_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the runner asks asyncio.sleep for: retry backoff and the rate limiter's waits."""
    return record_sleeps(monkeypatch, "indexer.llm.runner", coroutine=True)


# A hang outlasts every bound below by far: a wait that only ended because the server gave up
# (no client timeout, no runner deadline) fails the bound instead of passing slowly.
HANG_S = 60


def two_questions(reply: dict[str, Any]) -> tuple[str, ...]:
    qs = reply["questions"]
    if not isinstance(qs, list) or len(qs) != 2 or not all(isinstance(q, str) and q for q in qs):
        raise ValueError(f"want 2 questions, got {qs!r}")
    return tuple(qs)


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # what endpoints accepted is remembered per URL for the process; a reused port must start afresh
    monkeypatch.setattr(openai_compat, "_NEGOTIATED", {})
    for name in list(os.environ):
        if name.startswith(("HOPRAG_", "GOOGLE_GENAI_")) or name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
            monkeypatch.delenv(name)


@dataclass
class Backend:
    kind: str
    fake: FakeHTTPServer
    make: Callable[..., LLMClient]   # make(key=..., **settings overrides)


def _gemini(fake: FakeGemini) -> Backend:
    def make(key: str | None = GEMINI_KEY, **overrides: Any) -> LLMClient:
        values = {"GEMINI_API_KEY": key, "gemini_base_url": fake.url, "llm_timeout_s": 0.5, **overrides}
        return GeminiLLM(GEMINI_MODEL, Settings(**values))
    return Backend("gemini", fake, make)


def _openai(fake: FakeOpenAI) -> Backend:
    def make(key: str | None = OPENAI_KEY, **overrides: Any) -> LLMClient:
        values = {"llm_api_key": key, "llm_base_url": fake.url, "llm_timeout_s": 0.5, **overrides}
        return OpenAICompatLLM(OPENAI_MODEL, Settings(**values))
    return Backend("openai", fake, make)


@pytest.fixture(params=["gemini", "openai"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "gemini":
        with FakeGemini(api_key=GEMINI_KEY) as fake:
            yield _gemini(fake)
    else:
        with FakeOpenAI(api_key=OPENAI_KEY) as fake:
            yield _openai(fake)


def reqs(n: int, prefix: str = "第{}條") -> list[LLMRequest]:
    return [LLMRequest(key=f"k{i}", prompt=prefix.format(i), schema=SCHEMA, system=SYSTEM) for i in range(n)]


def run(client: LLMClient, requests: list[LLMRequest], **kw: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {"concurrency": 4, "rpm": None, "max_retries": 2, "validate": two_questions,
                            "backoff_base_s": 0.01}
    opts.update(kw)
    return run_requests_sync(client, requests, **opts)


def run_one(client: LLMClient, **kw: Any) -> Any:
    return run(client, reqs(1), **kw)["k0"]


def one_shot(client: LLMClient, prompt: str, system: str | None = SYSTEM) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        try:
            return await client.generate_json(prompt, SCHEMA, system=system)
        finally:
            await client.aclose()
    return asyncio.run(main())


# -- the wire ------------------------------------------------------------------------------

def test_reply_parsed_and_schema_system_prompt_sent(backend: Backend) -> None:
    backend.fake.responder = lambda prompt, system, schema: {
        "questions": [f"{system}|{prompt}", "ok" if schema == SCHEMA else "schema lost"]}
    client = backend.make()
    assert isinstance(client, LLMClient)
    assert one_shot(client, "民法第一條") == {"questions": [f"{SYSTEM}|民法第一條", "ok"]}
    (req,) = backend.fake.requests
    body = req.body
    if backend.kind == "gemini":
        assert client.name == f"gemini:{GEMINI_MODEL}"
        assert req.method == "POST" and req.path.endswith(f"/models/{GEMINI_MODEL}:generateContent")
        assert req.headers["x-goog-api-key"] == GEMINI_KEY and GEMINI_KEY not in req.path
        cfg = body["generationConfig"]
        assert cfg["responseJsonSchema"] == SCHEMA and "responseSchema" not in cfg
        assert cfg["responseMimeType"] == "application/json" and cfg["temperature"] == pytest.approx(0.3)
        assert body["systemInstruction"]["parts"][0]["text"] == SYSTEM
        assert body["contents"][0]["parts"][0]["text"] == "民法第一條"
    else:
        assert client.name == f"openai:{OPENAI_MODEL}"
        assert req.method == "POST" and req.path == "/v1/chat/completions"
        assert req.headers["authorization"] == f"Bearer {OPENAI_KEY}"
        assert body["model"] == OPENAI_MODEL and body["temperature"] == pytest.approx(0.3) and body["max_tokens"] == 768
        assert body["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "民法第一條"}]
        assert body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "pseudo_queries", "schema": SCHEMA, "strict": True}}


def test_worked_example_goes_before_the_prompt(backend: Backend) -> None:
    client = backend.make()
    example = ("第一條範例", '{"questions": ["範例一？", "範例二？"]}')

    async def main() -> dict[str, Any]:
        try:
            return await client.generate_json("民法第一條", SCHEMA, system=SYSTEM, examples=[example])
        finally:
            await client.aclose()
    asyncio.run(main())
    body = backend.fake.requests[0].body
    if backend.kind == "gemini":
        turns = [(c["role"], c["parts"][0]["text"]) for c in body["contents"]]
        assert turns == [("user", example[0]), ("model", example[1]), ("user", "民法第一條")]
    else:
        assert body["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": example[0]},
                                    {"role": "assistant", "content": example[1]},
                                    {"role": "user", "content": "民法第一條"}]


@pytest.mark.parametrize("accepts, form", [
    (frozenset({"json_object+schema", "json_object"}), "json_object+schema"),   # llama-cpp-python's server
    (frozenset({"json_object"}), "json_object"),
])
def test_structured_output_is_negotiated_once_per_endpoint(accepts: frozenset, form: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAI(accepts=accepts) as fake:
        fake.responder = lambda prompt, system, schema: {"questions": ["甲？", "乙？" if schema else "無綱要？"]}
        backend = _openai(fake)
        with caplog.at_level("WARNING", logger="indexer.llm.openai_compat"):
            first = run(backend.make(key=None), reqs(3), concurrency=1, max_retries=0)
            again = run(backend.make(key=None), reqs(2), max_retries=0)   # a new client: no new negotiation
        assert all(v == ("甲？", "乙？" if form != "json_object" else "無綱要？") for v in {**first, **again}.values())
        forms = [r.body["response_format"] for r in fake.requests]
        rejected = 1 if form == "json_object+schema" else 2
        assert len(forms) == 3 + 2 + rejected    # the rejected forms cost one request each, once
        assert [f["type"] for f in forms[:rejected]] == (["json_schema"] if rejected == 1
                                                         else ["json_schema", "json_object"])
        expected = {"type": "json_object", "schema": SCHEMA} if form == "json_object+schema" else {"type": "json_object"}
        assert forms[rejected:] == [expected] * 5
        assert backend.make(key=None).structured_output == form
        said = [r.getMessage() for r in caplog.records if "rejects response_format" in r.getMessage()]
        assert len(said) == rejected and said[-1].endswith(f"using {form} from now on")


def test_a_500_that_is_not_about_the_format_is_an_error_not_a_step_down() -> None:
    with FakeOpenAI() as fake:
        fake.push(Fault.status(500))
        err = run_one(_openai(fake).make(key=None), max_retries=0)
        assert isinstance(err, LLMError) and err.status == 500
        assert fake.requests[0].body["response_format"]["type"] == "json_schema" and len(fake.requests) == 1


def test_a_reply_that_does_not_fit_is_repaired_with_the_mistake_named(runner_sleeps: list[float]) -> None:
    with FakeOpenAI() as fake:
        fake.push(Fault.content('{"questions": ["only one"]}'))
        fake.responder = lambda prompt, system, schema: {"questions": [f"甲：{prompt}", "乙？"]}
        req = LLMRequest(key="k", prompt="第一條", schema=SCHEMA, system=SYSTEM,
                         repair=lambda reason: f"修正：{reason[:16]}")
        got = run(_openai(fake).make(key=None), [req], max_retries=2, backoff_base_s=5.0)["k"]
        # asked again at once: no backoff (it would be 2.5 to 5 s here), the server is not at fault
        assert runner_sleeps == [0.0]
        assert got == ("甲：修正：want 2 questions", "乙？")
        first, second = (r.body["messages"] for r in fake.requests)
        assert first == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "第一條"}]
        # the failed exchange becomes earlier turns, the named mistake the new prompt
        assert second == first + [{"role": "assistant", "content": '{"questions": ["only one"]}'},
                                  {"role": "user", "content": "修正：want 2 questions"}]


def test_no_system_prompt_sends_none(backend: Backend) -> None:
    one_shot(backend.make(), "x", system=None)
    body = backend.fake.requests[0].body
    if backend.kind == "gemini":
        assert "systemInstruction" not in body
    else:
        assert [m["role"] for m in body["messages"]] == ["user"]


def test_fenced_json_is_accepted(backend: Backend) -> None:
    backend.fake.push(Fault.content('```json\n{"questions": ["a", "b"]}\n```'))
    assert run_one(backend.make()) == ("a", "b")
    assert len(backend.fake.requests) == 1


def test_openai_bearer_only_when_configured() -> None:
    with FakeOpenAI(api_key=None) as fake:
        b = _openai(fake)
        one_shot(b.make(key=None), "x")
        one_shot(b.make(key=OPENAI_KEY), "y")
        assert "authorization" not in fake.requests[0].headers
        assert fake.requests[1].headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_wrong_key_fails_at_once_and_is_never_shown(backend: Backend) -> None:
    wrong = "sk-wrong-key-9876543210" if backend.kind == "openai" else "AIza-wrong-key-9876543210"
    client = backend.make(key=wrong)
    err = run_one(client)
    assert isinstance(err, LLMError) and err.kind == "http" and err.attempts == 1
    assert err.status == (401 if backend.kind == "openai" else 400)
    assert "KEY" in str(err)  # names the variable to fix
    for shown in (str(err), repr(err), repr(client)):
        assert wrong not in shown
    assert len(backend.fake.requests) == 1


# -- retries -------------------------------------------------------------------------------

def test_429_waits_as_long_as_retry_after_says(backend: Backend, runner_sleeps: list[float]) -> None:
    backend.fake.push(Fault.status(429, retry_after=1))
    t0 = time.monotonic()
    assert run_one(backend.make()) == ("echo: 第0條 1", "echo: 第0條 2")
    assert time.monotonic() - t0 >= 1.0
    first, second = backend.fake.requests
    assert second.at - first.at >= 1.0                     # the server saw the wait
    # and it was the server's figure, not a backoff of its own (0.01 s here) nor a longer one; the
    # rate limiter, paused for the same second, adds at most a clock tick after it
    assert runner_sleeps[0] == 1.0 and sum(runner_sleeps) == pytest.approx(1.0, abs=0.01)


def test_gemini_429_honours_retry_info_in_the_body(runner_sleeps: list[float]) -> None:
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        fake.push(Fault.status(429, retry_delay=0.5))
        t0 = time.monotonic()
        assert isinstance(run_one(_gemini(fake).make()), tuple)
        assert time.monotonic() - t0 >= 0.5 and len(fake.requests) == 2
        assert fake.requests[1].at - fake.requests[0].at >= 0.5
        assert runner_sleeps[0] == 0.5 and sum(runner_sleeps) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("code", [500, 503])
def test_server_error_then_success(backend: Backend, code: int) -> None:
    backend.fake.push(Fault.status(code))
    assert isinstance(run_one(backend.make()), tuple)
    assert len(backend.fake.requests) == 2


def test_server_errors_exhausted(backend: Backend) -> None:
    backend.fake.push(*[Fault.status(503)] * 3)
    err = run_one(backend.make())
    assert isinstance(err, LLMError) and (err.kind, err.status, err.attempts) == ("http", 503, 3)
    assert "503" in str(err) and "3 attempts" in str(err)


def test_hang_times_out_then_retry_succeeds(backend: Backend, runner_sleeps: list[float]) -> None:
    backend.fake.push(Fault.hang(HANG_S))
    t0 = time.monotonic()
    assert isinstance(run_one(backend.make(llm_timeout_s=0.3)), tuple)
    assert 0.3 <= time.monotonic() - t0 < HANG_S / 4     # the 0.3 s timeout ended the hang
    assert len(backend.fake.requests) == 2
    assert len(runner_sleeps) == 1 and runner_sleeps[0] <= 0.01    # one backoff, base 0.01 s


def test_all_attempts_hang(backend: Backend) -> None:
    backend.fake.push(*[Fault.hang(HANG_S)] * 3)
    t0 = time.monotonic()
    err = run_one(backend.make(llm_timeout_s=0.3))
    assert isinstance(err, LLMError) and err.kind == "timeout" and err.attempts == 3
    assert time.monotonic() - t0 < HANG_S / 4
    assert len(backend.fake.requests) == 3


def test_runner_timeout_is_a_total_deadline() -> None:
    with FakeOpenAI() as fake:
        fake.push(Fault.hang(HANG_S), Fault.hang(HANG_S))
        t0 = time.monotonic()
        err = run_one(_openai(fake).make(llm_timeout_s=30), timeout_s=0.3, max_retries=1)
        assert isinstance(err, LLMError) and err.kind == "timeout" and err.attempts == 2
        # two attempts of 0.3 s; without the runner's deadline the client's 30 s would end each
        assert time.monotonic() - t0 < 15


@pytest.mark.parametrize("fault", [
    Fault.content("this is not JSON"),
    Fault.content('{"questions": ["only one"]}'),   # JSON, but validate rejects it
    Fault.content("[1, 2]"),                         # JSON, but not an object
    Fault.malformed(),                               # the HTTP body itself is garbled
], ids=["not-json", "wrong-shape", "not-object", "garbled-body"])
def test_malformed_reply_is_retried_then_reported(backend: Backend, fault: Fault) -> None:
    backend.fake.push(*[fault] * 3)
    err = run_one(backend.make(), max_retries=2)
    assert isinstance(err, LLMError) and err.kind == "malformed" and err.attempts == 3
    assert len(backend.fake.requests) == 3


def test_malformed_then_good_reply(backend: Backend) -> None:
    backend.fake.push(Fault.content("sorry, here you go: {"))
    assert isinstance(run_one(backend.make()), tuple)
    assert len(backend.fake.requests) == 2


@pytest.mark.parametrize("fault", [Fault.status(400), Fault.refused()], ids=["400", "refused"])
def test_non_retriable_fails_at_once(backend: Backend, fault: Fault) -> None:
    backend.fake.push(fault)
    err = run_one(backend.make(), max_retries=5)
    assert isinstance(err, LLMError) and err.attempts == 1
    assert (err.kind, err.status) == (("http", 400) if fault.kind == "status" else ("refused", None))
    assert len(backend.fake.requests) == 1


def test_unreachable_server_is_a_connection_error() -> None:
    port = free_port()
    for client in (GeminiLLM(GEMINI_MODEL, Settings(GEMINI_API_KEY=GEMINI_KEY,
                                                    gemini_base_url=f"http://127.0.0.1:{port}")),
                   OpenAICompatLLM(OPENAI_MODEL, Settings(llm_base_url=f"http://127.0.0.1:{port}/v1",
                                                          llm_api_key=OPENAI_KEY))):
        err = run_one(client, max_retries=1)
        assert isinstance(err, LLMError) and err.kind == "connection" and err.attempts == 2
        assert GEMINI_KEY not in str(err) and OPENAI_KEY not in str(err)


# -- the runner ----------------------------------------------------------------------------

def test_concurrency_is_bounded_at_the_server(backend: Backend) -> None:
    backend.fake.latency_s = 0.05  # long enough for requests to overlap
    done: list[str] = []
    out = run(backend.make(), reqs(20), concurrency=3, on_done=lambda key, _: done.append(key))
    assert backend.fake.max_in_flight == 3
    assert list(out) == [f"k{i}" for i in range(20)] and sorted(done) == sorted(out)
    assert all(v == (f"echo: 第{i}條 1", f"echo: 第{i}條 2") for i, v in enumerate(out.values()))


def test_timeouts_halve_the_requests_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    """A server that answers one request at a time (llama-cpp-python's): with 8 in flight the
    queued ones time out; the run drops to one at a time and then everything is answered."""
    with FakeOpenAI() as fake:
        fake.serial = True
        fake.latency_s = 0.15                  # 8 queued: the last waits 1.2 s, past the 0.5 s timeout
        with caplog.at_level("WARNING", logger="indexer.llm.runner"):
            out = run(_openai(fake).make(key=None, llm_timeout_s=0.5), reqs(8), concurrency=8, max_retries=6)
        assert all(isinstance(v, tuple) for v in out.values()), out
        said = [r.getMessage() for r in caplog.records if "in flight from now on" in r.getMessage()]
        assert said and said[-1].startswith("openai:") and "at most 1 in flight" in said[-1]
        assert len(said) == 3                  # 8 -> 4 -> 2 -> 1, each said once


def test_rpm_limit_spaces_requests(backend: Backend, runner_sleeps: list[float]) -> None:
    t0 = time.monotonic()
    out = run(backend.make(), reqs(8), concurrency=8, rpm=4, rpm_window_s=1.0)
    elapsed = time.monotonic() - t0
    assert all(isinstance(v, tuple) for v in out.values())
    # 4 now, 4 one window later: the last 4 started a full window after the first, so they reach
    # the server at least a window after t0, however slowly the first 4 got there
    assert elapsed >= 1.0
    arrivals = sorted(r.at - t0 for r in backend.fake.requests)
    assert len(arrivals) == 8 and sum(a >= 1.0 for a in arrivals) >= 4
    # ... and no later than needed: the limiter's waits add up to one window at most (a limit of
    # fewer than 4 per window, or a window per request, would ask for seconds)
    assert 0 < sum(runner_sleeps) <= 1.0 + 0.01


def test_one_failure_among_many(backend: Backend) -> None:
    def responder(prompt: str, system: str | None, schema: dict | None) -> dict:
        return {"questions": ["just one"]} if "第7條" in prompt else {"questions": [prompt, "b"]}
    backend.fake.responder = responder
    seen: dict[str, Any] = {}
    out = run(backend.make(), reqs(12), concurrency=3, max_retries=1, on_done=seen.__setitem__)
    assert seen == out
    err = out.pop("k7")
    assert isinstance(err, LLMError) and err.kind == "malformed" and err.attempts == 2
    assert out == {f"k{i}": (f"第{i}條", "b") for i in range(12) if i != 7}
    assert len(backend.fake.requests) == 13


def test_misfit_replies_are_asked_again_warmer(backend: Backend) -> None:
    """A repaired re-ask goes out at the next temperature of the ladder (the last one repeats);
    a plain retry after a server error keeps the configured temperature."""
    backend.fake.responder = lambda prompt, system, schema: {"questions": ["only one"]}
    req = LLMRequest(key="k", prompt="第1條", schema=SCHEMA, system=SYSTEM, repair=lambda why: f"修正：{why}")
    out = run(backend.make(llm_temperature=0.3), [req], max_retries=3, repair_temperatures=(0.6, 0.9))
    assert isinstance(out["k"], LLMError) and out["k"].attempts == 4

    def temperature(body: dict) -> float:
        return body["generationConfig"]["temperature"] if backend.kind == "gemini" else body["temperature"]

    assert [temperature(r.body) for r in backend.fake.requests] == [0.3, 0.6, 0.9, 0.9]
    # a repair turn (the failed reply and what was wrong, as two more turns), then a fresh ask
    turns = [len(r.body["contents" if backend.kind == "gemini" else "messages"]) for r in backend.fake.requests]
    assert turns[1] == turns[3] == turns[0] + 2 and turns[2] == turns[0]


def test_client_is_reusable_across_runs(backend: Backend) -> None:
    client = backend.make()
    for _ in range(2):  # each run is a new event loop
        assert all(isinstance(v, tuple) for v in run(client, reqs(3)).values())
    assert len(backend.fake.requests) == 6


def test_duplicate_keys_are_rejected(backend: Backend) -> None:
    with pytest.raises(ValueError, match="unique"):
        run(backend.make(), reqs(2) + reqs(1))


# -- construction --------------------------------------------------------------------------

def test_get_llm_forms() -> None:
    settings = Settings(GEMINI_API_KEY=GEMINI_KEY, llm_base_url="http://localhost:11434/v1")
    assert get_llm("none", settings) is None
    g = get_llm("gemini:gemini-2.5-flash", settings)
    assert isinstance(g, GeminiLLM) and (g.name, g.model) == ("gemini:gemini-2.5-flash", "gemini-2.5-flash")
    o = get_llm("openai:qwen2.5:7b", settings)
    assert isinstance(o, OpenAICompatLLM) and (o.name, o.model) == ("openai:qwen2.5:7b", "qwen2.5:7b")
    assert o.url == "http://localhost:11434/v1/chat/completions"
    for bad in ("qwen2.5:7b", "gemini", "gemini:", "openai", "claude:x", ""):
        with pytest.raises(ValueError, match=r"gemini:<model>.*openai:<model>"):
            get_llm(bad, settings)


def test_missing_configuration_is_explained() -> None:
    with pytest.raises(LLMConfigError, match=re.escape("HOPRAG_LLM_BASE_URL, e.g. http://localhost:11434/v1 for Ollama")):
        get_llm("openai:qwen2.5:7b", Settings())
    with pytest.raises(LLMConfigError, match="GEMINI_API_KEY"):
        get_llm("gemini:gemini-2.5-flash", Settings())


def test_runner_options_and_error_pickling() -> None:
    s = Settings(llm_concurrency=3, llm_rpm=60, llm_max_retries=4, llm_timeout_s=9, llm_repair_temperatures=[0.5])
    assert runner_options(s) == {"concurrency": 3, "rpm": 60, "max_retries": 4, "timeout_s": 9,
                                 "repair_temperatures": (0.5,)}
    err = LLMError("boom", kind="http", status=503, attempts=3, retry_after_s=2.0)
    back = pickle.loads(pickle.dumps(err))
    assert (back.kind, back.status, back.attempts, back.retry_after_s, str(back)) == ("http", 503, 3, 2.0, "boom")
    assert err.retriable and not LLMError("x", kind="refused").retriable
    assert not LLMError("x", kind="http", status=404).retriable


# -- bounds: the circuit breaker and the deadline --------------------------------------------

def test_breaker_counts_only_consecutive_transport_failures() -> None:
    b = Breaker(3)
    conn, timeout = LLMError("x", kind="connection"), LLMError("x", kind="timeout")
    for outcome in (conn, timeout, None, conn, LLMError("busy", kind="http", status=503), conn, conn):
        b.record(outcome)
    assert not b.tripped and b.consecutive == 2     # a reply (even a 503) says the server is there
    b.record(LLMError("bad gateway", kind="http", status=502))   # a proxy whose backend is gone
    assert b.tripped and "bad gateway" in b.reason
    err = b.error()
    assert err.kind == "unreachable" and not err.retriable and str(err).startswith("LLM unreachable")
    never = Breaker(0)
    for _ in range(100):
        never.record(conn)
    assert not never.tripped


def test_breaker_stops_a_run_against_afree_port() -> None:
    """Without it: 20 requests × 6 attempts with backoff. With it: 3 attempts, then every
    request ends at once as 'LLM unreachable'."""
    client = OpenAICompatLLM(OPENAI_MODEL, Settings(llm_base_url=f"http://127.0.0.1:{free_port()}/v1"))
    done: dict[str, Any] = {}
    t0 = time.monotonic()
    out = run(client, reqs(20), concurrency=1, max_retries=5, backoff_base_s=0.05, breaker=Breaker(3),
              on_done=done.__setitem__)
    assert time.monotonic() - t0 < 2
    assert done.keys() == out.keys()                          # every request reported, asked or not
    assert all(isinstance(e, LLMError) and e.kind == "unreachable" for e in out.values()), out
    assert "3 consecutive transport failures" in str(out["k19"])


def test_breaker_ends_a_run_against_a_hanging_server_soon_after_it_trips() -> None:
    with FakeOpenAI() as fake:
        fake.push(*[Fault.hang(HANG_S)] * 40)
        breaker = Breaker(3)
        t0 = time.monotonic()
        out = run(_openai(fake).make(key=None, llm_timeout_s=0.3), reqs(12), concurrency=4, max_retries=5,
                  breaker=breaker)
        elapsed = time.monotonic() - t0
    assert breaker.tripped and all(e.kind == "unreachable" for e in out.values())
    # one round of 0.3 s timeouts trips it (4 in flight), then nothing more is asked
    assert elapsed < 2 and len(fake.requests) <= 8


def test_deadline_bounds_every_wait_against_a_hanging_server() -> None:
    with FakeOpenAI() as fake:
        fake.push(*[Fault.hang(HANG_S)] * 40)
        t0 = time.monotonic()
        out = run(_openai(fake).make(key=None, llm_timeout_s=120), reqs(6), concurrency=2, max_retries=5,
                  deadline=Deadline(0.5))
        elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 1.5                               # not the client's 120 s
    assert all(isinstance(e, LLMError) and e.kind == "deadline" for e in out.values()), out
    assert "deadline of 0.5s" in str(out["k0"])


def test_deadline_cuts_retries_against_a_503_server() -> None:
    with FakeOpenAI() as fake:
        fake.push(*[Fault.status(503)] * 1000)
        t0 = time.monotonic()
        out = run(_openai(fake).make(key=None), reqs(4), concurrency=4, max_retries=50, backoff_base_s=0.2,
                  deadline=Deadline(1.0))
        elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 2.0
    assert all(isinstance(e, LLMError) and e.kind in ("deadline", "http") for e in out.values())
    assert any(e.kind == "deadline" for e in out.values())
    assert len(fake.requests) < 60                            # backoff, not a busy loop


def test_cancel_event_stops_the_run() -> None:
    import threading
    cancel = threading.Event()
    with FakeOpenAI() as fake:
        fake.push(*[Fault.hang(HANG_S)] * 10)
        threading.Timer(0.3, cancel.set).start()
        t0 = time.monotonic()
        out = run(_openai(fake).make(key=None, llm_timeout_s=120), reqs(3), deadline=Deadline(60, cancel))
        elapsed = time.monotonic() - t0
    assert elapsed < 1.0
    assert all(e.kind == "deadline" and "went away" in str(e) for e in out.values())
