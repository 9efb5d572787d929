"""Snapshots: the derived files of one build generation (FAISS indexes, later the graph), in a
folder with a manifest of sha256 checksums. Written under a temporary name, fsynced, then renamed,
so a crash leaves the previous snapshot intact. Loaded only after every checksum matches; nothing
is ever unpickled.

Layout:  <home>/snapshots/gen-000007/{manifest.json, passages.faiss, ...}

Public API:
    SnapshotStore(folder, keep=3)
        .save(generation, files: {name: bytes}, info: dict) -> Snapshot
        .latest() -> Snapshot | None           newest snapshot whose manifest parses
        .get(generation) -> Snapshot | None
        .list() -> list[Snapshot]
        .read(snapshot, name) -> bytes         verified against the manifest, else SnapshotError
        .mapped(snapshot, name)                the same for a large file, memory-mapped (a context manager)
    Snapshot                                   generation, path, manifest
    SnapshotError
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .files import fsync_dir
from .models import utcnow

__all__ = ["SnapshotStore", "Snapshot", "SnapshotError"]

_NAME = re.compile(r"^gen-(\d{6,})$")


class SnapshotError(RuntimeError):
    pass


@dataclass(frozen=True)
class Snapshot:
    generation: int
    path: Path
    manifest: dict

    @property
    def info(self) -> dict:
        return self.manifest.get("info", {})


class SnapshotStore:
    def __init__(self, folder: str | os.PathLike, keep: int = 3):
        self.folder = Path(folder)
        self.keep = max(1, keep)

    def save(self, generation: int, files: dict[str, bytes], info: dict) -> Snapshot:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"gen-{generation:06d}"
        tmp = self.folder / f".tmp-gen-{generation:06d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        checksums = {}
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            checksums[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        manifest = {
            "format": 1,
            "generation": generation,
            "created_at": utcnow().isoformat(),
            "files": checksums,
            "info": info,
        }
        with open(tmp / "manifest.json", "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        if final.exists():  # a re-save of the same generation (repair) replaces it whole
            old = self.folder / f".old-gen-{generation:06d}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(self.folder)
        self._prune()
        return Snapshot(generation, final, manifest)

    def _prune(self) -> None:
        for snap in self.list()[: -self.keep]:
            shutil.rmtree(snap.path, ignore_errors=True)
        for leftover in self.folder.glob(".tmp-gen-*"):
            # a temporary folder of a process that died mid-write
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)

    def list(self) -> list[Snapshot]:
        if not self.folder.exists():
            return []
        out = []
        for path in self.folder.iterdir():
            m = _NAME.match(path.name)
            if not m or not path.is_dir():
                continue
            try:
                manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                manifest = {}
            out.append(Snapshot(int(m.group(1)), path, manifest))
        return sorted(out, key=lambda s: s.generation)

    def get(self, generation: int) -> Snapshot | None:
        return next((s for s in self.list() if s.generation == generation and s.manifest), None)

    def latest(self) -> Snapshot | None:
        valid = [s for s in self.list() if s.manifest]
        return valid[-1] if valid else None

    def read(self, snapshot: Snapshot, name: str) -> bytes:
        entry = snapshot.manifest.get("files", {}).get(name)
        if entry is None:
            raise SnapshotError(f"snapshot {snapshot.path.name} has no file {name}")
        try:
            data = (snapshot.path / name).read_bytes()
        except OSError as exc:
            raise SnapshotError(f"snapshot {snapshot.path.name}/{name}: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise SnapshotError(f"snapshot {snapshot.path.name}/{name}: checksum mismatch (corrupt file)")
        return data

    @contextmanager
    def mapped(self, snapshot: Snapshot, name: str) -> Iterator[bytes | mmap.mmap]:
        """A large file memory-mapped, its checksum verified, for a reader that copies what it
        needs (FAISS deserializes into its own memory): one copy of the vectors instead of two."""
        entry = snapshot.manifest.get("files", {}).get(name)
        if entry is None:
            raise SnapshotError(f"snapshot {snapshot.path.name} has no file {name}")
        try:
            with open(snapshot.path / name, "rb") as fh:
                if os.fstat(fh.fileno()).st_size == 0:
                    view: bytes | mmap.mmap = b""
                else:
                    view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise SnapshotError(f"snapshot {snapshot.path.name}/{name}: {exc.strerror}") from None
        try:
            if hashlib.sha256(view).hexdigest() != entry["sha256"]:
                raise SnapshotError(f"snapshot {snapshot.path.name}/{name}: checksum mismatch (corrupt file)")
            yield view
        finally:
            if isinstance(view, mmap.mmap):
                with suppress(BufferError):  # a reader still holds a view: the mapping goes with it
                    view.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
