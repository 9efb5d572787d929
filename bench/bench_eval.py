"""Retrieval quality benchmark: STARD (1,543 lay questions, 1,445 PRC statute articles) through the
real index, every search mode, with `indexer.evaluate` — recall@1/5/10/20, MRR, nDCG@10.

  1. build      `Index(temp home).build(eval/stard/corpus.jsonl, embedder=...)`: the JSONL reader
                prefixes each article with its law name and article number, as the reference did.
  2. evaluate   `evaluate(index, queries, modes=(dense, hybrid, questions, hop), n_hop=2)`: one
                untimed warm-up query per mode, then every query searched once (embedded once per
                mode); `questions` is skipped on an index without LLM pseudo-queries.
  3. analysis   why the modes differ: the index's edges, how often hop's ranking differs from
                hybrid's, per-query wins and losses, queries that name an article, the citation
                edges a parser of simplified 第N条 could find, STARD's duplicate articles (same law,
                article and text under two ids). Then every mode is timed again with FAISS held to
                one OpenMP thread (same rankings, checked).
  4. prototypes (bench only: nothing in indexer/ changes) alternatives to the retrieval code,
                scored on the same queries from vectors embedded once in a batch: BM25 alone with
                jieba tokens (as retrieval.py) or character bigrams, RRF with other weights and
                constants, and hop's SIM formula with other dense/fused mixes. The rows marked
                "= index" reproduce dense, hybrid and hop exactly: the prototypes measure
                what the index does.

Reference (eval/stard README, dense cosine with the offline model): recall@1 0.20, @5 0.44,
@10 0.55, @20 0.65.

Run (from the repository root, in the virtualenv, on a quiet machine; ~1 minute on 2 idle cores,
15 when other jobs share them — the offline model's threads then spin, see bench/README.md):

    python bench/bench_eval.py --out bench/results/eval-stard-cpu-2core.json
    python bench/bench_eval.py --limit 200 --skip-prototypes --skip-threads    # a smoke run

Prints the Markdown tables; --out writes every number plus machine facts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import machine_facts, write_result

from indexer.index import Index
from indexer.retrieve import channels
from indexer.retrieve.evaluate import (
    DEFAULT_KS,
    NDCG_K,
    evaluate,
    format_table,
    load_queries,
    ndcg_at,
    recall_at,
    reciprocal_rank,
)
from indexer.retrieve.named import cited_articles
from indexer.settings import Settings
from indexer.store.lexical import TOKENIZERS

RRF_K = Settings.model_fields["rrf_k"].default  # the reciprocal rank fusion constant a user gets

STARD = Path(os.environ.get("HOPRAG_DATA", "/work/shared/data")) / "eval" / "stard"
REFERENCE = {"recall@1": 0.20, "recall@5": 0.44, "recall@10": 0.55, "recall@20": 0.65}
MODES = ("dense", "hybrid", "questions", "hop")
ROOT = Path(__file__).resolve().parents[1]


def _progress():
    last = {"t": time.perf_counter()}

    def report(stage: str, done: int, total: int) -> None:
        if done in (0, total) or done % 250 == 0:
            now = time.perf_counter()
            print(f"  {stage}: {done}/{total} ({now - last['t']:.0f} s since last)", file=sys.stderr, flush=True)
            last["t"] = now
    return report


def _file_sha(rel: str) -> str:
    """sha256 of a file, or of a package's modules in name order."""
    path = ROOT / rel
    files = sorted(path.glob("*.py")) if path.is_dir() else [path]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


