"""How many threads numpy's BLAS and FAISS's OpenMP run: sized for one query at a time.

Public API:
    query_threads(n)             with-block: BLAS and OpenMP pools at n threads, then back (one query)
    limit_native_threads(n)      process-wide, for `hoprag serve` (0: leave every core)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

__all__ = ["query_threads", "limit_native_threads"]


@lru_cache(maxsize=1)
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finds the BLAS libraries once, not at every query


@contextmanager
def query_threads(n: int) -> Iterator[None]:
    """One query's pools: numpy's and FAISS's BLAS and FAISS's OpenMP at n threads (at least one)
    for the block. A pool wider than one query needs leaves its threads spinning after each call,
    and beside any other busy process (a build, the local LLM, a test run) the next call waits for
    a core they hold: dense p50 9.0 ms (mean 44) at 2 threads against 5.5 (5.6) at one on the
    2-core machine beside a busy neighbour. Only the pools not already at n are touched, by a
    direct call each (threadpoolctl's limiter costs ~40 us a block); OpenMP's count is the calling
    thread's own, so a build in another thread keeps its pool."""
    n = max(1, n)
    libs = [lib for lib in _controller().lib_controllers if lib.num_threads != n]
    before = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(n)
    try:
        yield
    finally:
        for lib, b in zip(libs, before):
            lib.set_num_threads(b)


def limit_native_threads(threads: int) -> Any:
    """Size FAISS's OpenMP pool and numpy's BLAS pools for serving (0: leave them at every core).
    One query's searches are too small to gain from more threads, and beside a busy neighbour (the
    local LLM on the same cores) a pool of every core waits on the slowest: hybrid search's p50
    doubled (32 against 14 ms on 2 cores, STARD). Process-wide, hence here and not in create_app.
    Returns threadpoolctl's limiter (restore_original_limits() undoes it), or None."""
    if not threads:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)
