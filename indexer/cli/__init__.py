"""`hoprag`: the command line, a thin mirror of the Index API.

    hoprag build LIBRARY [--embedder NAME] [--llm NAME]   Index.build
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
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from ..edge_params import EDGE_KINDS
from ..refs import resolve_passage
from ..retrieve.modes import DIRECTIONS, HOP_MODES, MODES

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..index import Index
    from ..settings import Settings

__all__ = ["app"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Local-first HopRAG index for legal texts.",
)


_config: Path | None = None  # --config of this invocation


@app.callback()
def _setup(
    config: Path | None = typer.Option(
        None,
        "--config",
        envvar="HOPRAG_CONFIG",
        help="a TOML file of settings (names as HOPRAG_*, lower case) [default: <home>/hoprag.toml, "
        "else [tool.hoprag] in ./pyproject.toml]; options and HOPRAG_* variables win over it",
    ),
) -> None:
    # configured when a command runs, not when the module is imported (a library user's logging is theirs)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    global _config
    _config = config  # every invocation sets it (CliRunner runs many in one process)


# eager: parsed before the other options, so that -k's check reads the settings of this home
HomeOpt = typer.Option(None, "--home", envvar="HOPRAG_HOME", is_eager=True, help="index folder [default: ./.hoprag]")
ApiKeyOpt = typer.Option(
    None,
    "--api-key",
    envvar="HOPRAG_API_KEY",
    help="bearer key clients must send; prefer HOPRAG_API_KEY or --api-key-file (a command line shows in ps)",
)
ApiKeyFileOpt = typer.Option(None, "--api-key-file", help="read the bearer key from this file (first line)")
JsonOpt = typer.Option(False, "--json", help="machine-readable output")


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..errors import USER_ERRORS

    return USER_ERRORS


def _fail(message: str) -> NoReturn:
    # one line, whatever the message quotes (a file name with a newline must not forge a second
    # `error:` line, nor an escape sequence repaint the terminal)
    safe = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)
    typer.echo(f"error: {safe}", err=True)
    raise typer.Exit(1)


def _settings(home: Path | None = None, **options: Any) -> Settings:
    """The one way the CLI makes its Settings: --home, --config and the options a command was given
    (one not given, None or empty, leaves its setting to the environment, the file or the default).
    A bad HOPRAG_* value or config file is one `error:` line."""
    from pydantic import ValidationError

    from ..settings import ConfigFileError, Settings

    given = {name: value for name, value in options.items() if value is not None and value != ""}
    try:
        return Settings.load(home, _config, **given)
    except ConfigFileError as exc:
        _fail(str(exc))
    except ValidationError as exc:
        _fail(f"invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")


@contextmanager
def _open(home: Path | None, create: bool = False, **overrides) -> Iterator[Index]:
    from ..index import Index

    settings = _settings(home, **overrides)
    try:
        with Index(settings=settings, create=create) as idx:
            yield idx
    except _user_errors() as exc:
        _fail(str(exc))
    except OSError as exc:  # a home under a file (--home FILE/sub), a full disk: one line, no traceback
        _fail(f"{exc.filename or settings.home}: {exc.strerror or exc}")
    except RuntimeError as exc:
        if not str(exc).startswith("Symlink loop"):  # pathlib's word for ELOOP before Python 3.13
            raise
        _fail(f"{settings.home}: a symlink loop")


def _emit(data, as_json: bool, human) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


class _Progress:
    """A progress bar on a terminal; silent when stderr is a pipe or a file."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
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
    from ..report import report_lines

    for line in report_lines(r):
        typer.echo(line)


def _date_option(value: str | None) -> str | None:
    """A date option checked at parse time: a typo exits 2 with the format, before any work."""
    if value is None:
        return None
    from ..history import parse_date

    try:
        return parse_date(value).isoformat()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


AsOfOpt = typer.Option(
    None, "--as-of", callback=_date_option, help="the law in force on this date (YYYY-MM-DD) [default: as now]"
)


@app.command()
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
        callback=_date_option,
        help="the date the library describes, YYYY-MM-DD [default: its newest 最新異動日期, else today]; "
        "older than the index's newest date: the versions join the history, the index as now stays",
    ),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Index a library; only new or changed passages are embedded or sent to the LLM."""
    if not library.exists() and not library.is_symlink():
        _fail(f"{library}: no such file or folder (nothing was built, no index was created)")
    urls = {"llm_base_url": llm_base_url, "embed_base_url": embed_base_url}
    with _open(home, create=True, **urls) as idx, _Progress() as progress:
        report = idx.build(library, embedder=embedder, llm=llm, progress=progress, as_of=as_of).to_dict()
    _emit(report, as_json, _print_report)


def _choices(name: str, *values: str) -> type[Enum]:
    """A fixed choice as an Enum: typer then lists the values and exits 2 on a typo."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


