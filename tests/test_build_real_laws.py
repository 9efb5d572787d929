"""The acceptance path on the real data: 2022 laws, then the 2024 amendment, then a no-op rebuild.

Expected counts are recomputed here from the raw JSON with the json module alone, so a bug in the
readers or the diff cannot make its own expectation.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

import numpy as np

from indexer.index import Index

from .conftest import LAWS_2022, LAWS_2024, requires_data

pytestmark = requires_data


def _raw_articles(folder):
    """key -> (law name, article label, text) straight from the files."""
    out = {}
    for f in sorted(folder.glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8-sig"))
        pcode = re.search(r"pcode=(\w+)", data["法規網址"]).group(1)
        for item in data["法規內容"]:
            if "條號" in item:
                num = re.sub(r"[第條\s]", "", item["條號"])
                out[f"{pcode}:{num}"] = (data["法規名稱"], num, item["條文內容"])
    return out


def _norm(t: str) -> str:
    t = unicodedata.normalize("NFC", t).replace("\r\n", "\n")
    return "\n".join(line.rstrip() for line in t.split("\n")).strip()


def _repealed(t: str) -> bool:
    return re.fullmatch(r"[（(]\s*刪除\s*[)）]", t.strip()) is not None


def _embed_key(law, num, text):
    return hashlib.sha256(_norm(f"{law} 第{num}條\n{_norm(text)}").encode()).hexdigest()


def test_first_build_embeds_every_live_article_once(laws_index):
    first = laws_index["reports"][0]
    old = _raw_articles(LAWS_2022)
    live = {_embed_key(*v) for v in old.values() if not _repealed(v[2])}
    assert first.added == len(old) == 6628
    assert first.repealed == sum(_repealed(v[2]) for v in old.values())
    assert first.embedded == len(live)
    assert (first.changed, first.removed, first.unchanged) == (0, 0, 0)


def test_amendment_embeds_only_the_diff(laws_index):
    second = laws_index["reports"][1]
    old, new = _raw_articles(LAWS_2022), _raw_articles(LAWS_2024)
    added = [k for k in new if k not in old]
    changed = [k for k in new if k in old and _norm(old[k][2]) != _norm(new[k][2])]
    renamed = [k for k in new if k in old and k not in changed and old[k][0] != new[k][0]]
    assert (len(added), len(changed)) == (91, 341)          # the amendment as the data README states
    assert second.added == 91 and second.changed == 341 and second.removed == 0
    # 性別工作平等法 → 性別平等工作法: its unchanged articles carry a new law name in their embedded text
    assert second.relabeled == len(renamed) == 28
    assert all(k.startswith("N0030014:") for k in renamed)
    old_vectors = {_embed_key(*v) for v in old.values() if not _repealed(v[2])}
    expected = {_embed_key(*new[k]) for k in added + changed + renamed if not _repealed(new[k][2])} - old_vectors
    assert second.embedded == len(expected)
    assert second.unchanged == len(new) - 91 - 341 - 28
    assert second.generation == 2


def test_identical_rebuild_embeds_nothing(laws_index):
    first, _, third = laws_index["reports"]
    assert (third.embedded, third.added, third.changed, third.relabeled, third.removed) == (0, 0, 0, 0, 0)
    assert third.generation == 2           # nothing changed: no new generation
    # nothing written: no transaction, no edges recomputed, no snapshot
    assert not {"commit", "edges", "snapshot"} & set(third.stages), third.stages
    # and cheap next to a real build, measured on the same machine in the same session (a ratio,
    # not seconds, so a busy machine slows both alike)
    assert third.seconds < first.seconds / 4, (third.seconds, first.seconds)


def test_renamed_law_keeps_ids(laws_index):
    with Index(laws_index["home"]) as idx:
        p = idx.passage("N0030014:1")
        assert p["law"] == "性別平等工作法"
        stats = idx.stats()
    assert stats["passages"] == 6719 and stats["laws"] == 30
    assert stats["vectors"] == stats["embedded_passages"] == 6719 - 390


def test_query_finds_overtime_wage_article(laws_index):
    with Index(laws_index["home"]) as idx:
        hits = idx.query("雇主延長工作時間之工資如何計算", k=5)
    keys = [h.key for h in hits]
    assert "N0030001:24" in keys
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))
    top = next(h for h in hits if h.key == "N0030001:24")
    assert top.law == "勞動基準法" and top.article == "24" and "延長工作時間" in top.text


def test_repealed_articles_are_kept_but_never_returned(laws_index):
    with Index(laws_index["home"]) as idx:
        p = idx.passage("J0070017:114")
        assert p["text"] == "（刪除）" and p["embedded"] is False
        hits = idx.query("刪除", k=50)
    assert all(h.text != "（刪除）" for h in hits)


def test_vectors_match_cache_exactly(laws_index):
    """The incrementally patched FAISS index equals one rebuilt from the database and cache."""
    with Index(laws_index["home"]) as idx:
        patched = idx.derived.load().sets["passages"].index
        rebuilt = idx.derived.rebuild(idx.fingerprint, idx.generation).sets["passages"].index
    assert np.array_equal(np.sort(patched.ids()), np.sort(rebuilt.ids()))
    q = np.random.default_rng(0).standard_normal((3, patched.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    s1, i1 = patched.search(q, 10)
    s2, i2 = rebuilt.search(q, 10)
    assert np.array_equal(i1, i2) and np.allclose(s1, s2)
