"""The lexical channel of hybrid search: BM25 (bm25s) over jieba tokens of every passage, built at
build time and kept in the generation's snapshot, so that no query waits for it.

Two tokenizers (Settings.bm25_tokenizer): `bigram`, the characters and character pairs of each
run of letters and digits (no dictionary; fast), and `jieba`, jieba's search-mode words. The
snapshot keeps each passage's tokens (as ids into a vocabulary) next to the BM25 matrix, so the
next build tokenizes only the passages whose text changed; a snapshot made with the other
tokenizer is rebuilt when the index opens.

Public API:
    Lexicon(ids, hashes, tokens, model, tokenizer)   ids: passage ids in BM25 document order
        .tokenize(text) -> list[str], .scores(tokens) -> np.ndarray (one BM25 score per document)
        .to_files() -> {name: bytes}, Lexicon.from_files(read, tokenizer)   numpy and JSON, never pickle
    build_lexicon(texts, tokenizer, base=None) -> Lexicon   texts: {passage id: text}; base's tokens reused by hash
    lexical_text(law, label, text) -> str     what BM25 reads of a passage
    tokenize(text, tokenizer) -> list[str]
    TOKENIZERS                                the tokenizers by name
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from .vectorsets import npy_bytes, npy_load

__all__ = ["Lexicon", "build_lexicon", "lexical_text", "tokenize", "TOKENIZERS"]

_DOC_DTYPE = np.dtype([("id", "<i8"), ("hash", "S64")])


def _jieba(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(60)
    return [t for t in jieba.lcut_for_search(text) if t.strip() and any(c.isalnum() for c in t)]


def _bigram(text: str) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    for ch in text + " ":
        if ch.isalnum():
            run.append(ch)
            continue
        out += run + [a + b for a, b in pairwise(run)]
        run = []
    return out


# the version after the name changes whenever a tokenizer's output for the same text does
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"bigram": _bigram, "jieba": _jieba}
_VERSIONS = {"bigram": "bigram/1", "jieba": "jieba-search/1"}


def tokenize(text: str, tokenizer: str) -> list[str]:
    return TOKENIZERS[tokenizer](text)


def lexical_text(law: str, label: str, text: str) -> str:
    return f"{law} {label} {text}"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _bm25s() -> Any:
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    return bm25s


@dataclass
class Lexicon:
    ids: np.ndarray  # passage ids, in BM25 document order
    hashes: list[str]  # sha256 of each document's lexical text
    _tokens: list[list[str]] | Callable[[], list[list[str]]]  # or how to read them (only a build needs them)
    model: Any  # bm25s.BM25
    tokenizer: str  # a key of TOKENIZERS

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text, self.tokenizer)

    @property
    def tokens(self) -> list[list[str]]:
        """Each document's tokens (what the next build reuses)."""
        if callable(self._tokens):
            self._tokens = self._tokens()
        return self._tokens

    def scores(self, tokens: list[str]) -> np.ndarray:
        if not tokens or not len(self.ids):
            return np.zeros(len(self.ids), np.float32)
        return np.asarray(self.model.get_scores(tokens))

    def to_files(self) -> dict[str, bytes]:
        vocab: dict[str, int] = {}
        flat = [vocab.setdefault(t, len(vocab)) for doc in self.tokens for t in doc]
        offsets = np.cumsum([0] + [len(doc) for doc in self.tokens], dtype=np.int64)
        docs = np.array(list(zip(self.ids.tolist(), self.hashes)), dtype=_DOC_DTYPE)
        m = self.model
        params = {
            "tokenizer": _VERSIONS[self.tokenizer],
            "k1": m.k1,
            "b": m.b,
            "delta": m.delta,
            "method": m.method,
            "idf_method": m.idf_method,
            "num_docs": int(m.scores["num_docs"]),
        }
        return {
            "bm25.docs.npy": npy_bytes(docs),
            "bm25.tokens.npy": npy_bytes(np.array(flat, dtype=np.int32)),
            "bm25.offsets.npy": npy_bytes(offsets),
            "bm25.vocab.json": json.dumps(list(vocab), ensure_ascii=False).encode("utf-8"),
            "bm25.data.npy": npy_bytes(np.asarray(m.scores["data"])),
            "bm25.indices.npy": npy_bytes(np.asarray(m.scores["indices"])),
            "bm25.indptr.npy": npy_bytes(np.asarray(m.scores["indptr"])),
            "bm25.params.json": json.dumps({**params, "model_vocab": m.vocab_dict}, ensure_ascii=False).encode(),
        }

    @classmethod
    def from_files(cls, read: Callable[[str], bytes], tokenizer: str) -> Lexicon:
        params = json.loads(read("bm25.params.json"))
        if params.get("tokenizer") != _VERSIONS[tokenizer]:
            raise ValueError(f"made with tokenizer {params.get('tokenizer')!r}, not {_VERSIONS[tokenizer]!r}")
        docs = npy_load(read("bm25.docs.npy"))
        flat = npy_load(read("bm25.tokens.npy"))
        offsets = npy_load(read("bm25.offsets.npy"))
        vocab = json.loads(read("bm25.vocab.json"))  # checked now; turned into tokens when a build asks
        if docs.dtype != _DOC_DTYPE or len(offsets) != len(docs) + 1 or int(offsets[-1]) != len(flat):
            raise ValueError("BM25 files do not fit together")

        def tokens() -> list[list[str]]:
            words = np.array(vocab, dtype=object)[flat] if len(flat) else np.zeros(0, dtype=object)
            return [words[a:b].tolist() for a, b in pairwise(offsets)]

        bm25s = _bm25s()
        model = bm25s.BM25(
            k1=params["k1"],
            b=params["b"],
            delta=params["delta"],
            method=params["method"],
            idf_method=params["idf_method"],
        )
        model.vocab_dict = params["model_vocab"]
        model.unique_token_ids_set = set(model.vocab_dict.values())
        model.scores = {
            "data": npy_load(read("bm25.data.npy")),
            "indices": npy_load(read("bm25.indices.npy")),
            "indptr": npy_load(read("bm25.indptr.npy")),
            "num_docs": params["num_docs"],
        }
        model.nonoccurrence_array = None
        return cls(docs["id"].astype(np.int64), [h.decode("ascii") for h in docs["hash"]], tokens, model, tokenizer)


def build_lexicon(texts: Mapping[int, str], tokenizer: str, base: Lexicon | None = None) -> Lexicon:
    """BM25 over `texts` in id order; a passage whose text hash is in `base` (made with the same
    tokenizer) keeps its tokens, the others are tokenized now."""
    same = base is not None and base.tokenizer == tokenizer
    known: dict[str, list[str]] = dict(zip(base.hashes, base.tokens)) if base is not None and same else {}
    ids = np.array(sorted(texts), dtype=np.int64)
    hashes = [_hash(texts[int(i)]) for i in ids]
    docs = [known[h] if h in known else tokenize(texts[int(i)], tokenizer) for i, h in zip(ids, hashes)]
    model = _bm25s().BM25()
    if len(ids):
        model.index(docs, show_progress=False)
    return Lexicon(ids, hashes, docs, model, tokenizer)
