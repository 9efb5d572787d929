"""One writer at a time per index: an flock on <home>/write.lock across the processes of one
host, or, for an index in PostgreSQL, a session advisory lock across hosts.

Either is dropped when its holder dies, however it dies (the kernel closes the file; the server
ends the session), so a lock left by a killed build is free for the next one; what the holder
wrote (pid, host, since) only tells the second writer who it is.

Public API:
    WriterLock(path)          context manager; raises IndexBusy when another process holds it
    AdvisoryLock(engine)      the same for a PostgreSQL database, across hosts
    writer_lock(engine, path) the one an index uses: AdvisoryLock on PostgreSQL, else WriterLock
    IndexBusy                 names the holder (pid, host, since)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from .clock import utcnow

__all__ = ["WriterLock", "AdvisoryLock", "writer_lock", "IndexBusy"]

log = logging.getLogger(__name__)


class IndexBusy(RuntimeError):
    pass


class WriterLock:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            h = self._holder()
            raise IndexBusy(
                f"another process is writing this index (pid {h.get('pid', '?')} on "
                f"{h.get('host', '?')}, since {h.get('since', '?')}); wait for it to finish"
            ) from None
        previous = self._holder()
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.warning("took over the write lock of pid %s, which is gone", previous["pid"])
        os.ftruncate(fd, 0)
        os.write(
            fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": utcnow().isoformat()}).encode()
        )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# the advisory lock's key: one per database (an index is one database); below 2^31 so that
# pg_locks shows it whole in objid
_ADVISORY_KEY = 0x686F70  # "hop"


class AdvisoryLock:
    """pg_try_advisory_lock on a connection of its own, held in autocommit (no transaction stays
    open for the length of a build); its application_name says who holds it."""

    def __init__(self, engine: Any):
        self.engine = engine
        self._conn: Any = None

    def acquire(self) -> None:
        from sqlalchemy import text

        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        who = (
            f"hoprag writer pid {os.getpid()} on {socket.gethostname()} since {utcnow().isoformat(timespec='seconds')}"
        )
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_KEY}).scalar():
            holder = conn.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.objid = :k AND l.granted AND l.database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"k": _ADVISORY_KEY},
            ).scalar()
            conn.close()
            raise IndexBusy(
                f"another process is writing this index ({holder or 'a session of this database'}); "
                f"wait for it to finish"
            )
        conn.execute(text("SELECT set_config('application_name', :who, false)"), {"who": who[:63]})
        self._conn = conn

    def release(self) -> None:
        if self._conn is not None:
            from sqlalchemy import text

            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
            finally:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> AdvisoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def writer_lock(engine: Any, path: str | os.PathLike) -> WriterLock | AdvisoryLock:
    return AdvisoryLock(engine) if engine.dialect.name == "postgresql" else WriterLock(path)
