"""Opening the database: engine (SQLite in WAL mode with foreign keys, or any SQLAlchemy URL),
sessions, and Alembic migrations applied on open.

Public API:
    Database(url)                 .engine, .session() context manager, .get_meta/.get_meta_in/.set_meta,
                                  .insert_rows(session, table, rows, key=, update=)  insert or ignore / upsert
                                  .reading() -> context manager of a reads.Read (plain SQL, one transaction)
    migrate(engine) -> str        upgrade to head; returns the revision
    head_revision() -> str
    SchemaError                   database written by a newer hoprag (unknown revision; defined in storage.errors)
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SchemaError
from .reads import BUSY_MS, Read, SqliteFile, session_read

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

__all__ = ["Database", "migrate", "head_revision", "SchemaError", "alembic_config"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Let SQLAlchemy's transactions be real SQLite transactions: the driver's own mode would run
    # SELECTs outside any transaction, and a reader could then see two generations in one answer.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer and vice versa
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps commits atomic
    cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    cur.close()


def _sqlite_read_only_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    cur.close()


def alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@lru_cache(maxsize=1)
def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    return _script().get_current_head()


_REVISION = re.compile(r'^(down_)?revision\s*(?::[^=]*)?=\s*["\']?([^"\'\s]+)["\']?\s*$', re.MULTILINE)


@lru_cache(maxsize=1)
def _head_from_files() -> str | None:
    """The head revision read from the migration files as text: opening an index that is already
    at head then never imports Alembic (a tenth of a second). None if the files do not say
    plainly (a merge, an unusual layout): Alembic decides then."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((bool(down), value) for down, value in _REVISION.findall(path.read_text(encoding="utf-8")))
        if False not in found:
            return None
        revisions.add(found[False])
        if found.get(True, "None") != "None":
            parents.add(found[True])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current_revision(engine: Engine) -> str | None:
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> str:
    head = _head_from_files()
    if head is not None and _current_revision(engine) == head:
        return head
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        has_tables = bool(inspect(conn).get_table_names())
    head = head_revision()
    if current == head:
        return head
    known = {s.revision for s in _script().walk_revisions()}
    if current is not None and current not in known:
        raise SchemaError(
            f"the index database is at schema revision {current!r}, which this hoprag does not know "
            f"(newest known: {head!r}); it was written by a newer version: upgrade hoprag-index"
        )
    if current is None and has_tables:
        raise SchemaError("the database has tables but no alembic revision: not a hoprag index")
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head


def _read_only_file(path: Path) -> bool:
    """An existing database file this process cannot write (permissions, a read-only mount, an
    immutable file). Asked with access(2), never by opening the file: closing any descriptor of a
    SQLite file drops the POSIX locks that this process's open connections hold on it."""
    return path.exists() and not os.access(path, os.W_OK)


