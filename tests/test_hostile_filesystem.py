"""A library on a hostile filesystem: FIFOs and devices named like law files, symlink loops,
links out of the library. A build never hangs on them (each case runs in a subprocess with a
timeout: a hang is a failure), never prints a traceback, and never repeats where a link points."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from indexer.errors import LibraryError
from indexer.library import library_fingerprint, read_file, read_library

from .conftest import write_law

ARTICLES = {"1": "雇主應給付工資。", "2": "勞工延長工作時間者，雇主應加給工資。"}


def _hoprag(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "indexer", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def lib(tmp_path):
    folder = tmp_path / "lib"
    write_law(folder, "T0000001", "測試法", ARTICLES)
    return folder


def test_fifo_in_a_library_is_skipped_not_read(lib, tmp_path):
    os.mkfifo(lib / "x.json")
    r = _hoprag("build", lib, "-e", "use-multilingual", "--home", tmp_path / "h", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["added"] == 2
    assert any("x.json (not a regular file" in s for s in report["skipped_files"]), report["skipped_files"]
    assert "Traceback" not in r.stderr


def test_fifo_as_the_library_fails_with_its_name(tmp_path):
    fifo = tmp_path / "law.json"
    os.mkfifo(fifo)
    with pytest.raises(LibraryError, match="not a regular file"):
        read_file(fifo)                      # opened non-blocking: returns at once
    r = _hoprag("build", tmp_path / "law.json", "-e", "use-multilingual", "--home", tmp_path / "h", timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_device_linked_into_a_library_is_not_read(lib):
    (lib / "zero.json").symlink_to("/dev/zero")      # outside the library, endless if read
    library = read_library(lib)
    assert [d.doc_key for d in library.documents] == ["T0000001"]
    (reason,) = [s for s in library.skipped if "zero.json" in s]
    assert "a symlink out of the library" in reason and "/dev/zero" not in reason   # where it points is not said


def test_symlink_loops(lib, tmp_path):
    (lib / "a.json").symlink_to(lib / "b.json")
    (lib / "b.json").symlink_to(lib / "a.json")
    library = read_library(lib)
    assert sorted(s.rsplit("/", 1)[-1] for s in library.skipped if "loop" in s) == [
        "a.json (a symlink loop)", "b.json (a symlink loop)"]
    assert library_fingerprint(lib) is not None
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    r = _hoprag("build", loop, "-e", "use-multilingual", "--home", tmp_path / "h")
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_file_over_the_limit_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(3 * 2**20)               # sparse: 3 MB that cost nothing to make
    with pytest.raises(LibraryError, match="over the 1 MB limit"):
        read_file(big, max_mb=1)


# ------------------------------------------------------------------ files the CLI writes and reads
HEADER = {"format": "hoprag-pseudo-queries/1", "answers": 0, "failed": 0, "models": [], "prompt_versions": []}


def _answer(n: int, incoming: list[str], outgoing: list[str] | None = None) -> dict:
    return {"cache_key": f"{n:064x}", "model": "openai:x", "prompt_version": "v1", "incoming": incoming,
            "outgoing": outgoing or []}


@pytest.fixture
def home(tmp_path, lib):
    h = tmp_path / "home"
    r = _hoprag("build", lib, "--embedder", "use-multilingual", "--home", h)
    assert r.returncode == 0, r.stderr
    return h


def _char_device(path):
    os.mknod(path, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 7))   # what /dev/full is


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_questions_and_graph_export_never_replace_a_special_file(home, tmp_path):
    """As root, `questions export /dev/full` had made /dev/full a regular file: a device, FIFO,
    symlink or folder at the path is refused with one line and left as it was."""
    import stat as st
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    targets = {"fifo": tmp_path / "f", "link": tmp_path / "l", "dir": tmp_path / "d", "device": tmp_path / "full"}
    os.mkfifo(targets["fifo"])
    targets["link"].symlink_to(victim)
    targets["dir"].mkdir()
    _char_device(targets["device"])
    for name, path in targets.items():
        for cmd in (["questions", "export", path], ["graph", "export", "--out", path]):
            r = _hoprag(*cmd, "--home", home, timeout=60)
            assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr, (name, r)
            assert "not a regular file" in r.stderr, r.stderr
    assert st.S_ISFIFO(os.lstat(targets["fifo"]).st_mode) and st.S_ISCHR(os.lstat(targets["device"]).st_mode)
    assert targets["link"].is_symlink() and victim.read_text() == "keep me" and targets["dir"].is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]                  # no temp left behind


def test_export_temp_name_is_not_predictable(home, tmp_path):
    """The old temp name was .NAME.PID.tmp: a link planted there sent the export elsewhere."""
    from indexer.index import Index
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "q.jsonl"
    (tmp_path / f".q.jsonl.{os.getpid()}.tmp").symlink_to(victim)
    with Index(home) as idx:
        info = idx.export_questions(out)
    assert victim.read_text() == "keep me" and info["answers"] == 0
    assert json.loads(out.read_text().splitlines()[0])["format"] == "hoprag-pseudo-queries/1"
    assert oct(out.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("kind", ["fifo", "device", "dir"])
def test_questions_import_reads_regular_files_only(home, tmp_path, kind):
    """From a FIFO it hung holding the writer lock; /dev/zero ended in MemoryError."""
    src = tmp_path / "src"
    if kind == "fifo":
        os.mkfifo(src)
    elif kind == "device":
        src = "/dev/zero"
    else:
        src.mkdir()
    r = _hoprag("questions", "import", src, "--home", home, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "not a regular file" in r.stderr, r
    assert "Traceback" not in r.stderr
    assert _hoprag("questions", "export", tmp_path / "after.jsonl", "--home", home).returncode == 0   # no lock left


def test_questions_import_is_capped_and_filtered(home, tmp_path):
    big = tmp_path / "big.jsonl"
    with big.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(HEADER) + "\n")
        for i in range(3000):
            fh.write(json.dumps(_answer(i, [f"勞動基準法第{i}條規定什麼？" * 20])) + "\n")
    assert big.stat().st_size > 2**20
    r = subprocess.run([sys.executable, "-m", "indexer", "questions", "import", str(big), "--home", str(home)],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, HOPRAG_QUESTIONS_IMPORT_MAX_MB="1"))
    assert r.returncode == 1 and "over the 1 MB limit (HOPRAG_QUESTIONS_IMPORT_MAX_MB)" in r.stderr, r.stderr

    # 50 answers whose questions are 5,031 characters long (stored and embedded before), one good
    src = tmp_path / "q.jsonl"
    lines = [HEADER] + [_answer(i, ["雇主" * 2515 + "？"], ["勞工？" * 1677]) for i in range(50)]
    lines.append(_answer(99, ["雇主延長工作時間之工資如何計算？", "雇主" * 2515 + "？"], ["勞工請假的規定為何？"]))
    src.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    r = _hoprag("questions", "import", src, "--home", home, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["imported"], info["rejected"]) == (1, 50) and info["rejected_lines"][0].startswith("line 2:")
    out = tmp_path / "back.jsonl"
    assert _hoprag("questions", "export", out, "--home", home).returncode == 0
    (answer,) = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()[1:]]
    assert answer["incoming"] == ["雇主延長工作時間之工資如何計算？"] and answer["outgoing"] == ["勞工請假的規定為何？"]
