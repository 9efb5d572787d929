"""sentence-transformers embedders: `bge-m3` (BAAI/bge-m3, the default) and `st:<name-or-path>`.

The model is resolved to a local folder first (Hugging Face cache or a path), so that the
fingerprint can name the exact weights and so that a machine without network fails in a second
with instructions instead of retrying the hub for a minute.

Public API:
    SentenceTransformerEmbedder(model, settings, name=None)
    resolve_model(model, relative_folders=True) -> (local_path, revision)
    hf_cache_dir() -> Path
    hub_reachable(timeout=3.0) -> bool
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..settings import Settings
from .base import EmbedderError, Fingerprint, check_vectors, weights_digest

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceTransformerEmbedder", "resolve_model", "hf_cache_dir", "BGE_M3"]

log = logging.getLogger(__name__)
BGE_M3 = "BAAI/bge-m3"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")
_models: dict[tuple[str, str, bool], SentenceTransformer] = {}  # one loaded model per (path, device, dtype) per process
_models_lock = threading.Lock()


def hf_cache_dir() -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (or HF_ENDPOINT) answers within `timeout`: a model not cached
    can be downloaded (hoprag doctor says so before a build tries)."""
    import httpx
    from huggingface_hub.constants import ENDPOINT, HF_HUB_OFFLINE

    if HF_HUB_OFFLINE:
        return False
    try:
        httpx.head(ENDPOINT, timeout=timeout, follow_redirects=True)
        return True
    except httpx.HTTPError:
        return False


def _missing_weights_message(model: str, why: str) -> str:
    return (
        f"cannot load embedding model {model!r}: {why}.\n"
        f"  - the Hugging Face cache is {hf_cache_dir()} (set HF_HOME to move it); "
        f"download once where the hub is reachable: `hf download {model}`\n"
        f"  - or point HF_ENDPOINT at a mirror (e.g. HF_ENDPOINT=https://hf-mirror.com)\n"
        f"  - or give a local folder: --embedder st:/path/to/{model.split('/')[-1]}\n"
        f"  - or use the bundled offline model: --embedder use-multilingual"
    )


def resolve_model(model: str, relative_folders: bool = True) -> tuple[Path, str]:
    """A local folder for `model` and the revision that identifies its weights. Without
    `relative_folders` only an absolute path names a folder: anything else is a hub id, never
    looked up on disk (over HTTP, `evil/mini` would otherwise load ./evil/mini from the server's
    working directory)."""
    local = Path(model).expanduser() if relative_folders else Path(model)
    if (relative_folders or local.is_absolute()) and local.exists():
        if not (local / "config.json").exists() and not (local / "modules.json").exists():
            raise EmbedderError(f"{local} is not a sentence-transformers model folder (no config.json/modules.json)")
        return local.resolve(), weights_digest(local.resolve(), _WEIGHT_FILES)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.txt", "*.model", "model.safetensors", "1_Pooling/*", "sentencepiece*"]
    try:
        path = Path(snapshot_download(model, local_files_only=True, allow_patterns=patterns))
    except (LocalEntryNotFoundError, OSError, ValueError):
        if not hub_reachable():
            raise EmbedderError(
                _missing_weights_message(model, "its weights are not in the local cache and the hub is unreachable")
            ) from None
        try:
            path = Path(snapshot_download(model, allow_patterns=patterns))
        except Exception as exc:  # network, auth, disk full: all end the same way for the user
            raise EmbedderError(_missing_weights_message(model, f"download failed ({exc})")) from None
    # The hub cache lays snapshots out as .../snapshots/<commit>/
    return path, path.name


def _pick_device(setting: str) -> str:
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise EmbedderError("device 'cuda' requested but torch sees no CUDA device (set HOPRAG_DEVICE=cpu or auto)")
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


class SentenceTransformerEmbedder:
    def __init__(self, model: str, settings: Settings, name: str | None = None):
        self.name = name or f"st:{model}"
        self.model_id = model
        self.settings = settings
        self.device = _pick_device(settings.device)
        self.path, self.revision = resolve_model(model, settings.st_relative_folders)
        self._model: SentenceTransformer | None = None
        self.batch_size = settings.batch_size

    def _load(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        fp16 = self.device == "cuda"
        key = (str(self.path), self.device, fp16)
        if self.settings.cpu_threads and self.device == "cpu":
            import torch

            # process-wide: the service asks for 1 (concurrent requests are its parallelism), a
            # build for all cores
            torch.set_num_threads(self.settings.cpu_threads)
        with _models_lock:
            model = _models.get(key)
            if model is None:
                from sentence_transformers import SentenceTransformer

                try:
                    model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
                except Exception as exc:
                    raise EmbedderError(f"cannot load {self.model_id} from {self.path}: {exc}") from exc
                if fp16:
                    model.half()  # halves memory and doubles throughput on GPUs; cosine ranks are unchanged
                _models[key] = model
        model.max_seq_length = min(self.settings.max_seq_length, getattr(model.tokenizer, "model_max_length", 10**9))
        self._model = model
        return model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:
            raise EmbedderError(f"{self.model_id} does not state its embedding dimension")
        return int(dim)

    @property
    def max_tokens(self) -> int:
        limit = self._load().max_seq_length
        assert limit is not None  # _load() sets it
        return int(limit)

    def too_long(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        """(position, token count) of texts the model truncates."""
        limit = self.max_tokens
        tokenizer = self._load().tokenizer
        # no tokenizer in use spends more than 4 tokens on one character (byte-level BPE on CJK
        # takes up to 3): shorter texts cannot be over, and most articles skip tokenization
        candidates = [i for i, t in enumerate(texts) if len(t) > limit // 4]
        out = []
        for i in candidates:
            n = len(tokenizer(texts[i], add_special_tokens=True, truncation=False)["input_ids"])
            if n > limit:
                out.append((i, n))
        return out

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(name=self.name, model=self.model_id, revision=self.revision, dim=self.dim, normalized=True)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self._load().encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        # Longest first: padding waste stays small and an OOM shows up on the first batch.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        start = 0
        while start < len(order):
            idx = order[start : start + self.batch_size]
            try:
                out[idx] = self._encode([texts[i] for i in idx], self.batch_size)
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise EmbedderError(
                        "CUDA out of memory at batch size 1; lower HOPRAG_MAX_SEQ_LENGTH or use the CPU"
                    ) from None
                torch.cuda.empty_cache()
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("CUDA out of memory; retrying with batch size %d", self.batch_size)
                continue
            start += len(idx)
            if progress is not None:
                progress(start)
        return check_vectors(out, len(texts), self.dim, self.name)
