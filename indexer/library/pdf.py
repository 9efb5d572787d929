"""Reader for laws as PDF (the 全國法規資料庫 printouts, or any PDF with a text layer).

Public API:
    read_pdf(path, raw, content_hash) -> Document
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from pypdf import PdfReader

from ..passages import Document, LibraryError
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


def read_pdf(path: Path, raw: bytes, content_hash: str) -> Document:
    try:
        reader = PdfReader(io.BytesIO(raw))
        # Many PDFs are encrypted only against editing and open with the empty password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise LibraryError(path, "encrypted PDF (needs a password); save an unencrypted copy")
        pages = [_page_lines(page.extract_text() or "") for page in reader.pages]
    except LibraryError:
        raise
    except Exception as exc:  # pypdf fails on broken files with all kinds of errors
        raise LibraryError(path, f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    if not any(pages):
        raise LibraryError(path, "no text layer (scanned PDF?); run OCR first")
    # A textless page among text pages is most likely a scanned one: its articles would vanish.
    blank = [str(i + 1) for i, lines in enumerate(pages[:-1]) if not lines]
    if blank:
        raise LibraryError(path, f"page(s) {', '.join(blank)} have no text layer (scanned?); run OCR first")
    return parse_law_lines([line for lines in pages for line in lines], path=path, fmt="pdf", content_hash=content_hash)
