"""Graph benchmark: HopRAG question-edge matching, a HopRAG build with a fake LLM, and loading the
derived data from a snapshot vs. rebuilding it from the database.

Every ratio is measured against a baseline taken in the same run, on the same machine (except the
5-minute figure of the system we replace, which is quoted):

  1. edge matching      `indexer.edges.match_questions` with default EdgeParams (generic pass
                        included) on synthetic unit vectors (512-d, 4 incoming and 6 outgoing
                        questions per passage, structured so that edges exist) at 300, 6,700 and
                        100,000 passages, each size in a fresh subprocess: wall time (median of
                        several runs; one run at 100k), peak resident memory of the call (VmHWM
                        after resetting it through /proc/self/clear_refs; FAISS allocates in C++,
                        where tracemalloc sees nothing), edges, the generic pass alone
                        (`generic_questions`), and the recall of the approximate (IVF) path against
                        exact search: candidate edges ((outgoing question, target passage): the
                        top_k distinct targets of each question before the caps) and final
                        (source, target) edges. At 300 passages, also a naive baseline: a Python
                        double loop computing one numpy dot product per (outgoing question,
                        incoming question of another passage) pair, then match_questions' selection
                        (best incoming question per target, top_k distinct targets per question,
                        one edge per (source, target) with the best score, max_per_passage targets
                        per source, n·ln n); it and the match_questions call it is compared with
                        run with the generic pass off and keyword_weight 0 (no keywords in either),
                        "agreement" is the Jaccard of their (source, target, out_q, in_q) edge sets;
                        and the ratio against the 300 s the replaced system took for its 307-node
                        regulation. Target: < 0.2 s at 300 passages.
  2. 保險法 build        Index.build of G0390002.json (262 articles + headings) with the offline
                        `use-multilingual` embedder and a fake OpenAI-compatible LLM on loopback
                        (tests/fakes/openai_server.py) answering 4 incoming + 6 outgoing questions
                        per article: the build's stages and edges. Target: `edges` stage < 0.2 s.
  3. load vs rebuild    the 30 laws of laws/2024-10-11 built the same way (~6,300 live articles,
                        ~63,000 questions), then, each in a fresh Index(home): `derived.load()`
                        from the snapshot (every checksum verified, consistency checked against the
                        database) vs. `derived.rebuild()` from the database and the embedding cache.

After the 30-law build, `match_questions` also runs on that index's real question vectors, exact
and with IVF forced: time and edge recall on real embeddings.

--probes 16,32,64 adds forced-IVF runs at each nprobe (default: only the product's
max(32, nlist // 20)), with their edge recall against exact, at the synthetic sizes under
exact_limit and on the 30-law real question vectors. The bench sets nprobe through SearchTap,
which wraps indexer.edges.top_inner_products (its optional `nprobe` argument); product calls leave it None.

Run (from the repository root, in the virtualenv; ~3.5 minutes on 2 quiet cores before the
generic pass and --probes, many times that when other jobs share them):

    python bench/bench_graph.py [--sizes 300,6700,100000] [--probes 16,32,64] [--skip-full] [--out bench/results/graph-<machine>.json]

Prints a table and Markdown tables for the README; --out writes every number plus machine facts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "bench")):        # `tests.fakes` and `bench_store` importable
    if p not in sys.path:
        sys.path.insert(0, p)

DATA = Path(os.environ.get("HOPRAG_DATA", "/work/shared/data")) / "laws" / "2024-10-11"
INSURANCE = "G0390002"                 # 保險法
DIM, N_IN, N_OUT = 512, 4, 6
TARGETS = {"edges_300_seconds": 0.2, "insurance_edges_stage_seconds": 0.2}
RUNS = {300: 7, 6700: 3}               # timed runs per size (median); larger sizes: 1
SNAPSHOT_RUNS = 3


class Clock:
    """Wall and CPU seconds of a with-block (CPU: all threads of this process)."""

    def __enter__(self) -> Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self._w, time.process_time() - self._c


# ------------------------------------------------------------------ 1. synthetic edge matching
def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def synthetic(n: int, seed: int = 0, noise: float = 0.7, chunk: int = 50_000) -> dict:
    """Unit vectors with structure, as an embedder would give HopRAG questions.

    Passages belong to "laws" of ~220 passages; a passage's topic is its law's direction plus its
    own (cosine ~0.26 between passages of one law, ~0 across laws). Its 4 incoming questions are
    noisy copies of its topic; each of its 6 outgoing questions is a noisy copy of the topic of
    another passage (60 % one of the same law, 15 % any passage) or asks about something no
    passage covers (25 %: its law's direction plus fresh randomness). The noise has norm `noise`
    (components N(0, noise²/d)), so an outgoing question meets the incoming questions it asks for
    at cosine ~1/(1+noise²) = 0.67 and the threshold 0.5 separates them from the rest."""
    rng = np.random.default_rng(seed)
    n_laws = max(1, round(n / 220))
    law_of = np.sort(rng.integers(0, n_laws, n))
    laws = _unit(rng.standard_normal((n_laws, DIM), dtype=np.float32))
    topics = _unit(0.6 * laws[law_of] + _unit(rng.standard_normal((n, DIM), dtype=np.float32)))
    sd = np.float32(noise / np.sqrt(DIM))

    def noisy(centres: np.ndarray) -> np.ndarray:
        out = np.empty_like(centres)
        for i in range(0, len(centres), chunk):
            c = centres[i:i + chunk]
            out[i:i + chunk] = _unit(c + sd * rng.standard_normal(c.shape, dtype=np.float32))
        return out

    in_owner = np.repeat(np.arange(n), N_IN)
    in_vecs = np.empty((n * N_IN, DIM), np.float32)
    for i in range(0, n * N_IN, chunk):
        in_vecs[i:i + chunk] = noisy(topics[in_owner[i:i + chunk]])
    out_owner = np.repeat(np.arange(n), N_OUT)
    kind = rng.random(n * N_OUT)
    # a passage of the same law: law_of is sorted, so laws are contiguous ranges of passage ids
    starts = np.searchsorted(law_of, law_of[out_owner])
    sizes = np.searchsorted(law_of, law_of[out_owner], side="right") - starts
    same_law = starts + (rng.random(n * N_OUT) * sizes).astype(np.int64)
    anywhere = rng.integers(0, n, n * N_OUT)
    target = np.where(kind < 0.6, same_law, anywhere)
    target = np.where(target == out_owner, (target + 1) % n, target)
    unanswered = kind >= 0.75
    out_vecs = np.empty((n * N_OUT, DIM), np.float32)
    for i in range(0, n * N_OUT, chunk):
        sl = slice(i, i + chunk)
        centres = topics[target[sl]]
        fresh = unanswered[sl]
        if fresh.any():
            centres[fresh] = _unit(0.6 * laws[law_of[out_owner[sl][fresh]]]
                                   + _unit(rng.standard_normal((int(fresh.sum()), DIM), dtype=np.float32)))
        out_vecs[sl] = noisy(centres)
    # ids as the database hands them out: passages 1..n, question ids distinct across directions
    return {"out_ids": np.arange(n * N_OUT, dtype=np.int64) + 1 + n * N_IN, "out_owner": out_owner + 1,
            "out_vecs": out_vecs, "in_ids": np.arange(n * N_IN, dtype=np.int64) + 1, "in_owner": in_owner + 1,
            "in_vecs": in_vecs}


def _status_kb() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1)) for k in ("VmHWM", "VmRSS")}


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class SearchTap:
    """Wraps indexer.edges.top_inner_products and generic_questions for a with-block; match_questions itself is
    unchanged. With the generic pass on, match_questions searches twice: generic_questions first
    (incoming vs incoming), then the candidate pool (outgoing vs the incoming questions left).

    calls:    one {"k", "incoming", "seconds"} per search, in order
    last:     the last search's (scores, positions): the candidate pool; its positions index the
              incoming questions left after the generic drop, `original()` maps them back
    seconds:  the last search's seconds
    generic:  the mask generic_questions returned (None if it did not run), generic_seconds its time
    nprobe:   passed to top_inner_products (None: the product's max(32, nlist // 20)); only the IVF path reads it"""

    def __init__(self, edges_module, nprobe: int | None = None):
        self.mod, self.real, self.real_generic = edges_module, edges_module.top_inner_products, edges_module.generic_questions
        self.nprobe = nprobe
        self.calls: list[dict] = []
        self.last = None
        self.generic, self.generic_seconds = None, 0.0

    def __call__(self, in_vecs, out_vecs, k, exact_limit, nprobe=None):
        t0 = time.perf_counter()
        self.last = self.real(in_vecs, out_vecs, k, exact_limit, nprobe=self.nprobe if nprobe is None else nprobe)
        self.calls.append({"k": int(k), "incoming": int(in_vecs.shape[0]), "seconds": time.perf_counter() - t0})
        return self.last

    def _generic(self, *a, **kw):
        t0 = time.perf_counter()
        self.generic = self.real_generic(*a, **kw)
        self.generic_seconds = time.perf_counter() - t0
        return self.generic

    @property
    def seconds(self) -> float:
        return self.calls[-1]["seconds"] if self.calls else 0.0

    @property
    def k(self) -> int:
        return self.calls[-1]["k"]

    def original(self, pos: np.ndarray) -> np.ndarray:
        """Positions of the last search in the incoming arrays match_questions was given (-1 kept)."""
        if self.generic is None or not self.generic.any():
            return pos
        kept = np.flatnonzero(~self.generic)
        return np.where(pos >= 0, kept[np.where(pos >= 0, pos, 0)], -1)

    def __enter__(self) -> SearchTap:
        self.mod.top_inner_products, self.mod.generic_questions = self, self._generic
        return self

    def __exit__(self, *exc) -> None:
        self.mod.top_inner_products, self.mod.generic_questions = self.real, self.real_generic


def product_nprobe(n_incoming: int) -> tuple[int, int]:
    """(nlist, nprobe) of indexer.edges.top_inner_products's IVF path for n incoming questions (mirrors it)."""
    nlist = max(1, min(int(4 * math.sqrt(n_incoming)), n_incoming))
    return nlist, max(32, nlist // 20)


def _edge_keys(e) -> set[tuple[int, int]]:
    """Edges are one per (source, target) passage pair: that pair is the edge."""
    return set(zip(e.source.tolist(), e.target.tolist()))


def _edge_full(e) -> set[tuple[int, int, int, int]]:
    """(source, target, outgoing question, incoming question): also which questions made the edge."""
    return set(zip(e.source.tolist(), e.target.tolist(), e.out_q.tolist(), e.in_q.tolist()))


def _candidates(scores: np.ndarray, pos: np.ndarray, in_owner: np.ndarray, out_ids: np.ndarray,
                out_owner: np.ndarray, params) -> set[tuple[int, int]]:
    """(outgoing question id, target passage) pairs match_questions keeps before its per-source and
    total caps: over the searched pool (positions in the full incoming arrays, best first), hits of
    other passages with score >= threshold, one per target passage, the first `top_k` distinct
    targets. Dense scores only, as the bench calls match_questions without keywords."""
    out = set()
    for row_s, row_p, qid, owner in zip(scores.tolist(), pos.tolist(), out_ids.tolist(), out_owner.tolist()):
        targets: list[int] = []
        for sc, p in zip(row_s, row_p):
            if p < 0 or sc < params.threshold:
                continue
            t = int(in_owner[p])
            if t != owner and t not in targets:
                targets.append(t)
                if len(targets) == params.top_k:
                    break
        out.update((qid, t) for t in targets)
    return out


def _recall(approx: set, exact: set) -> float | None:
    return len(approx & exact) / len(exact) if exact else None


def _search_recall(approx_pos: np.ndarray, exact_pos: np.ndarray) -> float:
    a = [set(r[r >= 0].tolist()) for r in approx_pos]
    e = [set(r[r >= 0].tolist()) for r in exact_pos]
    return sum(len(x & y) for x, y in zip(a, e)) / max(1, sum(map(len, e)))


def naive_match(d: dict, params) -> tuple[float, set[tuple[int, int, int, int]], int]:
    """What the replaced system did: a Python loop over every (outgoing question, incoming
    question of another passage) pair, one numpy dot product each, then the selection of
    match_questions without its generic pass (call it with generic_passages=0, keyword_weight=0):
    per outgoing question the best incoming question of each other passage with score >= threshold
    and the `top_k` best such target passages; one edge per (source, target) with the best score;
    the `max_per_passage` best targets per source; n·ln n edges in all. No candidate pool: every
    pair is scored (with top_k <= 8 and 4 incoming questions per passage the 32-candidate pool of
    exact search holds the same top_k targets). Returns seconds, (source, target, out_q, in_q) of
    each edge, dot products computed."""
    from indexer.build.edges import total_cap
    assert params.keyword_weight == 0 and (params.generic_passages <= 0 or params.generic_cosine <= 0), params
    out_vecs, in_vecs = d["out_vecs"], d["in_vecs"]
    in_owner, in_ids = d["in_owner"].tolist(), d["in_ids"].tolist()
    out_owner, out_ids = d["out_owner"].tolist(), d["out_ids"].tolist()
    t0 = time.perf_counter()
    cand = []                                           # (score, source, target, out_q, in_q)
    pairs = 0
    for oi in range(len(out_vecs)):
        a, owner = out_vecs[oi], out_owner[oi]
        best: dict[int, tuple[float, int]] = {}         # target passage -> (score, incoming position)
        for ii in range(len(in_vecs)):
            t = in_owner[ii]
            if t == owner:
                continue
            s = float(np.dot(a, in_vecs[ii]))
            pairs += 1
            if s >= params.threshold and (t not in best or s > best[t][0]):
                best[t] = (s, ii)
        for t, (s, ii) in sorted(best.items(), key=lambda kv: -kv[1][0])[:params.top_k]:
            cand.append((s, owner, t, out_ids[oi], in_ids[ii]))
    per_pair: dict[tuple[int, int], tuple] = {}
    for c in cand:
        if (c[1], c[2]) not in per_pair or c[0] > per_pair[(c[1], c[2])][0]:
            per_pair[(c[1], c[2])] = c
    per_source: dict[int, list] = {}
    for c in per_pair.values():
        per_source.setdefault(c[1], []).append(c)
    kept = [c for cs in per_source.values() for c in sorted(cs, key=lambda c: -c[0])[:params.max_per_passage]]
    kept.sort(key=lambda c: -c[0])
    kept = kept[:total_cap(len(set(out_owner) | set(in_owner)))]
    seconds = time.perf_counter() - t0
    return seconds, {(c[1], c[2], c[3], c[4]) for c in kept}, pairs


def _ivf_run(E, args: tuple, d: dict, exact_edges, exact_cand: set, exact_orig_pos: np.ndarray, params,
             nprobe: int | None) -> dict:
    """match_questions with the IVF path forced (exact_limit=0), compared with the exact run."""
    import dataclasses
    ivf_params = dataclasses.replace(params, exact_limit=0)
    with SearchTap(E, nprobe=nprobe) as tap, Clock() as c:
        ivf_edges = E.match_questions(*args, ivf_params)
    a_scores, a_pos = tap.last
    a_pos = tap.original(a_pos)
    nlist, default_probe = product_nprobe(tap.calls[-1]["incoming"])
    return {"nprobe": default_probe if nprobe is None else nprobe, "nprobe_source": "product" if nprobe is None
            else "--probes", "nlist": nlist, "seconds": c.wall, "search_seconds": tap.seconds, "edges": len(ivf_edges),
            "generic_dropped": int(tap.generic.sum()) if tap.generic is not None else 0,
            "search_recall_at_k": _search_recall(a_pos, exact_orig_pos),
            "candidate_edge_recall": _recall(_candidates(a_scores, a_pos, d["in_owner"], d["out_ids"],
                                                         d["out_owner"], params), exact_cand),
            "final_edge_recall": _recall(_edge_keys(ivf_edges), _edge_keys(exact_edges)),
            "final_edge_recall_with_questions": _recall(_edge_full(ivf_edges), _edge_full(exact_edges))}


def edges_worker(n: int, runs: int, sample: int, naive: bool, probes: list[int] | None = None) -> dict:
    """One size, in its own process (so that peak memory belongs to this size alone)."""
    from dataclasses import asdict

    import faiss

    import indexer.build.edges as E
    from indexer.build.edges import EdgeParams, generic_questions, match_questions, total_cap

    with Clock() as gen:
        d = synthetic(n)
    args = (d["out_ids"], d["out_owner"], d["out_vecs"], d["in_ids"], d["in_owner"], d["in_vecs"])
    params = EdgeParams()
    exact = len(d["in_ids"]) <= params.exact_limit
    small = synthetic(50, seed=1)                  # warm-up: FAISS and OpenMP threads start once
    match_questions(small["out_ids"], small["out_owner"], small["out_vecs"], small["in_ids"],
                    small["in_owner"], small["in_vecs"], params)
    gc.collect()
    before = _status_kb()
    ru_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reset = _reset_peak()
    walls, cpus, search_s, generic_s = [], [], [], []
    peak_kb = None
    for r in range(runs):
        with SearchTap(E) as tap, Clock() as c:
            edges = match_questions(*args, params)
        walls.append(c.wall)
        cpus.append(c.cpu)
        search_s.append(tap.seconds)
        generic_s.append(tap.generic_seconds)
        if r == 0:
            peak_kb = (_status_kb()["VmHWM"] - before["VmRSS"]) if reset else \
                (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - ru_before)
            scores, pos = tap.last
            orig_pos = tap.original(pos)
            generic = tap.generic if tap.generic is not None else np.zeros(len(d["in_ids"]), bool)
            searches = [dict(c) for c in tap.calls]
    # the generic pass alone, as match_questions runs it (one incoming-vs-incoming search)
    generic_alone = []
    for _ in range(runs):
        with Clock() as c:
            generic_questions(d["in_owner"], d["in_vecs"], params)
        generic_alone.append(c.wall)
    res = {"passages": n, "incoming": len(d["in_ids"]), "outgoing": len(d["out_ids"]), "dim": DIM,
           "input_mib": round((d["in_vecs"].nbytes + d["out_vecs"].nbytes) / 2**20, 1),
           "generate_seconds": round(gen.wall, 2), "search": "exact (IndexFlatIP)" if exact else "IVF (IndexIVFFlat)",
           "params": asdict(params), "runs": runs, "seconds": walls, "seconds_median": statistics.median(walls),
           "cpu_seconds_median": statistics.median(cpus), "search_seconds_median": statistics.median(search_s),
           "generic_in_call_seconds_median": statistics.median(generic_s),
           "generic_seconds_median": statistics.median(generic_alone), "generic_dropped": int(generic.sum()),
           "searches": searches,
           "peak_mib": round(peak_kb / 1024, 1), "peak_method": "VmHWM reset via clear_refs" if reset else
           "ru_maxrss delta (lower bound)", "rss_before_mib": round(before["VmRSS"] / 1024, 1),
           "edges": len(edges), "edge_cap": total_cap(n), "k_searched": int(scores.shape[1]),
           "mean_edge_score": float(edges.score.mean()) if len(edges) else None,
           "faiss_threads": faiss.omp_get_max_threads()}
    rng = np.random.default_rng(1)
    if exact:
        # the approximate path on the same data: match_questions with exact_limit=0 forces IVF,
        # at the product's nprobe and at each --probes value
        ex_cand = _candidates(scores, orig_pos, d["in_owner"], d["out_ids"], d["out_owner"], params)
        res["ivf"] = _ivf_run(E, args, d, edges, ex_cand, orig_pos, params, None) | {
            "sample": "all outgoing questions", "reference": "exact IndexFlatIP, same run"}
        if probes:
            res["ivf_probes"] = [_ivf_run(E, args, d, edges, ex_cand, orig_pos, params, p) for p in probes]
    else:
        # the path used is IVF: compare a sample of outgoing questions against brute-force numpy
        # over the incoming questions the generic pass left
        rows = np.sort(rng.choice(len(d["out_ids"]), size=min(sample, len(d["out_ids"])), replace=False))
        k = scores.shape[1]
        kept = np.flatnonzero(~generic)
        in_vecs = d["in_vecs"] if len(kept) == len(generic) else d["in_vecs"][kept]
        with Clock() as c:
            ex_pos = np.empty((len(rows), k), np.int64)
            ex_scores = np.empty((len(rows), k), np.float32)
            for i in range(0, len(rows), 200):
                sims = in_vecs @ d["out_vecs"][rows[i:i + 200]].T           # (incoming, batch)
                top = np.argpartition(-sims, k - 1, axis=0)[:k].T
                top_s = np.take_along_axis(sims.T, top, axis=1)
                order = np.argsort(-top_s, axis=1)
                ex_pos[i:i + 200] = kept[np.take_along_axis(top, order, axis=1)]
                ex_scores[i:i + 200] = np.take_along_axis(top_s, order, axis=1)
        q, owner = d["out_ids"][rows], d["out_owner"][rows]
        nlist, nprobe = product_nprobe(len(kept))
        res["ivf"] = {
            "seconds": res["seconds_median"], "nprobe": nprobe, "nprobe_source": "product", "nlist": nlist,
            "search_recall_at_k": _search_recall(orig_pos[rows], ex_pos),
            "candidate_edge_recall": _recall(_candidates(scores[rows], orig_pos[rows], d["in_owner"], q, owner, params),
                                             _candidates(ex_scores, ex_pos, d["in_owner"], q, owner, params)),
            "final_edge_recall": None, "sample": f"{len(rows)} random outgoing questions",
            "reference": "brute-force numpy inner products", "reference_seconds": round(c.wall, 2)}
    if naive:
        # like for like: the naive loop has no generic pass and no keywords, so neither has this call
        cmp_params = EdgeParams(generic_passages=0, keyword_weight=0.0)
        cmp_walls = []
        for _ in range(runs):
            with Clock() as c:
                cmp_edges = match_questions(*args, cmp_params)
            cmp_walls.append(c.wall)
        seconds, naive_full, pairs = naive_match(d, cmp_params)
        ours_full = _edge_full(cmp_edges)
        naive_pairs, ours_pairs = {x[:2] for x in naive_full}, _edge_keys(cmp_edges)
        cmp_s = statistics.median(cmp_walls)
        res["naive"] = {"seconds": seconds, "pairs": pairs, "edges": len(naive_full), "ours_edges": len(cmp_edges),
                        "params": asdict(cmp_params), "ours_seconds_median": cmp_s,
                        "agreement": len(naive_full & ours_full) / max(1, len(naive_full | ours_full)),
                        "agreement_measure": "Jaccard of (source, target, out_q, in_q) edge sets",
                        "pair_agreement": len(naive_pairs & ours_pairs) / max(1, len(naive_pairs | ours_pairs)),
                        "ratio": seconds / cmp_s, "ratio_vs_default_params": seconds / res["seconds_median"]}
    return res


def bench_edges(sizes: list[int], sample: int, probes: list[int]) -> list[dict]:
    out = []
    for n in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--edges-worker", str(n),
               "--runs", str(RUNS.get(n, 1)), "--sample", str(sample)] + (["--naive"] if n <= 1000 else []) \
            + (["--probes", ",".join(map(str, probes))] if probes else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"edge worker for {n} passages failed:\n{proc.stderr[-4000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["process_seconds"] = round(time.perf_counter() - t0, 1)
        res["loadavg_after"] = os.getloadavg()
        print(f"  edges {n:>7} passages: {res['seconds_median']:.3f} s, peak {res['peak_mib']} MiB, "
              f"{res['edges']} edges, IVF recall {res['ivf']['candidate_edge_recall']}"
              + "".join(f", nprobe {x['nprobe']} {x['final_edge_recall']}" for x in res.get("ivf_probes", []))
              + (f", naive agreement {res['naive']['agreement']:.4f}" if "naive" in res else ""), file=sys.stderr)
        out.append(res)
    return out


# ------------------------------------------------------------------ 2./3. builds with a fake LLM
_CITE = re.compile(r"第[一二三四五六七八九十百千]+條(?:之[一二三四五六七八九十]+)?")
_DIGITS = "零一二三四五六七八九"


def _cn(n: int) -> str:
    """184 -> 一百八十四, 118 -> 一百十八, 105 -> 一百零五 (as Taiwan statutes cite articles)."""
    if n < 10:
        return _DIGITS[n]
    out = ""
    for value, unit in ((1000, "千"), (100, "百"), (10, "十")):
        q, n = divmod(n, value)
        if q:
            out += ("" if (unit == "十" and q == 1) else _DIGITS[q]) + unit   # 第一百十八條, as statutes write
        elif out and n:
            out += "" if out.endswith("零") else "零"
    return out + (_DIGITS[n] if n else "")


def _cn_label(label: str) -> str:
    """第 15-1 條 -> 第十五條之一; other labels unchanged."""
    m = re.fullmatch(r"第\s*(\d+)(?:-(\d+))?\s*條", label.strip())
    if not m:
        return label.replace(" ", "")
    return f"第{_cn(int(m.group(1)))}條" + (f"之{_cn(int(m.group(2)))}" if m.group(2) else "")


def legal_questions_4_6(prompt: str, system, schema) -> dict:
    """tests/test_hoprag_build.py's stand-in model extended to 4 incoming + 6 outgoing questions,
    deterministic, from the article itself: incoming ask what this article says (one of them in
    the Chinese numerals other articles cite it with), outgoing ask what the articles it cites say
    and what a reader would look up next."""
    law = re.search(r"法規：(.*)", prompt).group(1).strip()
    label = re.search(r"條號：(.*)", prompt).group(1).strip()
    text = prompt.split("條文：\n", 1)[1]
    short = label.replace(" ", "")
    clauses = [c.strip() for c in re.split(r"[，。：；、\r\n]", text) if len(c.strip()) >= 4]
    first = clauses[0][:30] if clauses else short
    second = clauses[1][:30] if len(clauses) > 1 else f"{law}{short}之要件"
    incoming = [f"{law}{_cn_label(label)}規定什麼？", f"{law}{short}的內容為何？", f"{first}的規定為何？",
                f"{second}應如何處理？"]
    cited = [f"{law}{c}規定什麼？" for c in dict.fromkeys(_CITE.findall(text))][:4]
    fill = [f"違反{law}{short}有什麼法律效果？", f"{law}{short}的例外情形為何？", f"{first}由哪個機關主管？",
            f"{law}{short}所稱之用語如何定義？", f"{second}有無罰則？", f"{first}的程序如何進行？"]
    return {"incoming": incoming, "outgoing": (cited + fill)[:N_OUT]}


def _settings(home: Path, fake_url: str):
    from indexer.settings import Settings
    return Settings(home=home, llm_base_url=fake_url, llm_max_retries=2, questions_in_min=2,
                    questions_in_max=N_IN, questions_out_min=2, questions_out_max=N_OUT)


class MatchTap:
    """Times indexer.build.match_questions inside a build (the rest of the `edges` stage is
    citation resolution and the SQL insert of the edge rows)."""

    def __init__(self):
        import indexer.build.builder as I
        self.mod, self.real, self.calls = I, I.match_questions, []

    def __call__(self, *a, **kw):
        t0 = time.perf_counter()
        out = self.real(*a, **kw)
        self.calls.append({"seconds": time.perf_counter() - t0, "outgoing": len(a[0]), "incoming": len(a[3]),
                           "edges": len(out)})
        return out

    def __enter__(self) -> MatchTap:
        self.mod.match_questions = self
        return self

    def __exit__(self, *exc) -> None:
        self.mod.match_questions = self.real


def _hoprag_build(library: Path, home: Path, embedder: str, fake) -> tuple[Clock, dict, dict | None]:
    from indexer.index import Index
    with MatchTap() as tap, Clock() as clock, Index(settings=_settings(home, fake.url)) as idx:
        report = idx.build(library, embedder=embedder, llm="openai:fake-qwen")
    return clock, report.to_dict(), tap.calls[-1] if tap.calls else None


def bench_insurance(tmp: Path, embedder: str, fake) -> dict:
    lib = tmp / "lib-insurance"
    lib.mkdir()
    shutil.copy(DATA / f"{INSURANCE}.json", lib)
    clock, rep, match = _hoprag_build(lib, tmp / "home-insurance", embedder, fake)
    return {"law": "保險法", "pcode": INSURANCE, "wall_seconds": clock.wall, "cpu_seconds": clock.cpu,
            "report_seconds": rep["seconds"], "stages": rep["stages"], "passages": rep["passages"],
            "live": rep["passages"] - rep["repealed"], "llm_calls": rep["llm_calls"],
            "llm_failures": rep["llm_failures"], "pseudo_queries": rep["pseudo_queries"],
            "embedded": rep["embedded"], "edges": rep["edges"], "match_questions": match}


def _dir_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def bench_full(tmp: Path, embedder: str, fake, laws: list[str] | None,
               probes: list[int] | None = None) -> dict:
    from indexer.index import Index
    if laws:
        lib = tmp / "lib-full"
        lib.mkdir()
        for pcode in laws:
            shutil.copy(DATA / f"{pcode}.json", lib)
    else:
        lib = DATA
    home = tmp / "home-full"
    clock, rep, match = _hoprag_build(lib, home, embedder, fake)
    settings = _settings(home, fake.url)
    with Index(settings=settings) as idx:
        generation = idx.generation
        snap = idx.derived.snapshots.get(generation)
        files = {name: (snap.path / name).stat().st_size for name in sorted(os.listdir(snap.path))}
    real_ivf = ivf_on_real_vectors(settings, probes)
    load, rebuild = [], []
    counts = None
    for _ in range(SNAPSHOT_RUNS):      # interleaved, each in a fresh Index: nothing held in memory
        with Index(settings=settings) as idx:       # the clock starts after opening the database
            with Clock() as c:
                derived = idx.derived.load()
        assert not idx.repairs, idx.repairs            # loaded, not repaired
        load.append(c)
        loaded = {k: len(v) for k, v in derived.sets.items()} | {"edges": len(derived.edges)}
        del derived
        gc.collect()
        with Index(settings=settings) as idx:
            fp_now, generation_now = idx.fingerprint, idx.generation
            with Clock() as c:
                derived = idx.derived.rebuild(fp_now, generation_now)
        rebuild.append(c)
        rebuilt = {k: len(v) for k, v in derived.sets.items()} | {"edges": len(derived.edges)}
        assert loaded == rebuilt, (loaded, rebuilt)
        counts = loaded
        del derived
        gc.collect()
    load_s = statistics.median(c.wall for c in load)
    rebuild_s = statistics.median(c.wall for c in rebuild)
    return {"laws": laws or "all 30", "library": str(lib), "build_wall_seconds": clock.wall,
            "build_cpu_seconds": clock.cpu, "build_stages": rep["stages"], "passages": rep["passages"],
            "live": rep["passages"] - rep["repealed"], "llm_calls": rep["llm_calls"],
            "llm_failures": rep["llm_failures"], "pseudo_queries": rep["pseudo_queries"],
            "embedded": rep["embedded"], "edges": rep["edges"], "match_questions": match,
            "generation": generation, "derived_counts": counts,
            "snapshot_bytes": sum(files.values()), "snapshot_files": files,
            "database_bytes": (home / "index.db").stat().st_size if (home / "index.db").exists() else None,
            "runs": SNAPSHOT_RUNS, "load_seconds": [c.wall for c in load], "rebuild_seconds": [c.wall for c in rebuild],
            "load_seconds_median": load_s, "rebuild_seconds_median": rebuild_s,
            "load_cpu_seconds_median": statistics.median(c.cpu for c in load),
            "rebuild_cpu_seconds_median": statistics.median(c.cpu for c in rebuild),
            "ratio": rebuild_s / load_s, "real_ivf": real_ivf}


def ivf_on_real_vectors(settings, probes: list[int] | None = None) -> dict:
    """The built index's own question vectors: match_questions exact (what the build ran, generic
    pass included) vs. the IVF path forced with exact_limit=0, same parameters otherwise (no
    keywords: dense scores), at the product's nprobe and at each of `probes`; time and edge recall
    (candidate pairs before the caps, final (source, target) edges)."""
    import dataclasses

    from sqlalchemy import select

    import indexer.build.edges as E
    from indexer.build.edges import EdgeParams
    from indexer.index import Index
    from storage.models import PseudoQueryRow
    with Index(settings=settings) as idx:
        derived = idx.derived.load()
        params = EdgeParams.from_settings(idx.settings)
        with idx.db.session() as s:
            owner = dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.passage_id)).all())
    o_ids, o_vecs = derived.sets["questions_out"].index.vectors()
    i_ids, i_vecs = derived.sets["questions_in"].index.vectors()
    o_ids, i_ids = np.asarray(o_ids, np.int64), np.asarray(i_ids, np.int64)
    o_own = np.array([owner[int(i)] for i in o_ids], np.int64)
    i_own = np.array([owner[int(i)] for i in i_ids], np.int64)
    args = (o_ids, o_own, o_vecs, i_ids, i_own, i_vecs)
    d = {"out_ids": o_ids, "out_owner": o_own, "in_owner": i_own}
    with SearchTap(E) as tap, Clock() as c:
        ex_e = E.match_questions(*args, dataclasses.replace(params, exact_limit=10**12))
    sc, pos = tap.last
    pos = tap.original(pos)
    ex_cand = _candidates(sc, pos, i_own, o_ids, o_own, params)
    runs = [_ivf_run(E, args, d, ex_e, ex_cand, pos, params, p) for p in [None] + list(probes or [])]
    iv = runs[0]
    return {"incoming": len(i_ids), "outgoing": len(o_ids), "params": dataclasses.asdict(params),
            "keywords": "not passed (dense cosine only)", "exact_seconds": c.wall,
            "exact_generic_seconds": tap.generic_seconds,
            "exact_generic_dropped": int(tap.generic.sum()) if tap.generic is not None else 0,
            "ivf_seconds": iv["seconds"], "nprobe": iv["nprobe"], "nlist": iv["nlist"],
            "exact_edges": len(ex_e), "ivf_edges": iv["edges"],
            "candidate_edge_recall": iv["candidate_edge_recall"], "final_edge_recall": iv["final_edge_recall"],
            "probes": runs[1:]}


