"""An MCP server over the index, for LLM agents (`pip install hoprag-index[mcp]`, `hoprag mcp`).

Public API:
    create_mcp(index) -> mcp.server.MCPServer
        tools      search, hop_search, passage, history, diff, neighbors: the Index methods of the
                   same names, with their arguments (JSON schemas from the signatures below) and
                   their answers as structured content
        resources  hoprag://laws                 the laws the index holds (pcode, name, articles)
                   hoprag://laws/{pcode}         a law's text, article by article, as in force today
                   hoprag://passages/{key}       one article (pcode:article) with its law and label
    http_app(index, api_key=None, max_body_bytes=1_000_000) -> ASGI app   the streamable HTTP
                   transport at /mcp, behind the same bearer key, Host rule and body limit as
                   `hoprag serve`
    run(index, transport="stdio"|"http", host="127.0.0.1", port=8766, api_key=None)

A tool's bad input (an unknown mode, law or key, a date before the history) answers an error result
with the index's message (isError: true), as the HTTP API answers 4xx; the agent reads it and
tries again. The agent never sees a traceback, a path or the LLM endpoint.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from ..errors import HTTP_STATUS, require
from ..retrieve.modes import DIRECTIONS, HOP_MODES, MODES

require("mcp", "mcp", "hoprag mcp")

from mcp.server import MCPServer  # noqa: E402
from mcp.server.mcpserver.exceptions import ResourceError, ToolError  # noqa: E402

__all__ = ["create_mcp", "http_app", "run", "TRANSPORTS"]

TRANSPORTS = ("stdio", "http")
MCP_PATH = "/mcp"

_INSTRUCTIONS = (
    "Retrieval over the statutes of Taiwan (Traditional Chinese). Start with `search` (mode hybrid) "
    "or `hop_search` for questions that need several articles; a query that names an article "
    "(勞基法第24條) gets it first. Cite articles by their key (pcode:article), law and label. "
    "`passage` with as_of gives the text in force on a date; `history` and `diff` show amendments."
)

Mode = Literal[MODES]  # type: ignore[valid-type]
HopMode = Literal[HOP_MODES]  # type: ignore[valid-type]
Direction = Literal[DIRECTIONS]  # type: ignore[valid-type]
Query = Annotated[str, Field(description="the question or keywords, e.g. 雇主延長工作時間之工資如何計算")]
K = Annotated[int, Field(ge=1, le=100, description="how many passages")]
Filters = Annotated[
    dict[str, str | int | float | bool | list[str | int | float | bool]] | None,
    Field(
        description="narrow to laws, pcodes, keys or a metadata field (a value or a list: any of them), "
        'e.g. {"law": "勞動基準法"} or {"pcode": ["N0030001"]}'
    ),
]
AsOf = Annotated[dt.date | None, Field(description="the law in force on this date (YYYY-MM-DD); default today")]
Key = Annotated[str, Field(description="an article's key, pcode:article, e.g. N0030001:24")]
Ref = Annotated[str, Field(description="an article's key (pcode:article, e.g. N0030001:24) or row id")]


def _tool_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The index's own errors (bad input, an index that cannot answer now) as the tool's error
    result; anything else stays unexpected (logged by the SDK, answered without its details)."""
    import functools

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyError as e:
            raise ToolError(f"no passage {e.args[0]!r} in this index") from None
        except tuple(HTTP_STATUS) as e:
            raise ToolError(str(e)) from None
        except ValueError as e:  # dates the history cannot answer, and the like
            raise ToolError(str(e)) from None

    return call


