"""The consoles (litmus_seq/console.py): what the operator sees, fed by the real event bus.

The live console on a real terminal (tmux) is covered end to end in tests/test_console_tty.py.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console as RichConsole

from litmus_seq import events as ev
from litmus_seq.console import (
    NORMAL,
    QUIET,
    VERBOSE,
    LiveConsole,
    PlainConsole,
    make_console,
)

LIMIT = {"comparator": "GELE", "low": 3.0, "high": 3.6, "source": "spec", "units": "V"}
MARGINAL = {**LIMIT, "marginal_low": 3.2, "marginal_high": 3.4}


def feed(subscriber: Any) -> ev.EventBus:
    """A real EventBus delivering to ``subscriber`` (stamps seq, run_id and timestamps)."""
    if isinstance(subscriber, LiveConsole):  # live: each event as it is emitted
        bus = ev.EventBus("sess-1", lambda events: None, subscriber.litmus_seq_event)
    else:
        bus = ev.EventBus("sess-1", subscriber.litmus_seq_events)
    bus.run_id = "0123456789abcdef0123"
    return bus


def measure(bus: ev.EventBus, path: str, vector: int, retry: int, value: float, outcome: str,
            limit: dict[str, Any] | None = LIMIT, marginal: bool = False, name: str = "rail") -> None:
    bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": path, "vector_index": vector, "retry": retry,
                    "name": name, "value": value, "text": None, "units": "V", "outcome": outcome,
                    "marginal": marginal, "limit": limit})


def a_run(bus: ev.EventBus, *, end: bool = True) -> None:
    """Passing step (one marginal value), a vector passing after a retry, a failing step, an
    errored step, a group; one planned step never runs."""
    bus.emit(ev.RUN_STARTED, sequence_name="fct", dut_serial="SN7", station_id="bench")
    bus.emit(ev.STEPS_DISCOVERED, items=[
        {"step_path": p, "kind": k, "vector_count": n}
        for p, k, n in (("main/rail", "measure", 2), ("main/flaky", "measure", 1), ("main/bad", "measure", 2),
                        ("main/trip", "call", 1), ("main/grp", "group", 1), ("main/grp/child", "call", 1),
                        ("main/never", "call", 1))])
    bus.flush()
    bus.emit(ev.STEP_STARTED, step_path="main/rail", step_index=0, node_id="n", name="rail", kind="measure",
             vector_count=2)
    for i, (value, marginal) in enumerate(((3.3, False), (3.25 - 0.1, True))):
        bus.emit(ev.VECTOR_STARTED, step_path="main/rail", vector_index=i, retry=0, params={"vin": 5 + 7 * i})
        measure(bus, "main/rail", i, 0, value, "passed", MARGINAL, marginal)
        bus.emit(ev.VECTOR_ENDED, step_path="main/rail", vector_index=i, retry=0, outcome="passed")
    bus.emit(ev.STEP_ENDED, step_path="main/rail", outcome="passed", error=None)
    bus.flush()
    bus.emit(ev.STEP_STARTED, step_path="main/flaky", step_index=1, node_id="n", name="flaky", kind="measure",
             vector_count=1)
    for retry, (value, outcome) in enumerate(((4.0, "failed"), (3.9, "failed"), (3.3, "passed"))):
        bus.emit(ev.VECTOR_STARTED, step_path="main/flaky", vector_index=0, retry=retry, params={})
        measure(bus, "main/flaky", 0, retry, value, outcome)
        bus.emit(ev.VECTOR_ENDED, step_path="main/flaky", vector_index=0, retry=retry, outcome=outcome)
    bus.emit(ev.STEP_ENDED, step_path="main/flaky", outcome="passed", error=None)
    bus.flush()
    bus.emit(ev.STEP_STARTED, step_path="main/bad", step_index=2, node_id="n", name="bad", kind="measure",
             vector_count=2)
    for i in range(2):
        bus.emit(ev.VECTOR_STARTED, step_path="main/bad", vector_index=i, retry=0, params={"load": i})
        for retry, value in ((0, 3.7), (1, 3.8))[: 2 if i else 1]:
            if retry:
                bus.emit(ev.VECTOR_STARTED, step_path="main/bad", vector_index=i, retry=retry, params={"load": i})
            measure(bus, "main/bad", i, retry, value if i else 3.3, "failed" if i else "passed")
            bus.emit(ev.VECTOR_ENDED, step_path="main/bad", vector_index=i, retry=retry,
                     outcome="failed" if i else "passed")
    bus.emit(ev.STEP_ENDED, step_path="main/bad", outcome="failed", error="rail = 3.8 V")
    bus.flush()
    bus.emit(ev.STEP_STARTED, step_path="main/trip", step_index=3, node_id="n", name="trip", kind="call",
             vector_count=1)
    bus.emit(ev.VECTOR_STARTED, step_path="main/trip", vector_index=0, retry=0, params={})
    bus.emit(ev.ERROR, message="psu.trip: RuntimeError: tripped", step_path="main/trip")
    bus.emit(ev.VECTOR_ENDED, step_path="main/trip", vector_index=0, retry=0, outcome="errored",
             error="psu.trip: RuntimeError: tripped")
    bus.emit(ev.STEP_ENDED, step_path="main/trip", outcome="errored", error="psu.trip: RuntimeError: tripped")
    bus.emit(ev.STEP_STARTED, step_path="main/grp", step_index=4, node_id="n", name="grp", kind="group",
             vector_count=1)
    bus.emit(ev.STEP_STARTED, step_path="main/grp/child", step_index=5, node_id="n", name="child", kind="call",
             vector_count=1)
    bus.emit(ev.STEP_ENDED, step_path="main/grp/child", outcome="done", error=None)
    bus.emit(ev.STEP_ENDED, step_path="main/grp", outcome="done", error=None)
    bus.emit(ev.WARNING, message="chamber slow to settle", step_path="main/grp")
    if end:
        bus.emit(ev.RUN_ENDED, outcome="errored", error="psu tripped")
    bus.flush()


# --------------------------------------------------------------------------- PlainConsole


def test_plain_console_prints_a_line_per_step_with_bad_and_marginal_values() -> None:
    out = io.StringIO()
    console = PlainConsole(stream=out)
    a_run(feed(console))
    lines = out.getvalue().splitlines()
    assert lines[0] == "run 0123456789ab  fct  dut=SN7  station=bench"
    steps = [line.split() for line in lines if line.startswith("  ") and line[2] != " "]
    assert [(s[0], s[1]) for s in steps if s[0] != "warning:"] == [
        ("PASSED", "main/rail"), ("PASSED", "main/flaky"), ("FAILED", "main/bad"), ("ERRORED", "main/trip"),
        ("DONE", "main/grp/child"), ("DONE", "main/grp")]
    text = out.getvalue()
    rail = lines.index(next(line for line in lines if "main/rail" in line))
    assert lines[rail + 1].split()[:4] == ["[1]", "rail", "=", "3.15"]
    assert lines[rail + 1].endswith("PASSED (marginal)") and "limit 3 ≤ x ≤ 3.6 V" in lines[rail + 1]
    assert "main/rail" in lines[rail] and "2 vectors" in lines[rail]
    flaky = next(line for line in lines if "main/flaky" in line)
    assert flaky.endswith("  passed after 2 retries") and "1 vector " in flaky  # a retried vector is one
    assert "rail = 4.0 V  limit 3 ≤ x ≤ 3.6 V  FAILED (retry 0)" not in text  # only [index] for multi-vector
    assert "rail = 4.0 V  limit 3 ≤ x ≤ 3.6 V  FAILED" in text  # the failed attempts are shown under the step
    bad = next(line for line in lines if " main/bad " in line)
    assert "  failed after 1 retry  (rail = 3.8 V)" in bad  # retries are shown whatever the outcome
    assert not [line for line in lines if " main/rail " in line and "retr" in line]
    assert "  ERRORED    main/trip" in text and "(psu.trip: RuntimeError: tripped)" in text
    assert "  warning: main/grp: chamber slow to settle" in lines
    assert "run ERRORED" not in text  # the verdict is the banner's, printed once by the front door


def test_failures_are_the_last_attempts_and_retries_are_listed_apart() -> None:
    console = PlainConsole(stream=io.StringIO())
    a_run(feed(console))
    assert console.failures == [
        "main/bad[1] load=1: rail = 3.8 V > high 3.6",
        "main/trip: psu.trip: RuntimeError: tripped",
    ]
    # (main/bad[1] failed again after its retry: a failure, not a retried pass)
    assert console.retried == ["main/flaky: passed after 2 retries (first: rail = 4.0 V > high 3.6)"]
    assert console.marginal == 1


def test_one_banner_with_the_cause_the_counts_and_the_results() -> None:
    out = io.StringIO()
    console = PlainConsole(stream=out)
    a_run(feed(console))
    out.seek(0), out.truncate()
    console.banner("errored", "psu tripped", "data/runs/x.parquet")
    lines = out.getvalue().splitlines()
    assert lines[0] == "failures (2):"
    assert lines[1] == "  main/bad[1] load=1: rail = 3.8 V > high 3.6"
    assert lines[3] == "retried (1):"
    verdict = lines[-2]
    assert verdict.startswith("ERRORED: psu tripped  (fct, dut SN7, 6 steps: 1 errored, 1 failed, 2 passed, "
                              "1 done, 1 not run, 1 marginal, ")
    assert lines[-1] == "results: data/runs/x.parquet (run 0123456789abcdef0123)"
    assert sum(1 for line in lines if "ERRORED" in line) == 1


def test_the_banner_says_when_no_run_file_was_written() -> None:
    out = io.StringIO()
    console = PlainConsole(stream=out)
    console.banner("errored", "cannot connect psu: timeout", None)
    assert out.getvalue().splitlines() == [
        "ERRORED: cannot connect psu: timeout  (no steps)", "results: no run file was written"]


def test_quiet_shows_only_the_banner() -> None:
    out = io.StringIO()
    console = PlainConsole(stream=out, verbosity=QUIET)
    a_run(feed(console))
    assert out.getvalue() == ""
    console.banner("failed", None, "x.parquet")
    assert out.getvalue().splitlines()[0] == "failures (2):"
    assert out.getvalue().splitlines()[-1] == "results: x.parquet (run 0123456789abcdef0123)"


def test_verbose_shows_every_measurement_and_instrument() -> None:
    out = io.StringIO()
    console = PlainConsole(stream=out, verbosity=VERBOSE)
    bus = feed(console)
    bus.emit(ev.INSTRUMENT_CONNECTED, role="dmm", driver="scpi.dmm", resource="TCPIP::x",
             identity={"manufacturer": "Keysight", "model": "34465A", "serial": "MY1"}, mocked=False)
    a_run(bus)
    text = out.getvalue()
    assert "  instrument dmm: scpi.dmm Keysight 34465A MY1" in text
    assert "[0] rail = 3.3 V  limit 3 ≤ x ≤ 3.6 V  PASSED" in text
    assert "  error: main/trip: psu.trip: RuntimeError: tripped" in text


def test_a_huge_step_keeps_a_bounded_number_of_lines() -> None:
    out = io.StringIO()
    console = PlainConsole(stream=out, verbosity=VERBOSE)
    bus = feed(console)
    bus.emit(ev.RUN_STARTED, sequence_name="big")
    bus.emit(ev.STEPS_DISCOVERED, items=[{"step_path": "main/big", "kind": "measure", "vector_count": 5000}])
    bus.emit(ev.STEP_STARTED, step_path="main/big", step_index=0, node_id="n", name="big", kind="measure",
             vector_count=5000)
    for i in range(5000):
        bus.emit(ev.VECTOR_STARTED, step_path="main/big", vector_index=i, retry=0, params={})
        measure(bus, "main/big", i, 0, 3.3, "passed")
        bus.emit(ev.VECTOR_ENDED, step_path="main/big", vector_index=i, retry=0, outcome="passed")
    bus.emit(ev.STEP_ENDED, step_path="main/big", outcome="passed", error=None)
    bus.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) < 250
    assert lines[-1].strip() == "... 4800 more measurement lines (all are in the run file)"
    assert "5000 vectors" in lines[1]


# --------------------------------------------------------------------------- LiveConsole


@pytest.fixture
def live() -> Any:
    # Not a terminal: rich then draws no window into the file, which holds exactly the lines
    # printed into the scrollback (the window itself is checked with window_text; the two
    # together on a real terminal in tests/test_console_tty.py).
    console = LiveConsole(RichConsole(file=io.StringIO(), force_terminal=False, width=120, height=12,
                                      color_system=None))
    yield console
    console.close()


def written(live: LiveConsole) -> str:
    """What the live console wrote, terminal control sequences removed."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", live.console.file.getvalue())


