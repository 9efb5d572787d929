"""A fake OpenAI-compatible embeddings endpoint (what Ollama, TEI, vLLM and infinity serve) on 127.0.0.1.

`POST /v1/embeddings` with `{"model", "input": [texts]}` answers `{"object": "list", "model",
"data": [{"object": "embedding", "index": i, "embedding": [...]}], "usage": {...}}`, the data in
reverse order (clients must place rows by `index`). Vectors are a deterministic function of the
text (sha256-seeded), of `dim` numbers, multiplied by `scale` (1.0: unit length; servers differ).
`per_token=True` answers what llama-cpp-python's server does for a decoder GGUF: one vector per
token, a list of lists per input. With `api_key` set, requests need `Authorization: Bearer <key>`.
Faults: status codes, hangs, malformed bodies and wrong counts from tests/fakes/http_fake.py.

Public API:
    FakeEmbeddings(dim=8, api_key=None, served_model=None)   served_model: the name it answers with
        .url, .push(*faults), .requests, .dim, .scale, .per_token
    expected(text, dim) -> np.ndarray    the unit vector the fake serves for text
"""

from __future__ import annotations

import hashlib

import numpy as np

from .http_fake import Fault, Recorded, Reply
from .openai_server import FakeOpenAI, error_reply

__all__ = ["FakeEmbeddings", "Fault", "expected"]


def _raw(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=dim)


def expected(text: str, dim: int) -> np.ndarray:
    v = _raw(text, dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakeEmbeddings(FakeOpenAI):
    """The chat fake's URL (…/v1), auth and error bodies; its route is /v1/embeddings instead."""

    malformed_body = b'{"object": "list", "data": [{"embedding": [0.1, '

    def __init__(self, dim: int = 8, api_key: str | None = None, served_model: str | None = None) -> None:
        super().__init__(api_key=api_key)
        self.dim, self.served_model = dim, served_model
        self.scale = 1.0
        self.per_token = False

    def answer(self, rec: Recorded) -> Reply:
        if self.api_key is not None and rec.headers.get("authorization") != f"Bearer {self.api_key}":
            return error_reply(401, "invalid api key", error_code="invalid_api_key")
        if rec.method != "POST" or rec.path != "/v1/embeddings":
            return error_reply(404, f"no route for {rec.method} {rec.path}")
        body = rec.body if isinstance(rec.body, dict) else {}
        texts = body.get("input")
        if not isinstance(body.get("model"), str) or not isinstance(texts, list):
            return error_reply(400, "'model' and a list 'input' are required")
        if rec.fault is not None and rec.fault.kind == "malformed":
            return Reply(200, self.malformed_body)
        if rec.fault is not None and rec.fault.kind == "wrong_count":
            texts = texts[:-1]
        data = []
        for i, text in enumerate(texts):
            v = (expected(str(text), self.dim) * self.scale).tolist()
            if self.per_token:
                v = [v, v[::-1], v]
            data.append({"object": "embedding", "index": i, "embedding": v})
        return Reply.json(200, {
            "object": "list", "model": self.served_model or body["model"], "data": data[::-1],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        })
