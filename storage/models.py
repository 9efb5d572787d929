"""SQLAlchemy 2 models: documents, passages, the embedding cache, builds, index metadata.

The schema is owned by the Alembic migrations in migrations/; these classes must match the head
revision (a test compares them).

Public API:
    Base, MetaEntry, DocumentRow, PassageRow, EmbeddingRow, BuildRow, LLMResultRow, PseudoQueryRow, EdgeRow,
    ArticleVersionRow, ObservationRow
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .clock import utcnow

__all__ = [
    "Base",
    "MetaEntry",
    "DocumentRow",
    "PassageRow",
    "EmbeddingRow",
    "BuildRow",
    "LLMResultRow",
    "PseudoQueryRow",
    "EdgeRow",
    "ArticleVersionRow",
    "ObservationRow",
    "utcnow",
]


class Base(DeclarativeBase):
    pass


class MetaEntry(Base):
    """Index-wide facts: the embedder fingerprint, the committed generation."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)


class DocumentRow(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    doc_key: Mapped[str] = mapped_column(String(200), unique=True)  # pcode or file stem
    name: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PassageRow(Base):
    __tablename__ = "passages"
    # AUTOINCREMENT: a deleted passage's id is never handed to a new one, because ids are also
    # the FAISS vector ids and a reused id could resurrect a stale vector.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)  # <pcode>:<article> or JSONL id
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    law: Mapped[str] = mapped_column(String(500))
    article: Mapped[str] = mapped_column(String(50))
    article_label: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    chapters: Mapped[list] = mapped_column(JSON, default=list)
    paragraphs: Mapped[list] = mapped_column(JSON, default=list)
    ordinal: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    text_hash: Mapped[str] = mapped_column(String(64))
    # sha256 of the text that was embedded; NULL for articles that read only （刪除）.
    embed_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # llm_results.cache_key the passage's pseudo-queries came from; NULL: none yet.
    questions_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EmbeddingRow(Base):
    """The embedding cache: (embedder fingerprint, sha256 of normalized text) -> float32 vector."""

    __tablename__ = "embeddings"
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BuildRow(Base):
    __tablename__ = "builds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, index=True)
    library: Mapped[str] = mapped_column(Text)
    embedder: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))  # committed | failed
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LLMResultRow(Base):
    """The pseudo-query cache: one LLM answer (or failure) per (model, prompt version, passage text)."""

    __tablename__ = "llm_results"
    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(300))
    prompt_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10))  # ok | failed
    incoming: Mapped[list] = mapped_column(JSON, default=list)
    outgoing: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PseudoQueryRow(Base):
    """A HopRAG question of a passage: incoming (the passage answers it) or outgoing (it raises it)."""

    __tablename__ = "pseudo_queries"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are FAISS ids of the question indexes
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    passage_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embed_hash: Mapped[str] = mapped_column(String(64))


class EdgeRow(Base):
    """A directed graph edge between passages. Derived data: recomputed by every build."""

    __tablename__ = "edges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # question | citation | structural
    out_query_id: Mapped[int | None] = mapped_column(ForeignKey("pseudo_queries.id", ondelete="CASCADE"), nullable=True)
    in_query_id: Mapped[int | None] = mapped_column(ForeignKey("pseudo_queries.id", ondelete="CASCADE"), nullable=True)
    score: Mapped[float] = mapped_column(Float)
    span: Mapped[str | None] = mapped_column(Text, nullable=True)  # the citation as written
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class ArticleVersionRow(Base):
    """One text an article has had (with its law's name at the time): kept for as-of queries after
    a later build replaced it. Its vector is the embedding cache's row for embed_hash."""

    __tablename__ = "article_versions"
    __table_args__ = (
        UniqueConstraint("key", "content_hash", name="uq_article_versions_key_content"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64))  # of law name, label and text
    doc_key: Mapped[str] = mapped_column(String(200))
    law: Mapped[str] = mapped_column(String(500))
    article: Mapped[str] = mapped_column(String(50))
    article_label: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    chapters: Mapped[list] = mapped_column(JSON, default=list)
    ordinal: Mapped[int] = mapped_column(Integer)
    embed_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # NULL: repealed （刪除）


class ObservationRow(Base):
    """What a build dated `as_of` saw of an article: a version, or nothing (version_id NULL: the
    article was not in the library). A version is in force from its first observation until the
    next observation of something else, whatever order the builds came in."""

    __tablename__ = "observations"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("article_versions.id", ondelete="CASCADE"), nullable=True)
