"""Reader for laws as PDF (the 全國法規資料庫 printouts, or any PDF with a text layer).

Public API:
    read_pdf(path, raw, content_hash) -> Document     within PDF_LIMITS (indexer.library.limits):
                                                      stream size, pages, seconds; a named error past them
    page_lines(text) -> list[str]                     a page's lines without its header and page number
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pypdf
import pypdf.filters
from pypdf import PdfReader
from pypdf.errors import LimitReachedError

from ..passages import Document, LibraryError
from .limits import PDF_LIMITS, PdfLimits
from .structured import parse_law_lines

__all__ = ["read_pdf"]

# Page numbers printed as a header or footer; only a page's first and last lines are checked, so
# a number inside the law text is never taken for one.
_PAGE_NUMBER = re.compile(
    r"^\s*(?:第\s*\d+\s*頁(?:\s*[,，/／]?\s*共\s*\d+\s*頁)?|共\s*\d+\s*頁|[-–]?\s*\d+\s*[-–]?|\d+\s*/\s*\d+"
    r"|(?:Page|p\.)\s*\d+(?:\s*(?:of|/)\s*\d+)?)\s*$",
    re.IGNORECASE,
)


def page_lines(text: str) -> list[str]:
    """A printed page's non-empty lines without its running header and page number."""
    lines = [line for line in text.splitlines() if line.strip()]
    while lines and _PAGE_NUMBER.match(lines[0]):
        lines.pop(0)
    while lines and _PAGE_NUMBER.match(lines[-1]):
        lines.pop()
    return lines


_CAPPED = (  # pypdf 7's names of what one stream may inflate to (75 MB each by default)
    "maximum_declared_stream_length",
    "array_based_stream_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "zlib_maximum_output_length",
    "brotli_maximum_output_length",
)


def _capped_streams(max_bytes: int) -> AbstractContextManager:
    """pypdf's own caps on inflating, at max_bytes for the reads inside: its configuration (a
    context variable) from pypdf 7 on, its module constants before."""
    if hasattr(pypdf, "apply_configuration"):
        known = {f.name for f in dataclasses.fields(pypdf.Configuration)}
        apply: Any = pypdf.apply_configuration
        return apply(None, **{name: max_bytes for name in _CAPPED if name in known})
    for name in ("ZLIB_MAX_OUTPUT_LENGTH", "LZW_MAX_OUTPUT_LENGTH", "RUN_LENGTH_MAX_OUTPUT_LENGTH"):
        if hasattr(pypdf.filters, name):
            setattr(pypdf.filters, name, max_bytes)
    return contextlib.nullcontext()


def read_pdf(path: Path, raw: bytes, content_hash: str) -> Document:
    limits = PDF_LIMITS.get()
    with _capped_streams(int(limits.max_stream_mb * 2**20)):
        return _read_pdf(path, raw, content_hash, limits)


def _read_pdf(path: Path, raw: bytes, content_hash: str, limits: PdfLimits) -> Document:
    started = time.monotonic()
    try:
        reader = PdfReader(io.BytesIO(raw))
        # Many PDFs are encrypted only against editing and open with the empty password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise LibraryError(path, "encrypted PDF (needs a password); save an unencrypted copy")
        if len(reader.pages) > limits.max_pages:
            raise LibraryError(
                path, f"{len(reader.pages)} pages, over the limit of {limits.max_pages} (HOPRAG_PDF_MAX_PAGES)"
            )
        pages = []
        for page in reader.pages:
            contents = page.get_contents()
            if contents is not None:
                contents.get_data()  # inflated here, within the caps: extract_text would hide a cap as ""
            pages.append(page_lines(page.extract_text() or ""))
            if time.monotonic() - started > limits.max_seconds:
                raise LibraryError(
                    path, f"reading its text took over {limits.max_seconds:g} s (HOPRAG_PDF_MAX_SECONDS)"
                )
    except LibraryError:
        raise
    except LimitReachedError:
        raise LibraryError(
            path,
            f"a stream inflates to more than {limits.max_stream_mb:g} MB (HOPRAG_PDF_MAX_STREAM_MB): "
            "a decompression bomb, or no law printout",
        ) from None
    except Exception as exc:  # pypdf fails on broken files with all kinds of errors
        raise LibraryError(path, f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    if not any(pages):
        raise LibraryError(path, "no text layer (scanned PDF?); run OCR first")
    # A textless page among text pages is most likely a scanned one: its articles would vanish.
    blank = [str(i + 1) for i, lines in enumerate(pages[:-1]) if not lines]
    if blank:
        raise LibraryError(path, f"page(s) {', '.join(blank)} have no text layer (scanned?); run OCR first")
    return parse_law_lines([line for lines in pages for line in lines], path=path, fmt="pdf", content_hash=content_hash)
