"""The lexical channel of hybrid search: BM25 (bm25s) over jieba tokens of every passage, built at
build time and kept in the generation's snapshot, so that no query waits for it.

Two tokenizers (Settings.bm25_tokenizer): `bigram`, the characters and character pairs of each
run of letters and digits (no dictionary; fast), and `jieba`, jieba's search-mode words. The
snapshot keeps each passage's tokens (as ids into a vocabulary) next to the BM25 matrix, so the
next build tokenizes only the passages whose text changed; a snapshot made with the other
tokenizer is rebuilt when the index opens.

Public API:
    Lexicon(ids, hashes, vocab, flat, offsets, matrix, tokenizer)   ids: passage ids in BM25 document order
        .tokenize(text) -> list[str], .scores(tokens) -> np.ndarray (one BM25 score per document)
        .model (bm25s.BM25), .tokens (each document's tokens)
        .to_files() -> {name: bytes}, Lexicon.from_files(read, tokenizer)   numpy and JSON, never pickle
    build_lexicon(texts, tokenizer, base=None) -> Lexicon   texts: {passage id: text}; base's tokens reused by hash
    bm25_matrix(flat, offsets, n_vocab) -> {data, indices, indptr, num_docs}   bm25s's scores, vectorized
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

__all__ = ["Lexicon", "build_lexicon", "bm25_matrix", "lexical_text", "tokenize", "TOKENIZERS"]

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
    """BM25 over token ids. The score matrix is bm25s's (the same numbers, tested), computed here
    with numpy from the token ids in one pass: bm25s's own `index` walks every document in Python
    (0.6 s for the 30 laws), and a build that changed 444 articles would pay that for all 6,719."""

    ids: np.ndarray  # passage ids, in BM25 document order
    hashes: list[str]  # sha256 of each document's lexical text
    vocab: list[str]  # token id -> token
    flat: np.ndarray  # int32 token ids of every document, one after the other
    offsets: np.ndarray  # int64, len(ids) + 1: document d is flat[offsets[d]:offsets[d + 1]]
    matrix: dict[str, Any]  # bm25s's score matrix: data, indices, indptr (CSC, column = token), num_docs
    tokenizer: str  # a key of TOKENIZERS
    _model: Any = None

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text, self.tokenizer)

    @property
    def tokens(self) -> list[list[str]]:
        """Each document's tokens."""
        words = np.array(self.vocab, dtype=object)[self.flat] if len(self.flat) else np.zeros(0, dtype=object)
        return [words[a:b].tolist() for a, b in pairwise(self.offsets)]

    @property
    def model(self) -> Any:
        """The bm25s.BM25 that scores queries (imported on first use: a build never needs it)."""
        if self._model is None:
            model = _bm25s().BM25(k1=_K1, b=_B, delta=_DELTA, method=_METHOD, idf_method=_METHOD)
            model.vocab_dict = {t: i for i, t in enumerate(self.vocab)}
            model.unique_token_ids_set = set(model.vocab_dict.values())
            model.scores = dict(self.matrix)
            model.nonoccurrence_array = None
            self._model = model
        return self._model

    def scores(self, tokens: list[str]) -> np.ndarray:
        if not tokens or not len(self.ids):
            return np.zeros(len(self.ids), np.float32)
        return np.asarray(self.model.get_scores(tokens))

    def to_files(self) -> dict[str, bytes]:
        docs = np.array(list(zip(self.ids.tolist(), self.hashes)), dtype=_DOC_DTYPE)
        params = {
            "tokenizer": _VERSIONS[self.tokenizer],
            "k1": _K1,
            "b": _B,
            "delta": _DELTA,
            "method": _METHOD,
            "idf_method": _METHOD,
            "num_docs": int(self.matrix["num_docs"]),
        }
        return {
            "bm25.docs.npy": npy_bytes(docs),
            "bm25.tokens.npy": npy_bytes(self.flat),
            "bm25.offsets.npy": npy_bytes(self.offsets),
            "bm25.vocab.json": json.dumps(self.vocab, ensure_ascii=False).encode("utf-8"),
            "bm25.data.npy": npy_bytes(self.matrix["data"]),
            "bm25.indices.npy": npy_bytes(self.matrix["indices"]),
            "bm25.indptr.npy": npy_bytes(self.matrix["indptr"]),
            "bm25.params.json": json.dumps(params).encode(),
        }

    @classmethod
    def from_files(cls, read: Callable[[str], bytes], tokenizer: str) -> Lexicon:
        params = json.loads(read("bm25.params.json"))
        if params.get("tokenizer") != _VERSIONS[tokenizer]:
            raise ValueError(f"made with tokenizer {params.get('tokenizer')!r}, not {_VERSIONS[tokenizer]!r}")
        if (params.get("k1"), params.get("b"), params.get("method")) != (_K1, _B, _METHOD):
            raise ValueError("made with other BM25 parameters")
        docs = npy_load(read("bm25.docs.npy"))
        flat = npy_load(read("bm25.tokens.npy")).astype(np.int32, copy=False)
        offsets = npy_load(read("bm25.offsets.npy"))
        vocab = json.loads(read("bm25.vocab.json"))
        matrix = {name: npy_load(read(f"bm25.{name}.npy")) for name in ("data", "indices", "indptr")}
        matrix["num_docs"] = params["num_docs"]
        if (
            docs.dtype != _DOC_DTYPE
            or len(offsets) != len(docs) + 1
            or int(offsets[-1]) != len(flat)
            or (len(flat) and int(flat.max()) >= len(vocab))
            or len(matrix["indptr"]) != len(vocab) + 1
            or matrix["num_docs"] != len(docs)
        ):
            raise ValueError("BM25 files do not fit together")
        ids = docs["id"].astype(np.int64)
        return cls(ids, [h.decode("ascii") for h in docs["hash"]], vocab, flat, offsets, matrix, tokenizer)


