"""Legal citation edges: which article cites which, read from the law texts without an LLM.

Taiwan statutes cite each other in a small set of fixed forms (第三十條, 第十五條之一, 第二十四條第一項第二款,
前條, 前二條, 次條, 本法第X條, 同法第X條, 民法第一百八十四條, 第X條至第Y條, 第X條、第Y條及第Z條, … 準用之).
They are found (syntax only: citation_parser.py, with what the citing sentence does with each in
citation_roles.py) and resolved to passage keys (`<pcode>:<article>`) in a Library
(citation_targets.py), giving the citation edges of the HopRAG graph. Callers import from here,
so that where a name is defined can change without them.

Public API (each documented where it is defined):
    Citation, find_citations(text, laws=()) -> list[Citation]          citation_parser.py
    ROLES                                                               citation_roles.py
    CitationEdge, CitationReport, law_aliases(name) -> tuple[str, ...],
    resolve_citations(library, progress=None) -> CitationReport        citation_targets.py
"""

from __future__ import annotations

from .citation_parser import Citation, find_citations
from .citation_roles import ROLES
from .citation_targets import CitationEdge, CitationReport, law_aliases, resolve_citations

__all__ = ["ROLES", "Citation", "CitationEdge", "CitationReport", "find_citations", "resolve_citations", "law_aliases"]
