"""Query sets for evaluation: a JSONL file read and checked line by line, and its fixed dev/test halves.

A line is {"id"?: str | int, "question" | "query": str, "relevant": [passage keys or ids]}; a bad
line stops the read with QueryFileError naming the file and the line (evaluate.py describes the set).

Public API:
    EvalQuery(id: str, question: str, relevant: tuple[str, ...])
    QueryFileError(path, reason, line=None)            a ValueError
    load_queries(path) -> list[EvalQuery]
    split_queries(queries, part: str) -> list[EvalQuery]   part in SPLITS: "all" | "dev" | "test"
    SPLITS
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..library.jsonl import json_objects

__all__ = ["EvalQuery", "QueryFileError", "load_queries", "split_queries", "SPLITS"]


@dataclass(frozen=True)
class EvalQuery:
    id: str
    question: str
    relevant: tuple[str, ...]


class QueryFileError(ValueError):
    """A query file could not be read. The message names the file (and the line)."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None):
        self.path, self.reason, self.line = str(path), reason, line
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


def load_queries(path: str | Path) -> list[EvalQuery]:
    """Read a JSONL query set ({question | query, relevant: [keys or ids], id?} per line)."""
    from storage.files import RegularFileError, read_regular

    path = Path(path)
    try:  # never a FIFO (it would hang the CLI) or a device; 64 MB is ~300k queries
        raw = read_regular(path, 64 * 2**20)
    except RegularFileError as exc:
        raise QueryFileError(path, exc.reason) from None
    queries: list[EvalQuery] = []
    seen: dict[str, int] = {}
    for lineno, obj in json_objects(
        raw, lambda reason, line: QueryFileError(path, reason, line), "question and relevant"
    ):
        text = obj.get("question", obj.get("query"))
        if not isinstance(text, str) or not text.strip():
            raise QueryFileError(path, "missing or empty question (or query)", lineno)
        rel = obj.get("relevant")
        if not isinstance(rel, list) or not rel:
            raise QueryFileError(path, "relevant must be a non-empty list of passage keys or ids", lineno)
        items: list[str] = []
        for r in rel:
            if isinstance(r, bool) or not isinstance(r, (str, int)) or not str(r).strip():
                raise QueryFileError(path, f"relevant item {r!r} is not a passage key or id", lineno)
            if str(r).strip() not in items:
                items.append(str(r).strip())
        qid = obj.get("id", lineno)
        if isinstance(qid, bool) or not isinstance(qid, (str, int)) or not str(qid).strip():
            raise QueryFileError(path, f"id {qid!r} must be a string or a number", lineno)
        qid = str(qid).strip()
        if qid in seen:
            raise QueryFileError(path, f"id {qid!r} already used on line {seen[qid]}", lineno)
        seen[qid] = lineno
        queries.append(EvalQuery(id=qid, question=text.strip(), relevant=tuple(items)))
    if not queries:
        raise QueryFileError(path, "no queries")
    return queries


SPLITS = ("all", "dev", "test")


def split_queries(queries: Sequence[EvalQuery], part: str) -> list[EvalQuery]:
    """The dev or test half of a query set. A query's half depends on its id alone (the parity of
    the first byte of sha256(id)): fixed across runs, machines and orderings of the file, and
    about half of any query set each."""
    if part not in SPLITS:
        raise ValueError(f"unknown split {part!r}: {', '.join(SPLITS)}")
    if part == "all":
        return list(queries)
    want = 0 if part == "dev" else 1
    return [q for q in queries if hashlib.sha256(q.id.encode("utf-8")).digest()[0] % 2 == want]
