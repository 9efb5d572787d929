"""Passages from memory: the index's current library, with some passages put in or taken out, for
a build that then does what a folder build does (only what changed is embedded or sent to the
LLM; question and citation edges, history and one new generation follow).

Public API:
    as_passages(items, current=None) -> list[Passage]   Passage objects, or {key, text, metadata?,
                                            law?, article?, doc_key?} dicts (a field not given keeps
                                            the current passage's value); LibraryError for a bad one
    current_library(db) -> Library          the passages the index holds now, as a library
    with_upserts(library, passages) -> Library   replaced by key, new keys added to their document
    without(library, keys) -> Library       KeyError naming keys the library does not hold

A passage keeps its document (doc_key) and place; a new one goes to the document its doc_key
names (default "upserts"), at its end. A later folder build describes the whole library, as it
always does: passages upserted outside that folder's documents are removed by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import DocumentRow, PassageRow

from ..errors import LibraryError
from ..passages import Document, Library, Passage, normalize_text
from ..store.passage_rows import passage_of

__all__ = ["as_passages", "current_library", "with_upserts", "without", "UPSERT_DOC"]

UPSERT_DOC = "upserts"  # the document of a passage given without doc_key
_SOURCE = "<upsert>"
_FIELDS = {"key", "id", "text", "metadata", "law", "article", "doc_key"}


def as_passages(items: Iterable[Passage | dict], current: Library | None = None) -> list[Passage]:
    """The passages to put in, checked: a key and a non-empty text each, no key twice. A dict that
    names a passage the index holds keeps what it does not give (an article's law and number when
    only its text is new)."""
    out: list[Passage] = []
    seen: set[str] = set()
    held = {p.key: p for p in current.passages} if current else {}
    if isinstance(items, (str, bytes, dict, Passage)):
        raise LibraryError(_SOURCE, "upsert takes a list of passages")
    for n, item in enumerate(items, 1):
        p = item if isinstance(item, Passage) else _from_dict(item, n, held)
        if p.key in seen:
            raise LibraryError(_SOURCE, f"passage {n}: key {p.key!r} given twice")
        seen.add(p.key)
        out.append(p)
    return out


def _from_dict(obj: Any, n: int, current: dict[str, Passage]) -> Passage:
    if not isinstance(obj, dict):
        raise LibraryError(
            _SOURCE, f"passage {n}: a {{key, text, metadata}} object or a Passage, not {type(obj).__name__}"
        )
    unknown = set(obj) - _FIELDS
    if unknown:
        raise LibraryError(
            _SOURCE, f"passage {n}: unknown field {sorted(unknown)[0]!r} (key, text, metadata, law, article, doc_key)"
        )
    key = obj.get("key", obj.get("id"))
    if not isinstance(key, str | int) or isinstance(key, bool) or not str(key).strip():
        raise LibraryError(_SOURCE, f"passage {n}: missing key")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LibraryError(_SOURCE, f"passage {n} ({key}): missing or empty text")
    key = str(key).strip()
    old = current.get(key)
    meta = obj.get("metadata", old.metadata if old else {}) or {}
    if not isinstance(meta, dict):
        raise LibraryError(_SOURCE, f"passage {n} ({key}): metadata must be an object")
    meta = dict(meta)
    article = str(obj.get("article", old.article if old else "") or "").strip()
    if article and "article" in obj and (old is None or "article_label" in old.metadata):
        # a JSONL passage's article is its label (as read_jsonl does); a law's stays 第N條
        meta.setdefault("article_label", article)
    return Passage(
        key=key,
        doc_key=str(obj.get("doc_key") or (old.doc_key if old else UPSERT_DOC)).strip(),
        law=str(obj.get("law", old.law if old else "") or "").strip(),
        article=article,
        text=normalize_text(text),
        chapters=old.chapters if old else (),
        metadata=meta,
    )


def current_library(db: Database) -> Library:
    """What the index holds, document by document in its order: the starting point of an upsert."""
    with db.session() as s:
        docs = s.execute(select(DocumentRow).order_by(DocumentRow.id)).scalars().all()
        key_of = {d.id: d.doc_key for d in docs}
        by_doc: dict[int, list[Passage]] = {}
        for r in s.execute(select(PassageRow).order_by(PassageRow.document_id, PassageRow.ordinal)).scalars():
            by_doc.setdefault(r.document_id, []).append(passage_of(r, key_of[r.document_id]))
        documents = tuple(
            Document(
                d.doc_key, d.name, d.format, d.source, d.content_hash, tuple(by_doc.get(d.id, ())), dict(d.meta or {})
            )
            for d in docs
        )
    return Library(root=_SOURCE, documents=documents)


def with_upserts(library: Library, passages: list[Passage]) -> Library:
    """`library` with each passage put in: an existing key keeps its document and place (its
    doc_key is the document's), a new key joins the document its doc_key names, at its end."""
    new = {p.key: p for p in passages}
    docs: list[Document] = []
    for d in library.documents:
        kept = [_placed(new.pop(p.key), d.doc_key, p.ordinal) if p.key in new else p for p in d.passages]
        docs.append(d if kept == list(d.passages) else _document(d, kept))
    by_doc: dict[str, list[Passage]] = {}
    for p in new.values():
        by_doc.setdefault(p.doc_key, []).append(p)
    for i, d in enumerate(docs):
        if d.doc_key in by_doc:
            added = by_doc.pop(d.doc_key)
            start = max((p.ordinal for p in d.passages), default=-1) + 1
            docs[i] = _document(d, list(d.passages) + [_placed(p, d.doc_key, start + n) for n, p in enumerate(added)])
    for doc_key, added in by_doc.items():
        docs.append(
            _document(
                Document(doc_key, doc_key, "jsonl", _SOURCE, "", ()),
                [_placed(p, doc_key, n) for n, p in enumerate(added)],
            )
        )
    return Library(root=library.root, documents=tuple(docs))


def without(library: Library, keys: Iterable[str]) -> Library:
    """`library` without the passages of `keys` (a document left empty goes too); KeyError for keys
    it does not hold, before anything is taken out (a typo must not pass as done)."""
    if isinstance(keys, str):
        keys = [keys]
    gone = {str(k) for k in keys}
    held = {p.key for p in library.passages}
    if gone - held:
        missing = sorted(gone - held)
        raise KeyError(
            f"no passage {missing[0]!r} in this index" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    docs = []
    for d in library.documents:
        kept = [p for p in d.passages if p.key not in gone]
        if kept:
            docs.append(d if len(kept) == len(d.passages) else _document(d, kept))
    return Library(root=library.root, documents=tuple(docs))


def _placed(p: Passage, doc_key: str, ordinal: int) -> Passage:
    return replace(p, doc_key=doc_key, ordinal=ordinal)


def _document(d: Document, passages: list[Passage]) -> Document:
    """`d` with these passages; its content hash from them (no file stands behind it any more)."""
    digest = hashlib.sha256(
        json.dumps([[p.key, p.text, p.metadata] for p in passages], ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()
    return Document(d.doc_key, d.name, d.format, d.source, digest, tuple(passages), d.metadata)
