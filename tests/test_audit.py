"""Source audit of the product (indexer/, storage/, migrations/): nothing is ever unpickled or
evaluated, no shell strings, no secrets in code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_free  # never opens an index

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("indexer", "storage", "migrations") for p in (ROOT / d).rglob("*.py"))
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "os.system", "os.popen", "torch.load", "pickle.load", "pickle.loads"}
SECRET = re.compile(r"AIza[0-9A-Za-z_\-]{30,}|sk-[A-Za-z0-9]{20,}|ghp_[A-Za-z0-9]{30,}")


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def problems_in(text: str) -> list[str]:
    tree = ast.parse(text)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            problems.append(f"from {node.module} import …")
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            if name in FORBIDDEN_CALLS:
                problems.append(f"call {name}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    problems.append(f"{name}(shell=...)")
                if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    problems.append(f"{name}(allow_pickle=...)")
            if name in ("np.load", "numpy.load") and not any(kw.arg == "allow_pickle" for kw in node.keywords):
                problems.append("np.load without allow_pickle=False")
    problems += [f"secret-like literal {m.group(0)[:8]}…" for m in SECRET.finditer(text)]
    return problems


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_no_unsafe_constructs(path):
    assert problems_in(path.read_text(encoding="utf-8")) == [], path.relative_to(ROOT)


def test_the_checker_catches_each_construct():
    bad = (
        "import pickle\nfrom joblib import load\neval('1')\nimport subprocess\n"
        "subprocess.run('ls', shell=True)\nimport numpy as np\nnp.load('x')\nnp.load('x', allow_pickle=True)\n"
        "KEY = 'AIza" + "x" * 35 + "'\n"
    )
    found = problems_in(bad)
    assert len(found) == 7, found


def test_the_audit_sees_the_product():
    assert len(SOURCES) > 25 and any(p.name == "index.py" for p in SOURCES)
