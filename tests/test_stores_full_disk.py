"""A full disk or an unwritable data folder, end to end (real ``litmus-seq run`` subprocesses).

The rule (issue 9): one line naming the path and what was being written, the run sealed
``errored`` wherever anything can still be written, exit 3 (not 4: something ran), and nothing
half-written that a reader would take as valid. The full disk is a real small file system (a
tmpfs of a few hundred kB, mounted for the test) where the machine allows mounting, and otherwise
a file-size limit (``RLIMIT_FSIZE``) on the run's process, which makes writes fail the same way.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from litmus_seq.cli.main import main
from litmus_seq.stores.events import iter_event_files, read_events

PROJECT = Path(__file__).resolve().parent / "data" / "crash" / "project"
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[int], Path | None]]:
    """``make(kib)``: a fresh tmpfs of that size, or None where mounting is not allowed."""
    mounted: list[Path] = []

    def make(kib: int) -> Path | None:
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(where)],
                                  capture_output=True, timeout=30)
        except OSError:
            return None
        if done.returncode != 0:
            return None
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def _run(project: Path, sequence: str, data: Path, *, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}
    return subprocess.run([*CLI, "run", f"sequences/{sequence}.yaml", "--dut", "SN-FULL", "--data-dir", str(data)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, preexec_fn=limit)


def _the_line(proc: subprocess.CompletedProcess[str], path: Path, what: str) -> str:
    """The line that names ``path`` and what was being written (the run's cause, or the error
    the CLI ends with)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if str(path) in line and what in line]
    assert lines, proc.stdout + proc.stderr
    return lines[-1]


def _run_rows(data: Path) -> list[dict[str, Any]]:
    if not list(data.glob("runs/**/*.parquet")):
        return []
    glob = (data / "runs" / "**" / "*.parquet").as_posix()
    cur = duckdb.connect().execute(f"SELECT run_id, run_outcome, run_error FROM read_parquet('{glob}', "
                                   "union_by_name = true) WHERE record_type = 'run'")
    return [dict(zip(("run_id", "run_outcome", "run_error"), row)) for row in cur.fetchall()]


def _events(data: Path) -> list[dict[str, Any]]:
    return [e for path in iter_event_files(data) for e in read_events(path)]


def _nothing_half_written(data: Path) -> None:
    """No temporary file left; every run file there is complete (DuckDB reads it); every event
    file reads up to its last complete batch."""
    assert not [p for p in data.rglob("*") if p.name.endswith(".tmp")]
    for path in data.glob("runs/**/*.parquet"):
        duckdb.sql(f"SELECT count(*) FROM read_parquet('{path.as_posix()}')").fetchall()
    _events(data)


def test_a_disk_that_fills_up_during_a_run(project: Path, small_fs: Callable[[int], Path | None],
                                           tmp_path: Path) -> None:
    fs = small_fs(600)
    data = (fs or tmp_path) / "data"
    proc = _run(project, "big", data, max_file_bytes=None if fs else 300 * 1024)  # the run file is ~420 kB
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = _the_line(proc, data, "cannot write the")
    assert "No space left on device" in line or "File too large" in line, line
    _nothing_half_written(data)
    assert _run_rows(data) == []  # nothing could be sealed, and nothing pretends to be

    if fs is not None:  # free space, then recover seals what the events hold
        subprocess.run(["mount", "-o", "remount,size=50m", str(fs)], check=True, timeout=30)
    assert main(["recover", "--data-dir", str(data)]) == 0
    ((run,),) = [_run_rows(data)]
    assert run["run_outcome"] in ("aborted", "errored")  # never the sequence's own verdict
    assert main(["recover", "--data-dir", str(data)]) == 0


def test_an_event_folder_that_cannot_be_written(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "events").write_text("a file where the event folder should be")
    proc = _run(project, "small", data)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    _the_line(proc, data / "events", "cannot write the event store")
    ((run,),) = [_run_rows(data)]  # the run file could be written: sealed errored, with the cause
    assert run["run_outcome"] == "errored" and str(data / "events") in run["run_error"]
    _nothing_half_written(data)


def test_a_run_folder_that_cannot_be_written(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "runs").write_text("a file where the run folder should be")
    proc = _run(project, "small", data)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = _the_line(proc, data / "runs", "cannot write the run file")
    assert proc.stderr.strip().splitlines()[-1] == line  # the CLI's one-line error, exit 3
    _nothing_half_written(data)
    (ended,) = [e for e in _events(data) if e["event_type"] == "run.ended"]
    assert ended["outcome"] == "failed"  # the sequence's real verdict is in the event store

    (data / "runs").unlink()
    assert main(["recover", "--data-dir", str(data)]) == 0
    ((run,),) = [_run_rows(data)]
    assert run["run_outcome"] == "failed" and run["run_id"] == ended["run_id"]


def test_a_read_only_data_folder(project: Path, small_fs: Callable[[int], Path | None], tmp_path: Path) -> None:
    fs = small_fs(1024)
    if fs is not None:
        data = fs / "data"
        data.mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True, timeout=30)
    else:  # no mounting here: neither store has a folder it can write into
        data = tmp_path / "data"
        data.mkdir()
        (data / "events").write_text("")
        (data / "runs").write_text("")
    proc = _run(project, "small", data)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    _the_line(proc, data, "cannot write the")
    assert not list(data.glob("runs/**/*.parquet"))
