"""Point-in-time law: every version of an article, the date each build saw it, and the law as it
stood on any date.

A build is dated (`--as-of`, else the newest 最新異動日期 its law files carry, else today). It
records one observation per article key: the version it read, or nothing for a key the index knew
that its library lacks. A version is in force from the first date it was observed until the next
observation of something else. Observations, not intervals, are stored, so builds may arrive in any
order (2024 first, then 2022) and the history comes out the same; a later correction of a date
replaces that date's observations.

Old versions keep their vectors in the embedding cache (keyed by text hash, like every vector),
so an as-of query never embeds an article.

Public API:
    Version                              key, law, article, label, text, embed_hash, valid_from, valid_to
    build_date(library, as_of=None) -> date
    parse_date(text) -> date             YYYY-MM-DD or YYYYMMDD, else QueryError (a ValueError)
    parse_build_date(text) -> date       the same, refusing a date after horizon()
    horizon() -> date                    tomorrow (UTC): no build is dated, no answer shows, after it
    record(db, session, passages, embed_hashes, as_of)   one build's observations (in its transaction)
    seed_from_current(db, session)       an index made before versions: its passages observed once
    latest_date(session) -> date | None  the newest observation: the law "as now"
    history(session, key) -> list[Version]
    state_at(session, as_of) -> {key: Version}   the articles in force on that date (repealed ones too)
    diff(session, date_from, date_to, law=None) -> dict   added, changed, removed, renamed
    require_history(session, when)        QueryError for a date before the history starts (or none)
    history_of(db, key), diff_of(db, date_from, date_to, law), version_of(db, key, as_of)   the same
                                         for the facade, as JSON-ready dicts, in their own transaction
                                         (history_of: each later version with `changes`, its diff)
    diff_segments(old, new) -> [(op, text)]   a character-level diff: "=", "-", "+" runs

The dates (parse_date, parse_build_date, horizon, build_date) live in history_dates.py and stay
importable from here.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import ArticleVersionRow, BuildRow, DocumentRow, ObservationRow, PassageRow

from ..errors import QueryError
from ..passages import Passage
from .history_dates import FUTURE_SKEW, amendment_dates, build_date, horizon, parse_build_date, parse_date
from .passage_rows import passage_of, version_row

__all__ = [
    "Version",
    "build_date",
    "parse_date",
    "parse_build_date",
    "horizon",
    "FUTURE_SKEW",
    "record",
    "seed_from_current",
    "latest_date",
    "history",
    "state_at",
    "diff",
    "history_of",
    "diff_of",
    "version_of",
    "diff_segments",
]

_CHUNK = 500  # keys per IN (...): SQLite's variable limit is far above, PostgreSQL's too


@dataclass(frozen=True)
class Version:
    key: str
    doc_key: str
    law: str
    article: str
    article_label: str
    text: str
    embed_hash: str | None  # None: repealed （刪除）
    valid_from: dt.date
    valid_to: dt.date | None  # exclusive; None: still in force as far as the index knows
    chapters: tuple[str, ...] = ()
    ordinal: int = 0
    version_id: int = 0

    @property
    def repealed(self) -> bool:
        return self.embed_hash is None

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["version_id"]  # a row id: differs between indexes with the same history
        d["valid_from"] = self.valid_from.isoformat()
        d["valid_to"] = self.valid_to.isoformat() if self.valid_to else None
        d["chapters"] = list(self.chapters)
        d["label"] = self.article_label  # as a passage's dict has it
        d["repealed"] = self.repealed
        return d


def _chunks(items: Sequence, n: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def record(
    db: Database,
    s: Session,
    passages: Sequence[Passage],
    embed_hashes: Mapping[str, str | None],
    as_of: dt.date,
) -> dict[str, int]:
    """Observe `passages` on `as_of` (and every other known key as absent); returns counts."""
    rows = {p.key: version_row(p, embed_hashes.get(p.key)) for p in passages}
    # the versions already stored are read in one pass; only new ones are written (an amendment
    # adds a few hundred of the library's thousands)
    ids: dict[tuple[str, str], int] = {
        (key, ch): vid
        for vid, key, ch in s.execute(
            select(ArticleVersionRow.id, ArticleVersionRow.key, ArticleVersionRow.content_hash)
        )
    }
    fresh = [r for k, r in rows.items() if (k, r["content_hash"]) not in ids]
    db.insert_rows(s, cast(Table, ArticleVersionRow.__table__), fresh, key=("key", "content_hash"))
    for part in _chunks([r["key"] for r in fresh]):
        for vid, key, ch in s.execute(
            select(ArticleVersionRow.id, ArticleVersionRow.key, ArticleVersionRow.content_hash).where(
                ArticleVersionRow.key.in_(part)
            )
        ):
            ids[(key, ch)] = vid
    known = {key for key, _ in ids}
    observed = [{"key": k, "as_of": as_of, "version_id": ids[(k, str(r["content_hash"]))]} for k, r in rows.items()]
    absent = [{"key": k, "as_of": as_of, "version_id": None} for k in sorted(known - set(rows))]
    db.insert_rows(
        s, cast(Table, ObservationRow.__table__), observed + absent, key=("key", "as_of"), update=("version_id",)
    )
    return {"observed": len(observed), "absent": len(absent)}


def seed_from_current(db: Database, s: Session) -> dt.date | None:
    """An index built before versions existed: observe its current passages once, dated by its
    documents' newest amendment date (else its last build's day), so that a build of another
    date has a history to join. Nothing happens once any observation exists."""
    if s.scalar(select(func.count()).select_from(ObservationRow)) or not s.scalar(
        select(func.count()).select_from(PassageRow)
    ):
        return None
    dates = amendment_dates((meta or {}).get("最新異動日期") for (meta,) in s.execute(select(DocumentRow.meta)))
    if not dates:
        last = s.scalar(select(func.max(BuildRow.finished_at)))
        dates.append(last.date() if last else dt.datetime.now(dt.timezone.utc).date())
    when = max(dates)
    rows = s.execute(
        select(PassageRow, DocumentRow.doc_key).join(DocumentRow, DocumentRow.id == PassageRow.document_id)
    ).all()
    passages = [passage_of(row, doc_key) for row, doc_key in rows]
    record(db, s, passages, {row.key: row.embed_hash for row, _ in rows}, when)
    return when


def latest_date(s: Session) -> dt.date | None:
    return s.scalar(select(func.max(ObservationRow.as_of)).where(ObservationRow.as_of <= horizon()))


def _version(row: ArticleVersionRow, start: dt.date, end: dt.date | None) -> Version:
    return Version(
        key=row.key,
        doc_key=row.doc_key,
        law=row.law,
        article=row.article,
        article_label=row.article_label,
        text=row.text,
        embed_hash=row.embed_hash,
        valid_from=start,
        valid_to=end,
        chapters=tuple(row.chapters or ()),
        ordinal=row.ordinal,
        version_id=row.id,
    )


def history(s: Session, key: str) -> list[Version]:
    """The versions of one article, oldest first, each with the interval it was in force."""
    obs = s.execute(
        select(ObservationRow.as_of, ObservationRow.version_id)
        .where(ObservationRow.key == key, ObservationRow.as_of <= horizon())
        .order_by(ObservationRow.as_of)
    ).all()
    runs: list[tuple[int | None, dt.date, dt.date | None]] = []
    for when, vid in obs:
        if runs and runs[-1][0] == vid:
            continue
        if runs:
            runs[-1] = (runs[-1][0], runs[-1][1], when)
        runs.append((vid, when, None))
    wanted = {vid for vid, _, _ in runs if vid is not None}
    rows = {r.id: r for r in s.scalars(select(ArticleVersionRow).where(ArticleVersionRow.id.in_(wanted)))}
    return [_version(rows[vid], start, end) for vid, start, end in runs if vid is not None]


def state_at(s: Session, as_of: dt.date) -> dict[str, Version]:
    """Every article in force on `as_of` (its newest observation on or before that date is a
    version); repealed ones included, with embed_hash None."""
    newest = (
        select(ObservationRow.key, func.max(ObservationRow.as_of).label("as_of"))
        .where(ObservationRow.as_of <= min(as_of, horizon()))
        .group_by(ObservationRow.key)
        .subquery()
    )
    picked = s.execute(
        select(ObservationRow.key, ObservationRow.version_id, ObservationRow.as_of).join(
            newest, (newest.c.key == ObservationRow.key) & (newest.c.as_of == ObservationRow.as_of)
        )
    ).all()
    ids = [vid for _, vid, _ in picked if vid is not None]
    rows: dict[int, ArticleVersionRow] = {}
    for part in _chunks(ids):
        rows.update({r.id: r for r in s.scalars(select(ArticleVersionRow).where(ArticleVersionRow.id.in_(part)))})
    # valid_from here is the observation that put the version in force as far as this date
    # knows: the start of its run needs the full history (history()), which a query does not
    return {key: _version(rows[vid], since, None) for key, vid, since in picked if vid is not None}


def diff_segments(old: str, new: str) -> list[tuple[str, str]]:
    """A character-level diff (Chinese has no words to split on): ("=" | "-" | "+", text) runs."""
    out: list[tuple[str, str]] = []
    for op, a, b, c, d in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("=", old[a:b]))
        if op in ("delete", "replace"):
            out.append(("-", old[a:b]))
        if op in ("insert", "replace"):
            out.append(("+", new[c:d]))
    return out


def _inline_diff(old: str, new: str) -> str:
    """The diff as one readable string: [-removed-]{+added+}."""
    marks = {"=": "{}", "-": "[-{}-]", "+": "{{+{}+}}"}
    return "".join(marks[op].format(text) for op, text in diff_segments(old, new))


def require_history(s: Session, when: dt.date) -> None:
    """QueryError unless the index's history reaches back to `when`: before its first observation
    the index knows nothing in force (not "no article"), and says so, for as-of queries and diffs alike."""
    first = s.scalar(select(func.min(ObservationRow.as_of)))
    if first is None:
        raise QueryError("this index has no history yet: build a library first")
    if when < first:
        raise QueryError(f"the index knows no article in force on {when.isoformat()}: its history starts on {first}")


def diff(s: Session, date_from: dt.date, date_to: dt.date, law: str | None = None) -> dict:
    """What changed between two dates: articles added (no version before), changed (another
    text, with a text diff; `repealed` when it became （刪除）), removed (no version after: gone from
    the law's file), relabeled (same text, the law renamed or the article renumbered), and the
    renamed laws. `law`: a law name (either date's) or pcode. A date before the history starts
    is a QueryError (everything would count as added)."""
    for when in (date_from, date_to):
        require_history(s, when)
    before, after = state_at(s, date_from), state_at(s, date_to)

    def wanted(*vs: Version | None) -> bool:
        return law is None or any(v is not None and law in (v.law, v.doc_key) for v in vs)

    out: dict = {"from": date_from.isoformat(), "to": date_to.isoformat(), "law": law}
    added, changed, removed, relabeled = [], [], [], []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if not wanted(a, b):
            continue
        if a is None:
            assert b is not None
            added.append({"key": key, "law": b.law, "label": b.article_label, "text": b.text})
        elif b is None:
            removed.append({"key": key, "law": a.law, "label": a.article_label})
        elif a.text != b.text:
            changed.append(
                {
                    "key": key,
                    "law": b.law,
                    "label": b.article_label,
                    "old": a.text,
                    "new": b.text,
                    "repealed": b.repealed,
                    "diff": _inline_diff(a.text, b.text),
                }
            )
        elif a.law != b.law or a.article_label != b.article_label:
            relabeled.append({"key": key, "from": f"{a.law} {a.article_label}", "to": f"{b.law} {b.article_label}"})
    renamed = sorted(
        {(a.doc_key, a.law, after[k].law) for k, a in before.items() if k in after and after[k].law != a.law}
    )
    renamed = [r for r in renamed if law is None or law in r]
    out.update(
        counts={"added": len(added), "changed": len(changed), "removed": len(removed), "relabeled": len(relabeled)},
        renamed_laws=[{"doc_key": d, "from": f, "to": t} for d, f, t in renamed],
        added=added,
        changed=changed,
        removed=removed,
        relabeled=relabeled,
    )
    return out


def history_of(db: Database, key: str) -> list[dict]:
    """Each version after the first carries `changes`: its diff_segments against the one before."""
    with db.session() as s:
        versions = [v.to_dict() for v in history(s, key)]
    for before, after in itertools.pairwise(versions):
        after["changes"] = [list(seg) for seg in diff_segments(before["text"], after["text"])]
    return versions


def diff_of(db: Database, date_from: str | dt.date, date_to: str | dt.date, law: str | None = None) -> dict:
    with db.session() as s:
        return diff(s, parse_date(date_from), parse_date(date_to), law)


def version_of(db: Database, key: str, as_of: str | dt.date) -> dict | None:
    """The version of `key` in force on `as_of` (with the interval of its run), or None."""
    when = parse_date(as_of)
    with db.session() as s:
        runs = [v for v in history(s, key) if v.valid_from <= when and (v.valid_to is None or when < v.valid_to)]
    return runs[0].to_dict() if runs else None
