"""Which Chinese script a text is written in, and a text converted to one (OpenCC): the passage's
script decides the prompt's language and the script of every stored question.

Public API:
    Script                              "hant" | "hans" | "other"
    script_of(text) -> Script           Traditional or Simplified Chinese, by the characters OpenCC would change
    to_script(q, script) -> str         `q` in that script's characters
    CJK                                 a compiled pattern matching one CJK ideograph
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

__all__ = ["Script", "script_of", "to_script", "CJK"]

Script = Literal["hant", "hans", "other"]
CJK = re.compile(r"[\u4e00-\u9fff]")


@lru_cache(maxsize=4)
def _converter(config: str):
    import opencc

    return opencc.OpenCC(f"{config}.json")


def script_of(text: str) -> Script:
    """ "hant" when more characters change from Traditional to Simplified than back, "hans" when
    fewer, "other" without Chinese (shared characters alone count as Traditional: the library's)."""
    cjk = "".join(CJK.findall(text))
    if not cjk:
        return "other"
    to_s = sum(a != b for a, b in zip(cjk, _converter("t2s").convert(cjk)))
    to_t = sum(a != b for a, b in zip(cjk, _converter("s2tw").convert(cjk)))
    return "hans" if to_t > to_s else "hant"


def to_script(q: str, script: Script) -> str:
    """`q` in the characters of `script` (unchanged for "other")."""
    if script == "hant":
        return _converter("s2tw").convert(q)
    if script == "hans":
        return _converter("t2s").convert(q)
    return q
