"""The HTTP service's first address, kept so that `from indexer.service import create_app` works:
the service itself is the package indexer/serve/ (its docstring lists the endpoints).

Public API:
    create_app(settings, *, api_key=None, library_roots=None, loopback_hosts=False) -> FastAPI
    run(settings, host="127.0.0.1", port=8000, api_key=None, library_roots=None)
    ServiceConfigError      run() refuses a setup (a non-loopback address without an API key)
"""

from __future__ import annotations

from .serve.app import ServiceConfigError, create_app, run

__all__ = ["create_app", "run", "ServiceConfigError"]
