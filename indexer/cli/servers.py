"""The long-running commands: `serve` (the HTTP API) and `mcp` (the MCP server for agents), each
checking its extra is installed and reading the bearer key from --api-key or --api-key-file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .common import ApiKeyFileOpt, ApiKeyOpt, HomeOpt, choices, fail, open_index, settings_for, user_errors

Transport: Any = choices("Transport", "stdio", "http")


def _api_key(api_key: str | None, api_key_file: Path | None) -> str | None:
    """--api-key (or HOPRAG_API_KEY), or the first line of --api-key-file."""
    if api_key_file is None:
        return api_key
    try:
        lines = api_key_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read --api-key-file {api_key_file}: {exc}")
    key = lines[0].strip() if lines else ""
    if not key:
        fail(f"--api-key-file {api_key_file} is empty")
    return key


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; other than loopback needs --api-key"),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    api_key: str | None = ApiKeyOpt,
    api_key_file: Path | None = ApiKeyFileOpt,
    library_root: list[Path] | None = typer.Option(
        None, "--library-root", help="folders POST /builds may read (repeatable)"
    ),
    home: Path | None = HomeOpt,
) -> None:
    """HTTP API (FastAPI): /search, /hop-search, /passages, /builds, /stats, /healthz, /docs."""
    from ..errors import MissingExtra, require

    try:
        require("fastapi", "server", "the HTTP service")
        require("uvicorn", "server", "the HTTP service")
    except MissingExtra as exc:
        fail(str(exc))
    from ..serve import run

    settings = settings_for(home)
    api_key = _api_key(api_key, api_key_file)
    try:
        run(settings, host=host, port=port, api_key=api_key, library_roots=library_root or None)
    except user_errors() as exc:  # a bad root or home, a key missing for a public address
        fail(str(exc))


def mcp(
    transport: Transport = typer.Option("stdio", "--transport", help="stdio (an agent starts this process) or http"),
    host: str = typer.Option("127.0.0.1", "--host", help="http: address to bind; other than loopback needs --api-key"),
    port: int = typer.Option(8766, "--port", min=0, max=65535, help="http: port (the endpoint is /mcp)"),
    api_key: str | None = ApiKeyOpt,
    api_key_file: Path | None = ApiKeyFileOpt,
    home: Path | None = HomeOpt,
) -> None:
    """MCP server for LLM agents: search, hop_search, passage, history, diff and neighbors as tools,
    the laws as resources (hoprag://laws/{pcode}); needs the extra named mcp."""
    from ..errors import MissingExtra, require

    try:
        require("mcp", "mcp", "hoprag mcp")
        if transport.value == "http":
            require("uvicorn", "server", "hoprag mcp --transport http")
    except MissingExtra as exc:
        fail(str(exc))
    from ..serve.mcp_server import run

    api_key = _api_key(api_key, api_key_file)
    with open_index(home) as idx:
        try:
            run(idx, transport=transport.value, host=host, port=port, api_key=api_key)
        except user_errors() as exc:  # a key missing for a public address
            fail(str(exc))
