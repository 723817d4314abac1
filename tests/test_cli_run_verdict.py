"""The verdict of ``litmus-seq run`` when a run does not end the ordinary way (issue 9, items 1 and 3).

Each fault here once sealed a run ``passed``. Every test runs the real CLI in a subprocess on its
own copy of the run-test project, with the real stores, and checks that the parquet file (read
with DuckDB), ``run.ended`` in the event store, the console and the exit code all tell the same
verdict — ``errored`` or ``terminated`` with the cause in ``run_error`` — and that the planned
steps that never ran stay NULL.
"""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from test_cli_run import events, finish, project, rows, run_cli, start_cli, steps_by_path, wait_until

__all__ = ["project"]  # the fixture, re-used from test_cli_run

EXIT = {"passed": 0, "failed": 1, "terminated": 2, "errored": 3}


def _plugin(project: Path, name: str, body: str) -> None:
    (project / "plugins" / f"{name}.py").write_text(textwrap.dedent(body))


def _sequence(project: Path, name: str, body: str) -> None:
    (project / "sequences" / f"{name}.yaml").write_text(textwrap.dedent(body))


#: The first word of the console's verdict banner (console.Console.banner_lines).
VERDICTS = ("PASSED", "FAILED", "ERRORED", "TERMINATED", "ABORTED")


def _one_verdict(data: Path, out: str, code: int, outcome: str, cause: str) -> dict[str, Any]:
    """The parquet, run.ended, the console and the exit code agree on ``outcome`` and ``cause``."""
    (run,) = rows(data, "record_type = 'run'")
    assert run["run_outcome"] == outcome, run
    assert cause in (run["run_error"] or ""), run["run_error"]
    ended = [e for e in events(data) if e["event_type"] == "run.ended"]
    assert [(e["outcome"], e["error"]) for e in ended] == [(outcome, run["run_error"])]
    banners = [line for line in out.splitlines() if line[:1] != " " and line.split()[:1] and line.split()[0].rstrip(":") in VERDICTS]
    assert banners == [line for line in banners if line.startswith(f"{outcome.upper()}: ")], out
    assert len(banners) == 1 and cause in banners[0], out  # one banner, with the cause
    assert code == EXIT[outcome]
    return run


def test_an_exception_in_a_subscriber_errors_the_run(project: Path) -> None:
    _plugin(project, "broken_listener", '''
        from litmus_seq import hookimpl

        @hookimpl
        def litmus_seq_events(events):
            if any(e["event_type"] == "test.step_ended" and e["step_path"] == "main/rail" for e in events):
                raise RuntimeError("listener bug")
    ''')
    data = project / "d"
    res = run_cli(project, "run", "sequences/pass.yaml", "--data-dir", str(data))
    _one_verdict(data, res.stdout, res.returncode, "errored", "listener bug")
    steps = steps_by_path(data)
    assert steps[("main/rail", 0)]["step_outcome"] == "passed"  # the stores saw the batch anyway
    assert steps[("main/current", 0)]["step_outcome"] is None  # never ran
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"  # cleanup still ran


_EVIL = '''
    from litmus_seq import hookimpl
    from litmus_seq.drivers.base import Driver

    class Evil(Driver):
        def connect(self):
            pass

        def close(self):
            pass

        def identity(self):
            return {"manufacturer": "Evil", "model": "E1", "serial": "0", "firmware": "0"}

        def bail(self):
            raise SystemExit(0)

    @hookimpl
    def litmus_seq_register_drivers(registry):
        registry.register("evil.dev", Evil)
'''


def _evil_station(project: Path) -> None:
    station = (project / "stations" / "bench.yaml").read_text()
    (project / "stations" / "bench.yaml").write_text(station + "  evil:\n    driver: evil.dev\n")


def test_system_exit_from_a_driver_errors_the_run_and_cleanup_runs(project: Path) -> None:
    _plugin(project, "evil", _EVIL)
    _evil_station(project)
    _sequence(project, "bail", '''
        sequence: bail
        steps:
          - name: first
            measure: rail
            from: dmm.measure_dc_voltage
          - name: bail
            call: evil.bail
          - name: never
            measure: rail
            from: dmm.measure_dc_voltage
        cleanup:
          - call: psu.output_off
    ''')
    data = project / "d"
    res = run_cli(project, "run", "sequences/bail.yaml", "--data-dir", str(data))
    _one_verdict(data, res.stdout, res.returncode, "errored", "SystemExit: 0")
    steps = steps_by_path(data)
    assert steps[("main/first", 0)]["step_outcome"] == "done"
    assert steps[("main/bail", 0)]["step_outcome"] == "errored"
    assert steps[("main/never", 0)]["step_outcome"] is None
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"
    assert (project / "calls.log").read_text().splitlines()[-2:] == ["output_off", "close"]


