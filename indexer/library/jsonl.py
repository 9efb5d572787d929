"""Reader for generic JSONL passages: one {"id", "text", "metadata"?} object per line.

Other top-level fields (STARD's law, article) are kept as metadata; `law` and `article`, if given,
label the passage and travel with its embedded text.

Public API:
    read_jsonl(path, raw, content_hash) -> Document
    json_objects(raw, fail, what) -> iterator of (line number, object)   shared with query files
    loads(text) -> Any          json.loads whose every failure is a ValueError saying what was wrong
                                (bad JSON, a number of thousands of digits, nesting past the stack)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..passages import Document, LibraryError, Passage, normalize_text

__all__ = ["read_jsonl", "json_objects", "loads"]


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError:  # int() of 100,000 digits: "Exceeds the limit (4300 digits) ..."
        raise ValueError(f"a number of more than {sys.get_int_max_str_digits()} digits") from None


def json_objects(raw: bytes, fail: Callable[[str, int | None], Exception], what: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of a UTF-8 JSONL file; `fail(reason, line)`
    makes the exception for a bad line, `what` says what an object must hold."""
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 ({exc})", None) from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except ValueError as exc:
            raise fail(f"invalid JSON ({exc})", lineno) from None
        if not isinstance(obj, dict):
            raise fail(f"expected an object with {what}", lineno)
        yield lineno, obj


def read_jsonl(path: Path, raw: bytes, content_hash: str) -> Document:
    def fail(reason: str, line: int | None) -> LibraryError:
        return LibraryError(path, f"line {line}: {reason}" if line else reason)

    passages: list[Passage] = []
    seen: dict[str, int] = {}
    for lineno, obj in json_objects(raw, fail, "id and text"):
        pid, text = obj.get("id"), obj.get("text")
        if pid is None or str(pid).strip() == "":
            raise LibraryError(path, f"line {lineno}: missing id")
        if not isinstance(text, str) or not text.strip():
            raise LibraryError(path, f"line {lineno}: missing or empty text")
        pid = str(pid).strip()
        if pid in seen:
            raise LibraryError(path, f"line {lineno}: id {pid!r} already used on line {seen[pid]}")
        seen[pid] = lineno
        meta = dict(obj.get("metadata") or {})
        meta.update({k: v for k, v in obj.items() if k not in ("id", "text", "metadata")})
        article = str(meta.get("article", "")).strip()
        if article:
            meta["article_label"] = article
        passages.append(
            Passage(
                key=pid,
                doc_key=path.stem,
                law=str(meta.get("law", "")).strip(),
                article=article,
                text=normalize_text(text),
                ordinal=len(passages),
                metadata=meta,
            )
        )
    if not passages:
        raise LibraryError(path, "no passages")
    return Document(
        doc_key=path.stem,
        name=path.stem,
        format="jsonl",
        source=str(path),
        content_hash=content_hash,
        passages=tuple(passages),
    )
