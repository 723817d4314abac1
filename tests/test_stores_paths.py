"""File names the stores derive from user input (serials, keys) never make a write fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from litmus_seq.stores.paths import MAX_NAME, SealTmp, run_file_name, safe_name, stale_tmp_files


def test_safe_name_keeps_ordinary_serials() -> None:
    assert safe_name("SN-001_a.b") == "SN-001_a.b"
    assert safe_name("SN 42/A") == "SN_42_A"
    assert safe_name("") == "_"


@pytest.mark.parametrize("serial", ["A" * 300, "x/" * 200, "Ünïcødé-" * 40, "\udcff" * 100])
def test_long_or_hostile_serials_are_cut_and_hashed(serial: str, tmp_path: Path) -> None:
    name = safe_name(serial)
    assert len(name) == MAX_NAME and all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    # the file system takes it, as a run file and as its temporary file
    date, stem = run_file_name(1_700_000_000_000_000, serial)
    tmp = SealTmp(tmp_path, stem)
    tmp.release(remove=False)
    (tmp_path / f"{stem}_99.parquet").write_bytes(b"")
    assert stem.endswith(name) and date == "2023-11-14"


def test_long_serials_sharing_a_beginning_get_different_names() -> None:
    assert safe_name("A" * 100 + "1") != safe_name("A" * 100 + "2")
    assert safe_name("A" * 100 + "1") == safe_name("A" * 100 + "1")


def test_run_file_name_without_a_serial() -> None:
    assert run_file_name(0, None) == ("1970-01-01", "19700101T000000.000000Z")
    assert run_file_name(0, "") == ("1970-01-01", "19700101T000000.000000Z")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_tmp_files_are_those_of_dead_writers(tmp_path: Path) -> None:
    day = tmp_path / "2026-01-01"
    day.mkdir()
    dead = day / f".20260101T000000.000000Z_SN1.{_dead_pid()}.parquet.tmp"
    dead.write_bytes(b"PAR1 half a file")
    live = SealTmp(day, "20260101T000000.000000Z_SN2")  # this process, lock held
    assert stale_tmp_files(tmp_path) == [dead]
    live.release(remove=True)
    assert not live.path.exists()


def test_a_locked_tmp_file_is_never_stale_even_if_its_pid_is_gone(tmp_path: Path) -> None:
    import fcntl

    day = tmp_path / "2026-01-01"
    day.mkdir()
    path = day / f".20260101T000000.000000Z.{_dead_pid()}.parquet.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code = ("import sys; from pathlib import Path; from litmus_seq.stores.paths import stale_tmp_files; "
                f"sys.exit(len(stale_tmp_files(Path({str(tmp_path)!r}))))")
        assert subprocess.run([sys.executable, "-c", code]).returncode == 0  # another process asks
    finally:
        os.close(fd)
    assert stale_tmp_files(tmp_path) == [path]


def test_a_run_with_a_hostile_serial_seals(tmp_path: Path) -> None:
    """End to end: ``litmus-seq run --dut`` with a serial too long for a file name and full of
    characters file systems refuse; the file seals, its name is cut, the column keeps it all."""
    import shutil

    import duckdb

    project = tmp_path / "proj"
    shutil.copytree(Path(__file__).parent / "data" / "run" / "project", project,
                    ignore=shutil.ignore_patterns("__pycache__"))
    serial = "SN/..\\:*?<>|\"' " + "é" * 40 + "x" * 300
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}
    proc = subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", "sequences/pass.yaml",
                           "--dut", serial, "--yes", "--mock", "psu", "--data-dir", str(tmp_path / "data")],
                          cwd=project, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = (tmp_path / "data" / "runs").glob("*/*.parquet")
    assert path.name.endswith(f"_{safe_name(serial)}.parquet") and len(path.name) < 120
    got = duckdb.sql(f"SELECT DISTINCT dut_serial, run_outcome FROM read_parquet('{path.as_posix()}')").fetchall()
    assert got == [(serial, "passed")]
