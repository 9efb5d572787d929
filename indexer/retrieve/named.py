"""The laws and articles a query names: every name that finds a law (its official name, the
aliases its text gives, its former names, the short names people type), and the articles a query
cites, in order of mention.

Public API:
    LAW_SHORT_NAMES                       common short names (勞基法 → 勞動基準法)
    law_names(doc_of_law, former=()) -> dict[str, str]    every name -> the official name
    cited_articles(st, text, allowed) -> list[int]        passages the query names

Queries are parsed with the build's citation parser (indexer.citations), so that what a statute's
citation means and what a query's means never differ. Only when it finds nothing does a second,
looser pattern run: people type 民法184條 without the 第 that every statute writes.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from ..text.numerals import NUMBER_CHARS, article_number

__all__ = ["LAW_SHORT_NAMES", "law_names", "cited_articles"]

# What people type for the laws of the bundled library. Longer names win when several match.
LAW_SHORT_NAMES = {
    "勞基法": "勞動基準法",
    "勞基法施行細則": "勞動基準法施行細則",
    "個資法": "個人資料保護法",
    "個資法施行細則": "個人資料保護法施行細則",
    "消保法": "消費者保護法",
    "民訴法": "民事訴訟法",
    "刑訴法": "刑事訴訟法",
    "行訴法": "行政訴訟法",
    "國賠法": "國家賠償法",
    "採購法": "政府採購法",
    "就服法": "就業服務法",
    "性工法": "性別平等工作法",
    "性平工作法": "性別平等工作法",
    "性別工作平等法": "性別平等工作法",
    "移民法": "入出國及移民法",
    "兩岸條例": "臺灣地區與大陸地區人民關係條例",
    "兩岸人民關係條例": "臺灣地區與大陸地區人民關係條例",
    "道交條例": "道路交通管理處罰條例",
    "道安規則": "道路交通安全規則",
    "行程法": "行政程序法",
    "刑法": "中華民國刑法",
    "憲法": "中華民國憲法",
    "增修條文": "中華民國憲法增修條文",
    "憲法增修條文": "中華民國憲法增修條文",
    "攬才專法": "外國專業人才延攬及僱用法",
    "外國人才專法": "外國專業人才延攬及僱用法",
}
_BARE_ARTICLE = re.compile(
    rf"第?\s*([{NUMBER_CHARS}]+)\s*條(?:\s*之\s*([{NUMBER_CHARS}]+))?|第\s*([0-9]+)-([0-9]+)\s*條"
)


class _Named(Protocol):
    """What a query's names are looked up in (a State has it; named here so this module needs no State)."""

    law_names: dict[str, str]
    by_law_article: dict[tuple[str, str], int]
    by_article: dict[str, list[int]]


def law_names(doc_of_law: dict[str, str], former: Any = ()) -> dict[str, str]:
    """Every name that finds a law of `doc_of_law` (official name -> doc_key) -> its official
    name. `former`: (an older name, its doc_key) pairs, so that 性別工作平等法 still finds
    性別平等工作法. The official name wins over an alias, an alias over a former or short name."""
    from ..text.citations import law_aliases

    names = {n: n for n in doc_of_law}
    for name in doc_of_law:
        for alias in law_aliases(name):
            names.setdefault(alias, name)
    law_of_doc = {doc: law for law, doc in doc_of_law.items()}
    for old_name, doc in former:
        if doc in law_of_doc:
            names.setdefault(old_name, law_of_doc[doc])
    for short, full in LAW_SHORT_NAMES.items():
        if full in doc_of_law:
            names.setdefault(short, full)
    return names


def cited_articles(st: _Named, text: str, allowed: set[int] | None) -> list[int]:
    """Passages the query names (著作權法第三條, 勞基法第24條, 第十五條之一), in order of mention;
    an article without a law: that article of every law (a filter narrows it)."""
    from ..text.citations import find_citations

    found: list[int] = []
    if "條" not in text and "条" not in text:  # every form below names one (most queries do not)
        return found
    names = sorted(st.law_names, key=len, reverse=True)
    # people type a space between the law and the article (性別工作平等法 第1條); statutes never do
    text = re.sub(r"\s+(?=第)", "", text)
    cites = find_citations(text, laws=names)
    spans = [(c.law, c.articles) for c in cites if c.kind in ("article", "range")]
    if not spans:
        spans = _bare_articles(text, names)
    for law, articles in spans:
        full = st.law_names.get(law) if law else None
        if law and full is None:
            continue
        for art in articles[:1] if len(articles) == 1 else articles:
            if full:
                pid = st.by_law_article.get((full, art))
                cands = [pid] if pid is not None else []
            else:
                cands = st.by_article.get(art, [])
            for pid in cands:
                if pid not in found and (allowed is None or pid in allowed):
                    found.append(pid)
    return found


def _bare_articles(text: str, names: list[str]) -> list[tuple[str | None, tuple[str, ...]]]:
    """What people type without 第 (民法184條, 184條之1): (law or None, (article,))."""
    spans: list[tuple[str | None, tuple[str, ...]]] = []
    for m in re.finditer(rf"({'|'.join(map(re.escape, names))})?\s*{_BARE_ARTICLE.pattern}", text):
        num = m.group(2) or m.group(4)
        sub = m.group(3) or m.group(5)
        try:
            art = article_number(f"第{num}條" + (f"之{sub}" if sub else ""))
        except ValueError:
            continue
        spans.append((m.group(1), (art,)))
    return spans
