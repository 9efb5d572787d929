"""The diff of a build: which passages of a Library are new, changed, relabeled (a renamed law:
same text, new embed text), touched (metadata only) or gone, against what the database holds.
Pure functions over plain data, so the diff is tested without a database.

Public API:
    ExistingPassage                      what the database holds for one passage key
    existing_passages(session) -> {key: ExistingPassage}
    BuildPlan                            .added/.changed/.relabeled/.touched/.removed_ids, .needs_vector, .is_noop
    plan_build(library, existing) -> BuildPlan
    unique_texts(passages, hashes) -> {embed hash: embed text}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import DocumentRow, PassageRow

from ..passages import Library, Passage, text_hash

__all__ = ["ExistingPassage", "existing_passages", "BuildPlan", "plan_build", "unique_texts"]


@dataclass(frozen=True)
class ExistingPassage:
    id: int
    text_hash: str
    embed_hash: str | None
    law: str
    article_label: str
    chapters: tuple
    paragraphs: tuple
    ordinal: int
    document_key: str
    meta: dict
    questions_key: str | None = None


def existing_passages(s: Session) -> dict[str, ExistingPassage]:
    rows = s.execute(
        select(
            PassageRow.key,
            PassageRow.id,
            PassageRow.text_hash,
            PassageRow.embed_hash,
            PassageRow.law,
            PassageRow.article_label,
            PassageRow.chapters,
            PassageRow.paragraphs,
            PassageRow.ordinal,
            DocumentRow.doc_key,
            PassageRow.meta,
            PassageRow.questions_key,
        ).join(DocumentRow, DocumentRow.id == PassageRow.document_id)
    )
    return {
        r[0]: ExistingPassage(r[1], r[2], r[3], r[4], r[5], tuple(r[6]), tuple(r[7]), r[8], r[9], r[10] or {}, r[11])
        for r in rows
    }


@dataclass
class BuildPlan:
    added: list[Passage] = field(default_factory=list)
    changed: list[tuple[int, Passage]] = field(default_factory=list)
    relabeled: list[tuple[int, Passage]] = field(default_factory=list)
    touched: list[tuple[int, Passage]] = field(default_factory=list)  # metadata only, same vector
    unchanged: int = 0
    removed_ids: list[int] = field(default_factory=list)
    embed_hashes: dict[str, str | None] = field(default_factory=dict)  # key -> hash of embed text

    @property
    def needs_vector(self) -> list[Passage]:
        """Passages whose vector must be (re)placed: new, changed or relabeled, not repealed."""
        out = self.added + [p for _, p in self.changed] + [p for _, p in self.relabeled]
        return [p for p in out if self.embed_hashes[p.key] is not None]

    @property
    def is_noop(self) -> bool:
        return not (self.added or self.changed or self.relabeled or self.touched or self.removed_ids)


def _embed_hash(p: Passage) -> str | None:
    return None if p.repealed else text_hash(p.embed_text)


def plan_build(library: Library, existing: Mapping[str, ExistingPassage]) -> BuildPlan:
    plan = BuildPlan()
    seen: set[str] = set()
    for doc in library.documents:
        for p in doc.passages:
            seen.add(p.key)
            eh = plan.embed_hashes[p.key] = _embed_hash(p)
            old = existing.get(p.key)
            if old is None:
                plan.added.append(p)
            elif old.text_hash != text_hash(p.text):
                plan.changed.append((old.id, p))
            elif old.embed_hash != eh:
                plan.relabeled.append((old.id, p))
            elif (
                old.law,
                old.article_label,
                old.chapters,
                old.paragraphs,
                old.ordinal,
                old.document_key,
                old.meta,
            ) != (p.law, p.article_label, p.chapters, p.paragraphs, p.ordinal, p.doc_key, p.metadata):
                plan.touched.append((old.id, p))
            else:
                plan.unchanged += 1
    plan.removed_ids = sorted(e.id for k, e in existing.items() if k not in seen)
    return plan


def unique_texts(passages: Iterable[Passage], hashes: Mapping[str, str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in passages:
        h = hashes[p.key]
        if h is not None:
            out.setdefault(h, p.embed_text)
    return out
