"""Database.insert_rows: insert-or-ignore and upsert, through native ON CONFLICT and through the
portable path other backends take (the same rows give the same table)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import LLMResultRow, utcnow


def _row(key: str, status: str, attempts: int) -> dict:
    return {"cache_key": key, "model": "m", "prompt_version": "v", "status": status, "incoming": ["q?"],
            "outgoing": [], "error": None, "attempts": attempts, "updated_at": utcnow()}


@pytest.mark.parametrize("native", [True, False], ids=["on-conflict", "portable"])
def test_insert_rows_ignore_and_upsert(tmp_path, native):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    if not native:
        db.engine.dialect.name = "portable"     # what a backend without ON CONFLICT takes
    table = LLMResultRow.__table__
    with db.session() as s:
        db.insert_rows(s, table, [_row("a", "ok", 1), _row("b", "failed", 1)], key=("cache_key",))
    with db.session() as s:   # ignore: existing keys stay as they were, new ones come in
        db.insert_rows(s, table, [_row("a", "failed", 9), _row("c", "ok", 1)], key=("cache_key",))
    with db.session() as s:   # upsert: the named columns of existing keys are overwritten
        db.insert_rows(s, table, [_row("b", "ok", 2), _row("d", "ok", 1)], key=("cache_key",),
                       update=("status", "attempts"))
    with db.session() as s:
        got = {k: (st, n) for k, st, n in s.execute(select(table.c.cache_key, table.c.status, table.c.attempts))}
    assert got == {"a": ("ok", 1), "b": ("ok", 2), "c": ("ok", 1), "d": ("ok", 1)}
    db.close()
