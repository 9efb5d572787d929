"""README's examples marked `<!-- tested: tests/test_readme_examples.py -->` run as written: each
Python block after such a marker runs in a new process, in a folder laid out as README's reader's
(`.hoprag` an index of the bundled laws, `../shared/data` the data), with `hoprag` on PATH; it
must exit 0 and print what it is about. A marked block that is not Python, or a marker without a
block, fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA, need, requires_data

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- tested: tests/test_readme_examples.py -->"
# what a package each example imports needs (under CI every extra is installed: a missing one fails)
NEEDS = {"indexer.langchain": "langchain_core", "indexer.llamaindex": "llama_index.core", "from mcp": "mcp"}


def examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for part in text.split(MARK)[1:]:
        m = re.match(r"\s*```python\n(.*?)\n```", part, re.S)
        assert m, f"a {MARK} marker not followed by a ```python block: {part[:80]!r}"
        blocks.append(m.group(1))
    return blocks


def test_readme_marks_its_framework_and_agent_examples():
    found = examples()
    assert len(found) >= 4
    assert any("idx.upsert(" in b for b in found)
    assert any("indexer.langchain" in b for b in found) and any("indexer.llamaindex" in b for b in found)
    assert any("from mcp import Client" in b for b in found)


@pytest.fixture(scope="module")
def reader(laws_index, tmp_path_factory):
    """README's reader's folder: main/ with .hoprag (a copy of the session's index of the laws) and
    ../shared -> the data's parent."""
    base = tmp_path_factory.mktemp("reader")
    work = base / "main"
    work.mkdir()
    shutil.copytree(laws_index["home"], work / ".hoprag")
    (base / "shared").symlink_to(DATA.parent.resolve(), target_is_directory=True)
    return work


@requires_data
@pytest.mark.sqlite_only  # README's reader opens `.hoprag` by its folder: the index is its SQLite file
@pytest.mark.parametrize("n", range(len(examples())))
def test_readme_example_runs_as_written(reader, n):
    code = examples()[n]
    for marker, module in NEEDS.items():
        if marker in code:
            need(module)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPRAG_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(README.parent)
    done = subprocess.run([sys.executable, "-c", code], cwd=reader, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    if "langchain" in code:
        assert "勞動基準法 第24條" in out
    if "llamaindex" in code:
        lines = out.splitlines()
        assert len(lines) == 3 and all(line.startswith("N0030001:") for line in lines), out
    if "from mcp" in code:
        assert "N0030001:24" in out and "勞動基準法" in out
    if "idx.upsert(" in code:                       # the Python API's tour: hits printed, upsert and delete ran
        assert "勞動基準法" in out and "N0030001:24" in out
