"""A build: the diff of a library against the index, embeddings through the cache, LLM
pseudo-queries, question and citation edges, one committed generation and its snapshot. Imports
the text and store stages; never the retrieve stage (tests/test_architecture.py).

    builder.py            Builder: the build's steps, in order, in one transaction
    plan.py               the pure diff (added, changed, relabeled, touched, removed)
    writes.py             the database writes of a build
    embed_stage.py        vectors for what the cache lacks
    question_stage.py     LLM pseudo-queries, cached by content hash
    pseudo_queries.py, question_prompt.py, question_filter.py   the prompt and what is kept
    edges.py              question edges (outgoing matched to incoming questions)
    report.py             BuildReport, progress (plain data: the HTTP client reads it)
    records.py            the build's row in `builds`, the no-op decision
"""
