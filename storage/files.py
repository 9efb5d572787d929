"""Crash-safe file writes: a reader sees the old file or the new one, never a torn one.

Public API:
    atomic_write(path, data: bytes) -> str      write tmp, fsync, rename, fsync dir; returns sha256.
                                                Replaces only a regular file (or nothing): a device,
                                                FIFO, symlink or folder at `path` is a ValueError
    fsync_dir(path)
    read_regular(path, max_bytes, limit_hint="", within=()) -> bytes
                                                the bytes of a regular file of at most max_bytes;
                                                RegularFileError (a ValueError) naming why not
    RegularFileError(path, reason)              .path, .reason
    opened_path(fd, path) -> Path               the real place of an open file
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RegularFileError", "atomic_write", "fsync_dir", "opened_path", "read_regular"]

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refuse_special(path: Path) -> None:
    # the rename would put a regular file where a device or a link was (as root: /dev/full)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    for test, kind in _KINDS:
        if test(mode):
            raise ValueError(f"{path} is {kind}, not a regular file: refusing to replace it (write to a file path)")


def atomic_write(path: str | os.PathLike, data: bytes) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _refuse_special(path)
    # an unpredictable name, created exclusively: nobody can plant a link where the data will go
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)  # mkstemp's 0600 would hide an export from its group
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


class RegularFileError(ValueError):
    """A file that is not to be read: not a regular file, over its limit, or unreadable."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")


def opened_path(fd: int, path: str | os.PathLike) -> Path:
    """Where the file open at `fd` really is: what was opened, not what the path names now
    (Linux's /proc; elsewhere the path resolved now)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return Path(os.path.realpath(path))


def read_regular(path: str | os.PathLike, max_bytes: int, limit_hint: str = "", within: Sequence[Path] = ()) -> bytes:
    """Opened non-blocking and checked with fstat before reading: a FIFO or a device must fail with
    its name, not hang the reader (with a lock held, or a service thread), and /dev/zero must not
    fill the memory. `limit_hint` names the setting that raises the limit. `within`: the file
    opened must lie inside one of these (real) folders, checked on the open file, so that a link
    swapped in after any earlier check is caught."""
    hint = f" ({limit_hint})" if limit_hint else ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise RegularFileError(path, f"cannot read ({exc.strerror})") from None
    try:
        if within and not any(opened_path(fd, path).is_relative_to(w) for w in within):
            raise RegularFileError(path, "outside the library roots")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((k for test, k in _KINDS if test(info.st_mode)), "something else")
            raise RegularFileError(path, f"not a regular file ({kind}: a FIFO, socket or device is never read)")
        if info.st_size > max_bytes:
            raise RegularFileError(
                path, f"{info.st_size / 2**20:.0f} MB is over the {max_bytes / 2**20:g} MB limit{hint}"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(max_bytes + 1)  # a file that grows while read still stops at the limit
    except OSError as exc:
        raise RegularFileError(path, f"cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        raise RegularFileError(path, f"over the {max_bytes / 2**20:g} MB limit{hint}")
    return raw
