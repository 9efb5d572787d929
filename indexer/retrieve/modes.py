"""The values a query chooses from, in a module without imports: the CLI reads them for its
`--help` without loading numpy or FAISS.

Public API:
    MODES        search modes: dense, questions, hybrid, bm25
    HOP_MODES    hop search modes: similarity, llm
    DIRECTIONS   which edges of a passage `neighbors` follows: out, in, both
"""

from __future__ import annotations

__all__ = ["MODES", "HOP_MODES", "DIRECTIONS"]

MODES = ("dense", "questions", "hybrid", "bm25")
HOP_MODES = ("similarity", "llm")
DIRECTIONS = ("out", "in", "both")
