"""The PDF and text readers (and their shared parser) on the real PDFs and on small hand-made laws."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest
from pypdf import PdfWriter

from indexer.library import LibraryError, read_file, read_library
from indexer.library.pdf import page_lines
from indexer.passages import Document

from .conftest import DATA, requires_data

pytestmark = pytest.mark.backend_free  # never opens an index

PDF_DIR = DATA / "laws" / "pdf"
COPYRIGHT_JSON = DATA / "laws" / "2024-10-11" / "J0070017.json"
needs_data = requires_data


def _no_space(text: str) -> str:
    return re.sub(r"\s", "", text)


def _order(article: str) -> tuple[int, ...]:
    return tuple(int(n) for n in article.split("-"))


@pytest.fixture(scope="module")
def copyright_pdf() -> Document:
    return read_file(PDF_DIR / "著作權法.pdf")


@pytest.fixture(scope="module")
def trademark_pdf() -> Document:
    return read_file(PDF_DIR / "商標法.pdf")


# --- real PDFs -------------------------------------------------------------------------------

@needs_data
def test_copyright_pdf_matches_the_json(copyright_pdf: Document) -> None:
    pdf, json_doc = copyright_pdf, read_file(COPYRIGHT_JSON)
    assert (pdf.name, pdf.format, pdf.doc_key) == ("著作權法", "pdf", "著作權法")  # the PDF carries no pcode
    assert pdf.metadata["修正日期"] == "民國 111 年 06 月 15 日"
    assert pdf.metadata["附註"].startswith("一百十一年五月四日修正第 91、91-1、100、117 條條文、刪除第 98、98-1")
    assert [p.article for p in pdf.passages] == [p.article for p in json_doc.passages]
    assert len(pdf.passages) == 158

    by_article = {p.article: p for p in json_doc.passages}
    for p in pdf.passages:
        j = by_article[p.article]
        assert _no_space(p.text) == _no_space(j.text), p.article
        assert p.chapters == j.chapters, p.article            # including 第 四 章之一, 第 六 章之一
        assert p.paragraphs == j.paragraphs, p.article        # margin numbers give the 項
        assert p.key == f"著作權法:{p.article}" and p.law == "著作權法"
    # Byte-for-byte the same too, but for one article: the JSON indents the 目 (（一）…) of 第 3 條
    # by two spaces and no other 目 in the file (nor 312 of the 320 in the data); the PDF has no indent.
    differing = {p.article for p in pdf.passages if p.text != by_article[p.article].text}
    assert differing == {"3"}
    assert "\n（一）連線服務提供者" in next(p.text for p in pdf.passages if p.article == "3")
    # The variant colon ︰ is in the database itself (8 articles), not a misreading.
    assert sum("︰" in p.text for p in pdf.passages) == sum("︰" in p.text for p in json_doc.passages) == 8


@needs_data
def test_copyright_pdf_details(copyright_pdf: Document) -> None:
    art = {p.article: p for p in copyright_pdf.passages}
    assert art["114"].text == "（刪除）" and art["114"].repealed
    assert art["2"].paragraphs == ("本法主管機關為經濟部。", "著作權業務，由經濟部指定專責機關辦理。")
    # A 項 that crosses the page break between pages 8 and 9 is joined without a gap.
    assert "推定僅授與刊載或公開播送一次之權利" in art["41"].text
    assert art["80-1"].chapters == ("第 四 章之一 權利管理電子資訊及防盜拷措施",)
    assert art["22"].chapters == ("第 三 章 著作人及著作權", "第 四 節 著作財產權", "第 一 款 著作財產權之種類")


@needs_data
def test_trademark_pdf(trademark_pdf: Document) -> None:
    doc = trademark_pdf
    assert (doc.name, doc.doc_key, doc.format) == ("商標法", "商標法", "pdf")
    assert doc.metadata["修正日期"] == "民國 112 年 05 月 24 日"
    assert doc.metadata["附註"].split("\n")[1].endswith("條文，施行日期，自一百十三年五月一日施行。")
    articles = [p.article for p in doc.passages]
    assert len(articles) == 113  # 第 1 條 … 第 111 條, with 98-1 and 109-1
    assert all(_order(a) < _order(b) for a, b in pairwise(articles))
    assert articles[0] == "1" and articles[-1] == "111" and {"98-1", "109-1"} <= set(articles)
    art = {p.article: p for p in doc.passages}
    assert art["1"].text.startswith("為保障商標權、證明標章權、團體標章權、團體商標權及消費者利益，維護市場公平競爭")
    assert art["1"].text.endswith("特制定本法。") and art["1"].chapters == ("第 一 章 總則",)
    assert len(art["6"].paragraphs) == 4 and art["6"].paragraphs[1].split("\n")[1] == "一、依法得執行商標代理業務之專門職業人員。"
    assert art["33"].chapters == ("第 二 章 商標", "第 三 節 商標權")
    assert art["111"].text == "本法之施行日期，由行政院定之。"
    assert all(p.text and not p.text.startswith(("1 ", "第 ")) for p in doc.passages)


@needs_data
def test_read_library_reads_both_pdfs() -> None:
    lib = read_library(PDF_DIR)
    assert sorted(d.name for d in lib.documents) == ["商標法", "著作權法"]
    assert len(lib.passages) == 158 + 113


def test_page_numbers_are_stripped_only_at_page_edges() -> None:
    assert page_lines("第 3 頁\n第 1 條\n本法。\n12\n") == ["第 1 條", "本法。"]
    assert page_lines("- 2 -\n第 1 條\n5\n本法。\n共 9 頁") == ["第 1 條", "5", "本法。"]


# --- small hand-made laws --------------------------------------------------------------------

TXT_LAW = """\
著作權測試法
修正日期：民國 111 年 06 月 15 日
法規網址：https://law.moj.gov.tw/LawClass/LawAll.aspx?pcode=Z0000001

