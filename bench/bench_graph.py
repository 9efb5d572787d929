"""Graph benchmark: HopRAG question-edge matching, a HopRAG build with a fake LLM, and loading the
derived data from a snapshot vs. rebuilding it from the database.

Every ratio is measured against a baseline taken in the same run, on the same machine (except the
5-minute figure of the system we replace, which is quoted):

  1. edge matching      `indexer.edges.match_questions` on synthetic unit vectors (512-d, 4 incoming
                        and 6 outgoing questions per passage, structured so that edges exist) at
                        300, 6,700 and 100,000 passages, each size in a fresh subprocess: wall time
                        (median of several runs; one run at 100k), peak resident memory of the call
                        (VmHWM after resetting it through /proc/self/clear_refs; FAISS allocates in
                        C++, where tracemalloc sees nothing), edges, and the recall of the
                        approximate (IVF) path against exact search. At 300 passages, also a naive
                        baseline: a Python double loop computing one numpy dot product per
                        (outgoing question, incoming question of another passage) pair, and the
                        ratio against the 300 s the replaced system took for its 307-node
                        regulation. Target: < 0.2 s at 300 passages.
  2. 保險法 build        Index.build of G0390002.json (262 articles + headings) with the offline
                        `use-multilingual` embedder and a fake OpenAI-compatible LLM on loopback
                        (tests/fakes/openai_server.py) answering 4 incoming + 6 outgoing questions
                        per article: the build's stages and edges. Target: `edges` stage < 0.2 s.
  3. load vs rebuild    the 30 laws of laws/2024-10-11 built the same way (~6,300 live articles,
                        ~63,000 questions), then, each in a fresh Index(home): `_load_derived()`
                        from the snapshot (every checksum verified, consistency checked against the
                        database) vs. `_rebuild_derived()` from the database and the embedding cache.

After the 30-law build, `match_questions` also runs on that index's real question vectors, exact
and with IVF forced: time and edge recall on real embeddings.

Run (from the repository root, in the virtualenv; ~3.5 minutes on 2 quiet cores, many times that
when other jobs share them):

    python bench/bench_graph.py [--sizes 300,6700,100000] [--skip-full] [--out bench/results/graph-<machine>.json]

Prints a table and Markdown tables for the README; --out writes every number plus machine facts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
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
REPLACED_SECONDS = 300.0               # the replaced system: 5 minutes for its 307-node regulation
TARGETS = {"edges_300_seconds": 0.2, "insurance_edges_stage_seconds": 0.2}
RUNS = {300: 7, 6700: 3}               # timed runs per size (median); larger sizes: 1
SNAPSHOT_RUNS = 3


class Clock:
    """Wall and CPU seconds of a with-block (CPU: all threads of this process)."""

    def __enter__(self) -> "Clock":
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
    """Wraps indexer.edges._search to keep its last result (top-k scores and positions) and the
    seconds it took; match_questions itself is unchanged."""

    def __init__(self, edges_module):
        self.mod, self.real = edges_module, edges_module._search
        self.last = None
        self.seconds = 0.0

    def __call__(self, in_vecs, out_vecs, k, exact_limit):
        t0 = time.perf_counter()
        self.last = self.real(in_vecs, out_vecs, k, exact_limit)
        self.seconds = time.perf_counter() - t0
        self.k = k
        return self.last

    def __enter__(self) -> "SearchTap":
        self.mod._search = self
        return self

    def __exit__(self, *exc) -> None:
        self.mod._search = self.real


def _edge_keys(e) -> set[tuple[int, int]]:
    return set(zip(e.out_q.tolist(), e.in_q.tolist()))


def _candidates(scores: np.ndarray, pos: np.ndarray, in_owner: np.ndarray, out_owner: np.ndarray,
                params) -> list[set[int]]:
    """Per outgoing question, the incoming positions match_questions keeps before its caps: the
    first `top_k` hits of other passages with a score above the threshold."""
    out = []
    for row_s, row_p, owner in zip(scores, pos, out_owner):
        keep = [int(p) for s, p in zip(row_s, row_p) if p >= 0 and in_owner[p] != owner and s >= params.threshold]
        out.append(set(keep[:params.top_k]))
    return out


def _recall(approx: list[set[int]], exact: list[set[int]]) -> float | None:
    total = sum(len(e) for e in exact)
    return sum(len(a & e) for a, e in zip(approx, exact)) / total if total else None


def naive_match(d: dict, params) -> tuple[float, set[tuple[int, int]], int]:
    """What the replaced system did: a Python loop over every (outgoing question, incoming
    question of another passage) pair, one numpy dot product each, then the same selection as
    match_questions (top_k per question above the threshold, max_per_passage, n·log n)."""
    from indexer.edges import total_cap
    out_vecs, in_vecs, in_owner, in_ids = d["out_vecs"], d["in_vecs"], d["in_owner"], d["in_ids"]
    t0 = time.perf_counter()
    cand = []
    pairs = 0
    for oi in range(len(out_vecs)):
        a, owner = out_vecs[oi], d["out_owner"][oi]
        hits = []
        for ii in range(len(in_vecs)):
            if in_owner[ii] == owner:
                continue
            s = float(np.dot(a, in_vecs[ii]))
            pairs += 1
            if s >= params.threshold:
                hits.append((s, ii))
        hits.sort(key=lambda h: -h[0])
        cand += [(int(owner), int(in_owner[ii]), int(d["out_ids"][oi]), int(in_ids[ii]), s)
                 for s, ii in hits[:params.top_k]]
    per_source: dict[int, list] = {}
    for c in cand:
        per_source.setdefault(c[0], []).append(c)
    kept = [c for cs in per_source.values() for c in sorted(cs, key=lambda c: -c[4])[:params.max_per_passage]]
    kept.sort(key=lambda c: -c[4])
    kept = kept[:total_cap(len(set(d["out_owner"].tolist()) | set(in_owner.tolist())))]
    seconds = time.perf_counter() - t0
    return seconds, {(c[2], c[3]) for c in kept}, pairs


def edges_worker(n: int, runs: int, sample: int, naive: bool) -> dict:
    """One size, in its own process (so that peak memory belongs to this size alone)."""
    import faiss
    import indexer.edges as E
    from indexer.edges import EdgeParams, match_questions, total_cap

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
    walls, cpus, search_s = [], [], []
    peak_kb = None
    for r in range(runs):
        with SearchTap(E) as tap, Clock() as c:
            edges = match_questions(*args, params)
        walls.append(c.wall)
        cpus.append(c.cpu)
        search_s.append(tap.seconds)
        if r == 0:
            peak_kb = (_status_kb()["VmHWM"] - before["VmRSS"]) if reset else \
                (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - ru_before)
            scores, pos = tap.last
    res = {"passages": n, "incoming": len(d["in_ids"]), "outgoing": len(d["out_ids"]), "dim": DIM,
           "input_mib": round((d["in_vecs"].nbytes + d["out_vecs"].nbytes) / 2**20, 1),
           "generate_seconds": round(gen.wall, 2), "search": "exact (IndexFlatIP)" if exact else "IVF (IndexIVFFlat)",
           "runs": runs, "seconds": walls, "seconds_median": statistics.median(walls),
           "cpu_seconds_median": statistics.median(cpus), "search_seconds_median": statistics.median(search_s),
           "peak_mib": round(peak_kb / 1024, 1), "peak_method": "VmHWM reset via clear_refs" if reset else
           "ru_maxrss delta (lower bound)", "rss_before_mib": round(before["VmRSS"] / 1024, 1),
           "edges": len(edges), "edge_cap": total_cap(n), "k_searched": int(scores.shape[1]),
           "mean_edge_score": float(edges.score.mean()) if len(edges) else None,
           "faiss_threads": faiss.omp_get_max_threads()}
    rng = np.random.default_rng(1)
    if exact:
        # the approximate path on the same data: match_questions with exact_limit=0 forces IVF
        ivf_params = EdgeParams(exact_limit=0)
        with SearchTap(E) as tap, Clock() as c:
            ivf_edges = match_questions(*args, ivf_params)
        a_scores, a_pos = tap.last
        ex_top = [set(r.tolist()) for r in pos]
        ivf_top = [set(r[r >= 0].tolist()) for r in a_pos]
        res["ivf"] = {
            "seconds": c.wall, "edges": len(ivf_edges),
            "search_recall_at_k": sum(len(a & e) for a, e in zip(ivf_top, ex_top)) / sum(map(len, ex_top)),
            "candidate_edge_recall": _recall(_candidates(a_scores, a_pos, d["in_owner"], d["out_owner"], params),
                                             _candidates(scores, pos, d["in_owner"], d["out_owner"], params)),
            "final_edge_recall": len(_edge_keys(ivf_edges) & _edge_keys(edges)) / max(1, len(edges)),
            "sample": "all outgoing questions", "reference": "exact IndexFlatIP, same run"}
    else:
        # the path used is IVF: compare a sample of outgoing questions against brute-force numpy
        rows = np.sort(rng.choice(len(d["out_ids"]), size=min(sample, len(d["out_ids"])), replace=False))
        k = scores.shape[1]
        with Clock() as c:
            ex_pos = np.empty((len(rows), k), np.int64)
            ex_scores = np.empty((len(rows), k), np.float32)
            for i in range(0, len(rows), 200):
                sims = d["in_vecs"] @ d["out_vecs"][rows[i:i + 200]].T           # (incoming, batch)
                top = np.argpartition(-sims, k - 1, axis=0)[:k].T
                top_s = np.take_along_axis(sims.T, top, axis=1)
                order = np.argsort(-top_s, axis=1)
                ex_pos[i:i + 200] = np.take_along_axis(top, order, axis=1)
                ex_scores[i:i + 200] = np.take_along_axis(top_s, order, axis=1)
        ex_top = [set(r.tolist()) for r in ex_pos]
        ivf_top = [set(r[r >= 0].tolist()) for r in pos[rows]]
        owner = d["out_owner"][rows]
        res["ivf"] = {
            "seconds": res["seconds_median"],
            "search_recall_at_k": sum(len(a & e) for a, e in zip(ivf_top, ex_top)) / sum(map(len, ex_top)),
            "candidate_edge_recall": _recall(_candidates(scores[rows], pos[rows], d["in_owner"], owner, params),
                                             _candidates(ex_scores, ex_pos, d["in_owner"], owner, params)),
            "final_edge_recall": None, "sample": f"{len(rows)} random outgoing questions",
            "reference": "brute-force numpy inner products", "reference_seconds": round(c.wall, 2)}
    if naive:
        seconds, naive_keys, pairs = naive_match(d, params)
        ours = _edge_keys(edges)
        res["naive"] = {"seconds": seconds, "pairs": pairs, "edges": len(naive_keys),
                        "agreement": len(naive_keys & ours) / max(1, len(naive_keys | ours)),
                        "ratio": seconds / res["seconds_median"]}
    return res


def bench_edges(sizes: list[int], sample: int) -> list[dict]:
    out = []
    for n in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--edges-worker", str(n),
               "--runs", str(RUNS.get(n, 1)), "--sample", str(sample)] + (["--naive"] if n <= 1000 else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"edge worker for {n} passages failed:\n{proc.stderr[-4000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["process_seconds"] = round(time.perf_counter() - t0, 1)
        res["loadavg_after"] = os.getloadavg()
        print(f"  edges {n:>7} passages: {res['seconds_median']:.3f} s, peak {res['peak_mib']} MiB, "
              f"{res['edges']} edges, IVF recall {res['ivf']['candidate_edge_recall']}", file=sys.stderr)
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
    """Times indexer.index.match_questions inside a build (the rest of the `edges` stage is
    citation resolution and the SQL insert of the edge rows)."""

    def __init__(self):
        import indexer.index as I
        self.mod, self.real, self.calls = I, I.match_questions, []

    def __call__(self, *a, **kw):
        t0 = time.perf_counter()
        out = self.real(*a, **kw)
        self.calls.append({"seconds": time.perf_counter() - t0, "outgoing": len(a[0]), "incoming": len(a[3]),
                           "edges": len(out)})
        return out

    def __enter__(self) -> "MatchTap":
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


def bench_full(tmp: Path, embedder: str, fake, laws: list[str] | None) -> dict:
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
        snap = idx.snapshots.get(generation)
        files = {name: (snap.path / name).stat().st_size for name in sorted(os.listdir(snap.path))}
    real_ivf = ivf_on_real_vectors(settings)
    load, rebuild = [], []
    counts = None
    for _ in range(SNAPSHOT_RUNS):      # interleaved, each in a fresh Index: nothing held in memory
        with Index(settings=settings) as idx:       # the clock starts after opening the database
            with Clock() as c:
                derived = idx._load_derived()
        assert not idx.repairs, idx.repairs            # loaded, not repaired
        load.append(c)
        loaded = {k: len(v) for k, v in derived.sets.items()} | {"edges": len(derived.edges)}
        del derived
        gc.collect()
        with Index(settings=settings) as idx:
            fp_now, generation_now = idx.fingerprint, idx.generation
            with Clock() as c:
                derived = idx._rebuild_derived(fp_now, generation_now)
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


def ivf_on_real_vectors(settings) -> dict:
    """The built index's own question vectors: match_questions exact (what the build ran) vs. the
    IVF path forced with exact_limit=0, same parameters otherwise; time and edge recall."""
    import dataclasses

    import indexer.edges as E
    from sqlalchemy import select
    from storage.models import PseudoQueryRow
    from indexer.index import Index
    with Index(settings=settings) as idx:
        derived = idx._load_derived()
        params = idx.edge_params
        with idx.db.session() as s:
            owner = dict(s.execute(select(PseudoQueryRow.id, PseudoQueryRow.passage_id)).all())
    o_ids, o_vecs = derived.sets["questions_out"].index.vectors()
    i_ids, i_vecs = derived.sets["questions_in"].index.vectors()
    o_own = np.array([owner[int(i)] for i in o_ids], np.int64)
    i_own = np.array([owner[int(i)] for i in i_ids], np.int64)
    args = (o_ids, o_own, o_vecs, i_ids, i_own, i_vecs)
    runs = {}
    for name, p in (("exact", dataclasses.replace(params, exact_limit=10**12)),
                    ("ivf", dataclasses.replace(params, exact_limit=0))):
        with SearchTap(E) as tap, Clock() as c:
            edges = E.match_questions(*args, p)
        runs[name] = (c.wall, edges, tap.last)
    (ex_s, ex_e, (sc, pos)), (iv_s, iv_e, (a_sc, a_pos)) = runs["exact"], runs["ivf"]
    return {"incoming": len(i_ids), "outgoing": len(o_ids), "exact_seconds": ex_s, "ivf_seconds": iv_s,
            "exact_edges": len(ex_e), "ivf_edges": len(iv_e),
            "candidate_edge_recall": _recall(_candidates(a_sc, a_pos, i_own, o_own, params),
                                             _candidates(sc, pos, i_own, o_own, params)),
            "final_edge_recall": len(_edge_keys(iv_e) & _edge_keys(ex_e)) / max(1, len(ex_e))}


# ------------------------------------------------------------------ report
def _mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def tables(r: dict) -> tuple[str, str]:
    """(plain text, Markdown): one table per size for edge matching, one for the rest."""
    head = ("passages", "questions in/out", "search", "match_questions", "peak memory", "edges", "IVF recall")
    size_rows = []
    for e in r["edges"]:
        ivf = e["ivf"]
        rec = f"{ivf['candidate_edge_recall']:.3f} ({'sample' if ivf['final_edge_recall'] is None else 'all'})"
        timing = f"{e['seconds_median']:.3f} s" + (f" (median of {e['runs']})" if e["runs"] > 1 else " (1 run)")
        size_rows.append((f"{e['passages']:,}", f"{e['incoming']:,} / {e['outgoing']:,}", e["search"].split(" ")[0],
                          timing, f"{e['peak_mib']:.0f} MiB", f"{e['edges']:,}", rec))
    rows = []
    small = next((e for e in r["edges"] if e["passages"] == 300), None)
    if small:
        rows.append(("300 passages vs the replaced system (300 s)", f"{REPLACED_SECONDS / small['seconds_median']:,.0f}x",
                     f"{small['seconds_median']:.3f} s; target < {TARGETS['edges_300_seconds']} s"))
        if "naive" in small:
            nv = small["naive"]
            rows.append(("300 passages, naive Python pair loop", f"{nv['seconds']:.1f} s",
                         f"{nv['pairs']:,} dot products; ours is {nv['ratio']:,.0f}x faster; same edges: "
                         f"{nv['agreement']:.3f} (Jaccard)"))
    for e in r["edges"]:
        if e["ivf"]["final_edge_recall"] is not None:
            rows.append((f"{e['passages']:,} passages, IVF forced (exact_limit=0)", f"{e['ivf']['seconds']:.3f} s",
                         f"search recall@{e['k_searched']} {e['ivf']['search_recall_at_k']:.3f}, "
                         f"final edges recall {e['ivf']['final_edge_recall']:.3f}"))
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
            rows.append(("its question vectors, IVF forced vs exact", f"{ri['ivf_seconds']:.2f} s",
                         f"exact {ri['exact_seconds']:.2f} s; edge recall {ri['candidate_edge_recall']:.3f} before caps, "
                         f"{ri['final_edge_recall']:.3f} final"))
        rows.append(("snapshot size", _mib(full["snapshot_bytes"]),
                     f"database {_mib(full['database_bytes'])}; edges "
                     + ", ".join(f"{k} {v}" for k, v in full["edges"].items())))
        rows.append(("load snapshot (`_load_derived`)", f"{full['load_seconds_median']:.2f} s",
                     f"median of {full['runs']}, checksums verified"))
        rows.append(("rebuild from database (`_rebuild_derived`)", f"{full['rebuild_seconds_median']:.2f} s",
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
    ap.add_argument("--out", type=Path, help="write all numbers as JSON here")
    ap.add_argument("--edges-worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.edges_worker:
        print(json.dumps(edges_worker(args.edges_worker, args.runs, args.sample, args.naive)))
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
                    "embedder": args.embedder, "targets": TARGETS, "replaced_system_seconds": REPLACED_SECONDS,
                    "synthetic": {"dim": DIM, "incoming_per_passage": N_IN, "outgoing_per_passage": N_OUT,
                                  "noise_norm": 0.7, "passages_per_law": 220,
                                  "outgoing_targets": "60% same law, 15% any passage, 25% unanswered"}}
    from indexer.edges import EdgeParams
    from dataclasses import asdict
    result["edge_params"] = asdict(EdgeParams())
    with Clock() as total:
        result["edges"] = bench_edges(sizes, args.sample)
        if not (args.skip_insurance and args.skip_full):
            with tempfile.TemporaryDirectory(prefix="bench-graph-") as t, FakeOpenAI() as fake:
                fake.responder = legal_questions_4_6
                tmp = Path(t)
                if not args.skip_insurance:
                    result["insurance"] = bench_insurance(tmp, args.embedder, fake)
                    result["insurance"]["loadavg_after"] = os.getloadavg()
                    print(f"  保險法 build: stages {result['insurance']['stages']}", file=sys.stderr)
                if not args.skip_full:
                    result["full"] = bench_full(tmp, args.embedder, fake, laws)
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