# bm25s's defaults (Lucene's BM25), which every snapshot so far was made with
_K1, _B, _DELTA, _METHOD = 1.5, 0.75, 0.5, "lucene"


def bm25_matrix(flat: np.ndarray, offsets: np.ndarray, n_vocab: int) -> dict[str, Any]:
    """bm25s's Lucene score matrix of the documents flat[offsets[d]:offsets[d + 1]]: for each
    (document, token) pair, idf(token) * tf / (tf + k1 * (1 - b + b * |d| / avg|d|)), stored as CSC
    (one column per token id, documents ascending), float32, as `bm25s.BM25.index` stores it."""
    n_docs = len(offsets) - 1
    lengths = np.diff(offsets)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    # one entry per distinct (token, document), ordered by token and then document: CSC order
    pair, tf = np.unique(flat.astype(np.int64) * max(n_docs, 1) + doc, return_counts=True)
    token, doc = np.divmod(pair, max(n_docs, 1))
    df = np.bincount(token, minlength=n_vocab)
    # the idf in float64, stored in float32 (bm25s computes it with math.log into a float32 array)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    avg = float(lengths.mean()) if n_docs else 0.0
    norm = _K1 * ((1 - _B) + _B * lengths[doc] / avg) if avg else np.full(len(doc), _K1 * (1 - _B))
    data = (idf[token].astype(np.float64) * (tf / (tf + norm))).astype(np.float32)
    indptr = np.zeros(n_vocab + 1, dtype=np.int32)
    np.cumsum(df, out=indptr[1:])
    return {"data": data, "indices": doc.astype(np.int32), "indptr": indptr, "num_docs": n_docs}


def build_lexicon(texts: Mapping[int, str], tokenizer: str, base: Lexicon | None = None) -> Lexicon:
    """BM25 over `texts` in id order; a passage whose text hash is in `base` (made with the same
    tokenizer) keeps its token ids, the others are tokenized now. The vocabulary is base's, with
    new tokens appended and tokens no document uses any more dropped."""
    same = base is not None and base.tokenizer == tokenizer
    ids = np.array(sorted(texts), dtype=np.int64)
    hashes = [_hash(texts[int(i)]) for i in ids]
    vocab: list[str] = list(base.vocab) if base is not None and same else []
    index = {t: i for i, t in enumerate(vocab)}
    known = {h: d for d, h in enumerate(base.hashes)} if base is not None and same else {}
    parts: list[np.ndarray] = []
    for i, h in zip(ids, hashes):
        d = known.get(h)
        if d is not None and base is not None:
            parts.append(base.flat[base.offsets[d] : base.offsets[d + 1]])
            continue
        words = tokenize(texts[int(i)], tokenizer)
        parts.append(np.fromiter((index.setdefault(w, len(index)) for w in words), np.int32, len(words)))
    vocab += list(index)[len(vocab) :]
    flat = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    offsets = np.zeros(len(ids) + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    # drop the tokens of texts that are gone: the ids are renumbered in their old order
    used = np.zeros(len(vocab), bool)
    used[flat] = True
    if not used.all():
        renumber = np.cumsum(used, dtype=np.int64) - 1
        flat = renumber[flat].astype(np.int32)
        vocab = [t for t, u in zip(vocab, used.tolist()) if u]
    return Lexicon(ids, hashes, vocab, flat, offsets, bm25_matrix(flat, offsets, len(vocab)), tokenizer)
