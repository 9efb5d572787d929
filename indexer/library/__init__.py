"""Reading a library: a folder (or one file) of laws into Documents and Passages.

Formats are detected per file: .json (全國法規資料庫), .pdf (its printouts), .txt/.md (plain laws),
.jsonl (generic passages). Everything is read and checked before anything is written, so a bad
file fails the build with its name and leaves the index as it was.

Public API:
    read_library(path, max_file_mb=64, within=()) -> Library    skipped files are listed as "path
                    (reason)"; within: folders every file read must really lie in (checked on the open file)
    scan_library(path, max_file_mb=64, within=()) -> LibraryFiles   every file read once, not parsed:
                    .digest says whether anything changed; parse_library(files) -> Library parses those
                    bytes (read_library = both), so a build reads each file once
    read_file(path, max_mb=64, within=()) -> Document
    library_fingerprint(path, max_file_mb=64, within=()) -> str | None   scan_library's digest (None
                    for a file it may not read: the full read says why)
    FORMATS         suffix -> format name
    READER_VERSION  bumped whenever a reader's output for the same bytes changes
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.files import RegularFileError, read_regular

from ..errors import require
from ..passages import Document, Library, LibraryError
from .jsonl import read_jsonl
from .moj_json import read_moj_json

__all__ = [
    "read_library",
    "scan_library",
    "parse_library",
    "LibraryFiles",
    "read_file",
    "library_fingerprint",
    "FORMATS",
    "READER_VERSION",
    "LibraryError",
]

FORMATS = {".json": "moj-json", ".pdf": "pdf", ".txt": "text", ".md": "text", ".jsonl": "jsonl"}
READER_VERSION = 1


def _reader(fmt: str) -> Callable[[Path, bytes, str], Document]:
    # PDF and text readers import lazily: pypdf is only needed when a library holds PDFs.
    if fmt == "moj-json":
        return read_moj_json
    if fmt == "jsonl":
        return read_jsonl
    if fmt == "pdf":
        require("pypdf", "pdf", "reading PDF printouts")
        from .pdf import read_pdf

        return read_pdf
    from .text import read_text

    return read_text


MAX_FILE_MB = 64  # the largest statute (民法) is 0.5 MB; a file 100x that size is no law file


def _read_regular(path: Path, max_mb: float, within: Sequence[Path] = ()) -> bytes:
    """A law file's bytes (storage.files.read_regular): never a FIFO or device, never over max_mb,
    and (with `within`) never from outside those folders, whatever a link says by then."""
    try:
        return read_regular(path, int(max_mb * 2**20), "HOPRAG_MAX_FILE_MB, for one law file", within)
    except RegularFileError as exc:
        raise LibraryError(path, exc.reason) from None


def read_file(path: Path, max_mb: float = MAX_FILE_MB, within: Sequence[Path] = ()) -> Document:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LibraryError(path, f"unknown format {path.suffix!r}; expected one of {', '.join(sorted(FORMATS))}")
    raw = _read_regular(path, max_mb, within)
    return _parse_file(path, fmt, raw, hashlib.sha256(raw).hexdigest())


def _parse_file(path: Path, fmt: str, raw: bytes, content_hash: str) -> Document:
    if not raw.strip():
        raise LibraryError(path, "empty file")
    return _reader(fmt)(path, raw, content_hash)


def _library_files(root: Path) -> tuple[list[Path], list[str]]:
    """Law files under root, and what was left out with why ("path (reason)")."""
    files: list[Path] = []
    skipped: list[str] = []
    real_root = _resolve(root)
    if real_root is None:
        raise LibraryError(root, "a symlink loop")
    for dirpath, dirnames, filenames in os.walk(root):
        for d in sorted(dirnames):
            if (Path(dirpath) / d).is_symlink():
                skipped.append(f"{Path(dirpath) / d} (symlinked folder, not followed)")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            real = _resolve(path)
            if path.suffix.lower() not in FORMATS:
                skipped.append(f"{path} (not a law format)")
            elif real is None:
                skipped.append(f"{path} (a symlink loop)")
            elif not real.is_relative_to(real_root):
                # a link out of the library could make a build read any file the user can read;
                # where it points is not repeated (the message may reach an HTTP client)
                skipped.append(f"{path} (a symlink out of the library)")
            elif not _is_regular(real):
                skipped.append(f"{path} (not a regular file: a FIFO, socket or device is never read)")
            else:
                files.append(path)
    return files, skipped


def _resolve(path: Path) -> Path | None:
    """The real path, or None for a symlink loop (Path.resolve raises RuntimeError on 3.11)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return None


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)  # stat never opens: a FIFO cannot block it
    except OSError:
        return True  # unreadable: read_file says why, with the file's name


