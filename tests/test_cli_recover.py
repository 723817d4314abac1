"""``litmus-seq recover``: runs cut short get their file, sealed ``aborted``; twice is harmless."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from litmus_seq.cli.main import main
from litmus_seq.stores.events import EventStore
from litmus_seq.stores.materializer import RunMaterializer
from test_stores_stream import make_bus, run_events, start_session

TESTS = Path(__file__).resolve().parent


def _outcomes(path: Path) -> dict[str, object]:
    t = pq.read_table(path).to_pylist()
    run = next(r for r in t if r["record_type"] == "run")
    steps = {r["step_path"]: r["step_outcome"] for r in t if r["record_type"] == "step"}
    return {"run": run["run_outcome"], "run_id": run["run_id"], **steps}


def test_recover_seals_crashed_run_and_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = EventStore(tmp_path)
    live = RunMaterializer(tmp_path)
    bus, _ = make_bus(store, live)
    start_session(bus)
    run_events(bus, run_id="r-done")  # finished: written live
    run_events(bus, run_id="r-crash", crash_after="soak_started")
    store.close()  # the lock goes, as it does when a process dies
    assert len(live.written) == 1

    assert main(["recover", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "recovered" in out and "1 run file written" in out
    files = sorted((tmp_path / "runs").glob("*/*.parquet"))
    assert len(files) == 2
    recovered = next(f for f in files if f != live.written[0])
    got = _outcomes(recovered)
    assert got["run_id"] == "r-crash" and got["run"] == "aborted"
    assert got["main/thermal/soak"] == "aborted" and got["main/never_ran"] is None

    assert main(["recover", "--data-dir", str(tmp_path)]) == 0
    assert "nothing to recover" in capsys.readouterr().out
    assert sorted((tmp_path / "runs").glob("*/*.parquet")) == files


def test_recover_skips_a_live_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = EventStore(tmp_path)
    bus, _ = make_bus(store)
    start_session(bus)
    run_events(bus, run_id="r-running", crash_after="soak_started")
    store.flush()
    try:
        assert main(["recover", "--data-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "skipped" in out and "still writing" in out
        assert not (tmp_path / "runs").exists()
    finally:
        store.close()


def test_recover_after_kill_9(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real process killed with SIGKILL mid-run: no end-of-stream, no close(), lock released."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(TESTS)!r})
        from pathlib import Path
        from litmus_seq.stores.events import EventStore
        from test_stores_stream import make_bus, run_events, start_session
        store = EventStore(Path({str(tmp_path)!r}), flush_interval_s=0.01)
        bus, _ = make_bus(store)
        start_session(bus)
        run_events(bus, run_id="r-killed", crash_after="soak_started")
        store.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert main(["recover", "--data-dir", str(tmp_path)]) == 0
    (path,) = (tmp_path / "runs").glob("*/*.parquet")
    got = _outcomes(path)
    assert got["run_id"] == "r-killed" and got["run"] == "aborted" and got["main/firmware"] == "failed"


def test_recover_without_events_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recover", "--data-dir", str(tmp_path)]) == 4
    assert "no event files" in capsys.readouterr().err