# ---------------------------------------------------------------- analysis
def analyse(idx: Index, report, queries) -> dict:
    st = idx.retriever.state()
    pq = {m: {q["id"]: q for q in r.per_query} for m, r in report.modes.items()}
    out: dict = {"edges": report.index["edges"], "pseudo_queries_in": report.index["pseudo_queries_in"],
                 "passages_with_out_edges": len(st.edge_start)}

    def compare(a: str, b: str, k: int = 10) -> dict:
        same_list = same_set = 0
        wins = losses = 0
        for qid, qa in pq[a].items():
            qb = pq[b][qid]
            la, lb = qa["ranked"][:k], qb["ranked"][:k]
            same_list += la == lb
            same_set += set(la) == set(lb)
            wins += qa["recall"][str(k)] > qb["recall"][str(k)]
            losses += qa["recall"][str(k)] < qb["recall"][str(k)]
        n = len(pq[a])
        return {"queries": n, f"identical_top{k}": same_list, f"same_set_top{k}_other_order": same_set - same_list,
                f"different_set_top{k}": n - same_set, f"{a}_better_recall@{k}": wins,
                f"{b}_better_recall@{k}": losses}

    for a, b in (("hybrid", "dense"), ("hop", "hybrid"), ("hop", "dense")):
        if a in pq and b in pq:
            out[f"{a}_vs_{b}"] = compare(a, b, 10)
            if a == "hop":
                out[f"{a}_vs_{b}_top20"] = compare(a, b, 20)

    # queries that name an article (the cited-article boost): STARD writes 条, the citation parser 條
    out["queries_naming_an_article"] = sum(bool(cited_articles(st, q.question, None)) for q in queries)

    # STARD lists some articles twice under two ids (same law, article and text): a twin ranked
    # where the listed id should be counts as a miss for every mode alike.
    rows = [json.loads(line) for line in (STARD / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line]
    groups: dict[tuple, list[str]] = {}
    for r in rows:
        groups.setdefault((r["law"], r["article"], r["text"]), []).append(r["id"])
    twin_of = {i: set(g) - {i} for g in groups.values() if len(g) > 1 for i in g}
    affected = [q for q in queries if any(r in twin_of for r in q.relevant)]
    out["citations_if_parsed"] = potential_citations(rows, queries)
    out["duplicates"] = {"corpus_rows": len(rows), "distinct_articles": len(groups),
                         "ids_with_a_twin": len(twin_of), "queries_with_a_twin_relevant": len(affected)}
    if "dense" in pq:
        # lenient: a twin of a relevant id counts as that id (first occurrence only)
        by_key = st.by_key
        lenient = []
        for q in queries:
            if q.id not in pq["dense"]:
                continue
            canon = {r: r for r in q.relevant}
            for r in q.relevant:
                for t in twin_of.get(r, ()):
                    canon.setdefault(t, r)
            ranked = list(dict.fromkeys(canon.get(k, k) for k in pq["dense"][q.id]["ranked"]))
            rel = {r for r in q.relevant if r in by_key}
            lenient.append(recall_at(ranked, rel, 10))
        out["duplicates"]["dense_recall@10_twins_count_as_hits"] = round(float(np.mean(lenient)), 6)
    return out


def potential_citations(rows: list[dict], queries) -> dict:
    """The citation edges a parser of simplified 第N条 would find: every 第N条 not preceded by a
    《law》 is read as an article of the citing article's own law (an upper bound: 前款, 前条 and
    other laws named without 《》 are not followed), kept when that article is in the corpus."""
    import re

    from indexer.text.numerals import NUMBER_CHARS, cn_to_int
    n = f"[{NUMBER_CHARS}]+"
    where: dict[tuple[str, int], list[str]] = {}
    for r in rows:
        m = re.fullmatch(f"第({n})条(?:之{n})?", r["article"])
        if m:
            where.setdefault((r["law"], cn_to_int(m.group(1))), []).append(r["id"])
    refs = named = 0
    edges: set[tuple[str, str]] = set()
    for r in rows:
        for m in re.finditer(f"(《[^》]+》)?第({n})条", r["text"]):
            refs += 1
            if m.group(1):
                named += 1
                continue
            edges.update((r["id"], t) for t in where.get((r["law"], cn_to_int(m.group(2))), []) if t != r["id"])
    linked = sum(any((a, b) in edges for a in q.relevant for b in q.relevant) for q in queries)
    return {"references_第N条": refs, "to_a_named_other_law": named, "edges_to_articles_in_corpus": len(edges),
            "citing_articles": len({a for a, _ in edges}),
            "queries_with_an_edge_between_two_relevant": linked,
            "queries_with_several_relevant": sum(len(q.relevant) > 1 for q in queries)}


def threads_probe(idx: Index, queries, report, n_hop: int) -> dict:
    """Every mode again with faiss.omp_set_num_threads(1). A single-query FAISS search runs right
    after the embedder's numpy/OpenBLAS forward pass; FAISS's OpenMP threads then compete with
    OpenBLAS's still-spinning threads on the same cores. Restored to the default afterwards."""
    import faiss
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        again = evaluate(idx, queries, modes=list(report.modes), n_hop=n_hop, keep_rankings=True)
    finally:
        faiss.omp_set_num_threads(before)
    same = all(a["ranked"] == b["ranked"] for m in again.modes
               for a, b in zip(again.modes[m].per_query, report.modes[m].per_query))
    return {"default_omp_threads": before, "identical_rankings": same,
            "modes": {m: {"seconds": round(r.seconds, 3), "cpu_seconds": round(r.cpu_seconds, 3),
                          "queries_per_second": round(r.queries_per_second, 2),
                          "default_seconds": round(report.modes[m].seconds, 3)} for m, r in again.modes.items()}}


# ---------------------------------------------------------------- prototypes
def _metrics(rankings: list[list[int]], rels: list[frozenset[int]], ks=DEFAULT_KS) -> dict:
    n = len(rels)
    d = {f"recall@{k}": sum(recall_at(r, rel, k) for r, rel in zip(rankings, rels)) / n for k in ks}
    d["mrr"] = sum(reciprocal_rank(r, rel, max(ks)) for r, rel in zip(rankings, rels)) / n
    d[f"ndcg@{NDCG_K}"] = sum(ndcg_at(r, rel, NDCG_K) for r, rel in zip(rankings, rels)) / n
    return {k: round(v, 6) for k, v in d.items()}


def _rrf(lists: list[list[int]], weights: list[float], k: float, depth: int) -> list[int]:
    fused: Counter = Counter()
    for ranked, w in zip(lists, weights):
        for rank, pid in enumerate(ranked[:depth]):
            fused[pid] += w / (k + rank + 1)
    return [p for p, _ in fused.most_common()]


def prototypes(idx: Index, scored, depth_k: int) -> dict:
    """Rankings of alternatives from vectors embedded once; the first rows reproduce the index."""
    import bm25s
    st = idx.retriever.state()
    texts = [q.question for q, _ in scored]
    rels = [rel for _, rel in scored]
    emb = idx.builder.embedder(None)
    t0 = time.perf_counter()
    qv = np.asarray(emb.embed(texts), dtype=np.float32)
    embed_s = time.perf_counter() - t0
    pool = max(50, 5 * depth_k)          # the index's fusion depth for k = 20
    ids = np.array(sorted(st.info), dtype=np.int64)
    corpus_text = [f"{st.info[i].law} {st.info[i].label} {st.info[i].text}" for i in ids]
    bm25 = {}
    for name, tok in (("jieba", TOKENIZERS["jieba"]), ("bigram", TOKENIZERS["bigram"])):
        model = bm25s.BM25()
        model.index([tok(t) for t in corpus_text], show_progress=False)
        ranks = []
        for text in texts:
            toks = tok(text)
            scores = model.get_scores(toks) if toks else np.zeros(len(ids))
            top = np.argsort(-scores, kind="stable")[:pool]
            ranks.append([int(ids[i]) for i in top if scores[i] > 0])
        bm25[name] = ranks
    dense = [[p for p, _ in channels.dense(st, qv[i:i + 1], pool, None)] for i in range(len(texts))]
    cos = st.matrix @ qv.T                                 # (passages, queries)

    def hop_like(i: int, fused_ranked: list[int], fused_score: dict[int, float], alpha: float) -> list[int]:
        """hop_search with no edges: the top-k fused entries, each visited once (IMP constant),
        ordered by SIM = alpha * cos + (1 - alpha) * fused / top fused."""
        entries = fused_ranked[:depth_k]
        top = max(fused_score.values(), default=1.0)
        sim = {p: alpha * max(float(cos[st.row_of[p], i]), 0.0) + (1 - alpha) * fused_score[p] / top for p in entries}
        return sorted(entries, key=lambda p: -sim[p])

    def fused(i: int, weights=(1.0, 1.0), k=RRF_K, tok="jieba") -> tuple[list[int], dict[int, float]]:
        c: Counter = Counter()
        for ranked, w in zip((dense[i], bm25[tok][i]), weights):
            for rank, pid in enumerate(ranked[:pool]):
                c[pid] += w / (k + rank + 1)
        top = c.most_common()
        return [p for p, _ in top], dict(top)

    variants: dict[str, dict] = {}
    n = len(texts)

    def add(name: str, rankings: list[list[int]], note: str) -> None:
        variants[name] = {"note": note, **_metrics([x[:depth_k] for x in rankings], rels)}

    add("dense (= index dense)", dense, "faiss inner product, batch-embedded queries")
    add("bm25 jieba alone", bm25["jieba"], "lexical: jieba lcut_for_search")
    add("bm25 bigram alone", bm25["bigram"], "character unigrams + bigrams")
    f_cur = [fused(i) for i in range(n)]
    add("hybrid (= index hybrid)", [f[0] for f in f_cur], f"RRF k={RRF_K}, dense 1 : bm25-jieba 1, depth {pool}")
    add("hybrid, bm25 bigram", [fused(i, tok="bigram")[0] for i in range(n)], "RRF k=60, 1 : 1, bigram BM25")
    add("hybrid, bm25 bigram, RRF k=10", [fused(i, k=10, tok="bigram")[0] for i in range(n)], "both changes")
    for w in ((1.0, 0.5), (1.0, 2.0), (1.0, 3.0)):
        add(f"hybrid, dense {w[0]:g} : bm25 {w[1]:g}", [fused(i, weights=w)[0] for i in range(n)],
            f"RRF k={RRF_K}, weighted")
    for k in (10, 120):
        add(f"hybrid, RRF k={k}", [fused(i, k=k)[0] for i in range(n)], "1 : 1")
    for alpha in (0.5, 0.25, 0.0):
        add(f"hop SIM alpha={alpha:g}" + (" (= index hop)" if alpha == 0.5 else ""),
            [hop_like(i, *f_cur[i], alpha) for i in range(n)],
            "no edges: top-20 fused entries ordered by alpha*cos + (1-alpha)*fused/top")
    f_best = [fused(i, weights=(1.0, 2.0)) for i in range(n)]
    add("hop SIM alpha=0.5 on dense 1 : bm25 2", [hop_like(i, *f_best[i], 0.5) for i in range(n)],
        "hop over the reweighted fusion")
    return {"queries": n, "batch_embed_seconds": round(embed_s, 2),
            "batch_embed_queries_per_second": round(n / embed_s, 1), "variants": variants}


def prototype_table(p: dict, base: str = "dense (= index dense)") -> str:
    metrics = [f"recall@{k}" for k in DEFAULT_KS] + ["mrr", f"ndcg@{NDCG_K}"]
    head = ["R@1", "R@5", "R@10", "R@20", "MRR", "nDCG@10"]
    lines = ["| prototype (bench only) | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    b = p["variants"][base]
    for name, v in p["variants"].items():
        cells = [f"{v[m]:.3f}" + ("" if name == base else f" ({v[m] - b[m]:+.3f})") for m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedder", default="use-multilingual")
    ap.add_argument("--out", type=Path, help="write all numbers as JSON here")
    ap.add_argument("--limit", type=int, help="only the first N queries (smoke run)")
    ap.add_argument("--n-hop", type=int, default=2)
    ap.add_argument("--skip-prototypes", action="store_true")
    ap.add_argument("--skip-threads", action="store_true", help="no second timing pass with one FAISS thread")
    args = ap.parse_args(argv)
    queries = load_queries(STARD / "queries.jsonl")[:args.limit]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as t, Index(Path(t) / "home") as idx:
        t0 = time.perf_counter()
        build = idx.build(STARD / "corpus.jsonl", embedder=args.embedder)
        build_s = time.perf_counter() - t0
        print(f"built {build.passages} passages ({build.embedded} texts embedded) in {build_s:.1f} s; "
              f"edges {build.edges}", file=sys.stderr, flush=True)
        report = evaluate(idx, queries, modes=MODES, n_hop=args.n_hop, progress=_progress(), keep_rankings=True)
        st = idx.retriever.state()
        rel_of = {}
        for q in queries:
            found = frozenset(st.by_key[r] for r in q.relevant if r in st.by_key)
            if found:
                rel_of[q.id] = found
        analysis = analyse(idx, report, queries)
        threads = threads_probe(idx, queries, report, args.n_hop) if not args.skip_threads else None
        proto = None
        if not args.skip_prototypes:
            scored = [(q, rel_of[q.id]) for q in queries if q.id in rel_of]
            proto = prototypes(idx, scored, max(DEFAULT_KS))
    load_after = os.getloadavg()
    result = {"benchmark": "eval-stard", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "embedder": args.embedder, "data": str(STARD), "queries": len(queries), "n_hop": args.n_hop,
              "reference_dense": REFERENCE,
              "machine": machine_facts() | {"loadavg_before": load_before, "loadavg_after": load_after,
                                            "retrieve_sha256": _file_sha("indexer/retrieve"),
                                            "evaluate_py_sha256": _file_sha("indexer/retrieve/evaluate.py")},
              "build": {"seconds": round(build_s, 2), "passages": build.passages, "embedded": build.embedded,
                        "edges": build.edges, "stages": build.stages},
              "report": report.to_dict(), "analysis": analysis, "faiss_one_thread": threads, "prototypes": proto}
    table = format_table(report)
    m = result["machine"]
    print(f"\nhoprag eval benchmark: STARD, {args.embedder}, {len(queries)} queries on {m['cpu']}, "
          f"{m['cores']} cores, load {load_before[0]:.1f} -> {load_after[0]:.1f}\n\n{table}\n")
    print("analysis:", json.dumps(analysis, ensure_ascii=False, indent=1))
    if threads:
        print("\nsame queries, FAISS limited to one OpenMP thread: " + ", ".join(
            f"{m} {v['seconds']:.1f} s ({v['queries_per_second']:.0f} q/s, was {v['default_seconds']:.1f} s)"
            for m, v in threads["modes"].items()) + f"; rankings identical: {threads['identical_rankings']}")
    if proto:
        print(f"\n{prototype_table(proto)}\n")
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
