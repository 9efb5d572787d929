"""What a query answers: one Hit per passage, and a hop search's list of them with what the walk
spent and followed.

Public API:
    Hit                  passage_id, key, law, article, score, text, label, chapters, generation,
                         and per mode: matched_question, path, sim, imp, cited, as_of; .to_dict()
    HopHits(list[Hit])   .to_dict(), .generation, .llm_calls, .llm_failures (0 in similarity mode),
                         .steps (every edge followed), .deadline_hit (llm mode ran out of its
                         deadline, or its caller went away)

The HTTP API's schema is made from these fields and their "doc" metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Hit", "HopHits"]


def _doc(text: str, default: Any = None) -> Any:
    """A field with its description (the HTTP API's schema is made from these)."""
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class Hit:
    passage_id: int = field(
        metadata={"doc": "the passage's row id (stable within this index); as of a date: the article version's id"}
    )
    key: str = field(metadata={"doc": "pcode:article, stable across renamings, e.g. N0030001:24"})
    law: str = field(metadata={"doc": "the law's name as the library has it now"})
    article: str = field(metadata={"doc": "article number, e.g. 24 or 15-1"})
    score: float = field(metadata={"doc": "the mode's ranking score (higher is better)"})
    text: str = field(metadata={"doc": "the article's text"})
    label: str = _doc("the article's label, e.g. 第15-1條", "")
    chapters: tuple[str, ...] = _doc("the chapters the article sits in", ())
    generation: int = _doc("the committed generation the hit comes from", 0)
    matched_question: str | None = _doc("questions mode: the incoming question matched")
    cited: bool = _doc("the query names this article (勞基法第24條)", False)
    sim: float | None = _doc("hop search: normalized relevance")
    imp: float | None = _doc("hop search: visits / most visits (an entry counts one, each arrival one more), in [0, 1]")
    path: tuple[dict, ...] | None = _doc("hop search: edges followed to reach it")
    as_of: str | None = _doc("searched as of a date: that date (the text and law name in force then)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chapters"] = list(self.chapters)
        if self.path is not None:
            d["path"] = list(self.path)
        return {k: v for k, v in d.items() if v is not None}


class HopHits(list):
    """hop_search's hits (a plain list to callers), with what the llm mode spent on them and every
    edge the walk followed (also to passages that did not make the top k)."""

    def __init__(
        self,
        hits: Iterable[Hit] = (),
        llm_calls: int = 0,
        llm_failures: int = 0,
        steps: Iterable[dict] = (),
        deadline_hit: bool = False,
        generation: int = 0,
    ):
        super().__init__(hits)
        self.llm_calls = llm_calls
        self.llm_failures = llm_failures
        self.steps = list(steps)
        self.deadline_hit = deadline_hit  # llm mode ran out of time: the rest chose by similarity
        self.generation = generation  # the committed generation the walk ran on

    def to_dict(self) -> dict:
        """The answer as `POST /hop-search` and `hoprag hop --json` give it."""
        return {
            "hits": [h.to_dict() for h in self],
            "generation": self.generation,
            "llm_calls": self.llm_calls,
            "llm_failures": self.llm_failures,
            "deadline_hit": self.deadline_hit,
            "steps": self.steps,
        }
