"""A real HTTP server for the tests: uvicorn on loopback in a thread, an index served by it, and
waiting for a build job; waiting for a server another process starts (infinity, `hoprag serve`)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from typing import BinaryIO

import httpx
import pytest
import uvicorn


def free_port() -> int:
    """A loopback port nobody listens on once this returns: for a server a test starts, or for a
    client that must find nothing there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    """Whether `url` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_until_answers(what: str, url: str, proc: subprocess.Popen, log: BinaryIO, timeout: float = 180) -> None:
    """Poll `url` until the server `what` (the process `proc`, writing to the file `log`: a file,
    not a pipe, so that a chatty server never blocks on it and its tail is read without waiting)
    answers it; one that exits first, or is not up within `timeout` seconds, fails the test with
    the tail of its log."""
    deadline = time.monotonic() + timeout
    while not answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            pytest.fail(f"{what} did not come up at {url}: {log.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.3)


class LiveServer:
    """uvicorn on 127.0.0.1 and a port the OS picks, in a daemon thread."""

    def __init__(self, app):
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                   timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kw)


def wait_job(client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/builds/{job_id}").json()
        if job["status"] in ("committed", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"build {job_id} did not finish: {job}")


@contextlib.contextmanager
def served_index(base, laws, api_key: str | None = None, **settings):
    """An index of the 2024 laws `laws` (pcodes) built with the offline embedder under `base`, a
    real `hoprag serve` app over it on loopback, and an `Index` opened on the same home:
    yields {"url", "index", "roots", "home"}."""
    from indexer.index import Index
    from indexer.service import create_app
    from indexer.settings import Settings

    from .conftest import LAWS_2024

    roots, home = base / "roots", base / "home"
    lib = roots / "laws"
    lib.mkdir(parents=True)
    for pcode in laws:
        shutil.copy(LAWS_2024 / f"{pcode}.json", lib / f"{pcode}.json")
    with Index(settings=Settings(home=home, **settings)) as idx:
        idx.build(lib, embedder="use-multilingual")
    app = create_app(Settings(home=home, **settings), api_key=api_key, library_roots=[roots])
    with LiveServer(app) as server, Index(settings=Settings(home=home, **settings)) as local:
        yield {"url": server.url, "index": local, "roots": roots, "home": home}
