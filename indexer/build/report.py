"""What a build reports. Plain data and the words for it: the HTTP client reads reports through
this module and imports no database, no settings and no model (tests/test_client.py); what a
build records and the build that has nothing to do are in records.py.

Public API:
    BuildReport                      counts and seconds; .to_dict() is `hoprag build --json`
    report_lines(report_dict) -> list[str]   what `hoprag build` prints of it
    StageTimer                       seconds per stage
    ProgressFn, no_progress          callback(stage, done, total)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

__all__ = ["report_lines", "BuildReport", "StageTimer", "ProgressFn", "no_progress"]

ProgressFn = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class BuildReport:
    added: int = 0  # new passage keys
    changed: int = 0  # same key, different article text
    relabeled: int = 0  # same text, different law name or label (renamed law): re-embedded
    removed: int = 0  # keys gone from the library
    unchanged: int = 0
    repealed: int = 0  # passages that read only （刪除）: kept, not embedded
    embedded: int = 0  # texts sent to the embedder (passages and pseudo-queries)
    cache_hits: int = 0  # texts that needed a vector and found it in the cache
    llm_calls: int = 0  # passages sent to the LLM (retries not counted)
    llm_failures: int = 0  # passages whose call still failed: asked again next build
    llm_unreachable: bool = False  # the LLM stopped answering: the rest were recorded as failed, not asked
    pseudo_queries: int = 0  # questions in the index after the build
    edges: dict[str, int] = field(default_factory=dict)  # by kind
    citations_unresolved: int = 0
    seconds: float = 0.0
    generation: int = 0
    documents: int = 0
    passages: int = 0
    embedder: str = ""
    library: str = ""
    skipped_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. texts beyond the model's window
    stages: dict[str, float] = field(default_factory=dict)
    as_of: str = ""  # the date the build observed the library on (YYYY-MM-DD)
    history_only: bool = False  # older than the index's newest date: versions recorded, index as now kept

    def to_dict(self) -> dict:
        return asdict(self)


class StageTimer:
    """Seconds per build stage, for the report."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._last = self._t0

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round(self.stages.get(stage, 0.0) + now - self._last, 4)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._t0, 4)


def report_lines(r: dict) -> list[str]:
    """A build report (BuildReport.to_dict()) as the lines `hoprag build` prints."""
    out: list[str] = []
    if r.get("history_only"):
        out.append(
            f"history only: {r['passages']} passages of {r['as_of']} joined the history "
            f"({r['embedded']} texts embedded, {r['cache_hits']} cache hits, {r['seconds']:.2f} s); "
            f"the index as now (generation {r['generation']}) is unchanged"
        )
        return out
    out.append(
        f"generation {r['generation']}: {r['documents']} documents, {r['passages']} passages "
        f"({r['repealed']} repealed, not embedded) with {r['embedder']}"
    )
    out.append(
        f"  added {r['added']}, changed {r['changed']}, relabeled {r['relabeled']}, "
        f"removed {r['removed']}, unchanged {r['unchanged']}"
    )
    out.append(f"  embedded {r['embedded']} texts, {r['cache_hits']} cache hits, {r['seconds']:.2f} s")
    if r.get("llm_calls") or r.get("pseudo_queries"):
        out.append(
            f"  LLM calls {r['llm_calls']} ({r['llm_failures']} failed, retried next build), "
            f"{r['pseudo_queries']} pseudo-queries"
        )
    if r.get("llm_unreachable"):
        out.append(
            "  LLM unreachable: the build stopped asking and recorded the passages not yet asked as failed; "
            "the next build asks them"
        )
    out.append(
        "  edges: "
        + ", ".join(f"{k} {v}" for k, v in r.get("edges", {}).items())
        + f" ({r.get('citations_unresolved', 0)} citations unresolved)"
    )
    if r.get("skipped_files"):
        out.append(f"  skipped {len(r['skipped_files'])} files: " + "; ".join(r["skipped_files"][:5]))
    for w in r.get("warnings", [])[:20]:
        out.append(f"  warning: {w}")
    return out