class Database:
    """SQLAlchemy loads on first use of the engine or a session: an existing SQLite index already
    at the newest schema is read with sqlite3 alone (`reading`, `get_meta`, `data_version`), so a
    new process's first query never pays for SQLAlchemy. Anything else (a new file, another
    revision, another database) opens the engine here, migrating as before."""

    def __init__(self, url: str, *, create_dirs: bool = True, upgrade: bool = True):
        self.url = url
        self.read_only = False
        self.revision: str | None = None
        self._file: SqliteFile | None = None  # read with sqlite3: a SQLite file at head
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._watch: Any = None  # the connection data_version() asks
        self._watch_lock = threading.Lock()
        self._engine_url = url
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///") :])
            if _read_only_file(path):
                # Queries need no write: open the file read-only and immutable (a WAL database
                # could not otherwise be read from a folder where its -shm file cannot be made)
                self.read_only = True
                self._engine_url = f"sqlite:///file:{path.resolve()}?mode=ro&immutable=1&uri=true"
            elif create_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file() and "?" not in str(path) and upgrade:
                head = _head_from_files()
                file = SqliteFile(path, self.read_only)
                if head is not None and file.revision() == head:
                    self._file, self.revision = file, head
                    return
        self._open(upgrade)

    def _open(self, upgrade: bool) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.orm import sessionmaker

        engine = create_engine(self._engine_url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_read_only_pragmas if self.read_only else _sqlite_pragmas)
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        if self._file is None:  # else found at head on open
            if self.read_only and upgrade:
                head = _head_from_files() or head_revision()
                if _current_revision(engine) != head:
                    raise SchemaError(
                        f"the index database {self.url} is read-only and at another schema revision than this "
                        f"hoprag's ({head}): open it where it can be written once, or with the hoprag that wrote it"
                    )
                self.revision = head
            else:
                self.revision = migrate(engine) if upgrade else None
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._engine = engine
        return engine

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is None:
            with self._engine_lock:
                engine = self._engine or self._open(upgrade=True)
        return engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        self.engine  # noqa: B018  (opens it on first use)
        with self._sessions() as s:
            with s.begin():
                yield s

    @contextmanager
    def reading(self) -> Iterator[Read]:
        """One read transaction in plain SQL (storage.reads): sqlite3 for a SQLite file at head,
        else a session."""
        if self._file is not None:
            with self._file.read() as r:
                yield r
            return
        with self.session() as s:
            yield session_read(s)

    def data_version(self) -> int | None:
        """A number that changes whenever a connection other than the one asked commits: SQLite's
        PRAGMA data_version, on a connection of its own that never writes, so any commit (this
        process's or another's) changes it. A reader checks it in microseconds where reading the
        meta table through a session costs ~0.8 ms a query. None where there is no such number."""
        if self._file is None and (
            self.engine.dialect.name != "sqlite" or self.engine.url.database in (None, "", ":memory:")
        ):
            return None
        with self._watch_lock:
            if self._watch is None:
                if self._file is not None:
                    self._watch = self._file.connect(check_same_thread=False)  # used under the lock
                else:
                    conn = self.engine.raw_connection()
                    conn.detach()  # kept for this Database's life, outside the pool
                    self._watch = conn
            cur = self._watch.cursor()
            try:
                cur.execute("PRAGMA data_version")
                return int(cur.fetchone()[0])
            finally:
                cur.close()

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self.reading() as r:
            return r.meta(key, default)

    @staticmethod
    def get_meta_in(session: Session, key: str, default: Any = None) -> Any:
        return session_read(session).meta(key, default)

    @staticmethod
    def set_meta(session: Session, key: str, value: Any) -> None:
        from .models import MetaEntry

        session.merge(MetaEntry(key=key, value={"v": value}))

    def insert_rows(
        self, session: Session, table: Table, rows: list[dict], *, key: Sequence[str], update: Sequence[str] = ()
    ) -> None:
        """Insert `rows`; a row whose `key` columns exist already is left alone (update=()) or has
        its `update` columns overwritten. Native ON CONFLICT on SQLite and PostgreSQL; elsewhere
        the existing keys are read first, in the same transaction."""
        if not rows:
            return
        from sqlalchemy import select, tuple_

        dialect = self.engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            stmt: SqliteInsert | PostgresInsert
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                stmt = sqlite_insert(table)
            else:
                from sqlalchemy.dialects.postgresql import insert as postgres_insert

                stmt = postgres_insert(table)
            if update:
                stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in update})
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
            session.execute(stmt, rows)
            return
        cols = [table.c[k] for k in key]
        present = set()
        for i in range(0, len(rows), 500):
            part = rows[i : i + 500]
            wanted = {tuple(r[k] for k in key) for r in part}
            present |= {tuple(r) for r in session.execute(select(*cols).where(tuple_(*cols).in_(wanted)))}
        fresh = [r for r in rows if tuple(r[k] for k in key) not in present]
        if fresh:
            session.execute(table.insert(), fresh)
        for r in rows:
            if update and tuple(r[k] for k in key) in present:
                session.execute(
                    table.update().where(*[table.c[k] == r[k] for k in key]).values({c: r[c] for c in update})
                )

    def close(self) -> None:
        with self._watch_lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None
        if self._engine is not None:
            self._engine.dispose()
