"""Reading a library: a folder (or one file) of laws into Documents and Passages.

Formats are detected per file: .json (全國法規資料庫), .pdf (its printouts), .txt/.md (plain laws),
.jsonl (generic passages). Everything is read and checked before anything is written, so a bad
file fails the build with its name and leaves the index as it was.

Public API:
    read_library(path, max_file_mb=64) -> Library    skipped files are listed as "path (reason)"
    read_file(path, max_mb=64) -> Document
    library_fingerprint(path, max_file_mb=64) -> str | None   what the files say, without parsing them
    FORMATS         suffix -> format name
    READER_VERSION  bumped whenever a reader's output for the same bytes changes
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import require
from ..passages import Document, Library, LibraryError
from .jsonl import read_jsonl
from .moj_json import read_moj_json

__all__ = ["read_library", "read_file", "library_fingerprint", "FORMATS", "READER_VERSION", "LibraryError"]

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


def read_file(path: Path, max_mb: float = MAX_FILE_MB) -> Document:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LibraryError(path, f"unknown format {path.suffix!r}; expected one of {', '.join(sorted(FORMATS))}")
    try:
        size = path.stat().st_size
        if size > max_mb * 2**20:
            raise LibraryError(
                path, f"{size / 2**20:.0f} MB is over the {max_mb:g} MB limit for one law file (HOPRAG_MAX_FILE_MB)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise LibraryError(path, f"cannot read ({exc.strerror})") from None
    if not raw.strip():
        raise LibraryError(path, "empty file")
    return _reader(fmt)(path, raw, hashlib.sha256(raw).hexdigest())


def _library_files(root: Path) -> tuple[list[Path], list[str]]:
    """Law files under root, and what was left out with why ("path (reason)")."""
    files, skipped = [], []
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for d in sorted(dirnames):
            if (Path(dirpath) / d).is_symlink():
                skipped.append(f"{Path(dirpath) / d} (symlinked folder, not followed)")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.suffix.lower() not in FORMATS:
                skipped.append(f"{path} (not a law format)")
            elif not path.resolve().is_relative_to(real_root):
                # a link out of the library could make a build read any file the user can read
                skipped.append(f"{path} (symlink to {path.resolve()}, outside the library)")
            else:
                files.append(path)
    return files, skipped


def library_fingerprint(path: str | os.PathLike, max_file_mb: float = MAX_FILE_MB) -> str | None:
    """A digest of every law file the library would read (relative path and content), the
    readers' version and the size limit: equal digests mean `read_library` would return the same
    Library. None when a file cannot be read or is over the limit (the full read says why)."""
    root = Path(path)
    if not root.exists():
        return None
    files, skipped = ([root], []) if root.is_file() else _library_files(root)
    digest = hashlib.sha256(f"hoprag-library/{READER_VERSION}/{max_file_mb}".encode())
    for file in files:
        try:
            if file.stat().st_size > max_file_mb * 2**20:
                return None
            content = hashlib.sha256(file.read_bytes()).hexdigest()
        except OSError:
            return None
        name = file.name if file == root else file.relative_to(root).as_posix()
        digest.update(f"\n{name}\t{content}".encode())
    for reason in skipped:
        digest.update(f"\nskipped\t{reason}".encode())
    return digest.hexdigest()


def read_library(path: str | os.PathLike, max_file_mb: float = MAX_FILE_MB) -> Library:
    root = Path(path)
    if not root.exists():
        raise LibraryError(root, "no such file or folder")
    files: list[Path]
    skipped: list[str]
    if root.is_file():
        files, skipped = [root], []
    else:
        files, skipped = _library_files(root)
    if not files:
        raise LibraryError(root, f"no law files ({', '.join(sorted(FORMATS))}) found")

    documents: list[Document] = []
    owners: dict[str, str] = {}
    for file in files:
        doc = read_file(file, max_file_mb)
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
    return Library(root=str(root.resolve()), documents=tuple(documents), skipped=tuple(skipped))