# the API's own values, from modules that import nothing heavy (`hoprag --help` loads no numpy)
SearchMode: Any = _choices("SearchMode", *MODES)
HopMode: Any = _choices("HopMode", *HOP_MODES)
Direction: Any = _choices("Direction", *DIRECTIONS)
GraphFormat: Any = _choices("GraphFormat", "graphml", "json")
Split: Any = _choices("Split", "all", "dev", "test")


def _filters(
    law: list[str] | None, pcode: list[str] | None, key: list[str] | None, fields: list[str] | None = None
) -> dict | None:
    """The `filters` of the Python and HTTP APIs: --law/--pcode/--key, and --filter FIELD=VALUE for
    a field of the passages' metadata (repeated for one field: any of the values)."""
    f: dict[str, list[str]] = {k: v for k, v in (("law", law), ("pcode", pcode), ("key", key)) if v}
    for spec in fields or ():
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"--filter takes FIELD=VALUE, not {spec!r}", param_hint="--filter")
        f.setdefault(name.strip(), []).append(value)
    return f or None


def _print_hits(rows: list[dict]) -> None:
    for i, h in enumerate(rows, 1):
        snippet = h["text"].replace("\n", " ")
        mark = "  (cited)" if h.get("cited") else ""
        typer.echo(
            f"{i:>2}. {h['score']:.3f}  {h['law']} {h['label']}  [{h['key']}]{mark}\n    "
            f"{snippet[:120]}{'…' if len(snippet) > 120 else ''}"
        )
        if h.get("matched_question"):
            typer.echo(f"    ↳ {h['matched_question']}")
        for step in h.get("path") or []:
            typer.echo(
                f"    ↳ {step['from']} → {step['to']} ({step['kind']}{': ' + step['question'] if step.get('question') else ''})"
            )


def _check_k(ctx: typer.Context, k: int) -> int:
    """-k within the limit the HTTP API applies (Settings.max_k of the same home): a usage error, exit 2."""
    limit = _settings(ctx.params.get("home")).max_k
    if not 1 <= k <= limit:
        raise typer.BadParameter(f"k must be between 1 and {limit} (HOPRAG_MAX_K)")
    return k


KOpt = typer.Option(10, "-k", "--k", callback=_check_k, help="number of passages (1 to HOPRAG_MAX_K)")
LawOpt = typer.Option(None, "--law", help="only these laws (name or short name; repeatable)")
PcodeOpt = typer.Option(None, "--pcode", help="only these pcodes (repeatable)")
KeyOpt = typer.Option(None, "--key", help="only these passage keys, e.g. N0030001:24 (repeatable)")
FilterOpt = typer.Option(
    None, "--filter", help="FIELD=VALUE: a field of the passages' metadata (repeatable; one field repeated: any value)"
)
NHopOpt = typer.Option(2, "--n-hop", "-n", min=0, help="rounds of expansion along edges")


def _kinds_option(values: list[str] | None) -> list[str] | None:
    """--kinds question,citation (the HTTP API's form); repeating the option adds to the list."""
    if not values:
        return None
    kinds = [k.strip() for v in values for k in v.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in EDGE_KINDS]
    if unknown:
        raise typer.BadParameter(f"unknown edge kind {unknown[0]!r}: choose from {', '.join(EDGE_KINDS)}")
    return kinds


