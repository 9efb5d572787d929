"""openai:<model> against a real HTTP fake of an OpenAI-compatible /embeddings endpoint
(tests/fakes/embeddings_server.py), and a whole build and query through it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.embedders import get_embedder
from indexer.embedders.base import Embedder, EmbedderError
from indexer.embedders.openai_compat import OpenAIEmbedder
from indexer.settings import Settings
from tests.fakes.embeddings_server import FakeEmbeddings, Fault, expected
from tests.fakes.sleeps import record_sleeps

from .live import free_port

KEY = "sk-test-embed-0123456789"
TEXTS = ["第一條 本法依憲法制定之。", "第二條 本法所稱主管機關為內政部。", "hello", "第一條 本法依憲法制定之。"]


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HOPRAG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings(dim=16, api_key=KEY, served_model="BAAI/bge-m3") as server:
        yield server


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_sleeps(monkeypatch, "indexer.retry", coroutine=False)


def make(fake: FakeEmbeddings, **overrides: Any) -> OpenAIEmbedder:
    values: dict[str, Any] = {"embed_base_url": fake.url, "embed_api_key": KEY, "embed_timeout_s": 2.0,
                              "embed_max_retries": 3, "embed_batch_size": 3}
    values.update(overrides)
    return OpenAIEmbedder("bge-m3", Settings(**values), backoff_base_s=0.01)


def test_vectors_in_order_normalized_batched_and_fingerprinted(fake: FakeEmbeddings) -> None:
    fake.scale = 7.5  # a server that does not normalize
    emb = make(fake)
    got = emb.embed(TEXTS)
    want = np.stack([expected(t, 16) for t in TEXTS])
    np.testing.assert_allclose(got, want, atol=1e-6)  # placed by index (the fake answers reversed), unit length
    assert [len(r.body["input"]) for r in fake.requests] == [3, 1]  # batches of embed_batch_size
    assert all(r.body["model"] == "bge-m3" for r in fake.requests)
    fp = emb.fingerprint
    assert (fp.name, fp.model, fp.revision, fp.dim) == ("openai:bge-m3", "bge-m3", "served:BAAI/bge-m3", 16)
    assert len(fake.requests) == 2  # the dimension came from the first answer: no probe
    assert isinstance(emb, Embedder)
    assert get_embedder("openai:bge-m3", Settings(embed_base_url=fake.url, embed_api_key=KEY)).name == "openai:bge-m3"


def test_429_and_5xx_are_retried_waiting_what_the_server_asks(fake: FakeEmbeddings, sleeps: list[float]) -> None:
    fake.push(Fault.status(429, retry_after=0.3), Fault.status(503))
    got = make(fake).embed(TEXTS[:2])
    assert got.shape == (2, 16) and len(fake.requests) == 3
    assert sleeps[0] >= 0.3 and len(sleeps) == 2


def test_retries_exhausted_say_status_and_attempts(fake: FakeEmbeddings) -> None:
    fake.push(*[Fault.status(500)] * 4)
    with pytest.raises(EmbedderError, match=r"HTTP 500 .* after 4 attempts"):
        make(fake).embed(TEXTS)


def test_a_hang_is_bounded_by_the_timeout_and_retried(fake: FakeEmbeddings, sleeps: list[float]) -> None:
    fake.push(Fault.hang(60))
    got = make(fake, embed_timeout_s=0.5).embed(TEXTS[:1])
    assert got.shape == (1, 16) and len(sleeps) == 1


def test_unreachable_server_fails_with_its_address() -> None:
    port = free_port()
    emb = OpenAIEmbedder(
        "bge-m3", Settings(embed_base_url=f"http://127.0.0.1:{port}/v1", embed_max_retries=1), backoff_base_s=0.01
    )
    with pytest.raises(EmbedderError, match=rf"127.0.0.1:{port}/v1/embeddings after 2 attempts"):
        emb.embed(["x"])


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda f: f.push(Fault.malformed()), "no OpenAI embeddings list"),
        (lambda f: f.push(Fault.wrong_count()), "returned 2 embeddings for 3 texts"),
        (lambda f: setattr(f, "per_token", True), "per-token vectors .* --pooling"),
        (lambda f: f.push(Fault.status(400)), "HTTP 400"),
    ],
)
def test_bad_answers_are_errors_never_vectors(fake: FakeEmbeddings, setup, message: str) -> None:
    setup(fake)
    with pytest.raises(EmbedderError, match=message):
        make(fake).embed(TEXTS[:3])
    assert len(fake.requests) == 1  # none of these is retried


def test_a_wrong_key_is_401_with_a_hint_and_the_key_never_shown(fake: FakeEmbeddings) -> None:
    with pytest.raises(EmbedderError, match=r"HTTP 401.*HOPRAG_EMBED_API_KEY") as info:
        make(fake, embed_api_key="sk-wrong-key-987654").embed(["x"])
    assert "sk-wrong-key-987654" not in str(info.value)


def test_another_model_behind_the_url_is_refused(fake: FakeEmbeddings) -> None:
    emb = make(fake)
    emb.embed(["x"])
    fake.dim = 24  # someone swapped the model the server runs
    with pytest.raises(EmbedderError, match="24-d vectors where it returned 16-d"):
        emb.embed(["y"])
    fake.dim, fake.served_model = 16, "intfloat/e5"
    with pytest.raises(EmbedderError, match="now answers with model 'intfloat/e5'"):
        emb.embed(["z"])


def test_no_endpoint_is_a_clear_error() -> None:
    with pytest.raises(EmbedderError, match="HOPRAG_EMBED_BASE_URL"):
        OpenAIEmbedder("bge-m3", Settings())


def test_build_and_query_through_the_endpoint(fake: FakeEmbeddings, tmp_path: Path) -> None:
    from indexer import Index

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.jsonl").write_text(
        "\n".join(f'{{"id": "p{i}", "text": "{t}"}}' for i, t in enumerate(TEXTS[:3])), encoding="utf-8"
    )
    settings = Settings(home=tmp_path / "home", embed_base_url=fake.url, embed_api_key=KEY)
    with Index(settings=settings) as idx:
        report = idx.build(lib, embedder="openai:bge-m3")
        assert report.embedded == 3
        hits = idx.search("hello", k=1, mode="dense")
        assert hits[0].key == "p2"  # the fake's vector of the query text is p2's
        assert idx.fingerprint is not None and idx.fingerprint.revision == "served:BAAI/bge-m3"
