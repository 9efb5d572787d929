"""The HTTP service's first address, kept so that `from indexer.service import create_app` works:
the service itself is the package indexer/serve/ (its docstring lists the endpoints).

Public API:
    create_app(settings, *, api_key=None, library_roots=None, loopback_hosts=False) -> FastAPI
    run(settings, host="127.0.0.1", port=8000, api_key=None, library_roots=None)
    ServiceConfigError      run() refuses a setup (a non-loopback address without an API key)
"""

from __future__ import annotations

from .native_threads import limit_native_threads  # noqa: F401  (imported from here by tests/test_service.py)
from .serve.app import ServiceConfigError, create_app, run
from .serve.middleware import is_loopback as _is_loopback  # noqa: F401  (the same)

__all__ = ["create_app", "run", "ServiceConfigError"]
