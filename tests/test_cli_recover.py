"""``litmus-seq recover``: runs cut short get their file, sealed ``aborted``; twice is harmless."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from litmus_seq import events as ev
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


def _crashed_sessions(data_dir: Path, n: int) -> list[str]:
    """``n`` sessions, each with one run cut short (its process gone), one event file each."""
    ids = []
    for i in range(n):
        store = EventStore(data_dir)
        bus, _ = make_bus(store, session_id=f"sess-{i}")
        start_session(bus)
        run_events(bus, run_id=f"r-{i}", crash_after="soak_started")
        store.close()
        ids.append(f"r-{i}")
    return ids


def _run_ids(data_dir: Path) -> list[str]:
    return sorted(pq.read_metadata(p).metadata[b"run_id"].decode() for p in (data_dir / "runs").glob("*/*.parquet"))


def test_two_recovers_at_once_write_each_run_once(tmp_path: Path) -> None:
    ids = _crashed_sessions(tmp_path, 6)
    cmd = [sys.executable, "-m", "litmus_seq.cli.main", "recover", "--data-dir", str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], results
    assert _run_ids(tmp_path) == ids
    assert sorted(out.count("recovered ") for _, out, _ in results) == [0, 6]


def test_recover_removes_the_tmp_files_of_writes_cut_short(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (rid,) = _crashed_sessions(tmp_path, 1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    day = tmp_path / "runs" / "2026-01-01"
    day.mkdir(parents=True)
    stale = day / f".20260101T000000.000000Z_SN_42_A.{dead.pid}.parquet.tmp"
    stale.write_bytes(b"PAR1" + b"\0" * 100)
    channel = tmp_path / "channels" / "2026-01-01" / "r-x"
    channel.mkdir(parents=True)
    stale_channel = channel / f".ripple.{dead.pid}.arrow.tmp"
    stale_channel.write_bytes(b"ARROW1")
    assert main(["recover", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"removed {stale}" in out and not stale.exists()
    assert f"removed {stale_channel}" in out and not stale_channel.exists()
    assert _run_ids(tmp_path) == [rid]
    assert not list((tmp_path / "runs").glob("*/.*.tmp"))


def test_one_bad_run_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run b's date folder is a file: b cannot be written, a is; after the fix, b alone is added."""
    from test_stores_stream import Recorder

    rec = Recorder()
    for sid, rid, shift in (("sess-a", "r-a", 0), ("sess-b", "r-b", -86_400_000_000)):
        bus = ev.EventBus(sid, rec)
        start_session(bus)
        run_events(bus, run_id=rid, crash_after="soak_started")
        if shift:
            for e in rec.events:
                if e["session_id"] == sid:
                    e["timestamp"] += shift
    for sid in ("sess-a", "sess-b"):
        store = EventStore(tmp_path)
        store.litmus_seq_events([e for e in rec.events if e["session_id"] == sid])
        store.close()
    b_day = datetime.fromtimestamp(next(e for e in rec.events if e["run_id"] == "r-b")["timestamp"] / 1e6,
                                   tz=timezone.utc).strftime("%Y-%m-%d")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / b_day).write_text("in the way")

    assert main(["recover", "--data-dir", str(tmp_path)]) == 3
    out, err = capsys.readouterr()
    assert _run_ids(tmp_path) == ["r-a"]
    assert "run r-b" in err and str(tmp_path / "runs" / b_day) in err and "1 run could not be recovered" in err
    assert "Traceback" not in err

    (tmp_path / "runs" / b_day).unlink()
    assert main(["recover", "--data-dir", str(tmp_path)]) == 0
    assert _run_ids(tmp_path) == ["r-a", "r-b"]
    before = sorted((p, p.read_bytes()) for p in (tmp_path / "runs").glob("*/*.parquet"))
    assert main(["recover", "--data-dir", str(tmp_path)]) == 0
    assert "nothing to recover" in capsys.readouterr().out
    assert sorted((p, p.read_bytes()) for p in (tmp_path / "runs").glob("*/*.parquet")) == before
