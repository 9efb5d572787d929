"""`milvus-lite server` as a child process: Milvus' gRPC API on a loopback port, with its own data
folder, for tests, benchmarks and one-machine set-ups that several processes share (an embedded
Milvus Lite file admits one process only).

Public API:
    MilvusLiteServer(data, port=0)   started and ready (~1 s) when constructed; port 0: a free one
        .uri -> "http://127.0.0.1:PORT", .pid, .rss_bytes(), .stop()
    (also a context manager)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["MilvusLiteServer"]


class MilvusLiteServer:
    def __init__(self, data: str | Path, port: int = 0, timeout: float = 60.0):
        data = Path(data)
        exe = shutil.which("milvus-lite") or str(Path(sys.executable).with_name("milvus-lite"))
        if not port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        self.port = int(port)
        self.uri = f"http://127.0.0.1:{self.port}"
        data.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = data.with_suffix(".log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [exe, "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"milvus-lite server did not start: see {self.log_path}") from None
                time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> MilvusLiteServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
