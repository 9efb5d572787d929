"""What a build records, and the build that has nothing to do.

A no-op `hoprag build` is decided here from the database's metadata and the library files' digest
alone, so it imports neither numpy nor FAISS nor an embedder: in a new process that is most of its
time (bench_store: "no-op rebuild").

Public API:
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
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from storage.db import Database
from storage.models import BuildRow, PassageRow, utcnow

from ..embedders.base import Fingerprint
from ..settings import Settings
from ..store.edge_params import CITATION_RULES, EdgeParams
from ..store.meta import stored_fingerprint
from ..store.views import last_report
from .report import BuildReport, StageTimer

if TYPE_CHECKING:
    from ..library import LibraryFiles

__all__ = ["unchanged_build", "unchanged_library", "record_build", "graph_signature"]


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
