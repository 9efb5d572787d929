"""How many threads numpy's BLAS and FAISS's OpenMP run: sized for one query at a time.

Public API:
    blas_threads(n)              with-block: BLAS at n threads, then back (a query's scan, its embed)
    limit_native_threads(n)      process-wide, for `hoprag serve` (0: leave every core)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["blas_threads", "limit_native_threads"]


@lru_cache(maxsize=1)
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finds the BLAS libraries once, not at every query


def blas_threads(n: int) -> Any:
    """A with-block at n BLAS threads. One query's GEMVs gain from a second core when it is free
    (the library scan: 0.35 against 0.72 ms at 6,700 × 512 with cold caches; a short text's
    embed: 1.7 against 2.2 ms); the offline embedder runs the process at one between blocks."""
    return _controller().limit(limits=max(1, n), user_api="blas")


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
