"""Reader for laws as PDF (the 全國法規資料庫 printouts, or any PDF with a text layer).

Public API:
    read_pdf(path, raw, content_hash) -> Document     within PDF_LIMITS (indexer.library.limits):
                                                      stream size, pages, seconds; a named error past them
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pypdf.filters
from pypdf import PdfReader
from pypdf.errors import LimitReachedError

from ..passages import Document, LibraryError
from .limits import PDF_LIMITS
from .structured import parse_law_lines

__all__ = ["read_pdf"]

# Page numbers printed as a header or footer; only a page's first and last lines are checked, so
# a number inside the law text is never taken for one.
_PAGE_NUMBER = re.compile(
    r"^\s*(?:第\s*\d+\s*頁(?:\s*[,，/／]?\s*共\s*\d+\s*頁)?|共\s*\d+\s*頁|[-–]?\s*\d+\s*[-–]?|\d+\s*/\s*\d+"
    r"|(?:Page|p\.)\s*\d+(?:\s*(?:of|/)\s*\d+)?)\s*$",
    re.IGNORECASE,
)


def _page_lines(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    while lines and _PAGE_NUMBER.match(lines[0]):
        lines.pop(0)
    while lines and _PAGE_NUMBER.match(lines[-1]):
        lines.pop()
    return lines


def _cap_streams(max_bytes: int) -> None:
    # pypdf's own caps on what one stream may inflate to (75 MB each by default): process-wide
    # settings of the library, set before each read from the limits of the build doing it
    for name in (
        "ZLIB_MAX_OUTPUT_LENGTH",
        "LZW_MAX_OUTPUT_LENGTH",
        "RUN_LENGTH_MAX_OUTPUT_LENGTH",
        "MAX_DECLARED_STREAM_LENGTH",
        "MAX_ARRAY_BASED_STREAM_OUTPUT_LENGTH",
    ):
        if hasattr(pypdf.filters, name):
            setattr(pypdf.filters, name, max_bytes)


def read_pdf(path: Path, raw: bytes, content_hash: str) -> Document:
    limits = PDF_LIMITS.get()
    _cap_streams(int(limits.max_stream_mb * 2**20))
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
            pages.append(_page_lines(page.extract_text() or ""))
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