def window_text(live: LiveConsole, width: int = 120) -> list[str]:
    """The live window as the terminal would show it."""
    probe = RichConsole(file=io.StringIO(), width=width, color_system=None)
    probe.print(live._window())
    return [line.rstrip() for line in probe.file.getvalue().rstrip("\n").splitlines()]


def test_the_window_follows_the_running_step_with_values_limits_and_verdicts(live: LiveConsole) -> None:
    bus = feed(live)
    bus.emit(ev.RUN_STARTED, sequence_name="fct", dut_serial="SN7")
    bus.emit(ev.STEPS_DISCOVERED, items=[{"step_path": "main/a", "kind": "call", "vector_count": 1},
                                         {"step_path": "main/sweep", "kind": "measure", "vector_count": 50}])
    bus.emit(ev.STEP_STARTED, step_path="main/a", step_index=0, node_id="n", name="a", kind="call", vector_count=1)
    bus.emit(ev.STEP_ENDED, step_path="main/a", outcome="done", error=None)
    bus.emit(ev.STEP_STARTED, step_path="main/sweep", step_index=1, node_id="n", name="sweep", kind="measure",
             vector_count=50)
    for i in range(30):
        bus.emit(ev.VECTOR_STARTED, step_path="main/sweep", vector_index=i, retry=0, params={"vin": i})
        measure(bus, "main/sweep", i, 0, 3.0 + i / 100, "passed", MARGINAL, marginal=3.0 + i / 100 < 3.2)
        bus.emit(ev.VECTOR_ENDED, step_path="main/sweep", vector_index=i, retry=0, outcome="passed")
    bus.emit(ev.VECTOR_STARTED, step_path="main/sweep", vector_index=30, retry=1, params={"vin": 30})
    lines = window_text(live)
    assert len(lines) == 11  # fills a 12-row terminal, with a row to spare, and no more
    assert lines[0].startswith("▶ main/sweep  vector 31/50  vin=30  retry 1")
    assert lines[-2].split() == ["[29]", "rail", "3.29", "V", "3", "≤", "x", "≤", "3.6", "V",
                                 "passed"]  # the latest value, whole
    assert lines[1].split()[0] == "[21]"  # older values left the window (they are in the run file)
    assert lines[-1].split()[:2] == ["1/2", "steps"]


