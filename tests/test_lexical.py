"""BM25: the vectorized score matrix is bm25s's, and a build from a base gives what a fresh build gives."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.store.lexical import Lexicon, build_lexicon, tokenize

pytestmark = pytest.mark.backend_free  # never opens an index

TEXTS = {
    3: "勞動基準法 第24條 雇主延長勞工工作時間者，其延長工作時間之工資，依下列標準加給",
    1: "勞動基準法 第32條 雇主有使勞工在正常工作時間以外工作之必要者，經工會同意",
    7: "民法 第184條 因故意或過失，不法侵害他人之權利者，負損害賠償責任。故意以背於善良風俗之方法",
    9: "著作權法 第65條 著作之合理使用，不構成著作財產權之侵害。",
    4: "",  # a passage with no token at all
    5: "Article 5 copyright fair use fair use",
}
QUERIES = ["雇主延長工作時間之工資", "故意 過失 侵害", "fair use", "合理使用"]


@pytest.mark.parametrize("tokenizer", ["bigram", "jieba"])
def test_scores_are_bm25s_scores(tokenizer):
    bm25s = pytest.importorskip("bm25s")
    lex = build_lexicon(TEXTS, tokenizer)
    model = bm25s.BM25()
    model.index([tokenize(TEXTS[i], tokenizer) for i in sorted(TEXTS)], show_progress=False)
    for q in QUERIES:
        tokens = tokenize(q, tokenizer)
        want = np.asarray(model.get_scores([t for t in tokens if t in model.vocab_dict]))
        got = lex.scores(tokens)
        assert got.max() > 0
        np.testing.assert_array_equal(got, want)


def test_a_build_from_a_base_equals_a_fresh_build():
    base = build_lexicon(TEXTS, "bigram")
    changed = dict(TEXTS) | {1: "勞動基準法 第32條 雇主延長工作時間，應經工會同意", 11: "新條文 新增"}
    del changed[9]  # 著作權 and 合理使用 leave the vocabulary
    fresh, patched = build_lexicon(changed, "bigram"), build_lexicon(changed, "bigram", base)
    assert "著作" not in patched.vocab and "新增" in patched.vocab
    assert patched.tokens == fresh.tokens and patched.hashes == fresh.hashes
    for q in QUERIES + ["新增 條文"]:
        np.testing.assert_allclose(patched.scores(patched.tokenize(q)), fresh.scores(fresh.tokenize(q)), rtol=1e-6)


def test_files_round_trip_and_refuse_a_mismatch():
    lex = build_lexicon(TEXTS, "bigram")
    files = lex.to_files()
    back = Lexicon.from_files(files.__getitem__, "bigram")
    assert back.tokens == lex.tokens and back.vocab == lex.vocab
    np.testing.assert_array_equal(back.scores(["雇主"]), lex.scores(["雇主"]))
    with pytest.raises(ValueError, match="tokenizer"):
        Lexicon.from_files(files.__getitem__, "jieba")
    broken = dict(files, **{"bm25.offsets.npy": build_lexicon({1: "甲"}, "bigram").to_files()["bm25.offsets.npy"]})
    with pytest.raises(ValueError, match="fit together"):
        Lexicon.from_files(broken.__getitem__, "bigram")
