"""`hoprag`: the command line, a thin mirror of the Index API.

    hoprag build LIBRARY [--embedder NAME] [--llm NAME]   Index.build
    hoprag query TEXT [-k N]                    Index.query
    hoprag stats                                Index.stats
    hoprag passage KEY_OR_ID                    Index.passage
    hoprag reembed --embedder NAME              Index.reembed
    hoprag graph export --format graphml|json   Index.graph
    hoprag snapshots list | restore GEN         Index.snapshots_list / restore_snapshot
    hoprag doctor                               which embedders and devices work here

Every command takes --home (or HOPRAG_HOME) and --json. Exit codes: 0 success, 1 user error
(one message, no traceback), 2 usage.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

__all__ = ["app"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Local-first HopRAG index for legal texts.")

HomeOpt = typer.Option(None, "--home", envvar="HOPRAG_HOME", help="index folder [default: ./.hoprag]")
JsonOpt = typer.Option(False, "--json", help="machine-readable output")


def _user_errors() -> tuple[type[BaseException], ...]:
    from storage.db import SchemaError
    from storage.snapshots import SnapshotError
    from storage.vectors import VectorIndexError

    from .embedders import EmbedderError
    from .index import EmbedderMismatch, IndexStateError
    from .passages import LibraryError
    return (LibraryError, EmbedderError, EmbedderMismatch, IndexStateError, SchemaError, SnapshotError,
            VectorIndexError, ValueError, FileNotFoundError, PermissionError)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _open(home: Optional[Path], create: bool = False, **overrides) -> Iterator["Index"]:
    from pydantic import ValidationError

    from .index import Index
    from .settings import Settings
    try:
        settings = Settings(**({"home": home} if home is not None else {}), **overrides)
    except ValidationError as exc:
        _fail(f"invalid HOPRAG_* setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    try:
        with Index(settings=settings, create=create) as idx:
            yield idx
    except _user_errors() as exc:
        _fail(str(exc))


def _emit(data, as_json: bool, human) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


class _Progress:
    """A progress bar on a terminal; silent when stderr is a pipe or a file."""

    def __init__(self) -> None:
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.bar.__enter__()
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.bar is None or total == 0:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _print_report(r: dict) -> None:
    typer.echo(f"generation {r['generation']}: {r['documents']} documents, {r['passages']} passages "
               f"({r['repealed']} repealed, not embedded) with {r['embedder']}")
    typer.echo(f"  added {r['added']}, changed {r['changed']}, relabeled {r['relabeled']}, "
               f"removed {r['removed']}, unchanged {r['unchanged']}")
    typer.echo(f"  embedded {r['embedded']} texts, {r['cache_hits']} cache hits, {r['seconds']:.2f} s")
    if r.get("llm_calls") or r.get("pseudo_queries"):
        typer.echo(f"  LLM calls {r['llm_calls']} ({r['llm_failures']} failed, retried next build), "
                   f"{r['pseudo_queries']} pseudo-queries")
    typer.echo("  edges: " + ", ".join(f"{k} {v}" for k, v in r.get("edges", {}).items())
               + f" ({r.get('citations_unresolved', 0)} citations unresolved)")
    if r.get("skipped_files"):
        typer.echo(f"  skipped {len(r['skipped_files'])} files of no law format: "
                   + ", ".join(Path(p).name for p in r["skipped_files"][:5]))


@app.command()
def build(library: Path = typer.Argument(..., help="folder (or one file) of laws: .json .pdf .txt .md .jsonl"),
          embedder: Optional[str] = typer.Option(None, "--embedder", "-e",
                                                 help="bge-m3 | st:<name-or-path> | use-multilingual | gemini:<model> "
                                                      "[default: the index's, else HOPRAG_EMBEDDER, else bge-m3]"),
          llm: Optional[str] = typer.Option(None, "--llm", help="pseudo-queries from gemini:<model> | openai:<model> "
                                                                "| none [default: HOPRAG_LLM, else none]"),
          llm_base_url: Optional[str] = typer.Option(None, "--llm-base-url",
                                                     help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1"),
          home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Index a library; only new or changed passages are embedded or sent to the LLM."""
    overrides = {"llm_base_url": llm_base_url} if llm_base_url else {}
    with _open(home, create=True, **overrides) as idx, _Progress() as progress:
        report = idx.build(library, embedder=embedder, llm=llm, progress=progress).to_dict()
    _emit(report, as_json, _print_report)


