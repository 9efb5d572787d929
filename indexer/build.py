"""Incremental build: diff a Library against the index, embed only what is new, commit.

Order of work, chosen so that a failure at any point loses nothing committed:
  1. read and check the whole library (a bad file stops here, nothing written);
  2. diff against the database by passage key;
  3. embed the texts the cache lacks, committing cache rows chunk by chunk (paid work survives);
  4. one transaction: documents, passages, removals, generation + 1, build row;
  5. the vector index is updated and saved as a snapshot of the new generation
     (if that step dies, the next open rebuilds it from the database and the cache).

Public API:
    BuildReport                      counts and seconds; .to_dict() is `hoprag build --json`
    BuildPlan, plan_build(library, existing) -> BuildPlan     the pure diff
    ensure_vectors(texts_by_hash, embedder, cache, ...) -> (vectors, embedded, hits)
    ProgressFn                       callback(stage, done, total)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from storage.cache import EmbeddingCache

from .embedders.base import Embedder
from .passages import Library, Passage, text_hash

__all__ = ["BuildReport", "BuildPlan", "plan_build", "ensure_vectors", "ProgressFn", "ExistingPassage"]

ProgressFn = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class BuildReport:
    added: int = 0            # new passage keys
    changed: int = 0          # same key, different article text
    relabeled: int = 0        # same text, different law name or label (renamed law): re-embedded
    removed: int = 0          # keys gone from the library
    unchanged: int = 0
    repealed: int = 0         # passages that read only （刪除）: kept, not embedded
    embedded: int = 0         # texts sent to the embedder (passages and pseudo-queries)
    cache_hits: int = 0       # texts that needed a vector and found it in the cache
    llm_calls: int = 0        # passages sent to the LLM (retries not counted)
    llm_failures: int = 0     # passages whose call still failed: asked again next build
    pseudo_queries: int = 0   # questions in the index after the build
    edges: dict[str, int] = field(default_factory=dict)      # by kind
    citations_unresolved: int = 0
    seconds: float = 0.0
    generation: int = 0
    documents: int = 0
    passages: int = 0
    embedder: str = ""
    library: str = ""
    skipped_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)       # e.g. texts beyond the model's window
    stages: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


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


@dataclass
class BuildPlan:
    added: list[Passage] = field(default_factory=list)
    changed: list[tuple[int, Passage]] = field(default_factory=list)
    relabeled: list[tuple[int, Passage]] = field(default_factory=list)
    touched: list[tuple[int, Passage]] = field(default_factory=list)   # metadata only, same vector
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
            elif (old.law, old.article_label, old.chapters, old.paragraphs, old.ordinal, old.document_key, old.meta) != (
                    p.law, p.article_label, p.chapters, p.paragraphs, p.ordinal, p.doc_key, p.metadata):
                plan.touched.append((old.id, p))
            else:
                plan.unchanged += 1
    plan.removed_ids = sorted(e.id for k, e in existing.items() if k not in seen)
    return plan


def ensure_vectors(texts_by_hash: Mapping[str, str], embedder: Embedder, cache: EmbeddingCache, *,
                   chunk: int = 512, progress: ProgressFn = _no_progress) -> tuple[dict[str, np.ndarray], int, int]:
    """Vectors for every hash: from the cache, else embedded and cached chunk by chunk.

    Returns (vectors by hash, texts embedded, cache hits).
    """
    fp = embedder.fingerprint.id
    vectors = cache.get_many(fp, texts_by_hash.keys())
    hits = len(vectors)
    missing = [h for h in texts_by_hash if h not in vectors]
    progress("embed", 0, len(missing))
    for i in range(0, len(missing), chunk):
        part = missing[i:i + chunk]
        out = embedder.embed([texts_by_hash[h] for h in part])
        fresh = dict(zip(part, out))
        cache.put_many(fp, fresh)
        vectors.update(fresh)
        progress("embed", min(i + chunk, len(missing)), len(missing))
    return vectors, len(missing), hits


class StageTimer:
    """Seconds per build stage, for the report."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._last = self._t0

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round(self.stages.get(stage, 0.0) + now - self._last, 4)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._t0, 4)


def unique_texts(passages: Iterable[Passage], hashes: Mapping[str, str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in passages:
        h = hashes[p.key]
        if h is not None:
            out.setdefault(h, p.embed_text)
    return out
