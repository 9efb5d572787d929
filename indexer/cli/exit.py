"""How a `hoprag` process ends once its command has returned.

A command's work is done when it returns: the index is closed, its transaction committed, its
output written. What the interpreter does after that is tear down every module it imported, and
for this program that is not free: SQLAlchemy's modules alone take ~0.24 s to tear down on the
2-core VM, the whole set ~0.3 s, a third of a no-op `hoprag build` and more than the build itself
(`python -c "import sqlalchemy.orm"` exits in 0.26 s, a bare interpreter in 0.02 s). So the
process runs the exit handlers (logging's flush among them), flushes its output and leaves with
os._exit. Where another non-daemon thread still runs, it exits the ordinary way, which waits for it.

Public API:
    exit_code(SystemExit) -> int     what the shell sees: None 0, a number itself, a message 1 (printed)
    leave(code) -> NoReturn
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

__all__ = ["exit_code", "leave"]


def exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # as the interpreter does with sys.exit("message")
    return 1


def leave(code: int) -> NoReturn:
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others or run_handlers is None:
        sys.exit(code)  # the ordinary exit: it joins those threads first
    run_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`hoprag search … | head`)
            stream.flush()
    os._exit(code)
