"""Reader for the 全國法規資料庫 JSON (one law per file, keys in Chinese).

Public API:
    looks_like_moj_json(data) -> bool
    read_moj_json(path, raw) -> Document
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ..passages import Document, LibraryError, Passage, normalize_text, passage_key, split_paragraphs
from ..text.numerals import article_number
from .chapters import ChapterPath
from .jsonl import loads

__all__ = ["looks_like_moj_json", "read_moj_json"]


def looks_like_moj_json(data: object) -> bool:
    return isinstance(data, dict) and "法規名稱" in data and "法規內容" in data


def _pcode(data: dict, path: Path) -> str:
    url = data.get("法規網址") or ""
    codes = parse_qs(urlparse(url).query).get("pcode") or parse_qs(urlparse(url).query).get("PCODE")
    if codes and re.fullmatch(r"[A-Za-z0-9]+", codes[0]):
        return codes[0]
    return path.stem


def read_moj_json(path: Path, raw: bytes, content_hash: str) -> Document:
    try:
        data = loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise LibraryError(path, f"not valid UTF-8 JSON ({exc})") from None
    except ValueError as exc:
        raise LibraryError(path, f"not valid UTF-8 JSON ({exc})") from None
    if not looks_like_moj_json(data):
        raise LibraryError(path, "JSON without the keys 法規名稱 and 法規內容")
    name = str(data["法規名稱"]).strip()
    if not name:
        raise LibraryError(path, "法規名稱 is empty")
    items = data["法規內容"]
    if not isinstance(items, list):
        raise LibraryError(path, "法規內容 is not a list")
    doc_key = _pcode(data, path)

    chapters = ChapterPath()
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise LibraryError(path, f"法規內容[{i}] is not an object")
        if "編章節" in item:
            chapters.enter(str(item["編章節"]))
            continue
        if "條號" not in item:
            continue  # 附件 and other non-article entries carry no text of their own
        try:
            number = article_number(str(item["條號"]))
        except ValueError:
            raise LibraryError(path, f"法規內容[{i}]: unreadable article number {item['條號']!r}") from None
        if number in seen:
            raise LibraryError(path, f"article {item['條號']} appears twice (entries {seen[number]} and {i})")
        seen[number] = i
        text = normalize_text(str(item.get("條文內容", "")))
        passages.append(
            Passage(
                key=passage_key(doc_key, number),
                doc_key=doc_key,
                law=name,
                article=number,
                text=text,
                chapters=chapters.current,
                paragraphs=split_paragraphs(text.split("\n")),
                ordinal=len(passages),
            )
        )
    if not passages:
        raise LibraryError(path, "no articles (條號) in 法規內容")
    meta = {
        k: data.get(k)
        for k in ("法規性質", "法規類別", "最新異動日期", "生效日期", "廢止註記", "英文法規名稱", "法規網址")
        if data.get(k)
    }
    return Document(
        doc_key=doc_key,
        name=name,
        format="moj-json",
        source=str(path),
        content_hash=content_hash,
        passages=tuple(passages),
        metadata=meta,
    )
