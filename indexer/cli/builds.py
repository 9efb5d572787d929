"""The commands that write an index: `build`, `reembed`, and the `questions` (export, import),
`graph` (export) and `snapshots` (list, restore) groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .common import HomeOpt, JsonOpt, ProgressBar, choices, date_option, emit, fail, no_huge_pages, open_index

GraphFormat: Any = choices("GraphFormat", "graphml", "json")


def _print_report(r: dict) -> None:
    from ..build.report import report_lines

    for line in report_lines(r):
        typer.echo(line)


def build(
    library: Path = typer.Argument(..., help="folder (or one file) of laws: .json .pdf .txt .md .jsonl"),
    embedder: str | None = typer.Option(
        None,
        "--embedder",
        "-e",
        help="bge-m3 | st:<name-or-path> | use-multilingual | gemini:<model> | openai:<model> "
        "[default: the index's, else HOPRAG_EMBEDDER, else bge-m3]",
    ),
    embed_base_url: str | None = typer.Option(
        None,
        "--embed-base-url",
        help="OpenAI-compatible embeddings endpoint for openai:<model>, e.g. http://localhost:11434/v1 "
        "[default: HOPRAG_EMBED_BASE_URL]; queries read it from the environment or hoprag.toml",
    ),
    llm: str | None = typer.Option(
        None,
        "--llm",
        help="pseudo-queries from gemini:<model> | openai:<model> | none [default: HOPRAG_LLM, else none]",
    ),
    llm_base_url: str | None = typer.Option(
        None, "--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1"
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        callback=date_option,
        help="the date the library describes, YYYY-MM-DD [default: its newest 最新異動日期, else today]; "
        "older than the index's newest date: the versions join the history, the index as now stays",
    ),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Index a library; only new or changed passages are embedded or sent to the LLM."""
    if not library.exists() and not library.is_symlink():
        fail(f"{library}: no such file or folder (nothing was built, no index was created)")
    urls = {"llm_base_url": llm_base_url, "embed_base_url": embed_base_url}
    no_huge_pages()
    with open_index(home, create=True, **urls) as idx, ProgressBar() as progress:
        report = idx.build(library, embedder=embedder, llm=llm, progress=progress, as_of=as_of).to_dict()
    emit(report, as_json, _print_report)


def upsert(
    file: str = typer.Argument(..., help="JSONL of {key, text, metadata?, law?, article?, doc_key?}; - reads stdin"),
    embedder: str | None = typer.Option(
        None, "--embedder", "-e", help="for a new index [default: the index's, else HOPRAG_EMBEDDER]"
    ),
    llm: str | None = typer.Option(None, "--llm", help="pseudo-queries for the new texts, as for build"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Put passages in by key (Index.upsert): only their new texts are embedded; one new generation."""
    import sys

    from ..library.jsonl import json_objects

    raw = sys.stdin.buffer.read() if file == "-" else _read(Path(file))

    def bad(reason: str, line: int | None) -> Exception:
        return typer.BadParameter(f"line {line}: {reason}" if line else reason, param_hint="FILE")

    passages = [obj for _, obj in json_objects(raw, bad, "key and text")]
    no_huge_pages()
    if not passages:
        fail(f"{file}: no passages (nothing was changed)")
    with open_index(home, create=True) as idx, ProgressBar() as progress:
        report = idx.upsert(passages, embedder=embedder, llm=llm, progress=progress).to_dict()
    emit(report, as_json, _print_report)


def delete(
    keys: list[str] = typer.Argument(..., help="passage keys, e.g. N0030001:24"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Take passages out by key (Index.delete); an unknown key changes nothing."""
    no_huge_pages()
    with open_index(home) as idx, ProgressBar() as progress:
        try:
            report = idx.delete(keys, progress=progress).to_dict()
        except KeyError as exc:
            fail(str(exc.args[0]))
    emit(report, as_json, _print_report)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def reembed(
    embedder: str = typer.Option(..., "--embedder", "-e", help="the new embedder"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Switch the index to another embedder, re-embedding every passage through the cache."""
    no_huge_pages()
    with open_index(home) as idx, ProgressBar() as progress:
        report = idx.reembed(embedder, progress=progress).to_dict()
    emit(
        report,
        as_json,
        lambda r: typer.echo(
            f"generation {r['generation']}: {r['passages']} passages now embedded with {r['embedder']} "
            f"({r['embedded']} embedded, {r['cache_hits']} from cache, {r['seconds']:.2f} s)"
        ),
    )


graph_app = typer.Typer(help="The passage graph.", no_args_is_help=True)
snapshots_app = typer.Typer(help="Snapshots of vectors and graph, one per build generation.", no_args_is_help=True)
questions_app = typer.Typer(help="The LLM's pseudo-queries (the cache of its answers).", no_args_is_help=True)


@questions_app.command("export")
def questions_export(
    out: Path = typer.Argument(..., help="JSONL file to write"), home: Path | None = HomeOpt, as_json: bool = JsonOpt
) -> None:
    """Write every cached LLM answer (pseudo-queries by passage text) as JSONL."""
    with open_index(home) as idx:
        info = idx.export_questions(out)
    emit(
        info,
        as_json,
        lambda i: typer.echo(
            f"wrote {i['path']}: {i['answers']} answers ({i['failed_not_exported']} failed calls not exported)"
        ),
    )


@questions_app.command("import")
def questions_import(
    src: Path = typer.Argument(..., help="JSONL file from `hoprag questions export`"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Seed the cache with exported answers: the next build asks the LLM only for the rest."""
    with open_index(home, create=True) as idx:
        info = idx.import_questions(src)
    emit(
        info,
        as_json,
        lambda i: typer.echo(
            f"imported {i['imported']} answers ({i['already_cached']} already cached, {i['rejected']} rejected by "
            "the question filter: the next build asks the LLM for those)"
        ),
    )


@graph_app.command("export")
def graph_export(
    fmt: GraphFormat = typer.Option(
        GraphFormat("graphml"), "--format", "-f", help="graphml (Gephi) | json (networkx node-link)"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="file to write"),
    home: Path | None = HomeOpt,
) -> None:
    """Write the graph with passage and edge attributes."""
    from ..store.graph import export_graph

    with open_index(home) as idx:
        g = idx.graph()
        export_graph(g, fmt.value, out)
    typer.echo(f"wrote {out}: {g.number_of_nodes()} passages, {g.number_of_edges()} edges", err=True)


@snapshots_app.command("list")
def snapshots_list(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Snapshots on disk, newest last."""
    with open_index(home) as idx:
        rows = idx.snapshots_list()

    def human(rows):
        for r in rows:
            counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
            typer.echo(
                f"{'*' if r['current'] else ' '} gen {r['generation']:>4}  {r['created_at'] or '?'}  {counts}  [{r['status']}]"
            )

    emit(rows, as_json, human)


@snapshots_app.command("restore")
def snapshots_restore(
    generation: int = typer.Argument(..., help="generation to restore"), home: Path | None = HomeOpt
) -> None:
    """Verify a snapshot and load it (the current generation's; older ones are refused with why)."""
    with open_index(home) as idx:
        idx.restore_snapshot(generation)
    typer.echo(f"snapshot of generation {generation} verified and loaded")
