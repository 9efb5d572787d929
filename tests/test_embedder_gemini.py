"""GeminiEmbedder against a real HTTP fake of the Gemini API (tests/fakes/gemini_server.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from indexer.embedders.base import Embedder, EmbedderError
from indexer.embedders.gemini import GeminiEmbedder
from indexer.settings import Settings
from tests.fakes.gemini_server import FakeGemini, Fault, fake_vector
from tests.fakes.sleeps import record_sleeps

from .live import free_port

pytestmark = pytest.mark.backend_free  # never opens an index

KEY = "AIza-test-key-0123456789"
MODEL = "gemini-embedding-001"


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own HOPRAG_GEMINI_* or key must not change what these tests see.
    for name in list(os.environ):
        if name.startswith("HOPRAG_") or name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(dim=32, api_key=KEY) as server:
        yield server


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the embedder asks time.sleep for between attempts."""
    return record_sleeps(monkeypatch, "indexer.retry", coroutine=False)


# A hang outlasts every bound below by far: a wait that only ended because the server gave up
# (no client timeout) fails the bound instead of passing slowly.
HANG_S = 60


def make(fake: FakeGemini, key: str | None = KEY, **overrides: Any) -> GeminiEmbedder:
    values: dict[str, Any] = {"GEMINI_API_KEY": key, "gemini_base_url": fake.url,
                              "gemini_timeout_s": 2.0, "gemini_max_retries": 3}
    values.update(overrides)
    return GeminiEmbedder(MODEL, Settings(**values), backoff_base_s=0.01)


def expected(texts: list[str], dim: int) -> np.ndarray:
    rows = np.stack([fake_vector(t, dim) for t in texts]).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def batch_sizes(fake: FakeGemini) -> list[int]:
    return [len(r.body["requests"]) for r in fake.requests]


TEXTS = ["第一條 本法依憲法制定之。", "第二條 本法所稱主管機關為內政部。", "hello", "第一條 本法依憲法制定之。"]


def test_vectors_unit_length_deterministic_in_order(fake: FakeGemini) -> None:
    emb = make(fake, gemini_output_dim=32)
    assert isinstance(emb, Embedder)
    vecs = emb.embed(TEXTS)
    assert vecs.dtype == np.float32 and vecs.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vecs, expected(TEXTS, 32), atol=1e-6)
    np.testing.assert_array_equal(vecs[0], vecs[3])  # same text, same vector
    np.testing.assert_array_equal(emb.embed(TEXTS[::-1]), vecs[::-1])
    body = fake.requests[0].body["requests"][0]
    assert body["taskType"] == "RETRIEVAL_DOCUMENT" and body["outputDimensionality"] == 32
    assert body["content"]["parts"][0]["text"] == TEXTS[0]


def test_dim_is_probed_once_when_not_configured(fake: FakeGemini) -> None:
    emb = make(fake)
    assert fake.requests == []  # construction is offline
    assert emb.dim == 32 and emb.dim == 32
    assert batch_sizes(fake) == [1]
    fp = emb.fingerprint
    assert (fp.name, fp.model, fp.revision, fp.dim, fp.normalized) == (f"gemini:{MODEL}", MODEL, "api", 32, True)
    assert "outputDimensionality" not in fake.requests[0].body["requests"][0]
    assert emb.embed([]).shape == (0, 32)


def test_configured_dim_needs_no_probe(fake: FakeGemini) -> None:
    emb = make(fake, gemini_output_dim=8)
    assert emb.dim == 8 and emb.fingerprint.dim == 8
    assert fake.requests == []
    assert emb.embed(["a", "b"]).shape == (2, 8)


def test_batches_of_at_most_batch_size(fake: FakeGemini) -> None:
    texts = [f"第{i}條" for i in range(250)]
    vecs = make(fake, gemini_output_dim=32).embed(texts)
    assert batch_sizes(fake) == [100, 100, 50]
    np.testing.assert_allclose(vecs, expected(texts, 32), atol=1e-6)
    fake.requests.clear()
    make(fake, gemini_output_dim=32, gemini_batch_size=7).embed(texts[:20])
    assert batch_sizes(fake) == [7, 7, 6]


def test_key_is_sent_in_header_and_never_shown(fake: FakeGemini) -> None:
    emb = make(fake, gemini_output_dim=32)
    emb.embed(["a"])
    req = fake.requests[0]
    assert req.method == "POST" and req.path == f"/v1/models/{MODEL}:batchEmbedContents"
    assert req.headers["x-goog-api-key"] == KEY and KEY not in req.path
    assert KEY not in repr(emb)

    wrong = "AIza-wrong-key-9876543210"
    with pytest.raises(EmbedderError) as info:
        make(fake, key=wrong, gemini_output_dim=32).embed(["a"])
    assert "GEMINI_API_KEY" in str(info.value) and wrong not in str(info.value)
    assert len(fake.requests) == 2  # a bad key is not retried


