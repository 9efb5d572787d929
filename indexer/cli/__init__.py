"""`hoprag`: the command line, a thin mirror of the Index API.

    hoprag build LIBRARY [--embedder NAME] [--llm NAME]   Index.build
    hoprag upsert FILE|-  /  hoprag delete KEY...     Index.upsert / Index.delete (JSONL of {key, text, metadata})
    hoprag search QUERY [-k N] [--mode M] [--law L --pcode P --key K]  Index.search (alias: query)
    hoprag hop QUERY [-k N] [--n-hop N] [--mode M] [filters]        Index.hop_search
    hoprag neighbors REF [--direction D] [--kinds K,K]              Index.neighbors
    hoprag serve [--host H --port P]            the HTTP API (indexer/serve/)
    hoprag eval QUERIES.jsonl                   recall@k, MRR, nDCG@10 per mode
    hoprag stats                                Index.stats
    hoprag passage KEY_OR_ID                    Index.passage (an all-digit ref: the id, else the key, as over HTTP)
    hoprag reembed --embedder NAME              Index.reembed
    hoprag graph export --format graphml|json   Index.graph
    hoprag snapshots list | restore GEN         Index.snapshots_list / restore_snapshot
    hoprag questions export FILE | import FILE  Index.export_questions / import_questions
    hoprag doctor                               which embedders and devices work here

Command = method, option = keyword, with the names of the Python and HTTP APIs (tests/test_vocabulary.py
holds them equal): `query`, `k`, `mode`, `n_hop` (rounds of a hop search; `hops` is only the
neighbourhood's radius), `ref`, `direction`, `kinds` (comma-separated, as over HTTP), `as_of`; the
filters law/pcode/key are one option each. Every command takes --home (or HOPRAG_HOME) and --json.
Fixed choices (--mode, --direction, --kinds, --format, --split) are enums: a typo exits 2 with the
choices listed. -k is checked against the same HOPRAG_MAX_K as the HTTP API. Exit codes: 0
success, 1 user error (one message, no traceback), 2 usage.

The package: common.py (the app, shared options and helpers), queries.py (search, hop, neighbors,
passage, history, diff), builds.py (build, upsert, delete, reembed, questions, graph, snapshots), servers.py
(serve, mcp), admin.py (eval, stats, config, doctor). The commands are registered below, in the
order `hoprag --help` lists them.
"""

from __future__ import annotations

from typing import NoReturn

from . import admin, builds, queries, servers
from .common import app
from .exit import exit_code, leave
from .queries import HopMode, SearchMode

__all__ = ["HopMode", "SearchMode", "app", "main"]

app.command()(builds.build)
app.command()(builds.upsert)
app.command()(builds.delete)
app.command()(queries.search)
app.command("query", hidden=True, help="The same as `hoprag search` (its earlier name).")(queries.search)
app.command()(queries.hop)
app.command()(queries.neighbors)
app.command()(queries.history)
app.command()(queries.diff)
app.command()(servers.serve)
app.command()(servers.mcp)
app.command("eval")(admin.eval_)
app.command()(admin.stats)
app.command("config")(admin.config_cmd)
app.command()(queries.passage)
app.command()(builds.reembed)
app.command()(admin.doctor)
app.add_typer(builds.graph_app, name="graph")
app.add_typer(builds.snapshots_app, name="snapshots")
app.add_typer(builds.questions_app, name="questions")


def main(argv: list[str] | None = None) -> NoReturn:
    """The console entry point (`hoprag`, `python -m indexer`): the command, then an exit that
    skips the interpreter's teardown of the modules (exit.py)."""
    try:
        app(args=argv, prog_name="hoprag")
        code = 0
    except SystemExit as exc:
        code = exit_code(exc)
    leave(code)
