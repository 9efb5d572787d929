"""The law as it stood on a date, in the shape the retriever serves: the article versions in force
(history.state_at), their vectors from the embedding cache (never embedded here), BM25 over their
texts (tokens of texts the current generation shares are reused), and citation edges resolved among
those versions only, so that 前條 and 本法第二條 point where they pointed then.

Pseudo-queries belong to today's passages, so a dated state has none: dense, bm25 and hybrid
(dense + BM25) search and hop search over citation edges work as of a date; `questions` mode does not.
Ids in a dated state are article-version ids (article_versions.id), not passage ids.

Public API:
    dated_derived(session, cache, fingerprint, tokenizer, base_lexicon, when) -> (Derived, rows)
        rows: (id, key, law, article, label, text, chapters, doc_key, law name), as the retriever reads passages
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
from sqlalchemy.orm import Session

from storage.cache import EmbeddingCache
from storage.vectors import VectorIndex

from ..embedders.base import Fingerprint
from ..errors import IndexStateError
from ..passages import Document, Library, Passage
from .derived import SETS, Derived
from .graph import edge_table
from .history import Version, require_history, state_at
from .lexical import Lexicon, build_lexicon, lexical_text
from .vectorsets import VectorSet

__all__ = ["dated_derived"]


def _library(versions: dict[str, Version]) -> Library:
    by_doc: dict[str, list[Version]] = defaultdict(list)
    for v in versions.values():
        by_doc[v.doc_key].append(v)
    docs = []
    for doc_key, vs in sorted(by_doc.items()):
        vs.sort(key=lambda v: (v.ordinal, v.key))
        passages = tuple(
            Passage(
                key=v.key,
                doc_key=v.doc_key,
                law=v.law,
                article=v.article,
                text=v.text,
                chapters=v.chapters,
                ordinal=v.ordinal,
                metadata={"article_label": v.article_label},
            )
            for v in vs
        )
        # the law's name then: the newest-numbered article's, as the file of that date had it
        docs.append(Document(doc_key, vs[-1].law, "versions", "", "", passages))
    return Library("", tuple(docs))


def dated_derived(
    s: Session,
    cache: EmbeddingCache,
    fp: Fingerprint,
    tokenizer: str,
    base_lexicon: Lexicon | None,
    when: dt.date,
) -> tuple[Derived, list[tuple]]:
    from ..text.citations import resolve_citations

    require_history(s, when)
    versions = state_at(s, when)
    ids = {key: v.version_id for key, v in versions.items()}
    live = {v.version_id: v.embed_hash for v in versions.values() if v.embed_hash is not None}
    vectors = cache.get_many(fp.id, sorted(set(live.values())))
    missing = sorted(set(live.values()) - set(vectors))
    if missing:
        raise IndexStateError(
            f"{len(missing)} article versions in force on {when.isoformat()} have no vector from {fp.name}; "
            f"`hoprag build` of that date's library (or `hoprag reembed`) caches them"
        )
    index = VectorIndex(fp.dim)
    if live:
        order = sorted(live)
        index.add(np.array(order, dtype=np.int64), np.stack([vectors[live[i]] for i in order]))
    empty = VectorIndex(fp.dim)
    sets = {"passages": VectorSet(index, dict(live))} | {
        name: VectorSet(empty, {}) for name in SETS if name != "passages"
    }
    texts = {v.version_id: lexical_text(v.law, v.article_label, v.text) for v in versions.values()}
    lexicon = build_lexicon(texts, tokenizer, base_lexicon)
    cites = resolve_citations(_library(versions))
    edges = edge_table(
        (n, ids[e.source], ids[e.target], e.kind, 1.0, None, None, e.role)
        for n, e in enumerate(cites.edges, start=1)
        if e.source in ids and e.target in ids
    )
    rows = [
        (v.version_id, v.key, v.law, v.article, v.article_label, v.text, list(v.chapters), v.doc_key, v.law)
        for v in versions.values()
    ]
    return Derived(0, sets, edges, lexicon), rows
