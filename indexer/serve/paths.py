"""Paths a client names over HTTP, confined to the library roots the service was started with.

Public API:
    confine(raw, roots, what="library") -> Path     the resolved path inside a root; HTTPException 400/403
    check_model_path(ref, roots)                    an `st:` model: a hub id, or a folder inside a root
    libraries(roots, limit=200) -> list[str]        the folders a build may read, for GET /builds
    ROOTS_HINT                                      how to configure roots, for answers that need them
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import HTTPException

__all__ = ["confine", "check_model_path", "libraries", "ROOTS_HINT"]

ROOTS_HINT = "start the service with library roots: `hoprag serve --library-root DIR` (repeatable)"

# what a sentence-transformers model id on the hub looks like (organisation/name); anything else
# given over HTTP is a local folder, and must be an absolute path inside a library root
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")


def confine(raw: str, roots: list[Path], what: str = "library") -> Path:
    """The path, with symlinks and .. resolved, if it lies inside a root; else 403. A relative path
    is looked for in each root in turn. `~` is refused, not expanded (what the check confines must
    be what is read), and the answer never says what a path resolved to (that would let a client
    map the server's files)."""
    if raw.startswith("~"):
        raise HTTPException(400, f"{what} {raw!r}: `~` is not expanded over HTTP; give a path inside a library root")
    path = Path(raw)
    if not path.is_absolute():
        # a relative path names something inside a root: the first root that holds it (else the
        # first root, where it then does not exist); one that climbs out is refused below
        path = next((root / path for root in roots if (root / path).exists()), roots[0] / path)
    try:
        resolved = path.resolve()
    except (OSError, ValueError, RuntimeError):
        raise HTTPException(400, f"{what} path {raw!r} cannot be resolved") from None
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise HTTPException(403, f"{what} {raw!r} is outside the library roots this service may read")
    return resolved


def check_model_path(ref: str, roots: list[Path]) -> None:
    """A local model folder is code and weights the server would load: the rule of libraries,
    decided without looking whether the path exists (no oracle)."""
    if _HUB_ID.match(ref) and ".." not in ref.split("/"):
        return
    if not ref.startswith("/"):
        raise HTTPException(
            400,
            f"embedder model {ref!r}: give a hub id (organisation/name) or an absolute folder inside a library root",
        )
    confine(ref, roots, "model folder")


def libraries(roots: list[Path], limit: int = 200) -> list[str]:
    """Each root and the folders up to two levels below it that hold law files (what a build reads)."""
    from ..library import FORMATS

    found: list[str] = []
    for root in roots:
        for folder in [root, *sorted(root.glob("*")), *sorted(root.glob("*/*"))]:
            try:
                real = folder.resolve()
                # a symlink out of the root is listed nowhere: a build could not read it (403)
                if not real.is_dir() or not real.is_relative_to(root) or str(real) in found:
                    continue
                if any(f.suffix.lower() in FORMATS for f in real.iterdir() if f.is_file()):
                    found.append(str(real))
            except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
                continue
            if len(found) >= limit:
                return found
    return found
