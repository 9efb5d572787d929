"""Limits on reading one PDF: a 157 KB file whose 4 streams inflate to 40 MB each took 38 s and
1.6 GB to refuse. The build sets them from Settings for the files it reads (a context variable:
the limits of one build never leak into another thread's).

Public API:
    PdfLimits(max_stream_mb=16, max_pages=2000, max_seconds=60)
    PdfLimits.from_settings(settings)
    PDF_LIMITS                  ContextVar[PdfLimits], read by the PDF reader
    pdf_limits(limits)          context manager: these limits for the reads inside it
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["PDF_LIMITS", "PdfLimits", "pdf_limits"]


@dataclass(frozen=True)
class PdfLimits:
    max_stream_mb: float = 16  # one decompressed stream; a statute's page stream is a few KB
    max_pages: int = 2000  # 民法's printout has under 200
    max_seconds: float = 60  # text extraction of one file

    @classmethod
    def from_settings(cls, s) -> PdfLimits:
        return cls(s.pdf_max_stream_mb, s.pdf_max_pages, s.pdf_max_seconds)


PDF_LIMITS: ContextVar[PdfLimits] = ContextVar("PDF_LIMITS", default=PdfLimits())  # noqa: B039 (frozen)


@contextmanager
def pdf_limits(limits: PdfLimits) -> Iterator[None]:
    token = PDF_LIMITS.set(limits)
    try:
        yield
    finally:
        PDF_LIMITS.reset(token)
