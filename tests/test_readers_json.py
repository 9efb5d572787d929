"""Numerals, the 全國法規資料庫 JSON reader, the JSONL reader, and library-level checks."""

from __future__ import annotations

import json

import pytest

from indexer.library import LibraryError, read_file, read_library
from indexer.passages import is_repealed, normalize_text
from indexer.text.numerals import article_number, cn_to_int

from .conftest import LAWS_2024, requires_data, write_law

pytestmark = pytest.mark.backend_free  # never opens an index


@pytest.mark.parametrize("text,value", [("一", 1), ("十", 10), ("十五", 15), ("二十四", 24), ("三十", 30),
                                        ("一百八十四", 184), ("一百零五", 105), ("一千四百三十九", 1439),
                                        ("24", 24), ("２４", 24)])
def test_cn_to_int(text, value):
    assert cn_to_int(text) == value


@pytest.mark.parametrize("text,number", [("第 15-1 條", "15-1"), ("第十五條之一", "15-1"), ("第 24 條", "24"),
                                         ("第一百八十四條", "184"), ("15之1", "15-1"), ("第 ２４ 條", "24")])
def test_article_number(text, number):
    assert article_number(text) == number


@pytest.mark.parametrize("bad", ["", "第條", "abc", "第 x 條"])
def test_article_number_rejects(bad):
    with pytest.raises(ValueError):
        article_number(bad)


def test_normalize_and_repealed():
    assert normalize_text("甲\r\n乙  \r\n") == "甲\n乙"
    assert is_repealed("（刪除）") and is_repealed(" (刪除) ") and not is_repealed("本條刪除之規定")


@requires_data
def test_real_json_structure():
    doc = read_file(LAWS_2024 / "J0070017.json")
    assert (doc.doc_key, doc.name, doc.format) == ("J0070017", "著作權法", "moj-json")
    by_key = {p.key: p for p in doc.passages}
    assert len(by_key) == 158
    assert "J0070017:10-1" in by_key and by_key["J0070017:10-1"].article == "10-1"
    p3 = by_key["J0070017:3"]
    assert p3.chapters == ("第 一 章 總則",)
    assert len(p3.paragraphs) == 2 and p3.paragraphs[0].count("\n") >= 19  # 十九款 stay in 第一項
    assert by_key["J0070017:114"].repealed
    civil = read_file(LAWS_2024 / "B0000001.json")
    tort = next(p for p in civil.passages if p.article == "184")
    assert tort.chapters == ("第 二 編 債", "第 一 章 通則", "第 一 節 債之發生", "第 五 款 侵權行為")
    assert tort.embed_text.startswith("民法 第184條\n因故意或過失")


@requires_data
def test_real_library_counts():
    lib = read_library(LAWS_2024)
    assert len(lib.documents) == 30 and len(lib.passages) == 6719
    assert sum(p.repealed for p in lib.passages) == 390
    assert len({p.key for p in lib.passages}) == 6719


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe\x00garbage", "not valid UTF-8 JSON"),
    (b'{"a": 1}', "法規名稱 and 法規內容"),
    ('{"法規名稱": "x", "法規內容": []}'.encode(), "no articles"),
    ('{"法規名稱": "x", "法規內容": [{"條號": "第 1 條", "條文內容": "a"}, {"條號": "第 1 條", "條文內容": "b"}]}'.encode(),
     "appears twice"),
    ('{"法規名稱": "x", "法規內容": [{"條號": "第 甲 條", "條文內容": "a"}]}'.encode(), "unreadable article number"),
])
def test_malformed_json_names_the_file(tmp_path, content, reason):
    path = tmp_path / "BAD0001.json"
    path.write_bytes(content)
    with pytest.raises(LibraryError) as err:
        read_file(path)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_jsonl_reader(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [{"id": "a1", "text": "第一段", "metadata": {"source": "x"}},
            {"id": 7, "law": "中华人民共和国民法典", "article": "第四百六十五条", "text": "依法成立的合同，受法律保护。"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    doc = read_file(path)
    a, b = doc.passages
    assert (a.key, a.text, a.metadata["source"], a.embed_text) == ("a1", "第一段", "x", "第一段")
    assert (b.key, b.law, b.article_label) == ("7", "中华人民共和国民法典", "第四百六十五条")
    assert b.embed_text == "中华人民共和国民法典 第四百六十五条\n依法成立的合同，受法律保护。"


@pytest.mark.parametrize("lines,reason", [
    (['{"id": "1", "text": "a"}', '{"id": "1", "text": "b"}'], "already used on line 1"),
    (['{"id": "1"}'], "line 1: missing or empty text"),
    (['{"text": "a"}'], "line 1: missing id"),
    (['{"id": "1", "text": "a"}', "[1, 2]"], "line 2: expected an object"),
    (['{"id": "1", "text": "a"}', "{oops"], "line 2: invalid JSON"),
])
def test_malformed_jsonl(tmp_path, lines, reason):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(LibraryError) as err:
        read_file(path)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_library_folder_rules(tmp_path):
    lib_dir = tmp_path / "lib"
    write_law(lib_dir, "T0000001", "測試法", {"1": "第一條內容。"})
    (lib_dir / "README").write_text("not a law")
    (lib_dir / ".hidden.json").write_text("{broken")       # hidden files are never read
    lib = read_library(lib_dir)
    assert [d.doc_key for d in lib.documents] == ["T0000001"]
    assert [p.endswith("README (not a law format)") for p in lib.skipped] == [True]
    # the same pcode in two files is an error naming the second file
    sub = lib_dir / "copy"
    write_law(sub, "T0000001", "測試法", {"1": "第一條內容。"})
    with pytest.raises(LibraryError, match="already read from"):
        read_library(lib_dir)


def test_missing_or_empty_library(tmp_path):
    with pytest.raises(LibraryError, match="no such file"):
        read_library(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match="no law files"):
        read_library(tmp_path / "empty")
