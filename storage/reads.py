"""Read transactions in plain SQL, for the reads a query needs (the meta table, the rows a
retriever's state is made of). A SQLite file is read with the standard library's sqlite3, so that
a new process answering its first query never imports SQLAlchemy (a fifth of a second of the
half second it may take); any other database is read through a SQLAlchemy session, with the same SQL.

Public API:
    Read                          one read transaction: .rows(sql) -> list[tuple], .meta(key, default)
    SqliteFile(path, read_only)   a SQLite file read without SQLAlchemy
        .read() -> context manager of a Read     one deferred transaction: every row of one commit
        .revision() -> str | None                the alembic revision the file is at
        .connect(check_same_thread=True) -> sqlite3.Connection
    session_read(session) -> Read                the same reads inside a SQLAlchemy transaction
    BUSY_MS                                      how long any connection waits for a lock

The SQL written against a Read uses no parameters and no dialect's own syntax, so that one text
serves sqlite3 and every SQLAlchemy driver (whose parameter styles differ).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Read", "SqliteFile", "session_read", "BUSY_MS"]

BUSY_MS = 30000  # every connection to a SQLite index, this module's and the engine's: a lock is waited out


class Read(Protocol):
    def rows(self, sql: str) -> list[tuple]: ...

    def meta(self, key: str, default: Any = None) -> Any: ...


class _SqliteRead:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def rows(self, sql: str) -> list[tuple]:
        return self.conn.execute(sql).fetchall()

    def meta(self, key: str, default: Any = None) -> Any:
        # the meta table's values are SQLAlchemy JSON: {"v": value} as text
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0])["v"] if row else default


class _SessionRead:
    def __init__(self, session: Session):
        self.session = session

    def rows(self, sql: str) -> list[tuple]:
        self.session.flush()  # what the session holds unwritten is read too, as its own selects would
        return [tuple(r) for r in self.session.connection().exec_driver_sql(sql)]

    def meta(self, key: str, default: Any = None) -> Any:
        from .models import MetaEntry

        row = self.session.get(MetaEntry, key)
        return row.value["v"] if row else default


def session_read(session: Session) -> Read:
    return _SessionRead(session)


class SqliteFile:
    def __init__(self, path: Path, read_only: bool):
        self.path, self.read_only = path, read_only

    def connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        """A connection in autocommit mode (transactions are begun explicitly); a read-only file is
        opened immutable, as the engine opens it (its WAL's -shm cannot be made beside it)."""
        mode = "ro&immutable=1" if self.read_only else "rw"
        conn = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode={mode}",
            uri=True,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        return conn

    @contextmanager
    def read(self) -> Iterator[Read]:
        # A connection per read: a state is loaded once per generation, and a connection of its
        # own needs no lock between the service's threads.
        conn = self.connect()
        try:
            conn.execute("BEGIN")  # deferred: the first SELECT fixes the snapshot all rows come from
            yield _SqliteRead(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()

    def revision(self) -> str | None:
        conn = self.connect()
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:  # no such table (not migrated yet), or not a database: the engine says
            return None
        finally:
            conn.close()
        return row[0] if row else None