@app.command()
def search(
    query: str = typer.Argument(..., help="the question"),
    k: int = KOpt,
    mode: SearchMode = typer.Option(SearchMode("dense"), "--mode", "-m", help="dense | questions | hybrid | bm25"),
    law: list[str] | None = LawOpt,
    pcode: list[str] | None = PcodeOpt,
    key: list[str] | None = KeyOpt,
    field_filter: list[str] | None = FilterOpt,
    as_of: str | None = AsOfOpt,
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Top-k passages: dense, by incoming pseudo-queries, or hybrid (BM25 + dense + questions); an
    article the query names (勞基法第24條) comes first."""
    with _open(home) as idx:
        filters = _filters(law, pcode, key, field_filter)
        found = idx.search(query, k=k, mode=mode.value, filters=filters, as_of=as_of)
        hits = [h.to_dict() for h in found]
    _emit(hits, as_json, _print_hits)


app.command("query", hidden=True, help="The same as `hoprag search` (its earlier name).")(search)


@app.command()
def hop(
    query: str = typer.Argument(..., help="the question"),
    k: int = KOpt,
    n_hop: int = NHopOpt,
    mode: HopMode = typer.Option(HopMode("similarity"), "--mode", "-m", help="similarity (offline) | llm"),
    law: list[str] | None = LawOpt,
    pcode: list[str] | None = PcodeOpt,
    key: list[str] | None = KeyOpt,
    field_filter: list[str] | None = FilterOpt,
    as_of: str | None = AsOfOpt,
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """HopRAG multi-hop retrieval (Index.hop_search): entry passages, expansion along question and
    citation edges, ranked by relevance and visits."""
    with _open(home) as idx:
        filters = _filters(law, pcode, key, field_filter)
        hits = idx.hop_search(query, k=k, n_hop=n_hop, mode=mode.value, filters=filters, as_of=as_of)
        answer = hits.to_dict()  # --json: the object POST /hop-search answers
    if hits.deadline_hit:
        typer.echo(
            f"note: the LLM work ran out of its deadline (HOPRAG_HOP_LLM_DEADLINE_S) after {hits.llm_calls} calls; "
            "the rest of the walk chose by similarity",
            err=True,
        )
    _emit(answer, as_json, lambda a: _print_hits(a["hits"]))


@app.command()
def neighbors(
    ref: str = typer.Argument(..., help="passage key (N0030001:24) or numeric id"),
    direction: Direction = typer.Option(Direction("out"), "--direction", "-d", help="out | in | both"),
    kinds: list[str] | None = typer.Option(
        None, "--kinds", callback=_kinds_option, help=f"comma-separated: {','.join(EDGE_KINDS)} [default: all]"
    ),
    as_of: str | None = AsOfOpt,
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Edges of a passage with their questions, scores and citation spans (Index.neighbors)."""
    wanted = kinds or None
    with _open(home) as idx:
        try:
            rows = resolve_passage(
                ref, lambda p: idx.neighbors(p, direction=direction.value, kinds=wanted, as_of=as_of), as_of
            )
        except KeyError:
            _fail(f"no passage {ref!r}")

    def human(rows):
        for r in rows:
            arrow = "→" if r["direction"] == "out" else "←"
            typer.echo(
                f"{arrow} {r['law']} {r['label']} [{r['key']}]  {r['kind']} {r['score']:.3f}"
                + (f" {r['role']}" if r.get("role") else "")
                + (f"  「{r['span']}」" if r.get("span") else "")
                + (f"  ↳ {r['question']}" if r.get("question") else "")
            )

    _emit(rows, as_json, human)


@app.command()
def history(
    key: str = typer.Argument(..., help="article key, e.g. N0030014:1"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The versions of one article with the dates each was in force (Index.history)."""
    with _open(home) as idx:
        rows = idx.history(key)
    if not rows:
        _fail(f"no versions of {key!r} (keys look like N0030014:1; `hoprag passage` shows one)")

    def human(rows):
        for v in rows:
            until = v["valid_to"] or "now"
            state = "（刪除）" if v["repealed"] else " ".join(v["text"].split())[:60]
            typer.echo(f"{v['valid_from']} – {until}  {v['law']} {v['article_label']}  {state}")

    _emit(rows, as_json, human)


@app.command()
def diff(
    date_from: str = typer.Option(..., "--from", callback=_date_option, help="YYYY-MM-DD"),
    date_to: str = typer.Option(..., "--to", callback=_date_option, help="YYYY-MM-DD"),
    law: str | None = typer.Option(None, "--law", help="one law: its name (either date's) or pcode"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """What changed in force between two dates: articles added, changed (with a text diff),
    removed and relabeled, and renamed laws (Index.diff)."""
    with _open(home) as idx:
        out = idx.diff(date_from, date_to, law=law)

    def human(out):
        c = out["counts"]
        typer.echo(
            f"{out['from']} → {out['to']}: {c['added']} added, {c['changed']} changed, "
            f"{c['removed']} removed, {c['relabeled']} relabeled"
        )
        for r in out["renamed_laws"]:
            typer.echo(f"  renamed {r['doc_key']}: {r['from']} → {r['to']}")
        for a in out["changed"][:20]:
            typer.echo(f"  ~ {a['law']} {a['label']}: {a['diff'][:120]}")

    _emit(out, as_json, human)


@app.command()
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
        _fail(str(exc))
    from ..serve import run

    settings = _settings(home)
    api_key = _api_key(api_key, api_key_file)
    try:
        run(settings, host=host, port=port, api_key=api_key, library_roots=library_root or None)
    except _user_errors() as exc:  # a bad root or home, a key missing for a public address
        _fail(str(exc))


def _api_key(api_key: str | None, api_key_file: Path | None) -> str | None:
    """--api-key (or HOPRAG_API_KEY), or the first line of --api-key-file."""
    if api_key_file is None:
        return api_key
    try:
        lines = api_key_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read --api-key-file {api_key_file}: {exc}")
    key = lines[0].strip() if lines else ""
    if not key:
        _fail(f"--api-key-file {api_key_file} is empty")
    return key


Transport: Any = _choices("Transport", "stdio", "http")


@app.command()
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
        _fail(str(exc))
    from ..mcp_server import run

    api_key = _api_key(api_key, api_key_file)
    with _open(home) as idx:
        try:
            run(idx, transport=transport.value, host=host, port=port, api_key=api_key)
        except _user_errors() as exc:  # a key missing for a public address
            _fail(str(exc))


@app.command("eval")
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
    from ..evaluate import evaluate, format_table, load_queries, split_queries

    with _open(home) as idx, _Progress() as progress:
        report = evaluate(
            idx,
            split_queries(load_queries(queries), split.value),
            modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
            n_hop=n_hop,
            progress=progress,
        )
    _emit(report.to_dict(), as_json, lambda _: typer.echo(format_table(report)))


@app.command()
def stats(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Counts of laws, passages, vectors; the embedder; the last build."""
    with _open(home) as idx:
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

    _emit(s, as_json, human)


@app.command("config")
def config_cmd(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """The effective settings and where each value came from: argument, environment, config file, default."""
    from ..settings import setting_sources

    _settings(home)  # a bad value or config file: the one `error:` line of every command
    rows = setting_sources(home, _config)

    def human(rows):
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            typer.echo(
                f"{r['name']:<{width}}  {json.dumps(r['value'], ensure_ascii=False, default=str)}  [{r['source']}]"
            )

    _emit(rows, as_json, human)


@app.command()
def passage(
    ref: str = typer.Argument(..., help="passage key (N0030001:24) or numeric id"),
    as_of: str | None = AsOfOpt,
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show one passage (as of a date: the version in force then, by key)."""
    with _open(home) as idx:
        try:
            p = resolve_passage(ref, lambda r: idx.passage(r, as_of=as_of), as_of)
        except KeyError:
            _fail(f"no passage {ref!r}")
    _emit(p, as_json, lambda p: typer.echo(f"{p['law']} {p['label']} [{p['key']}]\n{p['text']}"))


@app.command()
def reembed(
    embedder: str = typer.Option(..., "--embedder", "-e", help="the new embedder"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Switch the index to another embedder, re-embedding every passage through the cache."""
    with _open(home) as idx, _Progress() as progress:
        report = idx.reembed(embedder, progress=progress).to_dict()
    _emit(
        report,
        as_json,
        lambda r: typer.echo(
            f"generation {r['generation']}: {r['passages']} passages now embedded with {r['embedder']} "
            f"({r['embedded']} embedded, {r['cache_hits']} from cache, {r['seconds']:.2f} s)"
        ),
    )


graph_app = typer.Typer(help="The passage graph.", no_args_is_help=True)
snapshots_app = typer.Typer(help="Snapshots of vectors and graph, one per build generation.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
app.add_typer(snapshots_app, name="snapshots")
questions_app = typer.Typer(help="The LLM's pseudo-queries (the cache of its answers).", no_args_is_help=True)
app.add_typer(questions_app, name="questions")


@questions_app.command("export")
def questions_export(
    out: Path = typer.Argument(..., help="JSONL file to write"), home: Path | None = HomeOpt, as_json: bool = JsonOpt
) -> None:
    """Write every cached LLM answer (pseudo-queries by passage text) as JSONL."""
    with _open(home) as idx:
        info = idx.export_questions(out)
    _emit(
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
    with _open(home, create=True) as idx:
        info = idx.import_questions(src)
    _emit(
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
    from ..graph import export_graph

    with _open(home) as idx:
        g = idx.graph()
        export_graph(g, fmt.value, out)
    typer.echo(f"wrote {out}: {g.number_of_nodes()} passages, {g.number_of_edges()} edges", err=True)


@snapshots_app.command("list")
def snapshots_list(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Snapshots on disk, newest last."""
    with _open(home) as idx:
        rows = idx.snapshots_list()

    def human(rows):
        for r in rows:
            counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
            typer.echo(
                f"{'*' if r['current'] else ' '} gen {r['generation']:>4}  {r['created_at'] or '?'}  {counts}  [{r['status']}]"
            )

    _emit(rows, as_json, human)


@snapshots_app.command("restore")
def snapshots_restore(
    generation: int = typer.Argument(..., help="generation to restore"), home: Path | None = HomeOpt
) -> None:
    """Verify a snapshot and load it (the current generation's; older ones are refused with why)."""
    with _open(home) as idx:
        idx.restore_snapshot(generation)
    typer.echo(f"snapshot of generation {generation} verified and loaded")


@app.command()
def doctor(home: Path | None = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Which embedders and devices are usable here, where models are cached, free disk."""
    from ..doctor import diagnose, render

    report = diagnose(_settings(home))
    _emit(report, as_json, render)


def main() -> None:  # pragma: no cover - console entry point is `app`
    app()
