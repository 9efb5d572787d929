"""Headless Chromium for the page's browser tests and README screenshots (Playwright driving the
system's Chromium: Playwright's own browser download is not reachable everywhere we run).

Public API:
    chromium_path() -> str | None     HOPRAG_CHROMIUM, else `chromium` / `chromium-browser` on PATH
    launch(playwright) -> Browser      headless, with the flags a closed network needs
"""

from __future__ import annotations

import os
import shutil
from typing import Any

__all__ = ["chromium_path", "launch", "FLAGS"]

# Without the background-networking flags Chromium keeps reaching for Google's hosts (updates,
# sync, field trials): on a closed network each is refused, and none belongs in a test.
FLAGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("HOPRAG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright: Any) -> Any:
    path = chromium_path()
    if not path:
        raise RuntimeError("no Chromium found: apt-get install chromium, or set HOPRAG_CHROMIUM")
    return playwright.chromium.launch(executable_path=path, args=FLAGS)