@app.command()
def query(text: str = typer.Argument(..., help="the question"),
          k: int = typer.Option(10, "-k", "--k", min=1, max=1000, help="number of passages"),
          home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Top-k passages by dense similarity."""
    with _open(home) as idx:
        hits = [h.to_dict() for h in idx.query(text, k=k)]
    keys = ("passage_id", "key", "law", "article", "score", "text")

    def human(rows):
        for i, h in enumerate(rows, 1):
            snippet = h["text"].replace("\n", " ")
            typer.echo(f"{i:>2}. {h['score']:.3f}  {h['law']} {h['label']}  [{h['key']}]\n    "
                       f"{snippet[:120]}{'…' if len(snippet) > 120 else ''}")
    _emit([{k_: h[k_] for k_ in keys} for h in hits] if as_json else hits, as_json, human)


@app.command()
def stats(home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Counts of laws, passages, vectors; the embedder; the last build."""
    with _open(home) as idx:
        s = idx.stats()

    def human(s):
        emb = s["embedder"]
        typer.echo(f"index {s['home']} (generation {s['generation']}, snapshot {s['snapshot']})")
        typer.echo(f"  {s['laws']} laws, {s['passages']} passages ({s['repealed_passages']} repealed), "
                   f"{s['vectors']} vectors, {s['cached_embeddings']} cached embeddings")
        typer.echo(f"  embedder: {emb['name']} ({emb['model']}, {emb['dim']}-d)" if emb else "  embedder: none yet")
        q = s["pseudo_queries"]
        typer.echo(f"  pseudo-queries: {q['incoming']} incoming, {q['outgoing']} outgoing; edges: "
                   + ", ".join(f"{k} {v}" for k, v in s["edges"].items()))
        if s["library"]:
            typer.echo(f"  library: {s['library']}")
    _emit(s, as_json, human)


@app.command()
def passage(ref: str = typer.Argument(..., help="passage key (N0030001:24) or numeric id"),
            home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Show one passage."""
    with _open(home) as idx:
        p = idx.passage(int(ref) if ref.isdigit() else ref)
    if p is None:
        _fail(f"no passage {ref!r}")
    _emit(p, as_json, lambda p: typer.echo(f"{p['law']} {p['label']} [{p['key']}]\n{p['text']}"))


@app.command()
def reembed(embedder: str = typer.Option(..., "--embedder", "-e", help="the new embedder"),
            home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Switch the index to another embedder, re-embedding every passage through the cache."""
    with _open(home) as idx, _Progress() as progress:
        report = idx.reembed(embedder, progress=progress).to_dict()
    _emit(report, as_json, lambda r: typer.echo(
        f"generation {r['generation']}: {r['passages']} passages now embedded with {r['embedder']} "
        f"({r['embedded']} embedded, {r['cache_hits']} from cache, {r['seconds']:.2f} s)"))


graph_app = typer.Typer(help="The passage graph.", no_args_is_help=True)
snapshots_app = typer.Typer(help="Snapshots of vectors and graph, one per build generation.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
app.add_typer(snapshots_app, name="snapshots")


@graph_app.command("export")
def graph_export(fmt: str = typer.Option("graphml", "--format", "-f", help="graphml (Gephi) | json (networkx node-link)"),
                 out: Path = typer.Option(..., "--out", "-o", help="file to write"),
                 home: Optional[Path] = HomeOpt) -> None:
    """Write the graph with passage and edge attributes."""
    from .graph import export_graph
    if fmt not in ("graphml", "json"):
        raise typer.BadParameter("graphml or json", param_hint="--format")
    with _open(home) as idx:
        g = idx.graph()
        export_graph(g, fmt, out)
    typer.echo(f"wrote {out}: {g.number_of_nodes()} passages, {g.number_of_edges()} edges", err=True)


@snapshots_app.command("list")
def snapshots_list(home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Snapshots on disk, newest last."""
    with _open(home) as idx:
        rows = idx.snapshots_list()

    def human(rows):
        for r in rows:
            counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
            typer.echo(f"{'*' if r['current'] else ' '} gen {r['generation']:>4}  {r['created_at'] or '?'}  {counts}  [{r['status']}]")
    _emit(rows, as_json, human)


@snapshots_app.command("restore")
def snapshots_restore(generation: int = typer.Argument(..., help="generation to restore"),
                      home: Optional[Path] = HomeOpt) -> None:
    """Verify a snapshot and load it (the current generation's; older ones are refused with why)."""
    with _open(home) as idx:
        idx.restore_snapshot(generation)
    typer.echo(f"snapshot of generation {generation} verified and loaded")


@app.command()
def doctor(home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Which embedders and devices are usable here, where models are cached, free disk."""
    from .doctor import diagnose, render
    from .settings import Settings
    report = diagnose(Settings() if home is None else Settings(home=home))
    _emit(report, as_json, render)


def main() -> None:  # pragma: no cover - console entry point is `app`
    app()


logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
