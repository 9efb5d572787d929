"""Readers in other threads and processes query while builds commit: every answer comes whole
from one committed generation, and none fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from indexer.index import Index

from .conftest import LAWS_2024, requires_data

pytestmark = requires_data
QUERY = "公務員於執行職務行使公權力時，因故意或過失不法侵害人民自由或權利者，國家應負損害賠償責任"
NEW_LAW = "國家賠償法"

READER = textwrap.dedent("""
    import json, sys, time
    from indexer.index import Index
    home, query, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    end = time.monotonic() + seconds
    with Index(home, create=False) as idx:
        while time.monotonic() < end:
            try:
                hits = idx.search(query, k=3)
                print(json.dumps({"generation": hits[0].generation, "gens": sorted({h.generation for h in hits}),
                                  "laws": [h.law for h in hits]}), flush=True)
            except Exception as exc:
                print(json.dumps({"error": repr(exc)}), flush=True)
""")


def _lib(root, name, pcodes):
    folder = root / name
    folder.mkdir()
    for p in pcodes:
        shutil.copy(LAWS_2024 / f"{p}.json", folder)
    return folder


@pytest.mark.sqlite_only  # the index is its home folder here: readers in subprocesses
def test_readers_never_see_a_half_built_generation(tmp_path):
    base = ["N0030001", "N0030002", "A0030210"]
    v1 = _lib(tmp_path, "v1", base)
    v2 = _lib(tmp_path, "v2", base + ["I0020004"])
    home = tmp_path / "home"
    with Index(home) as idx:
        idx.build(v1, embedder="use-multilingual")
    seconds = 25.0
    procs = [subprocess.Popen([sys.executable, "-c", READER, str(home), QUERY, str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    records, stop = [], threading.Event()

    def thread_reader():
        with Index(home, create=False) as idx:
            while not stop.is_set():
                try:
                    hits = idx.search(QUERY, k=3)
                    records.append({"generation": hits[0].generation, "gens": sorted({h.generation for h in hits}),
                                    "laws": [h.law for h in hits]})
                except Exception as exc:  # the test counts every failure
                    records.append({"error": repr(exc)})
    threads = [threading.Thread(target=thread_reader) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(2)
    with Index(home) as writer:            # add the law, remove it, add it again: generations 2, 3, 4
        for lib in (v2, v1, v2):
            writer.build(lib)
            time.sleep(1.5)
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join()
    for p in procs:
        out, err = p.communicate(timeout=120)
        # a reader that crashed (or logged an error) has not proven anything: it must exit clean
        assert p.returncode == 0, f"reader process exited {p.returncode}: {err[-2000:]}"
        assert "Traceback" not in err and "ERROR" not in err, err[-2000:]
        records += [json.loads(line) for line in out.splitlines() if line.strip()]

    errors = [r for r in records if "error" in r]
    assert errors == []
    assert all(len(r["gens"]) == 1 for r in records)                 # one generation per answer
    has_law = {g: NEW_LAW in laws for g, laws in ((r["generation"], r["laws"]) for r in records)}
    seen = {r["generation"] for r in records}
    assert {1, 4} <= seen and len(records) > 50
    for r in records:                                                # contents match the generation
        assert (NEW_LAW in r["laws"]) == (r["generation"] in (2, 4)), r
    assert has_law.get(4) is True
