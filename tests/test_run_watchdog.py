"""Hangs are faults, not waits (litmus_seq/run/watchdog.py; issue 9 item 7).

End to end: ``litmus-seq run`` in a subprocess on the run-test project with a local plugin
driver that hangs where told (a call, ``connect()``, ``close()``), the real stores, checked with
DuckDB. A call that overruns its timeout makes its step ``errored``, cleanup still runs, and a
hanging ``close()`` never keeps the process alive after the seal. No wall-clock asserts: the
subprocess timeout is the bound, and a hang would trip it.
"""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import pytest

from litmus_seq.errors import InstrumentTimeout
from litmus_seq.run.watchdog import Watchdog, within
from test_cli_run import calls, events, project, rows, run_cli, steps_by_path

__all__ = ["project"]

_SLOW = '''
    import time
    from pathlib import Path
    from litmus_seq import hookimpl
    from litmus_seq.drivers.base import Driver

    LOG = Path(__file__).resolve().parent.parent / "calls.log"

    class Slow(Driver):
        def _log(self, text):
            with LOG.open("a") as f:
                f.write(text + "\\n")

        def connect(self):
            if self.settings.get("hang") == "connect":
                time.sleep(3600)

        def close(self):
            self._log("slow close")
            if self.settings.get("hang") == "close":
                time.sleep(3600)

        def identity(self):
            return {"manufacturer": "Slow", "model": "S1", "serial": "1", "firmware": "1"}

        def hang(self):
            self._log("hang started")
            time.sleep(3600)
            self._log("hang ended")

        def ok(self):
            return 1.0

    @hookimpl
    def litmus_seq_register_drivers(registry):
        registry.register("slow.dev", Slow)
'''


def _setup(project: Path, hang: str | None, timeout: str = "timeout_s: 0.5") -> None:
    (project / "plugins" / "slow.py").write_text(textwrap.dedent(_SLOW))
    station = (project / "stations" / "bench.yaml").read_text()
    settings = f"    settings: {{hang: {hang}}}\n" if hang else ""
    (project / "stations" / "bench.yaml").write_text(
        station + f"  slow:\n    driver: slow.dev\n    {timeout}\n" + settings)
    (project / "sequences" / "slow.yaml").write_text(textwrap.dedent('''
        sequence: slow
        steps:
          - name: first
            measure: reading
            from: slow.ok
          - name: stuck
            call: slow.hang
          - name: after
            measure: reading
            from: slow.ok
        cleanup:
          - call: psu.output_off
    '''))


def test_a_call_that_hangs_errors_its_step_and_the_run_goes_on_to_cleanup(project: Path) -> None:
    _setup(project, None)
    data = project / "d"
    res = run_cli(project, "run", "sequences/slow.yaml", "--data-dir", str(data), timeout=60)
    assert res.returncode == 3, res.stdout + res.stderr
    steps = steps_by_path(data)
    assert steps[("main/first", 0)]["step_outcome"] == "done"
    assert steps[("main/stuck", 0)]["step_outcome"] == "errored"
    assert "slow.hang: no answer within 0.5 s" in steps[("main/stuck", 0)]["step_error"]
    assert steps[("main/after", 0)]["step_outcome"] == "done"  # the next step runs
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"
    assert {r["run_outcome"] for r in rows(data)} == {"errored"}
    log = calls(project)
    assert "hang started" in log and "hang ended" not in log and "output_off" in log


def test_a_per_call_timeout_overrides_the_roles(project: Path, tmp_path: Path) -> None:
    """Run.call(..., timeout_s=) in process, under the CLI's process settings (SIGALRM)."""
    import sys

    from conftest import open_session
    from litmus_seq.project import ProjectContext
    from litmus_seq.run import station_process

    _setup(project, None, timeout="timeout_s: 600")
    ctx = ProjectContext.for_path(project / "sequences" / "slow.yaml")
    saved = list(sys.path)
    try:
        with station_process(), open_session(ctx, ctx.load_station("bench"), tmp_path / "d") as session:
            with session.start_run() as run:
                with run.step("stuck"):
                    run.call("slow", "hang", timeout_s=0.3)
                with run.step("after"):
                    run.measure("reading", run.call("slow", "ok"))
    finally:
        sys.path[:] = saved
    assert run.result is not None
    assert run.result.step_outcomes == {"main/stuck": "errored", "main/after": "done"}
    (row,) = rows(tmp_path / "d", "record_type = 'step' AND step_path = 'main/stuck'")
    assert "slow.hang: no answer within 0.3 s" in row["step_error"]


def test_a_connect_that_hangs_errors_the_run_before_any_step(project: Path) -> None:
    _setup(project, "connect")
    data = project / "d"
    res = run_cli(project, "run", "sequences/slow.yaml", "--data-dir", str(data), timeout=60)
    assert res.returncode == 3, res.stdout + res.stderr
    (run,) = rows(data, "record_type = 'run'")
    assert run["run_outcome"] == "errored" and "slow: connect(): no answer within 0.5 s" in run["run_error"]
    assert all(r["step_outcome"] is None for r in rows(data, "record_type = 'step'"))


def test_a_close_that_hangs_never_keeps_the_process_alive_after_the_seal(project: Path) -> None:
    _setup(project, "close")
    seq = project / "sequences" / "slow.yaml"
    seq.write_text(seq.read_text().replace("call: slow.hang", "call: slow.ok"))
    data = project / "d"
    res = run_cli(project, "run", "sequences/slow.yaml", "--data-dir", str(data), timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr  # the run passed; close() is after the seal
    assert {r["run_outcome"] for r in rows(data)} == {"passed"}
    (gone,) = [e for e in events(data) if e["event_type"] == "fixture.instrument_disconnected" and e["role"] == "slow"]
    assert "close(): no answer within 0.5 s" in gone["error"]
    assert "slow close" in calls(project)


# --------------------------------------------------------------------------- the parts, in process


def test_within_returns_raises_or_gives_up() -> None:
    assert within(5, lambda: 42, "x") == 42
    with pytest.raises(ZeroDivisionError):
        within(5, lambda: 1 / 0, "x")
    release = threading.Event()
    with pytest.raises(InstrumentTimeout, match="dmm: close\\(\\): no answer within 0.05 s"):
        within(0.05, release.wait, "dmm: close()")
    release.set()


def test_the_watchdog_flags_an_overrun_call_even_without_interrupting_it() -> None:
    wd = Watchdog(poll_s=0.01)
    wd.start()
    try:
        seq = wd.begin("dmm.read", 0.05)
        deadline = time.monotonic() + 10
        while wd.fired != seq and time.monotonic() < deadline:  # no SIGALRM handler: flag only
            time.sleep(0.01)
        with pytest.raises(InstrumentTimeout, match="dmm.read: no answer within 0.05 s"):
            wd.end(seq)
        quick = wd.begin("dmm.read", 60)
        wd.end(quick)  # a call within its timeout passes
    finally:
        wd.stop()
