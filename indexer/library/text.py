"""Reader for laws kept as plain text or Markdown (.txt, .md), hard-wrapped or not.

Public API:
    read_text(path, raw, content_hash) -> Document
"""

from __future__ import annotations

from pathlib import Path

from ..passages import Document, LibraryError
from .structured import parse_law_lines

__all__ = ["read_text"]


def _decode(path: Path, raw: bytes) -> str:
    # Notepad's "Unicode" is UTF-16 with a BOM; older Taiwanese files are Big5 (CP950 is its superset).
    utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
    encodings = ("utf-16",) if utf16 else ("utf-8-sig", "cp950")
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LibraryError(path, f"not text in {' or '.join(encodings)} (save the file as UTF-8)")


def read_text(path: Path, raw: bytes, content_hash: str) -> Document:
    return parse_law_lines(_decode(path, raw).splitlines(), path=path, fmt="text", content_hash=content_hash)
