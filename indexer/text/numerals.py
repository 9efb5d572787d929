"""Chinese numerals as they appear in Taiwan statutes, and article numbers.

Public API:
    cn_to_int(text) -> int              "一百八十四" -> 184, "三十" -> 30, "24" -> 24
    article_number(text) -> str         "第十五條之一" / "第 15-1 條" / "15之1" -> "15-1"
    article_heading(number) -> str      "15-1" -> "第 15-1 條" (the official JSON form)
"""

from __future__ import annotations

import re

__all__ = ["cn_to_int", "article_number", "article_heading", "CN_DIGITS", "NUMBER_CHARS"]

CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "兩": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_FULLWIDTH = str.maketrans("０１２３４５６７８９－", "0123456789-")
# Characters that can make up one number in a heading: Arabic, full-width, or Chinese numerals.
NUMBER_CHARS = "0-9０-９零〇一二兩两三四五六七八九十百千"


def cn_to_int(text: str) -> int:
    """Convert a Chinese or Arabic numeral below 10,000 to int; ValueError if it is not one."""
    s = text.strip().translate(_FULLWIDTH)
    if s.isdigit():
        return int(s)
    if not s or any(c not in CN_DIGITS and c not in _UNITS for c in s):
        raise ValueError(f"not a number: {text!r}")
    total, digit = 0, None
    for c in s:
        if c in CN_DIGITS:
            digit = CN_DIGITS[c]
        else:
            # "十" alone means ten: statutes write 第十條, not 第一十條.
            total += (1 if digit is None else digit) * _UNITS[c]
            digit = None
    return total + (digit or 0)


# 條 (Traditional) or 条 (Simplified: the PRC's statutes)
_ARTICLE = re.compile(
    rf"^\s*第?\s*([{NUMBER_CHARS}]+)\s*(?:[條条])?\s*(?:(?:之|-)\s*([{NUMBER_CHARS}]+))?\s*(?:[條条])?\s*$"
)


def article_number(text: str) -> str:
    """Normalize an article designation to the canonical key form: '24', '15-1'.

    Accepts the JSON form (第 15-1 條), the statute form (第十五條之一) and bare numbers.
    """
    m = _ARTICLE.match(text.translate(_FULLWIDTH))
    if not m:
        raise ValueError(f"not an article number: {text!r}")
    main = cn_to_int(m.group(1))
    return f"{main}-{cn_to_int(m.group(2))}" if m.group(2) else str(main)


def article_heading(number: str) -> str:
    return f"第 {number} 條"
