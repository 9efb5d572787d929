"""`hoprag mcp` with the official MCP SDK's real client: the tools over stdio (a `hoprag mcp`
process) and over streamable HTTP (a real server on loopback, behind the API key and the Host
rule of `hoprag serve`) answer what Index answers, in the same order; bad input is an error result
with the index's message; the laws are resources."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

import httpx
import pytest

from .conftest import WALK_MECHANICS, need, requires_data
from .live import LiveServer, served_index

pytestmark = requires_data
OVERTIME = "雇主延長工作時間之工資如何計算"
LAWS = ("N0030001", "N0030002")
KEY = "mcp-key-51c2"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    need("mcp")
    with served_index(tmp_path_factory.mktemp("mcp"), LAWS, **WALK_MECHANICS) as env:
        yield env


@pytest.fixture(scope="module")
def mcp_url(env):
    from indexer.serve.mcp_server import http_app

    with LiveServer(http_app(env["index"], api_key=KEY)) as server:
        yield server.url + "/mcp"


def _stdio(env, backend: dict[str, str]):
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "indexer", "mcp", "--home", str(env["home"])],
        # the same settings and backend as the Index the answers are compared with
        env={k: v for k, v in os.environ.items() if not k.startswith("HOPRAG_")}
        | {f"HOPRAG_{name.upper()}": str(value) for name, value in WALK_MECHANICS.items()}
        | backend,
    )


def _http(url, key=KEY):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=60))


async def _session(transport, calls):
    from mcp import Client

    async with Client(transport) as client:
        return await calls(client)


async def _every_tool(client) -> dict:
    out = {"tools": {t.name: t for t in (await client.list_tools()).tools}}

    async def call(name, **args):
        r = await client.call_tool(name, args)
        return r, (r.structured_content if not r.is_error else r.content[0].text)

    out["search"] = await call("search", query=OVERTIME, k=5)
    out["filtered"] = await call("search", query=OVERTIME, k=3, mode="dense", filters={"law": "勞基法施行細則"})
    out["hop"] = await call("hop_search", query=OVERTIME, k=6, n_hop=2)
    out["passage"] = await call("passage", ref="N0030001:24")
    out["history"] = await call("history", key="N0030001:24")
    out["neighbors"] = await call("neighbors", ref="N0030001:24", direction="both")
    out["bad_mode"] = await call("search", query=OVERTIME, mode="fast")
    out["no_key"] = await call("passage", ref="N0030001:999")
    out["early"] = await call("diff", date_from="1990-01-01", date_to="2024-12-31")
    out["laws"] = json.loads((await client.read_resource("hoprag://laws")).contents[0].text)
    out["law"] = (await client.read_resource("hoprag://laws/N0030002")).contents[0].text
    out["article"] = (await client.read_resource("hoprag://passages/N0030001:24")).contents[0].text
    return out


def _check(out, idx):
    assert set(out["tools"]) == {"search", "hop_search", "passage", "history", "diff", "neighbors"}
    schema = out["tools"]["search"].input_schema
    assert schema["required"] == ["query"] and set(schema["properties"]) == {"query", "k", "mode", "filters", "as_of"}
    assert "hybrid" in json.dumps(schema["properties"]["mode"])
    r, got = out["search"]
    assert not r.is_error and [h["key"] for h in got["hits"]] == [h.key for h in idx.search(OVERTIME, k=5, mode="hybrid")]
    want = idx.search(OVERTIME, k=3, mode="dense", filters={"law": "勞基法施行細則"})
    assert [h["key"] for h in out["filtered"][1]["hits"]] == [h.key for h in want]
    assert all(h["law"] == "勞動基準法施行細則" for h in out["filtered"][1]["hits"])
    hop = idx.hop_search(OVERTIME, k=6, n_hop=2)
    assert [h["key"] for h in out["hop"][1]["hits"]] == [h.key for h in hop]
    assert out["hop"][1]["steps"] == hop.steps
    assert out["passage"][1]["key"] == "N0030001:24" and "延長工作時間" in out["passage"][1]["text"]
    assert out["history"][1]["versions"] == json.loads(json.dumps(idx.history("N0030001:24")))
    assert [n["key"] for n in out["neighbors"][1]["neighbors"]] == [
        n["key"] for n in idx.neighbors("N0030001:24", direction="both")
    ]
    for name, message in (("bad_mode", "'hybrid'"), ("no_key", "no passage 'N0030001:999'"), ("early", "1990-01-01")):
        r, text = out[name]
        assert r.is_error and message in text, (name, text)
        assert "Traceback" not in text and not re.search(r"\.py\b", text)   # no source file named
    assert {(law["pcode"], law["name"]) for law in out["laws"]} == {
        ("N0030001", "勞動基準法"), ("N0030002", "勞動基準法施行細則")}
    assert out["law"].startswith("勞動基準法施行細則\n\n第1條\n")
    assert out["article"].startswith("勞動基準法 第24條\n雇主延長勞工工作時間者")


def test_tools_and_resources_over_stdio(env, backend_env):
    _check(asyncio.run(_session(_stdio(env, backend_env(env["home"])), _every_tool)), env["index"])


def test_tools_and_resources_over_streamable_http(env, mcp_url):
    _check(asyncio.run(_session(_http(mcp_url), _every_tool)), env["index"])


def test_http_transport_needs_the_key_and_a_loopback_host(env, mcp_url):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    r = httpx.post(mcp_url, json=body, headers=headers)
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    r = httpx.post(mcp_url, json=body, headers=headers | {"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    from indexer.serve.mcp_server import http_app

    with LiveServer(http_app(env["index"])) as server:          # no key: loopback Host names only
        url = server.url + "/mcp"
        r = httpx.post(url, json=body, headers=headers | {"Host": "evil.example"})
        assert r.status_code == 421
        tools = asyncio.run(_session(_http(url, key=None), lambda c: c.list_tools()))
        assert len(tools.tools) == 6