def create_mcp(index: Any) -> MCPServer:
    server = MCPServer("hoprag-index", instructions=_INSTRUCTIONS, log_level="WARNING")

    def tool() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        # answers as structured content (JSON), besides the same JSON as text for older clients
        return server.tool(structured_output=True)

    @tool()
    @_tool_errors
    def search(
        query: Query, k: K = 10, mode: Mode = "hybrid", filters: Filters = None, as_of: AsOf = None
    ) -> dict[str, Any]:
        """Top-k passages for a query: hybrid (dense + BM25 + questions, the best single ranking),
        dense, bm25, or questions (matched against the questions each article answers)."""
        hits = index.search(query, k=k, mode=mode, filters=filters, as_of=as_of)
        return {"hits": [h.to_dict() for h in hits]}

    @tool()
    @_tool_errors
    def hop_search(
        query: Query,
        k: K = 10,
        n_hop: Annotated[int, Field(ge=0, le=5, description="rounds of following edges")] = 2,
        mode: HopMode = "similarity",
        filters: Filters = None,
        as_of: AsOf = None,
    ) -> dict[str, Any]:
        """HopRAG multi-hop retrieval: enter at the best passages, follow question and citation
        edges (a penalty article to the duty it punishes, an exception to its rule) for n_hop
        rounds; each hit carries the path that reached it."""
        return index.hop_search(query, k=k, n_hop=n_hop, mode=mode, filters=filters, as_of=as_of).to_dict()

    @tool()
    @_tool_errors
    def passage(ref: Ref, as_of: AsOf = None) -> dict[str, Any]:
        """One article by key, with the questions it answers; as_of: the version in force on that
        date, with the dates it was in force."""
        found = index.passage(ref, as_of=as_of)
        if found is None:
            raise KeyError(ref)
        return found

    @tool()
    @_tool_errors
    def history(key: Key) -> dict[str, Any]:
        """Every version of one article, oldest first, with the dates each was in force."""
        return {"key": key, "versions": index.history(key)}

    @tool()
    @_tool_errors
    def diff(
        date_from: Annotated[dt.date, Field(description="the earlier date")],
        date_to: Annotated[dt.date, Field(description="the later date")],
        law: Annotated[str | None, Field(description="one law, by name or pcode")] = None,
    ) -> dict[str, Any]:
        """Articles added, changed (with a text diff), removed and relabeled between two dates."""
        return index.diff(date_from, date_to, law=law)

    @tool()
    @_tool_errors
    def neighbors(
        ref: Ref,
        direction: Direction = "out",
        kinds: Annotated[
            list[Literal["question", "citation", "structural"]] | None, Field(description="edge kinds; default all")
        ] = None,
        as_of: AsOf = None,
    ) -> dict[str, Any]:
        """The articles one edge away: the ones it cites or that cite it (with the citation as
        written and its legal role) and the ones answering the questions it raises."""
        return {"ref": ref, "neighbors": index.neighbors(ref, direction=direction, kinds=kinds, as_of=as_of)}

    @server.resource("hoprag://laws", mime_type="application/json", description="the laws this index holds")
    def laws() -> list[dict]:
        return law_list(index)

    @server.resource("hoprag://laws/{pcode}", mime_type="text/plain", description="a law's text as in force today")
    def law(pcode: str) -> str:
        text = law_text(index, pcode)
        if text is None:
            raise ResourceError(f"no law {pcode!r} in this index")
        return text

    @server.resource("hoprag://passages/{key}", mime_type="text/plain", description="one article, by pcode:article")
    def article(key: str) -> str:
        found = index.passage(key)
        if found is None:
            raise ResourceError(f"no passage {key!r} in this index")
        return f"{found['law']} {found.get('label') or found['article']}\n{found['text']}"

    return server


def law_list(index: Any) -> list[dict]:
    """The laws of the current generation: pcode, name, number of articles."""
    st = index.retriever.state()
    counts: dict[str, int] = {}
    for p in st.info.values():
        counts[p.doc_key] = counts.get(p.doc_key, 0) + 1
    return [{"pcode": doc, "name": law, "articles": counts.get(doc, 0)} for law, doc in sorted(st.doc_of_law.items())]


def law_text(index: Any, pcode: str) -> str | None:
    """A law's articles in the library's order, each under its label; None for an unknown pcode."""
    st = index.retriever.state()
    rows = sorted((pid, p) for pid, p in st.info.items() if p.doc_key == pcode)
    if not rows:
        return None
    name = rows[0][1].law
    return name + "\n\n" + "\n\n".join(f"{p.label or p.article}\n{p.text}" for _, p in rows)


def http_app(index: Any, api_key: str | None = None, max_body_bytes: int = 1_000_000) -> Any:
    """The streamable HTTP transport at /mcp; with `api_key`, every request needs `Authorization:
    Bearer <key>`; without one, only loopback Host names are answered (a page in a browser cannot
    reach the tools through DNS rebinding), as `hoprag serve` does. Stateless: each request stands
    alone, so any number of agents share one server and a restart loses no session."""
    from mcp.server.transport_security import TransportSecuritySettings

    from .middleware import guard

    app = create_mcp(index).streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        # the Host rule is guard's, the same as hoprag serve's (the SDK's own would refuse every
        # non-loopback name even with a key)
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return guard(app, max_body_bytes, api_key=(api_key or "").strip() or None)


def run(
    index: Any, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8766, api_key: str | None = None
) -> None:
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}: {', '.join(TRANSPORTS)}")
    if transport == "stdio":
        create_mcp(index).run("stdio")
        return
    import uvicorn

    from .app import check_bind

    api_key = check_bind(host, api_key)  # as hoprag serve: off loopback, only with a key
    app = http_app(index, api_key=api_key, max_body_bytes=index.settings.max_body_bytes)
    uvicorn.run(app, host=host, port=port, log_level="warning")
