"""Chapter headings (編 > 章 > 節 > 款 > 目) and the path of headings an article sits under.

Public API:
    ChapterPath            .enter(heading) updates the path; .current is a tuple of headings
    heading_level(text)    0..4 for 編/章/節/款/目, None if the line is no chapter heading
    CHAPTER_HEADING        regex of a chapter heading line (shared with the text and PDF readers)
"""

from __future__ import annotations

import re

from ..text.numerals import NUMBER_CHARS

__all__ = ["ChapterPath", "heading_level", "CHAPTER_HEADING"]

_LEVELS = "編章節款目"
# Inserted chapters put 之一 after the level: 第 四 章之一; some sources write 第四之一章.
CHAPTER_HEADING = re.compile(
    rf"^\s*第\s*[{NUMBER_CHARS}]+(?:\s*之\s*[{NUMBER_CHARS}]+)?\s*([{_LEVELS}])(?:\s*之\s*[{NUMBER_CHARS}]+)?(?:\s+\S.*)?\s*$"
)


def heading_level(text: str) -> int | None:
    m = CHAPTER_HEADING.match(text)
    return _LEVELS.index(m.group(1)) if m else None


class ChapterPath:
    def __init__(self) -> None:
        self._path: list[tuple[int, str]] = []

    def enter(self, heading: str) -> None:
        heading = " ".join(heading.split())
        level = heading_level(heading)
        if level is None:
            # An unnumbered heading (附則, 罰則) replaces the innermost one rather than nesting.
            level = self._path[-1][0] if self._path else 0
        self._path = [(lv, h) for lv, h in self._path if lv < level] + [(level, heading)]

    @property
    def current(self) -> tuple[str, ...]:
        return tuple(h for _, h in self._path)
