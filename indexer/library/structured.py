"""The parser shared by the PDF and text readers: a law as printed, line by line, into a Document.

A printed law (全國法規資料庫 PDF, a .txt or .md copy) is hard-wrapped: the parser finds the
header (法規名稱：…, 修正日期：…, notes), chapter headings (第 一 章 總則, 第 四 章之一 …) and article
headings (第 24 條, 第 15-1 條, 第十五條之一, ## 第 24 條), and re-joins each article's lines into
paragraphs (項, marked by margin numbers `1   …`) and lines (款 一、…, 目 （一）…).

Public API:
    parse_law_lines(lines, *, path, fmt, content_hash, name=None) -> Document
    ARTICLE_HEADING     regex of a line that is only an article heading
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..passages import Document, LibraryError, Passage, normalize_text, passage_key
from ..text.numerals import NUMBER_CHARS, article_number
from .chapters import CHAPTER_HEADING, ChapterPath

__all__ = ["parse_law_lines", "ARTICLE_HEADING"]

_N = f"[{NUMBER_CHARS}]+"
ARTICLE_HEADING = re.compile(rf"^(第\s*{_N}\s*(?:(?:之|[-－])\s*{_N}\s*)?條(?:\s*之\s*{_N})?)$")
_MARKDOWN = re.compile(r"^#{1,6}\s*")
_MARGIN = re.compile(r"^(\d+)\s{2,}(\S.*)$")
# 款 (一、), 目 (（一）) and sub-items (1.) start a line of their own; "1.5 倍" does not.
_ITEM = re.compile(r"^(?:[一二三四五六七八九十百]+、|[（(][一二三四五六七八九十百]+[)）]|\d+\.(?!\d))")
_KEY_VALUE = re.compile(r"^([^\s：:]{1,12})\s*[：:]\s*(.*)$")
_PCODE = re.compile(r"pcode\s*[=:：]\s*([A-Za-z0-9]+)", re.IGNORECASE)


def _join(left: str, right: str) -> str:
    # Chinese wraps anywhere and takes no space; only a wrap inside ASCII text ate one.
    a, b = left[-1:], right[:1]
    return f"{left} {right}" if a.isascii() and a.isalnum() and b.isascii() and b.isalnum() else left + right


def _article(line: str) -> str | None:
    m = ARTICLE_HEADING.match(_MARKDOWN.sub("", line.strip()).strip())
    return m.group(1) if m else None


def _chapter_like(raw: str, unnumbered: bool = True) -> bool:
    line = _MARKDOWN.sub("", raw.strip()).strip()
    if CHAPTER_HEADING.match(line):
        return True
    # Unnumbered headings (附則) are set apart only by layout: a Markdown # or the PDF's indent.
    marked = raw.lstrip().startswith("#") or raw[:1].isspace()
    return (
        unnumbered
        and marked
        and bool(line)
        and len(line) <= 30
        and not re.search(r"[。，；：]", line)
        and not _ITEM.match(line)
        and not _MARGIN.match(line)
    )


def _is_heading(raw: str | None) -> bool:
    return raw is None or _article(raw) is not None or _chapter_like(raw)


def _header(lines: list[str], fmt: str) -> tuple[dict[str, str], str | None]:
    """Metadata from the lines above the first heading, and the title line of a text file."""
    meta: dict[str, str] = {}
    notes: list[str] = []
    title = None
    for i, raw in enumerate(lines):
        line = _MARKDOWN.sub("", raw.strip()).strip()
        kv = _KEY_VALUE.match(line)
        if kv and not line.lower().startswith(("http:", "https:")):
            meta[kv.group(1)] = kv.group(2).strip()
        elif i == 0 and fmt == "text":
            title = line
        elif notes and not _ITEM.match(line):
            notes[-1] = _join(notes[-1], line)
        else:
            notes.append(line)
    if notes:
        meta["附註"] = "\n".join(notes)
    return meta, title


def parse_law_lines(
    lines: Sequence[str], *, path: Path, fmt: str, content_hash: str, name: str | None = None
) -> Document:
    """Parse a printed law; `name` overrides the name found in the text (法規名稱, title line)."""
    lines = [raw.rstrip() for raw in lines]
    header: list[str] = []
    chapters = ChapterPath()
    # (number, heading as printed, chapters, paragraphs as lists of lines)
    articles: list[tuple[str, str, tuple[str, ...], list[list[str]]]] = []
    seen: dict[str, str] = {}
    broken = False  # a blank line ends the paragraph (Markdown and plain text use them)
    following: list[int | None] = [None] * len(lines)  # index of the next non-blank line
    for i in range(len(lines) - 2, -1, -1):
        following[i] = i + 1 if lines[i + 1].strip() else following[i + 1]
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            broken = True
            continue
        heading = _article(raw)
        if heading is not None:
            try:
                number = article_number(heading)
            except ValueError:
                raise LibraryError(path, f"unreadable article number {heading!r}") from None
            if number in seen:
                raise LibraryError(path, f"article {heading} appears twice (as {seen[number]} and {heading})")
            seen[number] = heading
            articles.append((number, heading, chapters.current, []))
            continue
        # A wrapped sentence can start with 第三章 …; a real heading is followed by another heading.
        # Before the first article an unnumbered "heading" is the title (# 著作權法), not a chapter.
        after = following[i]
        if _chapter_like(raw, unnumbered=bool(articles)) and _is_heading(None if after is None else lines[after]):
            chapters.enter(_MARKDOWN.sub("", line))
            continue
        if not articles:
            header.append(raw)
            continue
        paras = articles[-1][3]
        margin = _MARGIN.match(line)
        if margin and int(margin.group(1)) == len(paras) + 1:
            paras.append([margin.group(2).strip()])
        elif not paras:
            paras.append([line])
        elif _ITEM.match(line):
            paras[-1].append(line)
        elif broken:
            paras.append([line])
        else:
            paras[-1][-1] = _join(paras[-1][-1], line)
        broken = False

    if not articles:
        raise LibraryError(path, "no article headings (第 N 條) found")
    meta, title = _header(header, fmt)
    pcode = next((m.group(1) for h in header if (m := _PCODE.search(h))), None)
    doc_key = pcode or path.stem
    law = name or meta.get("法規名稱") or title or path.stem
    passages: list[Passage] = []
    for number, heading, chapter_path, paras in articles:
        paragraphs = tuple(normalize_text("\n".join(p)) for p in paras)
        text = normalize_text("\n".join(paragraphs))
        if not text:
            raise LibraryError(path, f"article {heading} has no text")
        passages.append(
            Passage(
                key=passage_key(doc_key, number),
                doc_key=doc_key,
                law=law,
                article=number,
                text=text,
                chapters=chapter_path,
                paragraphs=paragraphs,
                ordinal=len(passages),
            )
        )
    return Document(
        doc_key=doc_key,
        name=law,
        format=fmt,
        source=str(path),
        content_hash=content_hash,
        passages=tuple(passages),
        metadata=meta,
    )