def test_a_retry_delay_that_overflows_errors_the_run(project: Path) -> None:
    _sequence(project, "overflow", '''
        sequence: overflow
        steps:
          - name: low
            retry: {max_retries: 1, delay_s: 1e10}
            measure: rail
            from: dmm.measure_low
            limit: {low: 3.0}
          - name: never
            measure: rail
            from: dmm.measure_dc_voltage
    ''')
    data = project / "d"
    res = run_cli(project, "run", "sequences/overflow.yaml", "--data-dir", str(data))
    # refused before anything runs: a retry delay is bounded (an hour) by the sequence model
    assert res.returncode == 4, res.stderr
    assert "steps[0].retry.delay_s: must be <= 3600" in res.stderr
    assert not list(data.rglob("*.parquet"))


def test_an_event_store_that_cannot_write_errors_the_run(project: Path) -> None:
    data = project / "d"
    data.mkdir()
    (data / "events").write_text("a file where the event folder should be")
    res = run_cli(project, "run", "sequences/pass.yaml", "--data-dir", str(data))
    (run,) = rows(data, "record_type = 'run'")
    assert run["run_outcome"] == "errored" and "event_store" in run["run_error"]
    banners = [line for line in res.stdout.splitlines() if line[:1] != " " and line.split()[:1] and line.split()[0].rstrip(":") in VERDICTS]
    assert len(banners) == 1 and banners[0].startswith("ERRORED: "), res.stdout
    assert res.returncode == 3


def test_sigterm_while_connect_hangs_terminates_the_run(project: Path) -> None:
    _plugin(project, "hang", '''
        import time
        from pathlib import Path
        from litmus_seq import hookimpl
        from litmus_seq.drivers.base import Driver

        class Hang(Driver):
            def connect(self):
                (Path(__file__).parent.parent / "connecting").write_text("yes")
                time.sleep(3600)

            def close(self):
                pass

            def identity(self):
                return {}

            def ping(self):
                return 1.0

        @hookimpl
        def litmus_seq_register_drivers(registry):
            registry.register("hang.dev", Hang)
    ''')
    station = (project / "stations" / "bench.yaml").read_text()
    (project / "stations" / "bench.yaml").write_text(station + "  hang:\n    driver: hang.dev\n")
    _sequence(project, "hang", '''
        sequence: hang
        steps:
          - name: ping
            measure: p
            from: hang.ping
    ''')
    data = project / "d"
    proc = start_cli(project, "run", "sequences/hang.yaml", "--data-dir", str(data))
    wait_until(lambda: (project / "connecting").exists(), proc, "connect() to start")
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert "Traceback" not in err
    _one_verdict(data, out, code, "terminated", "SIGTERM")
    assert steps_by_path(data)[("main/ping", 0)]["step_outcome"] is None


def test_an_unanswered_prompt_errors_the_run_never_fails_it(project: Path) -> None:
    data = project / "d"
    res = run_cli(project, "run", "sequences/prompts.yaml", "--data-dir", str(data))
    assert res.returncode == 3, res.stdout + res.stderr
    (run,) = rows(data, "record_type = 'run'")
    assert run["run_outcome"] == "errored"
    steps = steps_by_path(data)
    assert steps[("main/led", 0)]["step_outcome"] == "errored"
    assert "no answer" in steps[("main/led", 0)]["step_error"]


@pytest.mark.parametrize("answer", [True, False])
def test_only_the_operators_no_fails_a_confirm(project: Path, answer: bool) -> None:
    _plugin(project, "answer", f'''
        from litmus_seq import hookimpl

        @hookimpl
        def litmus_seq_prompt(prompt):
            return {answer!r}
    ''')
    _sequence(project, "confirm", '''
        sequence: confirm
        steps:
          - name: led
            prompt: "Is the LED green?"
    ''')
    data = project / "d"
    res = run_cli(project, "run", "sequences/confirm.yaml", "--data-dir", str(data))
    outcome = "passed" if answer else "failed"
    (run,) = rows(data, "record_type = 'run'")
    assert (run["run_outcome"], run["run_error"]) == (outcome, None)
    assert res.returncode == EXIT[outcome], res.stdout + res.stderr
