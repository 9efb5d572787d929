"""A deterministic stand-in for the LLM that writes HopRAG pseudo-queries of law articles, for the
fake OpenAI-compatible server (tests/fakes/openai_server.py): `fake.responder = legal_questions`.

Public API:
    legal_questions(prompt, system, schema) -> {"incoming": [...], "outgoing": [...]}
"""

from __future__ import annotations

import re

__all__ = ["legal_questions"]

_CITE = re.compile(r"第([一二三四五六七八九十百]+)條")


def legal_questions(prompt: str, system, schema) -> dict:
    """Asks what this article says (incoming) and what the articles it cites say (outgoing), so
    that question edges follow the citations."""
    law = re.search(r"法規：(.*)", prompt).group(1).strip()
    label = re.search(r"條號：(.*)", prompt).group(1).strip().replace(" ", "")
    text = prompt.split("條文：\n", 1)[1]
    first = re.split(r"[，。：；]", text)[0][:12]   # a few words of it: a whole clause is a paste
    first = re.sub(r"前[一二三]?條|本條", law, first)  # a question that says 前條 means nothing alone
    incoming = [f"{law}{label}規定什麼？", f"{first}的規定為何？"]
    cited = [f"{law}第{n}條規定什麼？" for n in dict.fromkeys(_CITE.findall(text))][:4]
    outgoing = (cited + [f"違反{law}{label}有什麼法律效果？", f"{law}{label}的例外情形為何？"])[:6]
    return {"incoming": incoming, "outgoing": outgoing}
