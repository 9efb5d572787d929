"""One writer at a time per index, across processes: an flock on <home>/write.lock.

The kernel drops an flock when its process dies, however it dies, so a lock left by a killed
build is free for the next one; the pid written inside only tells the second writer who holds it.

Public API:
    WriterLock(path)          context manager; raises IndexBusy when another process holds it
    IndexBusy                 names the holder (pid, host, since)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from pathlib import Path

from .models import utcnow

__all__ = ["WriterLock", "IndexBusy"]

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
