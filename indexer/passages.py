"""The domain objects every stage passes along: Library → Document → Passage.

Public API:
    Passage, Document, Library      frozen records produced by the readers
    normalize_text(text) -> str     the one normalization applied before hashing and embedding
    text_hash(text) -> str          sha256 of the normalized text (cache and diff key)
    is_repealed(text) -> bool       an article that reads only （刪除）
    split_paragraphs(lines) -> tuple[str, ...]   項 from article lines, 款/目 kept inside their 項
    LibraryError                    a file that cannot be read; names the file
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import LibraryError

__all__ = [
    "Passage",
    "Document",
    "Library",
    "LibraryError",
    "normalize_text",
    "text_hash",
    "embed_text",
    "is_repealed",
    "split_paragraphs",
    "passage_key",
]


def normalize_text(text: str) -> str:
    # CRLF and trailing blanks come and go between releases of the same law; they must not
    # make an unchanged article look changed (and cost a re-embedding).
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def text_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


_REPEALED = re.compile(r"^[（(]\s*刪除\s*[)）]\s*$")


def is_repealed(text: str) -> bool:
    return bool(_REPEALED.match(text.strip()))


# 款 (一、), 目 (（一）) and 之 items continue the paragraph (項) above them.
_ITEM = re.compile(r"^\s*(?:[一二三四五六七八九十百]+、|[（(][一二三四五六七八九十百]+[)）]|\d+\.)")


def split_paragraphs(lines: Iterable[str]) -> tuple[str, ...]:
    paragraphs: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if paragraphs and _ITEM.match(line):
            paragraphs[-1] += "\n" + line
        else:
            paragraphs.append(line)
    return tuple(paragraphs)


def embed_text(law: str, label: str, text: str) -> str:
    """The text that is embedded for a passage."""
    # The law name and article travel with the text: a query for 勞基法第24條 and a passage
    # whose body never names its own law must still meet. This is also why a renamed law's
    # articles are re-embedded.
    head = " ".join(p for p in (law, label) if p)
    return normalize_text(f"{head}\n{text}" if head else text)


def passage_key(doc_key: str, article: str) -> str:
    return f"{doc_key}:{article}"


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: an article (條) of a law, or one generic JSONL passage."""

    key: str  # stable id: "<pcode>:<article>" or the JSONL id
    doc_key: str  # pcode, else the file stem
    law: str  # law name as of this reading (may change; the key does not)
    article: str  # "24", "15-1"; "" when the source has none
    text: str  # normalized article text
    chapters: tuple[str, ...] = ()
    paragraphs: tuple[str, ...] = ()
    ordinal: int = 0  # position in the document
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def repealed(self) -> bool:
        return is_repealed(self.text)

    @property
    def article_label(self) -> str:
        """Human label: 第24條, 第15-1條; or the source's own label for JSONL passages."""
        if "article_label" in self.metadata:
            return str(self.metadata["article_label"])
        return f"第{self.article}條" if self.article else ""

    @property
    def embed_text(self) -> str:
        return embed_text(self.law, self.article_label, self.text)


@dataclass(frozen=True)
class Document:
    """One file of a library: a law (JSON, PDF, text) or a JSONL collection of passages."""

    doc_key: str
    name: str
    format: str  # "moj-json" | "pdf" | "text" | "jsonl"
    source: str  # path of the file it was read from
    content_hash: str  # sha256 of the file bytes
    passages: tuple[Passage, ...]
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Library:
    root: str
    documents: tuple[Document, ...]
    skipped: tuple[str, ...] = ()  # "path (reason)": README, LICENSE, links out of the library

    @property
    def passages(self) -> list[Passage]:
        return [p for d in self.documents for p in d.passages]
