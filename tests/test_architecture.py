"""The shape of the house, checked: no import cycle between modules, a thin facade, and no module
calling another's underscore names (tests and benchmarks included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("indexer", "storage")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of ours that `path` imports, at the top or inside a function."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out |= {target} | {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {t for t in out if t.split(".")[0] in PACKAGES}


def _graph() -> nx.DiGraph:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p) for p in files}
    g = nx.DiGraph()
    for p in files:
        src = _module_name(p)
        g.add_node(src)
        for t in _imports(p):
            # `from .x import name` names a module only when x.name is one; else x is the module
            target = t if t in modules else t.rpartition(".")[0]
            if target in modules and target not in PACKAGES and target != src:
                g.add_edge(src, target)
    return g


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(_graph()))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_nothing_imports_the_facade_back():
    g = _graph()
    importers = {m for m in g.predecessors("indexer.index")}
    # only the outer layers (CLI, build worker, the service's app and the routers that answer from an
    # Index) and the package's lazy exports sit on top of it
    service = {f"indexer.serve.{m}" for m in ("app", "routes_queries", "routes_passages", "routes_index")}
    assert importers <= {"indexer", "indexer.cli", "indexer.jobs"} | service, importers


def test_the_cycle_check_can_fail(tmp_path):
    """The same graph code on a planted cycle finds it (the test above is not vacuous)."""
    g = _graph()
    g.add_edge("indexer.errors", "indexer.index")
    assert any("indexer.errors" in c for c in nx.simple_cycles(g))


def test_index_facade_stays_thin():
    lines = (ROOT / "indexer" / "index.py").read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"indexer/index.py has {lines} lines; move work into its own module"


_PRIVATE_CALL = re.compile(r"\b(?:idx|index|ix|retriever|ret|r|st|state|builder|derived)\._[a-z]\w*\(")


def test_no_private_calls_across_modules():
    offenders = []
    for folder in ("indexer", "storage", "tests", "bench"):
        for p in (ROOT / folder).rglob("*.py"):
            if p.name == "test_architecture.py":
                continue
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                if _PRIVATE_CALL.search(line):
                    offenders.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
