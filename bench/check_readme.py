"""Does README say what the results files say?

Every figure in README.md must come from a committed results file that a committed script wrote
from committed code. This script checks, without running any benchmark:

  1. every `bench/results/<name>.json` README.md names exists, is committed, records the commit it
     was made at (`git_commit`) and a clean tree (`git_dirty: false`), and that commit is in this
     checkout's history;
  2. the figures listed in CLAIMS below stand, as README prints them, in README's table row or
     paragraph that holds the claim's anchor text: a table row or sentence that names a results file states what the file
     holds, to the digit README shows.

It exits 1 and says what is wrong, 0 when all holds. tests/test_readme_figures.py runs it, so CI
does too. A benchmark re-run that changes a figure makes it fail until README is updated from the
new file; a README edit that changes a figure makes it fail until the figure comes from a file.

    python bench/check_readme.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = re.compile(r"bench/results/([A-Za-z0-9_.-]+\.json)")


@dataclass(frozen=True)
class Claim:
    file: str  # in bench/results/
    path: str  # into the JSON: keys and [i] indexes, dot-separated
    fmt: str  # how README prints it
    anchor: str  # text on README's line that states it
    scale: float = 1.0  # README's unit over the file's (100 for a percentage)


def _claims() -> list[Claim]:
    tx, st, hi, sv = "txtai-cpu-2core.json", "store-cpu-2core.json", "history-cpu-2core.json", "service-cpu-2core.json"
    txr = "txtai-cpu-2core-repeat.json"
    out = [
        # against txtai
        Claim(tx, "summary.txtai_full_seconds", "{:.2f} s", "| full index of the 2022-01-07 laws"),
        Claim(tx, "summary.hoprag_full_seconds", "{:.2f} s", "| full index of the 2022-01-07 laws"),
        Claim(tx, "summary.ratios.full_ratio", "{:.2f}", "| full index of the 2022-01-07 laws"),
        Claim(tx, "summary.txtai_update_seconds", "{:.2f} s", "| 2022 → 2024 amendment (444"),
        Claim(tx, "summary.hoprag_update_seconds", "{:.2f} s", "| 2022 → 2024 amendment (444"),
        Claim(tx, "summary.ratios.update_ratio", "{:.2f}", "| 2022 → 2024 amendment (444"),
        Claim(tx, "summary.hoprag_update_in_process_seconds", "{:.2f} s", "| the same amendment in process"),
        Claim(tx, "summary.ratios.update_in_process_ratio", "{:.2f}", "| the same amendment in process"),
        Claim(tx, "summary.hoprag_rebuild_seconds", "{:.2f} s", "| identical rebuild | — |"),
        Claim(tx, "summary.txtai_dense_p50_ms", "{:.2f}", "| dense query p50 / p99 (in process, k = 10)"),
        Claim(tx, "summary.hoprag_dense_p50_ms", "{:.2f}", "| dense query p50 / p99 (in process, k = 10)"),
        Claim(tx, "summary.ratios.dense_p50_ratio", "{:.2f}", "| dense query p50 / p99 (in process, k = 10)"),
        Claim(tx, "summary.hoprag_every_core_dense_p50_ms", "p50 {:.2f} ms", "| dense query p50 / p99 (in process, k = 10)"),
        Claim(tx, "summary.ratios.every_core_dense_p50_ratio", "ms, {:.2f})", "| dense query p50 / p99 (in process, k = 10)"),
        Claim(tx, "summary.hoprag_hybrid_p50_ms", "{:.2f}", "| hybrid query p50 / p99 | — |"),
        Claim(tx, "summary.ratios.hybrid_p50_vs_txtai_dense", "{:.2f}", "| hybrid query p50 / p99 | — |"),
        Claim(tx, "summary.hoprag_first_query_seconds", "{:.2f} s", "| first query of a new process (import"),
        Claim(tx, "summary.txtai_top10_overlap_with_exact", "{:.1f} %", "| exact top 10 returned", 100),
        Claim(tx, "summary.raw_embed_full_seconds", "{:.2f} s", "| the raw model alone"),
        Claim(tx, "summary.raw_embed_update_seconds", "{:.2f} s", "| the raw model alone"),
        Claim(tx, "summary.txtai_dense_beside_neighbour_p50_ms", "{:.1f} /", "| dense query p50 / mean beside a busy"),
        Claim(tx, "summary.hoprag_dense_beside_neighbour_p50_ms", "{:.1f} /", "| dense query p50 / mean beside a busy"),
        Claim(tx, "summary.hoprag_dense_beside_neighbour_mean_ms", "/ {:.1f} ms", "| dense query p50 / mean beside a busy"),
        Claim(
            tx, "summary.hoprag_every_core_dense_beside_neighbour_p50_ms", "{:.1f} /", "| dense query p50 / mean beside a busy"
        ),
        Claim(tx, "summary.ratios.dense_beside_neighbour_p50_ratio", "{:.2f}", "| dense query p50 / mean beside a busy"),
        # an earlier run against txtai, quoted beside it
        Claim(txr, "summary.ratios.update_ratio", "had it at {:.2f}", "an earlier run at 8ab38c2"),
        Claim(txr, "summary.ratios.update_in_process_ratio", "update {:.2f} of txtai's", "sitting where hoprag's side"),
        Claim(txr, "summary.ratios.dense_first_sight_p50_ratio", "queries {:.2f})", "first-sight queries"),
        Claim(txr, "summary.hoprag_first_query_seconds", "took {:.2f} s", "and the first query there took"),
        Claim(txr, "hoprag_rounds[0].first_query_seconds", "{:.2f} and", "s in the earlier run above"),
        Claim(txr, "hoprag_rounds[1].first_query_seconds", "and {:.2f} s in the earlier run", "s in the earlier run above"),
        Claim(txr, "summary.txtai_dense_beside_neighbour_p50_ms", "{:.1f} ms in the earlier one", "in the earlier one)"),
        # store
        Claim(st, "storage.raw_embed_seconds", "{:.2f} s", "| raw embedder (`embedder.embed`)"),
        Claim(st, "storage.raw_texts_per_second", "{:.0f} texts/s", "| raw embedder (`embedder.embed`)"),
        Claim(st, "storage.full_build_seconds", "{:.2f} s", "| full build into an empty home"),
        Claim(st, "storage.ratio", "{:.2f}", "| **storage overhead** full / raw"),
        Claim(st, "noop.wall_seconds_median", "{:.2f} s", "| **no-op rebuild**, new `hoprag build` process"),
        Claim(st, "update.update_seconds", "{:.2f} s", "| update 2022-01-07 → 2024-10-11"),
        Claim(st, "update.full_build_seconds", "{:.2f} s", "| full build of 2024 with an empty cache"),
        Claim(st, "update.ratio", "{:.1f}×", "| **full / update**"),
        # the law as of a date
        Claim(hi, "first_as_of_query_seconds", "{:.2f} s", "2022-06-01 builds that day's state in"),
        Claim(hi, "latency_ms.dense.as_of.p50", "dense {:.1f}", "after that, p50 per query as of"),
        Claim(hi, "latency_ms.dense.ratio_p50", "({:.2f}×)", "after that, p50 per query as of"),
        Claim(hi, "latency_ms.hybrid.as_of.p50", "hybrid {:.1f}", "after that, p50 per query as of"),
        Claim(hi, "latency_ms.hybrid.ratio_p50", "({:.2f}×)", "after that, p50 per query as of"),
        Claim(hi, "latency_ms.bm25.ratio_p50", "({:.2f}×)", "after that, p50 per query as of"),
        Claim(hi, "diff.seconds", "in {:.2f} s", "dates is the same from both"),
    ]
    # the HTTP service: one row per (endpoint, clients), in the file's order
    labels = ["/search dense", "/search hybrid", "/hop-search n_hop=2"]
    for i, (label, clients) in enumerate((label, clients) for label in labels for clients in (1, 8)):
        anchor = f"| {label} | {clients} |"
        out += [
            Claim(sv, f"http[{i}].p50_ms", "{:.1f}", anchor),
            Claim(sv, f"http[{i}].p99_ms", "{:.1f}", anchor),
            Claim(sv, f"http[{i}].rps", "{:.0f}", anchor),
        ]
    return out


CLAIMS = _claims()


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", part)
        if m is None:
            raise KeyError(path)
        data = data[m.group(1)]
        for index in re.findall(r"\[(\d+)\]", m.group(2)):
            data = data[int(index)]
    return data


def _find(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)


def check(readme: str) -> list[str]:
    problems: list[str] = []
    loaded: dict[str, Any] = {}
    tracked = set(_git("ls-files", "bench/results").stdout.split())
    # a shallow clone (some CI checkouts) lacks the history a results file's commit is in
    shallow = _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    for name in sorted(set(RESULTS.findall(readme))):
        rel = f"bench/results/{name}"
        path = ROOT / rel
        if not path.exists():
            problems.append(f"{rel}: README names it; it does not exist")
            continue
        if rel not in tracked:
            problems.append(f"{rel}: not committed")
        data = loaded[name] = json.loads(path.read_text(encoding="utf-8"))
        commit, dirty = _find(data, "git_commit"), _find(data, "git_dirty")
        if not commit:
            problems.append(f"{rel}: records no commit, so its figures cannot be traced to code")
        elif not shallow and _git("merge-base", "--is-ancestor", str(commit), "HEAD").returncode != 0:
            problems.append(f"{rel}: made at {commit}, which is not in this checkout's history")
        if dirty is not False:
            problems.append(f"{rel}: made from a tree with uncommitted changes (git_dirty: {dirty})")
    lines = _units(readme)
    for c in CLAIMS:
        data = loaded.get(c.file)
        if data is None:
            problems.append(f"claim on {c.anchor!r}: README does not name bench/results/{c.file}")
            continue
        try:
            want = c.fmt.format(_get(data, c.path) * c.scale)
        except (KeyError, IndexError, TypeError) as exc:
            problems.append(f"{c.file}: no {c.path} ({exc})")
            continue
        held = [line for line in lines if c.anchor in line]
        if not held:
            problems.append(f"no README line holds {c.anchor!r} (the figure {want} from {c.file} {c.path})")
        elif not any(_number_in(want, line) for line in held):
            problems.append(f"README's line {c.anchor!r} lacks {want!r} ({c.file} {c.path})")
    return problems


def _units(text: str) -> list[str]:
    """README as what a figure can stand in: each table row, and each paragraph of prose joined
    into one line (a sentence wraps)."""
    units: list[str] = []
    prose: list[str] = []
    for line in text.splitlines() + [""]:
        if line.lstrip().startswith("|"):
            units.append(line)
        elif line.strip():
            prose.append(line.strip())
            continue
        if prose:
            units.append(" ".join(prose))
            prose = []
    return units


def _number_in(want: str, line: str) -> bool:
    """`want` in the line, not as part of a longer number (1.5 is not in 11.5 or 1.55), with
    thousands separators allowed (6,329 for 6329)."""
    for text in (line, line.replace(",", "")):
        for m in re.finditer(re.escape(want), text):
            before = text[m.start() - 1] if m.start() else " "
            after = text[m.end()] if m.end() < len(text) else " "
            if not (before.isdigit() or before == "." or after.isdigit() or (after == "." and want[-1].isdigit()
                    and m.end() + 1 < len(text) and text[m.end() + 1].isdigit())):
                return True
    return False


def main() -> int:
    problems = check(README.read_text(encoding="utf-8"))
    for p in problems:
        print(f"README: {p}")
    print(f"{len(CLAIMS)} figures and every named results file checked: "
          + ("all hold" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
