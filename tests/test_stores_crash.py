"""Crash safety of the stores, end to end: ``litmus-seq run`` killed with SIGKILL at random moments.

Each kill is a real ``litmus-seq run`` subprocess of ``tests/data/crash/project`` killed with
SIGKILL; then ``litmus-seq recover`` runs twice and the data folder is checked with DuckDB against
the event store the dead process left:

* every step whose ``test.step_ended`` event was written is in the run file with that outcome;
* every measurement event written is a measurement row;
* a run whose ``run.ended`` was written keeps its real outcome; any other run is ``aborted``;
* each run is in exactly one file, no ``.parquet.tmp`` is left, and the second ``recover``
  changes nothing.

Two sequences of the same shape: ``small`` (16 kills: 3 at random moments from the process start,
start-up included, 13 at random moments after ``run.started`` reached the event store) and ``big``
(100,006 measurements, most from a ``python:`` step over a 500-point sweep: 3 kills while its
parquet seal is being written (up to 5 tries: on a busy machine a kill may come too late), 1 at a
random moment of the run). The kills during the seal prove
the order of the seal: ``run.ended`` must already be in the event store then. The moments come
from a seeded generator (``LITMUS_CRASH_SEED`` picks another sequence of them).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from litmus_seq.cli.main import main
from litmus_seq.stores.events import iter_event_files, read_events

PROJECT = Path(__file__).resolve().parent / "data" / "crash" / "project"
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]
SEED = int(os.environ.get("LITMUS_CRASH_SEED", "20261205"))
BIG_MEASUREMENTS = 1 + 3 + 500 * 200 + 1 + 1  # rail, levels, curve, low_rail, tail/again: 100,006


def _start(project: Path, sequence: str, data: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}
    return subprocess.Popen([*CLI, "run", f"sequences/{sequence}.yaml", "--dut", "SN-CRASH", "--data-dir", str(data)],
                            cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _poll(proc: subprocess.Popen[bytes], found: Any, timeout: float = 60) -> float | None:
    """Wait until ``found()`` (returns the monotonic time) or the process ended (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return time.monotonic()
        if proc.poll() is not None:
            return None
        time.sleep(0.002)
    proc.kill()
    pytest.fail("the run neither reached the awaited point nor ended")


def _first_event(data: Path) -> Any:
    return lambda: any(data.glob("events/*/*.arrow"))


def _run_started(data: Path) -> Any:
    def found() -> bool:
        try:
            return any(e["event_type"] == "run.started" for e in _events(data))
        except Exception:  # caught mid-write: look again
            return False

    return found


def _sealing(data: Path) -> Any:
    return lambda: any(data.glob("runs/*/.*.parquet.tmp"))


def _kill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL; True if the process was still running (the kill cut it short)."""
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()  # type: ignore[union-attr]
    return alive


def _events(data: Path) -> list[dict[str, Any]]:
    return [e for path in iter_event_files(data) for e in read_events(path)]


def _rows(data: Path, run_id: str) -> list[dict[str, Any]]:
    glob = (data / "runs" / "**" / "*.parquet").as_posix()
    sql = (f"SELECT record_type, step_path, step_outcome, run_outcome, filename FROM read_parquet('{glob}', "
           f"union_by_name = true, filename = true) WHERE run_id = ?")
    cur = duckdb.connect().execute(sql, [run_id])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _snapshot(data: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted((data / "runs").glob("**/*")) if p.is_file()}


def _recover_and_check(data: Path, what: str, capsys: pytest.CaptureFixture[str],
                       events: list[dict[str, Any]]) -> dict[str, Any]:
    """Recover twice and check the data folder against the events; returns what was found."""
    started = [e for e in events if e["event_type"] == "run.started"]
    code = main(["recover", "--data-dir", str(data)])
    capsys.readouterr()
    if not any(iter_event_files(data)):
        assert code == 4, what  # killed before the event store opened: nothing to recover from
        return {"run": False}
    assert code == 0, what
    assert not list(data.glob("runs/*/.*.parquet.tmp")), f"{what}: a temporary file survived recover"
    if not started:
        assert not list(data.glob("runs/*/*.parquet")), what
        return {"run": False}
    (run,) = started
    rows = _rows(data, run["run_id"])
    files = {r["filename"] for r in rows}
    assert len(files) == 1, f"{what}: run {run['run_id']} is in {len(files)} files"
    (run_row,) = [r for r in rows if r["record_type"] == "run"]
    ended = [e for e in events if e["event_type"] == "run.ended"]
    expected = ended[0]["outcome"] if ended else "aborted"
    assert run_row["run_outcome"] == expected, f"{what}: run.ended said {expected!r}"

    step_rows: dict[str, set[Any]] = {}
    for r in rows:
        if r["record_type"] == "step":
            step_rows.setdefault(r["step_path"], set()).add(r["step_outcome"])
    for e in events:
        if e["event_type"] == "test.step_ended":
            assert step_rows.get(e["step_path"]) == {e["outcome"]}, f"{what}: step {e['step_path']}"
    measured = sum(e["event_type"] == "test.measurement" for e in events)
    assert sum(r["record_type"] == "measurement" for r in rows) == measured, what

    before = _snapshot(data)
    assert main(["recover", "--data-dir", str(data)]) == 0, what
    assert "nothing to recover" in capsys.readouterr().out, what
    assert _snapshot(data) == before, f"{what}: the second recover changed the data folder"
    return {"run": True, "ended": bool(ended), "outcome": run_row["run_outcome"], "measured": measured}


def _calibrate(project: Path, data: Path) -> tuple[float, float]:
    """An uninterrupted small run: seconds from its start, and from its ``run.started`` on disk,
    to its end."""
    t0 = time.monotonic()
    proc = _start(project, "small", data)
    started = _poll(proc, _run_started(data))
    assert started is not None
    assert proc.wait(timeout=60) == 1  # the sequence fails (low_rail) on purpose
    proc.stderr.close()  # type: ignore[union-attr]
    end = time.monotonic()
    return end - t0, end - started


def test_sigkill_at_random_moments_then_recover(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    rng = random.Random(SEED)
    found: list[dict[str, Any]] = []

    whole, span = _calibrate(project, tmp_path / "calibrate")
    for i in range(16):
        data = tmp_path / f"small_{i}"
        proc = _start(project, "small", data)
        if i < 3:
            time.sleep(rng.uniform(0, whole))
        elif _poll(proc, _run_started(data)) is not None:
            time.sleep(rng.uniform(0, span))
        _kill(proc)
        found.append(_recover_and_check(data, f"small kill {i} (seed {SEED})", capsys, _events(data)))

    in_seal, to_seal, attempts = 0, [], 0
    while in_seal < 3 and attempts < 5:  # a kill meant for the seal may come too late on a busy machine
        attempts += 1
        data = tmp_path / f"big_seal_{attempts}"
        what = f"big kill {attempts} during the seal (seed {SEED})"
        proc = _start(project, "big", data)
        first = _poll(proc, _first_event(data))
        reached = _poll(proc, _sealing(data))
        if first is not None and reached is not None:
            to_seal.append(reached - first)
        time.sleep(rng.uniform(0, 0.03))
        cut = _kill(proc)
        events = _events(data)
        if reached is not None and cut and not any(data.glob("runs/*/*.parquet")):
            in_seal += 1
            assert any(e["event_type"] == "run.ended" for e in events), \
                f"{what}: killed during the seal, but run.ended is not in the event store"
        result = _recover_and_check(data, what, capsys, events)
        if result["run"] and result["ended"]:
            assert result["outcome"] == "failed" and result["measured"] == BIG_MEASUREMENTS, what
        found.append(result)

    data = tmp_path / "big_random"
    proc = _start(project, "big", data)
    _poll(proc, _first_event(data))
    time.sleep(rng.uniform(0, max(to_seal, default=1.0)))
    _kill(proc)
    found.append(_recover_and_check(data, f"big kill at random (seed {SEED})", capsys, _events(data)))

    assert len(found) >= 20
    assert in_seal >= 2, f"only {in_seal} kill(s) landed during the seal of the big run (seed {SEED})"
    assert sum(r["run"] for r in found) >= 14, f"most kills should cut a run short (seed {SEED})"
    assert any(r["run"] and not r["ended"] for r in found)  # some runs were sealed 'aborted'