def test_429_waits_as_long_as_retry_after_says(fake: FakeGemini, sleeps: list[float]) -> None:
    fake.push(Fault.status(429, retry_after=1))
    t0 = time.monotonic()
    vecs = make(fake, gemini_output_dim=32).embed(["a", "b"])
    assert time.monotonic() - t0 >= 1.0
    assert len(fake.requests) == 2
    assert fake.requests[1].at - fake.requests[0].at >= 1.0    # the server saw the wait
    # exactly the server's figure: not the 0.01 s backoff of its own, nor more than asked
    assert sleeps == [1.0]
    np.testing.assert_allclose(vecs, expected(["a", "b"], 32), atol=1e-6)


def test_429_honours_retry_info_in_the_body(fake: FakeGemini, sleeps: list[float]) -> None:
    fake.push(Fault.status(429, retry_delay=0.5))
    t0 = time.monotonic()
    make(fake, gemini_output_dim=32).embed(["a"])
    assert time.monotonic() - t0 >= 0.5
    assert len(fake.requests) == 2
    assert sleeps == [0.5]


@pytest.mark.parametrize("code", [500, 503])
def test_server_error_then_success(fake: FakeGemini, code: int) -> None:
    fake.push(Fault.status(code), Fault.status(code))
    vecs = make(fake, gemini_output_dim=32).embed(TEXTS)
    assert len(fake.requests) == 3
    np.testing.assert_allclose(vecs, expected(TEXTS, 32), atol=1e-6)


def test_retries_exhausted_names_status_and_attempts(fake: FakeGemini) -> None:
    fake.push(*[Fault.status(503)] * 3)
    with pytest.raises(EmbedderError, match=r"503.*3 attempts"):
        make(fake, gemini_output_dim=32, gemini_max_retries=2).embed(["a"])
    assert len(fake.requests) == 3


def test_hang_is_retried_then_succeeds(fake: FakeGemini, sleeps: list[float]) -> None:
    fake.push(Fault.hang(HANG_S))
    t0 = time.monotonic()
    vecs = make(fake, gemini_output_dim=32, gemini_timeout_s=0.3).embed(["a"])
    assert 0.3 <= time.monotonic() - t0 < HANG_S / 4      # the 0.3 s timeout ended the hang
    assert len(fake.requests) == 2
    assert len(sleeps) == 1 and sleeps[0] <= 0.01          # one backoff, base 0.01 s
    np.testing.assert_allclose(vecs, expected(["a"], 32), atol=1e-6)


def test_all_attempts_hanging_raises(fake: FakeGemini, sleeps: list[float]) -> None:
    fake.push(*[Fault.hang(HANG_S)] * 3)
    t0 = time.monotonic()
    with pytest.raises(EmbedderError, match=r"Timeout.*3 attempts"):
        make(fake, gemini_output_dim=32, gemini_timeout_s=0.3, gemini_max_retries=2).embed(["a"])
    assert time.monotonic() - t0 < HANG_S / 4
    assert len(fake.requests) == 3
    assert len(sleeps) == 2 and sleeps[0] <= 0.01 and sleeps[1] <= 0.02    # backoff 0.01·2^(n-1), jittered


def test_unreachable_server_is_retried_then_raises() -> None:
    port = free_port()
    settings = Settings(GEMINI_API_KEY=KEY, gemini_base_url=f"http://127.0.0.1:{port}",
                        gemini_output_dim=8, gemini_max_retries=1, gemini_timeout_s=0.5)
    with pytest.raises(EmbedderError, match=r"ConnectError after 2 attempts") as info:
        GeminiEmbedder(MODEL, settings, backoff_base_s=0.01).embed(["a"])
    assert KEY not in str(info.value)


def test_malformed_json_fails_at_once(fake: FakeGemini) -> None:
    # A 200 with a garbled body is a broken server or proxy, not congestion: no retry.
    fake.push(Fault.malformed())
    with pytest.raises(EmbedderError, match="malformed"):
        make(fake, gemini_output_dim=32).embed(["a", "b"])
    assert len(fake.requests) == 1


def test_wrong_embedding_count_fails(fake: FakeGemini) -> None:
    fake.push(Fault.wrong_count())
    with pytest.raises(EmbedderError, match="1 embeddings for 2 texts"):
        make(fake, gemini_output_dim=32).embed(["a", "b"])
    assert len(fake.requests) == 1


def test_unexpected_dimension_fails(fake: FakeGemini) -> None:
    emb = make(fake)
    assert emb.dim == 32
    fake.dim = 16  # the model changed under us
    with pytest.raises(EmbedderError, match="16-d vectors, expected 32-d"):
        emb.embed(["a"])


@pytest.mark.parametrize("code,hint", [(400, "not retried"), (403, "GEMINI_API_KEY"), (404, "model name")])
def test_client_errors_fail_at_once(fake: FakeGemini, code: int, hint: str) -> None:
    fake.push(Fault.status(code))
    with pytest.raises(EmbedderError, match=str(code)) as info:
        make(fake, gemini_output_dim=32).embed(["a"])
    assert hint in str(info.value) and KEY not in str(info.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("key", [None, "", "   "])
def test_missing_key_fails_at_construction(key: str | None) -> None:
    with pytest.raises(EmbedderError, match="set GEMINI_API_KEY"):
        GeminiEmbedder(MODEL, Settings(GEMINI_API_KEY=key))
