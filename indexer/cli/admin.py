"""The commands about an index rather than in it: `eval` (retrieval quality per mode), `stats`,
`config` (the effective settings and their sources) and `doctor` (what works on this machine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import HomeOpt, JsonOpt, NHopOpt, ProgressBar, choices, config_path, emit, open_index, settings_for

Split: Any = choices("Split", "all", "dev", "test")


def eval_(
    queries: Path = typer.Argument(..., help="JSONL of {question, relevant: [ids or keys]}"),
    modes: str = typer.Option("dense,hybrid,hop", "--modes", help="comma-separated: dense, questions, hybrid, hop"),
    n_hop: int = NHopOpt,
    split: Split = typer.Option(
        Split("all"), "--split", help="all | dev | test: a fixed half by query id (tune on dev, report on test)"
    ),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """recall@1/5/10/20, MRR and nDCG@10 for each mode side by side."""
    from ..retrieve.evaluate import evaluate, format_table, load_queries, split_queries

    with open_index(home) as idx, ProgressBar() as progress:
        report = evaluate(
            idx,
            split_queries(load_queries(queries), split.value),
            modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
            n_hop=n_hop,
            progress=progress,
        )
    emit(report.to_dict(), as_json, lambda _: typer.echo(format_table(report)))


def stats(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Counts of laws, passages, vectors; the embedder; the last build."""
    with open_index(home) as idx:
        s = idx.stats()

    def human(s):
        emb = s["embedder"]
        typer.echo(f"index {s['home']} (generation {s['generation']}, snapshot {s['snapshot']})")
        typer.echo(
            f"  {s['laws']} laws, {s['passages']} passages ({s['repealed_passages']} repealed), "
            f"{s['vectors']} vectors, {s['cached_embeddings']} cached embeddings"
        )
        typer.echo(f"  embedder: {emb['name']} ({emb['model']}, {emb['dim']}-d)" if emb else "  embedder: none yet")
        q = s["pseudo_queries"]
        typer.echo(
            f"  pseudo-queries: {q['incoming']} incoming, {q['outgoing']} outgoing; edges: "
            + ", ".join(f"{k} {v}" for k, v in s["edges"].items())
        )
        if s["library"]:
            typer.echo(f"  library: {s['library']}")

    emit(s, as_json, human)


def config_cmd(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """The effective settings and where each value came from: argument, environment, config file, default."""
    from ..settings import setting_sources

    settings_for(home)  # a bad value or config file: the one `error:` line of every command
    rows = setting_sources(home, config_path())

    def human(rows):
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            typer.echo(
                f"{r['name']:<{width}}  {json.dumps(r['value'], ensure_ascii=False, default=str)}  [{r['source']}]"
            )

    emit(rows, as_json, human)


def doctor(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Which embedders and devices are usable here, where models are cached, free disk."""
    from ..doctor import diagnose, render

    report = diagnose(settings_for(home))
    emit(report, as_json, render)
