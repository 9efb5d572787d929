"""What a build reports, and the build that has nothing to do.

A no-op `hoprag build` is decided here from the database's metadata and the library files' digest
alone, so it imports neither numpy nor FAISS nor an embedder: in a new process that is most of its
time (bench_store: "no-op rebuild").

Public API:
    BuildReport                      counts and seconds; .to_dict() is `hoprag build --json`
    report_lines(report_dict) -> list[str]   what `hoprag build` prints of it
    StageTimer                       seconds per stage
    ProgressFn, no_progress          callback(stage, done, total)
    unchanged_build(db, settings, files, embedder, llm_name, with_llm) -> BuildReport | None
    unchanged_library(db, settings, library, embedder, llm) -> (LibraryFiles, BuildReport | None)
                                            the library read once, and the same for its digest
    record_build(db, report)         the build's row in `builds`
    graph_signature(settings, fingerprint) -> str   what the edges depend on besides the data
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from storage.db import Database
from storage.models import BuildRow, PassageRow, utcnow

from ..embedders.base import Fingerprint
from ..settings import Settings
from ..store.edge_params import CITATION_RULES, EdgeParams
from ..store.views import last_report, stored_fingerprint

if TYPE_CHECKING:
    from ..library import LibraryFiles

__all__ = [
    "report_lines",
    "BuildReport",
    "StageTimer",
    "ProgressFn",
    "no_progress",
    "unchanged_build",
    "unchanged_library",
    "record_build",
    "graph_signature",
]

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


def graph_signature(settings: Settings, fp: Fingerprint) -> str:
    """What the graph's edges depend on besides the data: a change forces recomputation."""
    blob = json.dumps([fp.id, asdict(EdgeParams.from_settings(settings)), CITATION_RULES], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def record_build(db: Database, report: BuildReport) -> None:
    with db.session() as s:
        s.add(
            BuildRow(
                generation=report.generation,
                library=report.library,
                embedder=report.embedder,
                status="committed",
                report=report.to_dict(),
                seconds=report.seconds,
                finished_at=utcnow(),
            )
        )


def unchanged_build(
    db: Database,
    settings: Settings,
    files: str,
    embedder: str | None,
    llm_name: str,
    with_llm: bool,
    timer: StageTimer | None = None,
    as_of: dt.date | None = None,
) -> BuildReport | None:
    """The report of a build that has nothing to do, decided without parsing the library or
    loading the embedder: the same files as the last build, the same embedder, LLM and edge
    parameters, and (with an LLM) no passage still waiting for its questions; recorded like any
    build. None otherwise."""
    timer = timer or StageTimer()
    stored = stored_fingerprint(db)
    last = last_report(db, current=True)
    if (
        stored is None
        or last is None
        or db.get_meta("library_files") != files
        or (embedder is not None and embedder != stored.name)
        or db.get_meta("llm") != llm_name
        or db.get_meta("graph_signature") != graph_signature(settings, stored)
        or (as_of is not None and db.get_meta("as_of") != as_of.isoformat())
    ):
        return None
    if with_llm:
        with db.session() as s:
            waiting = s.scalar(
                select(func.count())
                .select_from(PassageRow)
                .where(PassageRow.embed_hash.is_not(None), PassageRow.questions_key.is_(None))
            )
        if waiting:
            return None
    timer.mark("read")
    keep = ("repealed", "pseudo_queries", "edges", "citations_unresolved", "documents", "passages", "library")
    report = BuildReport(
        **{k: last[k] for k in keep if k in last},
        unchanged=int(last.get("passages", 0)),
        embedder=stored.name,
        generation=int(db.get_meta("generation", 0)),
        skipped_files=list(last.get("skipped_files", [])),
        as_of=str(db.get_meta("as_of") or ""),
    )
    report.stages = timer.stages
    report.seconds = timer.total
    record_build(db, report)
    return report


def unchanged_library(
    db: Database,
    settings: Settings,
    library: str | Path,
    embedder: str | None,
    llm: str | None,
    as_of: str | dt.date | None = None,
) -> tuple[LibraryFiles, BuildReport | None]:
    """The library's files, read once (scan_library: a bad library raises LibraryError here), and
    unchanged_build for their digest, with the LLM the build would use (a bad LLM name fails here,
    as it does before any build)."""
    from ..library import scan_library
    from ..llm.runner import get_llm

    timer = StageTimer()
    llm_name = llm or db.get_meta("llm") or settings.llm
    with_llm = get_llm(llm_name, settings) is not None
    files = scan_library(library, settings.max_file_mb, settings.read_within)
    when = None
    if as_of is not None:
        from ..store.history import parse_date

        when = parse_date(as_of)
    return files, unchanged_build(db, settings, files.digest, embedder, llm_name, with_llm, timer, when)


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
