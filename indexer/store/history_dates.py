"""The dates of point-in-time law: how a date is written, which date a build carries, and the
horizon no build and no answer goes past. Parsing a date needs no database, so it sits apart from
the history's tables (history.py re-exports every name here).

Public API:
    parse_date(text) -> date             YYYY-MM-DD or YYYYMMDD (or a date), else QueryError (a ValueError)
    parse_build_date(text) -> date       the same, refusing a date after horizon()
    horizon() -> date                    tomorrow (UTC): no build is dated, no answer shows, after it
    build_date(library, as_of=None) -> date   as_of, else the newest 最新異動日期 of its laws, else today
    amendment_dates(values) -> list[date]     the values that are dates, the others skipped
    FUTURE_SKEW                          the day of clock and time-zone skew horizon() allows
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ..errors import QueryError
from ..passages import Library

__all__ = ["parse_date", "parse_build_date", "horizon", "build_date", "amendment_dates", "FUTURE_SKEW"]


def parse_date(text: str | dt.date) -> dt.date:
    if isinstance(text, dt.date):
        return text
    s = str(text).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    raise QueryError(f"not a date: {text!r} (use YYYY-MM-DD)")


# A build observes the law as it stands, never as it will: one dated after tomorrow (UTC; a day of
# skew for clocks and time zones) would be "the newest" forever, and every later build of the
# current law would be taken for history. Observations past it, if an older version let one in,
# are left out of every answer.
FUTURE_SKEW = dt.timedelta(days=1)


def horizon() -> dt.date:
    """The latest date a build may be dated, and an answer may show."""
    return dt.datetime.now(dt.timezone.utc).date() + FUTURE_SKEW


def parse_build_date(text: str | dt.date) -> dt.date:
    """parse_date, refusing a date after horizon() (QueryError)."""
    when = parse_date(text)
    if when > horizon():
        raise QueryError(
            f"the build date {when.isoformat()} is in the future (today is "
            f"{(horizon() - FUTURE_SKEW).isoformat()}): a build records the law as it stands on a date "
            "that has come"
        )
    return when


def build_date(library: Library, as_of: str | dt.date | None = None) -> dt.date:
    """`as_of`, else the newest amendment date (最新異動日期) among the library's laws, else today:
    a folder of official JSON files dates itself (a file's date after horizon() is no date)."""
    if as_of is not None:
        return parse_build_date(as_of)
    dates = [d for d in amendment_dates(d.metadata.get("最新異動日期") for d in library.documents) if d <= horizon()]
    return max(dates) if dates else dt.datetime.now(dt.timezone.utc).date()


def amendment_dates(values: Iterable[object]) -> list[dt.date]:
    """The values that are dates (最新異動日期 as the law files write it); the others skipped."""
    out = []
    for raw in values:
        try:
            out.append(parse_date(str(raw)))
        except ValueError:  # absent or not a date: the file says nothing about when
            continue
    return out
