"""How long the code under test asked to wait, rather than how long the wait took: a wall-clock
upper bound flakes on a busy machine, the requested delays do not.

Public API:
    record_sleeps(monkeypatch, module, *, coroutine) -> list[float]
        every delay passed to asyncio.sleep (coroutine=True) or time.sleep (False) by code of
        `module` (its __name__), in order; the waits still happen, calls from elsewhere pass through
"""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

__all__ = ["record_sleeps"]


def record_sleeps(monkeypatch: pytest.MonkeyPatch, module: str, *, coroutine: bool) -> list[float]:
    owner = asyncio if coroutine else time
    real = owner.sleep
    asked: list[float] = []

    def sleep(delay, *args, **kwargs):
        if sys._getframe(1).f_globals.get("__name__") == module:
            asked.append(float(delay))
        return real(delay, *args, **kwargs)

    monkeypatch.setattr(owner, "sleep", sleep)
    return asked
