"""What every `hoprag` command shares: the typer `app` and its --config callback, the common
options (--home, --json, --as-of, --n-hop, the API key), the one way to make Settings and open an
Index with one-line `error:` exits, output as JSON or text, and the progress bar. The commands
live in the modules beside this one; `indexer/cli/__init__.py` registers them on `app`."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..index import Index
    from ..settings import Settings

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


def config_path() -> Path | None:
    """The --config (or HOPRAG_CONFIG) of this invocation."""
    return _config


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
NHopOpt = typer.Option(2, "--n-hop", "-n", min=0, help="rounds of expansion along edges")


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that are the user's to fix: one `error:` line, no traceback."""
    from ..errors import USER_ERRORS

    return USER_ERRORS


def fail(message: str) -> NoReturn:
    """`error: message` on stderr, exit 1."""
    # one line, whatever the message quotes (a file name with a newline must not forge a second
    # `error:` line, nor an escape sequence repaint the terminal)
    safe = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)
    typer.echo(f"error: {safe}", err=True)
    raise typer.Exit(1)


def settings_for(home: Path | None = None, **options: Any) -> Settings:
    """The one way the CLI makes its Settings: --home, --config and the options a command was given
    (one not given, None or empty, leaves its setting to the environment, the file or the default).
    A bad HOPRAG_* value or config file is one `error:` line."""
    from pydantic import ValidationError

    from ..settings import ConfigFileError, Settings

    given = {name: value for name, value in options.items() if value is not None and value != ""}
    try:
        return Settings.load(home, _config, **given)
    except ConfigFileError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(f"invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")


@contextmanager
def open_index(home: Path | None, create: bool = False, **overrides) -> Iterator[Index]:
    """The Index of --home, its user errors and OS errors turned into one `error:` line."""
    from ..nogc import paused_gc

    with paused_gc():  # the command's imports: SQLAlchemy, pydantic (nogc.py)
        from ..index import Index

    settings = settings_for(home, **overrides)
    try:
        with Index(settings=settings, create=create) as idx:
            yield idx
    except user_errors() as exc:
        fail(str(exc))
    except OSError as exc:  # a home under a file (--home FILE/sub), a full disk: one line, no traceback
        fail(f"{exc.filename or settings.home}: {exc.strerror or exc}")
    except RuntimeError as exc:
        if not str(exc).startswith("Symlink loop"):  # pathlib's word for ELOOP before Python 3.13
            raise
        fail(f"{settings.home}: a symlink loop")


def no_huge_pages() -> None:
    """For a command that builds, before it imports numpy: numpy asks for transparent huge pages on
    every large array it makes, and with THP in madvise mode (a common default, this VM's) a fault
    may compact memory on the spot. A build is a short process that makes and drops a few hundred
    MB of arrays once: the 2022 → 2024 update as a new process took 2.52 s against 2.71 at the
    medians of 8 alternating pairs, 7 of them faster (and 2.61 against 2.78 in 8 more). An
    explicit NUMPY_MADVISE_HUGEPAGE wins; queries and `serve` keep numpy's default."""
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


def emit(data, as_json: bool, human) -> None:
    """`data` as indented JSON with --json, else as `human(data)` prints it."""
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


class ProgressBar:
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


def date_option(value: str | None) -> str | None:
    """A date option checked at parse time: a typo exits 2 with the format, before any work."""
    if value is None:
        return None
    from ..store.history import parse_date

    try:
        return parse_date(value).isoformat()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


AsOfOpt = typer.Option(
    None, "--as-of", callback=date_option, help="the law in force on this date (YYYY-MM-DD) [default: as now]"
)


def choices(name: str, *values: str) -> type[Enum]:
    """A fixed choice as an Enum: typer then lists the values and exits 2 on a typo."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]