def test_marginal_values_are_flagged_in_the_window(live: LiveConsole) -> None:
    bus = feed(live)
    bus.emit(ev.RUN_STARTED, sequence_name="fct", dut_serial="SN7")
    bus.emit(ev.STEPS_DISCOVERED, items=[{"step_path": "main/r", "kind": "measure", "vector_count": 1}])
    bus.emit(ev.STEP_STARTED, step_path="main/r", step_index=0, node_id="n", name="r", kind="measure",
             vector_count=1)
    bus.emit(ev.VECTOR_STARTED, step_path="main/r", vector_index=0, retry=0, params={})
    measure(bus, "main/r", 0, 0, 3.15, "passed", MARGINAL, marginal=True)
    measure(bus, "main/r", 0, 0, 3.7, "failed", LIMIT, name="other")
    lines = window_text(live)
    assert lines[0].startswith("▶ main/r")
    assert lines[1].split()[0] == "rail" and lines[1].endswith("passed marginal")
    assert lines[2].split()[0] == "other" and lines[2].endswith("failed")
    assert "1 marginal" in lines[-1] and "fct dut=SN7" in lines[-1]


def test_step_lines_go_to_the_scrollback_once_and_the_window_is_erased(live: LiveConsole) -> None:
    a_run(feed(live))
    assert live._live is None  # stopped at run.ended: the terminal is the operator's again
    text = written(live)
    for path, outcome in (("main/rail", "PASSED"), ("main/bad", "FAILED"), ("main/trip", "ERRORED")):
        rows = [line for line in text.splitlines() if f" {path} " in line]
        assert len(rows) == 1 and rows[0].split()[0] == outcome, rows
    assert "  passed after 2 retries" in text
    live.banner("errored", "psu tripped", "data/x.parquet")
    out = written(live)
    assert sum(1 for line in out.splitlines() if "ERRORED: psu tripped" in line) == 1
    assert out.rstrip().endswith("results: data/x.parquet (run 0123456789abcdef0123)")


