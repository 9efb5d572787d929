"""The parameters of HopRAG question edges, apart from the matcher (edges.py) so that what a
build's graph depends on can be compared without importing numpy (the no-op build checks it).

Public API:
    EDGE_KINDS                     ("question", "citation", "structural")
    CITATION_RULES                 the citation parser's version, part of the graph signature
    EdgeParams(top_k, threshold, max_per_passage, keyword_weight, exact_limit, candidates,
               generic_cosine, generic_passages)
        EdgeParams.from_settings(settings) -> EdgeParams
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EdgeParams", "EDGE_KINDS", "CITATION_RULES"]

EDGE_KINDS = ("question", "citation", "structural")
# The citation parser's rules, in the graph signature: a new version re-reads every citation on the
# next build, even of an unchanged library (2: legal roles).
CITATION_RULES = 2


@dataclass(frozen=True)
class EdgeParams:
    top_k: int = 2  # distinct target passages kept per outgoing question
    threshold: float = 0.5  # minimum score of an edge
    max_per_passage: int = 8  # distinct target passages of one source's question edges
    keyword_weight: float = 0.0  # 0: dense cosine only; w: (1-w)·cosine + w·keyword Jaccard
    exact_limit: int = 50_000  # above this many incoming questions, search an IVF index
    candidates: int = 32  # dense pool per outgoing question, re-scored before choosing
    generic_cosine: float = 0.95  # an incoming question this close to ...
    generic_passages: int = 3  # ... questions of this many other passages is generic (0: keep all)

    @classmethod
    def from_settings(cls, s) -> EdgeParams:
        return cls(
            top_k=s.edge_top_k,
            threshold=s.edge_threshold,
            max_per_passage=s.edge_max_per_passage,
            keyword_weight=s.edge_keyword_weight,
            candidates=s.edge_candidates,
            generic_cosine=s.edge_generic_cosine,
            generic_passages=s.edge_generic_passages,
        )