@dataclass(frozen=True)
class LibraryFiles:
    """A library's files, each read once: bytes, sha256, and the digest of them all (what the
    index compares with its last build before parsing anything)."""

    root: Path
    files: tuple[Path, ...]
    raw: tuple[bytes, ...]
    hashes: tuple[str, ...]  # sha256 of each file's bytes
    skipped: tuple[str, ...]  # "path (reason)"
    digest: str


def _digest(
    root: Path, files: Sequence[Path], hashes: Sequence[str], skipped: Sequence[str], max_file_mb: float
) -> str:
    digest = hashlib.sha256(f"hoprag-library/{READER_VERSION}/{max_file_mb}".encode())
    for file, content in zip(files, hashes):
        name = file.name if file == root else file.relative_to(root).as_posix()
        digest.update(f"\n{name}\t{content}".encode())
    for reason in skipped:
        digest.update(f"\nskipped\t{reason}".encode())
    return digest.hexdigest()


def scan_library(
    path: str | os.PathLike, max_file_mb: float = MAX_FILE_MB, within: Sequence[Path] = ()
) -> LibraryFiles:
    """Every law file of the library read once (the checks of read_library: a missing root, one
    outside `within`, no law files, a file over the limit or not regular); nothing parsed."""
    root = Path(path)
    try:
        exists = root.exists()
    except OSError as exc:  # a symlink loop, a path too long, a folder without permission
        raise LibraryError(root, f"cannot read ({exc.strerror})") from None
    if not exists:
        raise LibraryError(root, "no such file or folder")
    real = _resolve(root)
    if within and (real is None or not any(real.is_relative_to(w) for w in within)):
        raise LibraryError(root, "outside the library roots")
    files: list[Path]
    skipped: list[str]
    if root.is_file():
        if root.suffix.lower() not in FORMATS:
            raise LibraryError(root, f"unknown format {root.suffix!r}; expected one of {', '.join(sorted(FORMATS))}")
        files, skipped = [root], []
    else:
        files, skipped = _library_files(root)
    if not files:
        raise LibraryError(root, f"no law files ({', '.join(sorted(FORMATS))}) found")
    raw = [_read_regular(file, max_file_mb, within) for file in files]
    hashes = [hashlib.sha256(b).hexdigest() for b in raw]
    digest = _digest(root, files, hashes, skipped, max_file_mb)
    return LibraryFiles(root, tuple(files), tuple(raw), tuple(hashes), tuple(skipped), digest)


def parse_library(scan: LibraryFiles, progress: Callable[[str, int, int], None] | None = None) -> Library:
    """The Library in the bytes scan_library read: no file is read again. `progress("read", done,
    total)` after each file (a PDF printout takes seconds)."""
    documents: list[Document] = []
    owners: dict[str, str] = {}
    for n, (file, raw, content_hash) in enumerate(zip(scan.files, scan.raw, scan.hashes), 1):
        doc = _parse_file(file, FORMATS[file.suffix.lower()], raw, content_hash)
        if progress is not None:
            progress("read", n, len(scan.files))
        if doc.doc_key in owners:
            raise LibraryError(file, f"law key {doc.doc_key!r} is already read from {owners[doc.doc_key]}")
        owners[doc.doc_key] = str(file)
        documents.append(doc)

    seen: dict[str, str] = {}
    for doc in documents:
        for p in doc.passages:
            if p.key in seen:
                raise LibraryError(doc.source, f"passage id {p.key!r} is also used in {seen[p.key]}")
            seen[p.key] = doc.source
    return Library(root=str(scan.root.resolve()), documents=tuple(documents), skipped=scan.skipped)


def library_fingerprint(
    path: str | os.PathLike, max_file_mb: float = MAX_FILE_MB, within: Sequence[Path] = ()
) -> str | None:
    """A digest of every law file the library would read (relative path and content), the
    readers' version and the size limit: equal digests mean `read_library` would return the same
    Library. None when a file cannot be read or is over the limit (the full read says why)."""
    try:
        return scan_library(path, max_file_mb, within).digest
    except (LibraryError, OSError):
        return None


def read_library(path: str | os.PathLike, max_file_mb: float = MAX_FILE_MB, within: Sequence[Path] = ()) -> Library:
    """`within`: folders the library and every file it reads must really lie in (the service's
    library roots), checked now and again on each open file: a folder swapped for a link between
    the service's check and this read is refused, not read."""
    return parse_library(scan_library(path, max_file_mb, within))