第一章 總則
第一條
為保障著作人著作權益，調和社會公共
利益，特制定本法。
第二條
1   本法主管機關為經濟部。
2   著作權業務，由經濟部指定專責機關
辦理。
第二章 著作
第一節 通則
第十五條之一
本法用詞，定義如下：
一、電腦程式：指 Computer
Program 及其相關文件。
二、網路服務提供者，指提供下列服務者：
（一）連線服務提供者。
（二）快速存取服務
提供者。
第十六條
（刪除）
"""


def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_text_law(tmp_path: Path) -> None:
    doc = read_file(_write(tmp_path, "copyright.txt", TXT_LAW))
    assert (doc.doc_key, doc.name, doc.format) == ("Z0000001", "著作權測試法", "text")
    assert doc.metadata == {
        "修正日期": "民國 111 年 06 月 15 日",
        "法規網址": "https://law.moj.gov.tw/LawClass/LawAll.aspx?pcode=Z0000001",
    }
    got = [(p.key, p.law, p.article, p.text, p.paragraphs, p.chapters, p.ordinal) for p in doc.passages]
    definitions = ("本法用詞，定義如下：\n一、電腦程式：指 Computer Program 及其相關文件。\n"
                   "二、網路服務提供者，指提供下列服務者：\n（一）連線服務提供者。\n（二）快速存取服務提供者。")
    assert got == [
        ("Z0000001:1", "著作權測試法", "1", "為保障著作人著作權益，調和社會公共利益，特制定本法。",
         ("為保障著作人著作權益，調和社會公共利益，特制定本法。",), ("第一章 總則",), 0),
        ("Z0000001:2", "著作權測試法", "2", "本法主管機關為經濟部。\n著作權業務，由經濟部指定專責機關辦理。",
         ("本法主管機關為經濟部。", "著作權業務，由經濟部指定專責機關辦理。"), ("第一章 總則",), 1),
        ("Z0000001:15-1", "著作權測試法", "15-1", definitions, (definitions,), ("第二章 著作", "第一節 通則"), 2),
        ("Z0000001:16", "著作權測試法", "16", "（刪除）", ("（刪除）",), ("第二章 著作", "第一節 通則"), 3),
    ]
    assert doc.passages[3].repealed and not doc.passages[0].repealed


def test_text_law_in_big5_and_with_bom(tmp_path: Path) -> None:
    big5 = read_file(_write(tmp_path, "big5.txt", TXT_LAW.encode("cp950")))
    bom = read_file(_write(tmp_path, "bom.txt", "\ufeff" + TXT_LAW))
    plain = read_file(_write(tmp_path, "plain.txt", TXT_LAW))
    assert big5.passages == bom.passages == plain.passages


def test_markdown_law(tmp_path: Path) -> None:
    md = """\