def test_a_prompt_pauses_the_window_and_nothing_is_printed_twice(live: LiveConsole) -> None:
    bus = feed(live)
    bus.emit(ev.RUN_STARTED, sequence_name="fct", dut_serial="SN7")
    bus.emit(ev.STEPS_DISCOVERED, items=[{"step_path": "main/a", "kind": "call", "vector_count": 1},
                                         {"step_path": "main/led", "kind": "prompt", "vector_count": 1}])
    bus.emit(ev.STEP_STARTED, step_path="main/a", step_index=0, node_id="n", name="a", kind="call", vector_count=1)
    bus.emit(ev.STEP_ENDED, step_path="main/a", outcome="done", error=None)
    assert live._live is not None
    bus.emit(ev.STEP_STARTED, step_path="main/led", step_index=1, node_id="n", name="led", kind="prompt",
             vector_count=1)
    bus.emit(ev.DIALOG_OPENED, prompt_id="p", step_path="main/led", message="LED?", prompt_type="confirm")
    assert live._live is None  # the prompt gets a clean terminal
    before = written(live)
    bus.emit(ev.DIALOG_RESPONDED, prompt_id="p", response=True, responder=None, timed_out=False)
    assert live._live is not None  # resumes once answered
    bus.emit(ev.STEP_ENDED, step_path="main/led", outcome="passed", error=None)
    bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
    assert live._live is None
    after = written(live)[len(before):]
    assert " main/a " not in after  # the finished step was not reprinted after the prompt
    assert sum(1 for line in written(live).splitlines() if " main/led " in line) == 1


