"""The read commands: `search` (and its old name `query`), `hop`, `neighbors`, `passage`,
`history` and `diff`, each a mirror of the Index method of the same name, with its filters, -k
checked against HOPRAG_MAX_K, and the hits printed as text or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..retrieve.modes import DIRECTIONS, HOP_MODES, MODES
from ..serve.refs import resolve_passage
from ..store.edge_params import EDGE_KINDS
from .common import AsOfOpt, HomeOpt, JsonOpt, NHopOpt, choices, date_option, emit, fail, open_index, settings_for

# the API's own values, from modules that import nothing heavy (`hoprag --help` loads no numpy)
SearchMode: Any = choices("SearchMode", *MODES)
HopMode: Any = choices("HopMode", *HOP_MODES)
Direction: Any = choices("Direction", *DIRECTIONS)


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
    limit = settings_for(ctx.params.get("home")).max_k
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


def _kinds_option(values: list[str] | None) -> list[str] | None:
    """--kinds question,citation (the HTTP API's form); repeating the option adds to the list."""
    if not values:
        return None
    kinds = [k.strip() for v in values for k in v.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in EDGE_KINDS]
    if unknown:
        raise typer.BadParameter(f"unknown edge kind {unknown[0]!r}: choose from {', '.join(EDGE_KINDS)}")
    return kinds


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
    with open_index(home) as idx:
        filters = _filters(law, pcode, key, field_filter)
        found = idx.search(query, k=k, mode=mode.value, filters=filters, as_of=as_of)
        hits = [h.to_dict() for h in found]
    emit(hits, as_json, _print_hits)


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
    with open_index(home) as idx:
        filters = _filters(law, pcode, key, field_filter)
        hits = idx.hop_search(query, k=k, n_hop=n_hop, mode=mode.value, filters=filters, as_of=as_of)
        answer = hits.to_dict()  # --json: the object POST /hop-search answers
    if hits.deadline_hit:
        typer.echo(
            f"note: the LLM work ran out of its deadline (HOPRAG_HOP_LLM_DEADLINE_S) after {hits.llm_calls} calls; "
            "the rest of the walk chose by similarity",
            err=True,
        )
    emit(answer, as_json, lambda a: _print_hits(a["hits"]))


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
    with open_index(home) as idx:
        try:
            rows = resolve_passage(
                ref, lambda p: idx.neighbors(p, direction=direction.value, kinds=wanted, as_of=as_of), as_of
            )
        except KeyError:
            fail(f"no passage {ref!r}")

    def human(rows):
        for r in rows:
            arrow = "→" if r["direction"] == "out" else "←"
            typer.echo(
                f"{arrow} {r['law']} {r['label']} [{r['key']}]  {r['kind']} {r['score']:.3f}"
                + (f" {r['role']}" if r.get("role") else "")
                + (f"  「{r['span']}」" if r.get("span") else "")
                + (f"  ↳ {r['question']}" if r.get("question") else "")
            )

    emit(rows, as_json, human)


def passage(
    ref: str = typer.Argument(..., help="passage key (N0030001:24) or numeric id"),
    as_of: str | None = AsOfOpt,
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show one passage (as of a date: the version in force then, by key)."""
    with open_index(home) as idx:
        try:
            p = resolve_passage(ref, lambda r: idx.passage(r, as_of=as_of), as_of)
        except KeyError:
            fail(f"no passage {ref!r}")
    emit(p, as_json, lambda p: typer.echo(f"{p['law']} {p['label']} [{p['key']}]\n{p['text']}"))


def history(
    key: str = typer.Argument(..., help="article key, e.g. N0030014:1"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The versions of one article with the dates each was in force (Index.history)."""
    with open_index(home) as idx:
        rows = idx.history(key)
    if not rows:
        fail(f"no versions of {key!r} (keys look like N0030014:1; `hoprag passage` shows one)")

    def human(rows):
        for v in rows:
            until = v["valid_to"] or "now"
            state = "（刪除）" if v["repealed"] else " ".join(v["text"].split())[:60]
            typer.echo(f"{v['valid_from']} – {until}  {v['law']} {v['article_label']}  {state}")

    emit(rows, as_json, human)


def diff(
    date_from: str = typer.Option(..., "--from", callback=date_option, help="YYYY-MM-DD"),
    date_to: str = typer.Option(..., "--to", callback=date_option, help="YYYY-MM-DD"),
    law: str | None = typer.Option(None, "--law", help="one law: its name (either date's) or pcode"),
    home: Path | None = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """What changed in force between two dates: articles added, changed (with a text diff),
    removed and relabeled, and renamed laws (Index.diff)."""
    with open_index(home) as idx:
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

    emit(out, as_json, human)