# 測試條例

法規名稱：測試條例（正式名稱）

## 第 1 章 總則

### 第 1 條
本條例依 ABC
123 法制定之。

### 第 2-1 條
第一項文字。

第二項文字，
延續如下：

一、甲。

二、乙。

## 附則

### 第三條
本條例自公布日施行。
"""
    doc = read_file(_write(tmp_path, "test-law.md", md))
    assert (doc.doc_key, doc.name) == ("test-law", "測試條例（正式名稱）")  # 法規名稱 beats the title line
    assert [(p.key, p.text, p.paragraphs, p.chapters) for p in doc.passages] == [
        ("test-law:1", "本條例依 ABC 123 法制定之。", ("本條例依 ABC 123 法制定之。",), ("第 1 章 總則",)),
        # A blank line starts a 項, but 款 stay in theirs.
        ("test-law:2-1", "第一項文字。\n第二項文字，延續如下：\n一、甲。\n二、乙。",
         ("第一項文字。", "第二項文字，延續如下：\n一、甲。\n二、乙。"), ("第 1 章 總則",)),
        ("test-law:3", "本條例自公布日施行。", ("本條例自公布日施行。",), ("附則",)),
    ]


def test_markdown_title_is_no_chapter(tmp_path: Path) -> None:
    doc = read_file(_write(tmp_path, "x.md", "# 測試法\n\n## 第一章 總則\n\n## 第 1 條\n本法。\n"))
    assert (doc.name, doc.metadata, doc.passages[0].chapters) == ("測試法", {}, ("第一章 總則",))


def test_name_falls_back_to_the_file_stem(tmp_path: Path) -> None:
    doc = read_file(_write(tmp_path, "某法.txt", "第 1 條\n本法。\n"))
    assert (doc.name, doc.doc_key, doc.metadata) == ("某法", "某法", {})


def test_wrapped_line_that_looks_like_a_chapter_stays_text(tmp_path: Path) -> None:
    doc = read_file(_write(tmp_path, "law.txt", "第 1 條\n違反\n第三章 之規定者，\n處罰之。\n第 2 條\n本法。\n"))
    assert doc.passages[0].text == "違反第三章 之規定者，處罰之。" and doc.passages[1].chapters == ()


# --- malformed files -------------------------------------------------------------------------

def _blank_pdf(path: Path, password: str | None = None) -> Path:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    if password:
        writer.encrypt(password)
    with path.open("wb") as f:
        writer.write(f)
    return path


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("empty.txt", "", "empty file"),
    ("prose.txt", "某某法\n這是一段沒有條文的文字。\n", "no article headings"),
    ("twice.txt", "第 1 條\n甲。\n第一條\n乙。\n", "article 第一條 appears twice"),
    ("bare.md", "## 第 1 條\n## 第 2 條\n乙。\n", "article 第 1 條 has no text"),
    ("bare-end.txt", "第 1 條\n甲。\n第 2 條\n", "article 第 2 條 has no text"),
    ("garbage.txt", b"\x80\x81\xff\xfe\x00 garbage", "not text in utf-8-sig or cp950"),
    ("fake.pdf", "hello, I am not a PDF", "unreadable PDF"),
])
def test_malformed_files(tmp_path: Path, name: str, data: str | bytes, reason: str) -> None:
    path = _write(tmp_path, name, data)
    with pytest.raises(LibraryError) as err:
        read_file(path)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    path = _blank_pdf(tmp_path / "scan.pdf")
    with pytest.raises(LibraryError, match="no text layer") as err:
        read_file(path)
    assert str(path) in str(err.value)


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = _blank_pdf(tmp_path / "locked.pdf", password="secret")
    with pytest.raises(LibraryError, match="encrypted PDF") as err:
        read_file(path)
    assert str(path) in str(err.value)
