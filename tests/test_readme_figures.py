"""README's figures against the results files they come from (bench/check_readme.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_free  # never opens an index

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import check_readme  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_checked_figure_and_results_file_holds():
    assert check_readme.check(README) == []


def test_a_figure_that_drifts_from_its_file_is_caught():
    row = next(line for line in README.splitlines() if line.startswith("| full index of the 2022-01-07 laws"))
    ratio = re.search(r"\| \*\*(\d\.\d\d)\*\* \|", row).group(1)  # the full-build ratio, as README prints it
    other = f"{float(ratio) - 0.1:.2f}"
    drifted = README.replace(row, row.replace(f"| **{ratio}** |", f"| **{other}** |"))
    assert drifted != README
    problems = check_readme.check(drifted)
    assert len(problems) == 1 and "full_ratio" in problems[0]


def test_a_results_file_without_its_commit_is_caught(tmp_path, monkeypatch):
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "made-by-hand.json").write_text('{"machine": {"cpu": "x"}}')
    monkeypatch.setattr(check_readme, "ROOT", tmp_path)
    monkeypatch.setattr(check_readme, "CLAIMS", [])
    problems = check_readme.check("see bench/results/made-by-hand.json and bench/results/missing.json")
    assert any("missing.json" in p and "does not exist" in p for p in problems)
    assert any("made-by-hand.json" in p and "records no commit" in p for p in problems)


def test_numbers_match_whole():
    assert check_readme._number_in("1.5", "ratio 1.5 here")
    assert not check_readme._number_in("1.5", "ratio 11.5 here")
    assert not check_readme._number_in("1.5", "ratio 1.55 here")
    assert check_readme._number_in("6329", "| 6,329 texts |")
    assert check_readme._number_in("0.94", "| **0.94** |")
