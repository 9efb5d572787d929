"""What a passage reference names: one rule for the CLI and the HTTP API.

    found = resolve_passage("24", lambda p: index.passage(p))        # id 24, else the key "24"

Public API:
    passage_refs(ref, as_of=None) -> list[int | str]    what `ref` may name, in the order tried
    resolve_passage(ref, find, as_of=None) -> T         find's answer for the first of them it knows;
                                                        KeyError(ref) when it knows none

A ref of ASCII digits is a numeric id first, then a key: a JSONL library's keys may be all digits.
As of a date it is a key only: ids name the rows of today's passages, not the versions of a date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

__all__ = ["passage_refs", "resolve_passage"]

T = TypeVar("T")

MAX_PASSAGE_ID = 2**63 - 1  # SQLite integers: a longer digit string can only be a key


def passage_refs(ref: str, as_of: date | str | None = None) -> list[int | str]:
    """The id and the key `ref` may name, the id first; as of a date, the key alone."""
    # the length test first: int() refuses strings of more than 4300 digits; isascii: str.isdigit
    # also accepts digits such as '²' that int() refuses
    if as_of is None and ref.isascii() and ref.isdigit() and len(ref) <= 19 and int(ref) <= MAX_PASSAGE_ID:
        return [int(ref), ref]
    return [ref]


def resolve_passage(ref: str, find: Callable[[int | str], T | None], as_of: date | str | None = None) -> T:
    """find(candidate) for each of passage_refs(ref, as_of) until one answers: None or KeyError from
    find means it names no passage. KeyError(ref) when none does."""
    for candidate in passage_refs(ref, as_of):
        try:
            found = find(candidate)
        except KeyError:
            continue
        if found is not None:
            return found
    raise KeyError(ref)
