"""All configuration in one typed object: arguments, HOPRAG_* environment variables, a TOML file.

Public API:
    Settings                    pydantic-settings model; Settings(home=...) overrides per call
    Settings.load(home=None, config=None, **overrides) -> Settings
                                arguments > environment > config file > defaults; the file is
                                `config`, else $HOPRAG_CONFIG, else <home>/hoprag.toml, else
                                [tool.hoprag] of ./pyproject.toml (whichever exists first)
    Settings.database_url_for() the SQLAlchemy URL (default: SQLite inside the home folder)
    config_file(home=None, config=None) -> (Path, table) | None     the file Settings.load reads
    setting_sources(home=None, config=None, **overrides) -> [{name, value, source}]
                                every setting and where its value came from (for `hoprag config`)
    ConfigFileError             a config file that cannot be read, or names an unknown setting
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Settings", "ConfigFileError", "config_file", "setting_sources", "CONFIG_NAME"]

CONFIG_NAME = "hoprag.toml"
# what Settings.load hands to the sources of the Settings it makes (pydantic-settings asks the class)
_file_values: ContextVar[dict[str, Any] | None] = ContextVar("hoprag_file_values", default=None)


class ConfigFileError(ValueError):
    """A config file that cannot be read or names an unknown setting; the message names the file."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOPRAG_", extra="ignore")

    home: Path = Field(Path(".hoprag"), description="index folder (database, vectors, snapshots)")
    database_url: str | None = Field(None, description="any SQLAlchemy URL; default sqlite:///<home>/index.db")

    embedder: str = Field("bge-m3", description="bge-m3 | st:<name-or-path> | use-multilingual | gemini:<model>")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(32, ge=1, le=4096)
    max_seq_length: int = Field(1024, ge=16, le=8192)
    # Threads for the offline numpy model; more than the machine's cores only adds contention.
    cpu_threads: int = Field(0, ge=0, description="offline model's threads in a build (its workers); 0 = all cores")
    # One query's embed and scans run at this many threads in Python, the CLI and `hoprag serve`: a
    # pool wider than one query leaves threads spinning for a core any neighbour holds (README's
    # Benchmarks: dense p50 beside a busy neighbour, one thread against every core)
    query_threads: int = Field(
        1, ge=0, description="threads of one query's embed and scans (BLAS and OpenMP pools); 0 = all cores"
    )

    # Gemini (google-genai). The key is read from the environment only, never from files we write.
    gemini_api_key: SecretStr | None = Field(None, validation_alias="GEMINI_API_KEY")
    gemini_base_url: str | None = Field(None, description="override the API endpoint (proxies, tests)")
    gemini_batch_size: int = Field(100, ge=1, le=100, description="texts per batchEmbedContents call")
    gemini_timeout_s: float = Field(60.0, gt=0)
    gemini_max_retries: int = Field(6, ge=0)
    gemini_output_dim: int | None = Field(None, ge=1, description="truncate Gemini vectors (MRL)")

    # openai:<model>: an OpenAI-compatible /embeddings endpoint (Ollama, TEI, vLLM, infinity, llama.cpp)
    embed_base_url: str | None = Field(
        None, description="OpenAI-compatible embeddings endpoint for openai:<model>, e.g. http://localhost:11434/v1"
    )
    embed_api_key: SecretStr | None = Field(None, description="bearer key for that endpoint")
    embed_batch_size: int = Field(64, ge=1, le=2048, description="texts per /embeddings request")
    embed_timeout_s: float = Field(60.0, gt=0, description="timeout of one /embeddings request")
    embed_max_retries: int = Field(5, ge=0, description="retries on 429/5xx/timeouts")

    # LLM for HopRAG pseudo-queries: gemini:<model> | openai:<model> | none
    llm: str = Field("none", description="gemini:<model> | openai:<model> | none")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1")
    llm_api_key: SecretStr | None = Field(None, description="bearer key for the OpenAI-compatible endpoint")
    llm_concurrency: int = Field(8, ge=1, le=256, description="LLM requests in flight")
    llm_rpm: int | None = Field(None, ge=1, description="requests per minute limit (None: unlimited)")
    llm_timeout_s: float = Field(120.0, gt=0, description="timeout of one LLM call")
    llm_max_retries: int = Field(5, ge=0, description="retries on 429/5xx/timeouts/malformed replies")
    # A dead endpoint (refused, reset, gone, or one timeout after another) would otherwise cost every
    # passage all its retries; a build stops asking, records the rest as failed, and finishes.
    llm_breaker_failures: int = Field(
        3, ge=0, description="consecutive transport failures after which a run stops asking the LLM (0: never)"
    )
    # 0.3: on the local 1.5B model, varied enough that a re-ask differs, steady enough to keep the form
    questions_import_max_mb: float = Field(
        64, gt=0, description="largest file `questions import` reads (an export of 100k answers is ~55 MB)"
    )
    llm_temperature: float = Field(0.3, ge=0, le=2)
    # the temperatures of the 1st, 2nd, … re-ask after a reply that did not fit (the last repeats)
    llm_repair_temperatures: list[float] = Field(default_factory=lambda: [0.6, 0.9])
    # A small model may paste the article until it hits the limit: cap the reply (0 = server default).
    llm_max_tokens: int = Field(768, ge=0, description="reply tokens per LLM call (0: the server's default)")

    # HopRAG pseudo-queries per passage (HopRAG §3.2) and edge matching
    questions_in_min: int = Field(2, ge=1)
    questions_in_max: int = Field(4, ge=1)
    questions_out_min: int = Field(2, ge=0)
    questions_out_max: int = Field(6, ge=0)
    edge_top_k: int = Field(2, ge=1, description="incoming questions matched per outgoing question")
    edge_threshold: float = Field(0.5, ge=-1, le=1, description="minimum edge score")
    edge_max_per_passage: int = Field(8, ge=1, description="question edges leaving one passage")
    edge_keyword_weight: float = Field(0.0, ge=0, le=1, description="weight of jieba keyword Jaccard in the score")
    edge_candidates: int = Field(32, ge=1, description="incoming questions re-scored per outgoing question")
    edge_generic_cosine: float = Field(
        0.95,
        ge=0,
        le=1,
        description=(
            "an incoming question this close to questions of edge_generic_passages other passages is not matched (0: off)"
        ),
    )
    edge_generic_passages: int = Field(3, ge=0, description="see edge_generic_cosine (0: off)")

    max_file_mb: float = Field(64, gt=0, description="largest law file a build reads")

    # Limits of a query (CLI, Python and HTTP alike)
    max_query_chars: int = Field(2000, ge=1)
    max_k: int = Field(100, ge=1)
    max_hops: int = Field(4, ge=0)
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest HTTP request body the service reads")

    # Fusion and hop search (HopRAG §3.3), tuned on the STARD dev half with the local model's
    # pseudo-queries and reported on the test half (bench/bench_hoprag.py,
    # bench/results/hoprag-stard-cpu-2core.json). rrf_k 10, not the customary 60: dev hybrid
    # recall@10 0.642 at 10, 0.637 at 30, 0.633 at 60. The question list at full weight cost 1.4
    # points of dev recall@10 (a 1.5B model's questions are weaker evidence than the article's own
    # words); at 0.25 it adds a little, and 0 switches it off.
    rrf_k: int = Field(10, ge=1, description="reciprocal rank fusion constant")
    question_weight: float = Field(0.25, ge=0, description="weight of the incoming-question list in fusion (0: off)")
    bm25_tokenizer: Literal["bigram", "jieba"] = Field(
        "bigram", description="BM25 tokens: character unigrams + bigrams (chosen on STARD dev), or jieba words"
    )
    # dev-tuned with n_hop 2: the paper's w = 0.5 ((SIM + IMP)/2) gains no recall@10 on STARD dev
    # (0.641 at best) and drops MRR from 0.50 to 0.39, as walk arrivals push exact matches off the head
    hop_imp_weight: float = Field(0.1, ge=0, le=1, description="H = (1-w)·SIM + w·IMP")
    hop_min_sim: float = Field(
        0.4,
        ge=0,
        description=(
            "similarity hops follow an edge only to a passage at least this relevant (SIM); else none (> 1: never)"
        ),
    )
    hop_branch: int = Field(1, ge=1, le=8, description="edges followed from one passage per hop")
    # dev-chosen on the two-article sets (bench/bench_twohop.py): 0.85; STARD's single-article test
    # MRR moved by 0.0002 with it
    hop_role_weight: float = Field(
        0.85,
        ge=0,
        le=1,
        description=(
            "a citation whose text says its legal role (punishes, exception, defines, applies) passes this share of"
            " a passage's SIM to the article at its other end, either way (0: roles do not weigh)"
        ),
    )
    hop_max_llm_calls: int = Field(16, ge=0, description="LLM calls of one llm-mode hop search")
    hop_llm_options: int = Field(8, ge=1, le=32, description="edges shown to the LLM per passage")
    # Covers every LLM call and retry of one llm-mode hop search (in `hoprag serve`, from the
    # request's arrival): on expiry the walk finishes with the similarity choice (deadline_hit).
    hop_llm_deadline_s: float = Field(
        30.0, gt=0, le=3600, description="time limit of one llm-mode hop search's LLM work"
    )
    hop_llm_queries: int = Field(
        2,
        ge=1,
        le=64,
        description="llm-mode hop searches `hoprag serve` runs at once (others queue, apart from other queries)",
    )

    # One thread per query in the service (the embedder, and FAISS's and BLAS's pools): requests
    # arrive concurrently, and an intra-op pool per request leaves threads spinning for a core a build
    # or another request holds (measured by hand, 8 clients beside one busy process: 33 requests/s
    # with 2 threads per query, 114 with 1).
    serve_threads: int = Field(
        1, ge=0, description="threads per query in `hoprag serve`: embedder, FAISS and BLAS pools (0: all cores)"
    )
    # `hoprag serve` builds in a child process at this niceness with this many embedder threads, so
    # that queries keep a core and the scheduler's favour while the embedder works.
    build_worker: Literal["process", "thread"] = Field("process", description="where `hoprag serve` runs a build")
    build_threads: int = Field(1, ge=0, description="embedder threads of a build run by the service (0: all cores)")
    build_nice: int = Field(10, ge=0, le=19, description="CPU niceness of a build run by the service")

    # Where vector sets live: FAISS files in each snapshot, or Milvus collections that several
    # processes and hosts share (with a PostgreSQL database_url)
    vectors: Literal["faiss", "milvus"] = Field("faiss", description="vector engine")
    milvus_uri: str | None = Field(None, description="Milvus Lite file, or http://host:19530 (standalone, cluster)")
    milvus_prefix: str = Field("hoprag", description="collection name prefix: one per index on a shared Milvus")
    milvus_token: SecretStr | None = Field(None, description="Milvus user:password or API token")
    milvus_index: Literal["FLAT", "IVF_FLAT"] = Field("FLAT", description="exact (FLAT) or clustered (IVF_FLAT)")
    milvus_nlist: int = Field(1024, ge=1, description="IVF_FLAT clusters")
    milvus_nprobe: int = Field(32, ge=1, description="IVF_FLAT clusters searched per query")

    # one PDF's reading (a decompression bomb must fail fast, with the file's name)
    pdf_max_stream_mb: float = Field(16, gt=0, description="largest decompressed stream of a PDF")
    pdf_max_pages: int = Field(2000, ge=1, description="most pages of one PDF")
    pdf_max_seconds: float = Field(60, gt=0, description="longest text extraction of one PDF")
    # `hoprag serve` sets its library roots here for the builds it runs: each file is checked where
    # it is opened, so a folder swapped for a link after the request was checked is never read
    read_within: list[Path] = Field(
        default_factory=list, description="folders every library file a build reads must lie in (empty: anywhere)"
    )
    # `hoprag serve` turns it off for the builds it runs: a client's `st:org/name` is a hub id there
    st_relative_folders: bool = Field(
        True, description="a relative st:<model> may name a local folder (off: only absolute paths do)"
    )

    snapshot_keep: int = Field(3, ge=1, description="snapshots kept on disk (newest first)")

    # How many texts the build embeds between cache commits: a crash loses at most this much work.
    embed_chunk: int = Field(512, ge=1)

    def database_url_for(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.home).resolve() / 'index.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: arguments, then the environment, then the config file Settings.load read
        return (init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=_file_values.get() or {}))

    @classmethod
    def load(cls, home: str | Path | None = None, config: str | Path | None = None, **overrides: Any) -> Settings:
        """Settings from arguments > environment > config file > defaults (see config_file)."""
        values = _read_config(config_file(home, config))
        token = _file_values.set(values)
        given: dict[str, Any] = {"home": Path(home)} if home is not None else {}
        try:
            return cls(**given, **overrides)
        finally:
            _file_values.reset(token)