# ------------------------------------------------------------------ report
def _mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def tables(r: dict) -> tuple[str, str]:
    """(plain text, Markdown): one table per size for edge matching, one for the rest."""
    head = ("passages", "questions in/out", "search", "match_questions", "peak memory", "edges", "IVF recall")
    size_rows = []
    for e in r["edges"]:
        ivf = e["ivf"]
        rec = f"{ivf['candidate_edge_recall']:.3f} ({'all' if ivf['sample'].startswith('all') else 'sample'})"
        timing = f"{e['seconds_median']:.3f} s" + (f" (median of {e['runs']})" if e["runs"] > 1 else " (1 run)")
        size_rows.append((f"{e['passages']:,}", f"{e['incoming']:,} / {e['outgoing']:,}", e["search"].split(" ")[0],
                          timing, f"{e['peak_mib']:.0f} MiB", f"{e['edges']:,}", rec))
    rows = []
    small = next((e for e in r["edges"] if e["passages"] == 300), None)
    if small:
        # the baseline is the naive loop run here, not the replaced system's quoted 300 s
        rows.append(("300 passages", f"{small['seconds_median']:.3f} s",
                     f"target < {TARGETS['edges_300_seconds']} s"))
        if "naive" in small:
            nv = small["naive"]
            rows.append(("300 passages, naive Python pair loop", f"{nv['seconds']:.1f} s",
                         f"{nv['pairs']:,} dot products; ours {nv['ours_seconds_median']:.3f} s with the generic "
                         f"pass off, {nv['ratio']:,.0f}x faster; same edges: {nv['agreement']:.3f} (Jaccard of "
                         f"source, target, questions), {nv['pair_agreement']:.3f} (source, target)"))
    for e in r["edges"]:
        if "generic_seconds_median" in e:
            rows.append((f"{e['passages']:,} passages, generic pass alone", f"{e['generic_seconds_median']:.3f} s",
                         f"`generic_questions`, in the headline time; {e['generic_dropped']:,} incoming dropped"))
    for e in r["edges"]:
        if e["ivf"]["sample"].startswith("all"):
            for x in [e["ivf"]] + e.get("ivf_probes", []):
                rows.append((f"{e['passages']:,} passages, IVF forced, nprobe {x['nprobe']}/{x['nlist']}",
                             f"{x['seconds']:.3f} s", f"search recall@{e['k_searched']} {x['search_recall_at_k']:.3f}, "
                             f"edge recall {x['candidate_edge_recall']:.3f} before caps, "
                             f"{x['final_edge_recall']:.3f} final"))
        else:
            rows.append((f"{e['passages']:,} passages, IVF vs brute force", f"{e['ivf']['candidate_edge_recall']:.3f}",
                         f"edge recall on {e['ivf']['sample']}; search recall@{e['k_searched']} "
                         f"{e['ivf']['search_recall_at_k']:.3f}"))
    ins = r.get("insurance")
    if ins:
        st = ins["stages"]
        rows.append(("保險法 HopRAG build (fake LLM)", f"{ins['wall_seconds']:.2f} s",
                     ", ".join(f"{k} {v:.3f}" for k, v in st.items())))
        m = ins["match_questions"]
        rows.append(("保險法 `edges` stage", f"{st.get('edges', float('nan')):.3f} s",
                     f"target < {TARGETS['insurance_edges_stage_seconds']} s; match_questions "
                     f"{m['seconds']:.3f} s ({m['outgoing']:,} out x {m['incoming']:,} in); edges "
                     + ", ".join(f"{k} {v}" for k, v in ins["edges"].items())))
    full = r.get("full")
    if full:
        st = full["build_stages"]
        rows.append((f"full build, {full['live']:,} live articles (fake LLM)", f"{full['build_wall_seconds']:.1f} s",
                     f"{full['pseudo_queries']:,} questions, {full['embedded']:,} texts embedded; "
                     + ", ".join(f"{k} {v:.2f}" for k, v in st.items())))
        m = full["match_questions"]
        rows.append(("full build `edges` stage", f"{st.get('edges', float('nan')):.2f} s",
                     f"match_questions {m['seconds']:.2f} s ({m['outgoing']:,} out x {m['incoming']:,} in, exact), "
                     f"{m['edges']:,} question edges"))
        ri = full.get("real_ivf")
        if ri:
            rows.append((f"its question vectors, IVF forced (nprobe {ri['nprobe']}) vs exact", f"{ri['ivf_seconds']:.2f} s",
                         f"exact {ri['exact_seconds']:.2f} s; edge recall {ri['candidate_edge_recall']:.3f} before caps, "
                         f"{ri['final_edge_recall']:.3f} final"))
            for x in ri.get("probes", []):
                rows.append((f"its question vectors, IVF nprobe {x['nprobe']}/{x['nlist']}", f"{x['seconds']:.2f} s",
                             f"edge recall {x['candidate_edge_recall']:.3f} before caps, {x['final_edge_recall']:.3f} final"))
        rows.append(("snapshot size", _mib(full["snapshot_bytes"]),
                     f"database {_mib(full['database_bytes'])}; edges "
                     + ", ".join(f"{k} {v}" for k, v in full["edges"].items())))
        rows.append(("load snapshot (`derived.load`)", f"{full['load_seconds_median']:.2f} s",
                     f"median of {full['runs']}, checksums verified"))
        rows.append(("rebuild from database (`derived.rebuild`)", f"{full['rebuild_seconds_median']:.2f} s",
                     f"median of {full['runs']}; rebuild / load {full['ratio']:.1f}x"))
    w = [max(len(str(x[i])) for x in [head] + size_rows) for i in range(len(head))]
    human = "\n".join("  ".join(str(c).ljust(w[i]) for i, c in enumerate(row)) for row in [head] + size_rows)
    wa = max(len(a) for a, _, _ in rows) if rows else 0
    human += "\n\n" + "\n".join(f"{a:<{wa}}  {b:>10}  {c}" for a, b, c in rows)
    md = ("| " + " | ".join(head) + " |\n|" + "---:|" * 2 + "---|" + "---:|" * 3 + "---|\n"
          + "\n".join("| " + " | ".join(row) + " |" for row in size_rows))
    md += "\n\n| measure | value | note |\n|---|---:|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return human, md


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="300,6700,100000", help="passages per edge-matching run, comma-separated")
    ap.add_argument("--skip-full", action="store_true", help="skip the 30-law build and load-vs-rebuild")
    ap.add_argument("--skip-insurance", action="store_true", help="skip the 保險法 build")
    ap.add_argument("--full-laws", help="pcodes for the full build, comma-separated (default: all 30)")
    ap.add_argument("--embedder", default="use-multilingual")
    ap.add_argument("--sample", type=int, default=2000, help="outgoing questions for IVF recall above exact_limit")
    ap.add_argument("--probes", default="", help="IVF nprobe values, comma-separated (e.g. 16,32,64): edge "
                    "recall of the forced IVF path at each, against exact, at the sizes under exact_limit and on "
                    "the 30-law build's question vectors (default: the product's nprobe only)")
    ap.add_argument("--out", type=Path, help="write all numbers as JSON here")
    ap.add_argument("--edges-worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    probes = [int(x) for x in args.probes.split(",") if x.strip()]
    if any(x < 1 for x in probes):
        ap.error("--probes: positive integers")
    if args.edges_worker:
        print(json.dumps(edges_worker(args.edges_worker, args.runs, args.sample, args.naive, probes)))
        return None

    from bench_store import machine_facts, write_result

    from tests.fakes.openai_server import FakeOpenAI

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    laws = [p.strip() for p in args.full_laws.split(",")] if args.full_laws else None
    load_before = os.getloadavg()
    if load_before[0] > 1.0:
        print(f"warning: load average {load_before[0]:.1f} on {os.cpu_count()} cores: another job shares the "
              f"machine and the timings will swing", file=sys.stderr)
    result: dict = {"benchmark": "graph", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "embedder": args.embedder, "targets": TARGETS,
                    "synthetic": {"dim": DIM, "incoming_per_passage": N_IN, "outgoing_per_passage": N_OUT,
                                  "noise_norm": 0.7, "passages_per_law": 220,
                                  "outgoing_targets": "60% same law, 15% any passage, 25% unanswered"}}
    from dataclasses import asdict

    from indexer.build.edges import EdgeParams
    result["edge_params"] = asdict(EdgeParams())
    result["probes"] = probes
    with Clock() as total:
        result["edges"] = bench_edges(sizes, args.sample, probes)
        if not (args.skip_insurance and args.skip_full):
            with tempfile.TemporaryDirectory(prefix="bench-graph-") as t, FakeOpenAI() as fake:
                fake.responder = legal_questions_4_6
                tmp = Path(t)
                if not args.skip_insurance:
                    result["insurance"] = bench_insurance(tmp, args.embedder, fake)
                    result["insurance"]["loadavg_after"] = os.getloadavg()
                    print(f"  保險法 build: stages {result['insurance']['stages']}", file=sys.stderr)
                if not args.skip_full:
                    result["full"] = bench_full(tmp, args.embedder, fake, laws, probes)
                    result["full"]["loadavg_after"] = os.getloadavg()
    result["total_seconds"] = round(total.wall, 1)
    result["machine"] = machine_facts() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    small = next((e for e in result["edges"] if e["passages"] == 300), None)
    result["pass"] = {
        "edges_300": small["seconds_median"] < TARGETS["edges_300_seconds"] if small else None,
        "insurance_edges_stage": (result["insurance"]["stages"].get("edges", 1e9)
                                  < TARGETS["insurance_edges_stage_seconds"]) if "insurance" in result else None}
    human, md = tables(result)
    m = result["machine"]
    print(f"\nhoprag graph benchmark: {args.embedder} on {m['cpu']}, {m['cores']} cores, "
          f"load {m['loadavg_before'][0]:.1f} -> {m['loadavg_after'][0]:.1f}, {result['total_seconds']:.0f} s\n\n"
          f"{human}\n\n{md}\n")
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
