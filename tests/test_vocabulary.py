"""One vocabulary (issue 23, item 8): every query and build operation takes the same parameter
names in Python (Index, Client), on the CLI, over HTTP and as MCP tools, derived here from the
signatures, request models and tool schemas themselves; `hops` names only a neighbourhood's radius.
The few differences are listed below, each with its reason, and nothing else may differ."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from indexer import cli
from indexer.client import Client
from indexer.index import Index
from indexer.retrieve.retriever import Retriever
from indexer.service import create_app
from indexer.settings import Settings

# operation: (Index method, CLI command or None, (HTTP method, path) or None, MCP tool or None)
OPERATIONS = {
    "search": ("search", "search", ("post", "/search"), "search"),
    "hop_search": ("hop_search", "hop", ("post", "/hop-search"), "hop_search"),
    "neighbors": ("neighbors", "neighbors", ("get", "/passages/{ref}/neighbors"), "neighbors"),
    "neighbourhood": ("neighbourhood", None, ("get", "/passages/{ref}/graph"), None),
    "passage": ("passage", "passage", ("get", "/passages/{ref}"), "passage"),
    "history": ("history", "history", ("get", "/passages/{key}/history"), "history"),
    "diff": ("diff", "diff", ("get", "/diff"), "diff"),
    "build": ("build", "build", ("post", "/builds"), None),
}
# Python-only: a callback, a deadline object, the client's own wait
PYTHON_ONLY = {"progress", "deadline", "timeout_s"}
# the CLI's own: where the index is, its output form, and settings a build may override for one run
CLI_ONLY = {"home", "as_json", "embed_base_url", "llm_base_url"}
# the CLI spells the filters as one option each (--law, --pcode, --key, --filter FIELD=VALUE for
# metadata): `filters` in the APIs
CLI_FILTERS = {"law", "pcode", "key", "field_filter"}
# `from` is a Python keyword: date_from/date_to in Python, from/to over HTTP and on the CLI's flags
HTTP_NAMES = {"from": "date_from", "to": "date_to"}


def _python(method: str, cls=Index) -> set[str]:
    params = inspect.signature(getattr(cls, method)).parameters
    names = {n for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):   # Index.hop_search(**kw): the retriever's
        names |= set(inspect.signature(getattr(Retriever, method)).parameters) - {"self"}
    return names - PYTHON_ONLY


def _cli(command: str, python: set[str]) -> tuple[set[str], dict[str, list[str]]]:
    callback = next(c.callback for c in cli.app.registered_commands if (c.name or c.callback.__name__) == command)
    params = inspect.signature(callback).parameters
    names = set(params) - CLI_ONLY
    if "filters" in python:
        names = (names - CLI_FILTERS) | {"filters"}
    flags = {n: list(getattr(p.default, "param_decls", []) or []) for n, p in params.items()}
    return names, flags


@pytest.fixture(scope="module")
def openapi(tmp_path_factory):
    return create_app(Settings(home=tmp_path_factory.mktemp("vocabulary"))).openapi()


def _http(spec: dict, method: str, path: str) -> set[str]:
    op = spec["paths"][path][method]
    names = {p["name"] for p in op.get("parameters", [])}
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in body:
        names |= set(spec["components"]["schemas"][body["$ref"].split("/")[-1]]["properties"])
    return {HTTP_NAMES.get(n, n) for n in names}


def _mcp_tools() -> dict[str, set[str]]:
    pytest.importorskip("mcp")
    from indexer.serve.mcp_server import create_mcp

    tools = asyncio.run(create_mcp(None).list_tools())
    return {t.name: set(t.input_schema["properties"]) for t in tools}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_one_name_per_parameter_everywhere(operation, openapi):
    method, command, route, tool = OPERATIONS[operation]
    python = _python(method)
    assert python == _python(method, Client) | ({"progress"} & python), f"Client.{method} differs from Index"
    if route:
        assert _http(openapi, *route) == python, f"HTTP {route} differs from Index.{method}"
    if command:
        names, flags = _cli(command, python)
        assert names == python, f"hoprag {command} differs from Index.{method}"
        for name, decls in flags.items():       # each option's long flag is its name
            if name in python and decls and name not in ("date_from", "date_to"):
                assert decls[0] == "--" + name.replace("_", "-") or decls[0] in ("-k", "--k"), (command, decls)
    if tool:
        assert _mcp_tools()[tool] == python, f"MCP tool {tool} differs from Index.{method}"


def test_hops_is_only_a_neighbourhood_radius(openapi):
    everywhere = {op: _python(OPERATIONS[op][0]) for op in OPERATIONS}
    assert [op for op, names in everywhere.items() if "hops" in names] == ["neighbourhood"]
    flags = [d for c in cli.app.registered_commands for p in inspect.signature(c.callback).parameters.values()
             for d in getattr(p.default, "param_decls", []) or []]
    assert "--hops" not in flags and "--n-hop" in flags


def test_the_check_sees_a_renamed_parameter(openapi, monkeypatch):
    """A mismatch planted in one surface fails the comparison (the test above is not vacuous)."""
    def search(self, text: str, k: int = 10, mode: str = "dense", filters=None, as_of=None):
        raise AssertionError

    monkeypatch.setattr(Client, "search", search)
    assert _python("search", Client) != _python("search")
