"""How many threads numpy's BLAS and FAISS's OpenMP run: sized for one query at a time.

Public API:
    query_threads(n)             with-block: BLAS and OpenMP pools at n threads, then back (one query)
    limit_native_threads(n)      process-wide, for `hoprag serve` (0: leave every core)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["query_threads", "limit_native_threads"]


_found: tuple[int, Any] = (-1, None)  # (modules imported when the libraries were looked for, controller)


def _controller() -> Any:
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries, looked for again only after
    an import (a library loads with a module: FAISS's own OpenBLAS, torch's pools), not at every
    query; a view from before such an import would leave the new library's pool at every core."""
    global _found
    n = len(sys.modules)
    if _found[0] != n:
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController()
        _found = (len(sys.modules), controller)
    return _found[1]


@contextmanager
def query_threads(n: int) -> Iterator[None]:
    """One query's pools: numpy's and FAISS's BLAS and FAISS's OpenMP at n threads (at least one)
    for the block. A pool wider than one query needs leaves its threads spinning after each call,
    and beside any other busy process (a build, the local LLM, a test run) the next call waits for
    a core they hold (README's Benchmarks: dense p50 beside a busy neighbour, one thread against
    every core, bench/results/txtai-cpu-2core.json). Only the pools not already at n are touched,
    by a direct call each (threadpoolctl's limiter costs ~40 us a block); OpenMP's count is the
    calling thread's own, so a build in another thread keeps its pool."""
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