# Keys belong in the environment, not in a file that is copied, committed or shown
_SECRETS = {name for name, f in Settings.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)}


def config_file(home: str | Path | None = None, config: str | Path | None = None) -> tuple[Path, tuple] | None:
    """The file Settings.load reads and the table in it: `config` (or $HOPRAG_CONFIG), which must
    exist; else <home>/hoprag.toml (home: the argument, $HOPRAG_HOME, .hoprag); else ./pyproject.toml
    if it has [tool.hoprag]; else None."""
    named = config or os.environ.get("HOPRAG_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigFileError(f"{path}: no such config file")
        return path, ("tool", "hoprag") if path.name == "pyproject.toml" else ()
    in_home = Path(home or os.environ.get("HOPRAG_HOME") or ".hoprag") / CONFIG_NAME
    if in_home.is_file():
        return in_home, ()
    project = Path("pyproject.toml")
    if project.is_file() and "hoprag" in _toml(project).get("tool", {}):
        return project, ("tool", "hoprag")
    return None


def _toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"{path}: {exc}") from None


def _read_config(found: tuple[Path, tuple] | None) -> dict[str, Any]:
    if found is None:
        return {}
    path, table = found
    values: Any = _toml(path)
    for part in table:
        values = values.get(part, {})
    if not isinstance(values, dict):
        raise ConfigFileError(f"{path}: [{'.'.join(table)}] is not a table")
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ConfigFileError(f"{path}: unknown setting {unknown[0]!r} (names as in HOPRAG_*, lower case)")
    secret = sorted(set(values) & _SECRETS)
    if secret:
        raise ConfigFileError(f"{path}: {secret[0]!r} is a secret: set it in the environment, not in a file")
    return values


def setting_sources(home: str | Path | None = None, config: str | Path | None = None, **overrides: Any) -> list[dict]:
    """Every setting's effective value and where it came from: argument, environment (the variable),
    the config file, or default. Secrets show as set or not, never their value."""
    found = config_file(home, config)
    in_file = _read_config(found)
    settings = Settings.load(home, config, **overrides)
    given = set(overrides) | ({"home"} if home is not None else set())
    rows = []
    for name, f in Settings.model_fields.items():
        env = f.validation_alias if isinstance(f.validation_alias, str) else f"HOPRAG_{name.upper()}"
        if name in given:
            source = "argument"
        elif env in os.environ:
            source = f"environment {env}"
        elif name in in_file and found is not None:
            source = f"file {found[0]}"
        else:
            source = "default"
        value = getattr(settings, name)
        if name in _SECRETS:
            value = "(set)" if value is not None else None
        rows.append({"name": name, "value": value if not isinstance(value, Path) else str(value), "source": source})
    return rows