def test_live_console_close_is_safe_twice(live: LiveConsole) -> None:
    bus = feed(live)
    bus.emit(ev.RUN_STARTED, sequence_name="fct")
    bus.emit(ev.STEPS_DISCOVERED, items=[])
    live.close()
    live.close()
    assert live._live is None


def test_make_console_picks_by_terminal() -> None:
    assert isinstance(make_console(False), PlainConsole)
    live = make_console(True, VERBOSE)
    assert isinstance(live, LiveConsole) and live.verbosity == VERBOSE
    assert make_console(False).verbosity == NORMAL


# --------------------------------------------------------------------------- end to end


_BREAK = {
    "failed": ("stations/bench.yaml", "measure_current: 0.12", "measure_current: 0.4"),
    "errored": ("checks/board.py", "    return volts * amps", "    raise RuntimeError('probe lifted')"),
    "terminated": ("checks/board.py", "    return volts * amps",
                   "    import os, signal\n    os.kill(os.getpid(), signal.SIGINT)\n    return volts * amps"),
}


@pytest.mark.parametrize("outcome", ["passed", "failed", "errored", "terminated"])
def test_the_banner_tells_the_verdict_of_the_exit_code(outcome: str, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from litmus_seq.cli.main import main
    from litmus_seq.outcomes import exit_code

    assert main(["init", str(tmp_path)]) == 0
    if outcome in _BREAK:
        rel, old, new = _BREAK[outcome]
        path = tmp_path / rel
        path.write_text(path.read_text().replace(old, new))
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "LITMUS_DEBUG")}
    proc = subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", "sequences/board_fct.yaml",
                           "--dut", "SN1", "--yes"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == exit_code(outcome), proc.stdout + proc.stderr
    words = {"PASSED", "FAILED", "ERRORED", "TERMINATED"}
    verdicts = [line for line in proc.stdout.splitlines() if line[:1] != " " and (
                line.split(":")[0].split()[0] in words or line.split()[:2] == ["run", outcome.upper()])]
    assert len(verdicts) == 1, proc.stdout  # one banner, no "run PASSED" before it
    assert verdicts[0].split()[0].rstrip(":") == outcome.upper()
    assert "7 steps:" in verdicts[0]
    if outcome == "terminated":
        assert verdicts[0].startswith("TERMINATED: ")  # and its cause
    if outcome != "passed":
        assert "failures (" in proc.stdout
