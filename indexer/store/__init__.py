"""What an index holds and how it is read back: the per-generation vectors, graph table and BM25
(derived, checksummed snapshots), the history of article versions and the law as of a date, and
read-only views. Imports the text stage only; the build writes through it, queries read through it.

    derived.py, derive.py, derived_snapshot.py, snapshot_admin.py   DerivedStore and its three jobs
    vectorsets.py, vector_engines.py    vector sets over FAISS or Milvus
    graph.py, edge_params.py            the edge table (EDGE_KINDS, EDGE_ROLES) and its export
    lexical.py                          BM25 over jieba tokens or bigrams
    history.py, history_dates.py, asof.py   article versions, dates, the law in force on a date
    passage_rows.py                     a Passage as its database rows
    views.py                            stats, passages, graph summaries for the outer layers
"""
