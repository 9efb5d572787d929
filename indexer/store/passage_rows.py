"""A Passage as database row values. The current passage (PassageRow) and each version of an
article kept for as-of queries (ArticleVersionRow) hold the same article fields; they are mapped
here once, so that the two tables cannot drift apart on what a field means.

Public API:
    article_fields(passage, embed_hash) -> dict             the fields both rows hold
    passage_row(passage, document_id, embed_hash) -> dict   PassageRow values, for insert or update
    passage_of(row, doc_key) -> Passage                     a PassageRow read back (its document's key)
    version_row(passage, embed_hash) -> dict                ArticleVersionRow values, content_hash included
    content_hash(law, label, text) -> str                   what tells two versions of one article apart
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from storage.models import PassageRow, utcnow

from ..passages import Passage, text_hash

__all__ = ["article_fields", "passage_row", "passage_of", "version_row", "content_hash"]


def article_fields(p: Passage, embed_hash: str | None) -> dict[str, Any]:
    """`embed_hash`: of the text that is embedded, None for a repealed article (no vector)."""
    return {
        "key": p.key,
        "law": p.law,
        "article": p.article,
        "article_label": p.article_label,
        "text": p.text,
        "chapters": list(p.chapters),
        "ordinal": p.ordinal,
        "embed_hash": embed_hash,
    }


def passage_row(p: Passage, document_id: int, embed_hash: str | None) -> dict[str, Any]:
    return article_fields(p, embed_hash) | {
        "document_id": document_id,
        "paragraphs": list(p.paragraphs),
        "meta": p.metadata,  # PassageRow.meta (column "metadata": the ORM name, or the value is dropped)
        "text_hash": text_hash(p.text),
        "updated_at": utcnow(),
    }


def passage_of(row: PassageRow, doc_key: str) -> Passage:
    """The Passage a PassageRow holds: passage_row read backwards."""
    return Passage(
        key=row.key,
        doc_key=doc_key,
        law=row.law,
        article=row.article,
        text=row.text,
        chapters=tuple(row.chapters or ()),
        paragraphs=tuple(row.paragraphs or ()),
        ordinal=row.ordinal,
        metadata=dict(row.meta or {}),
    )


def content_hash(law: str, label: str, text: str) -> str:
    # the law's name and the label count: a renamed law or a renumbered article is another version
    return hashlib.sha256(json.dumps([law, label, text], ensure_ascii=False).encode("utf-8")).hexdigest()


def version_row(p: Passage, embed_hash: str | None) -> dict[str, Any]:
    return article_fields(p, embed_hash) | {
        "content_hash": content_hash(p.law, p.article_label, p.text),
        "doc_key": p.doc_key,
    }
