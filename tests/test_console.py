"""The consoles (litmus_seq/console.py): what the operator sees, fed by the real event bus."""

from __future__ import annotations

import io
from typing import Any

import pytest

from litmus_seq import events as ev
from litmus_seq.console import LiveConsole, PlainConsole

LIMIT = {"comparator": "GELE", "low": 3.0, "high": 3.6, "source": "spec"}


def feed(subscriber: Any) -> ev.EventBus:
    """A real EventBus delivering to ``subscriber`` (stamps seq, run_id and timestamps)."""
    bus = ev.EventBus("sess-1", subscriber.litmus_seq_events)
    bus.run_id = "0123456789abcdef0123"
    return bus


def a_run(bus: ev.EventBus, *, prompt: bool = False) -> None:
    """A small run: a passing step, a failing step with a retry, an errored step, a group."""
    bus.emit(ev.RUN_STARTED, sequence_name="fct", dut_serial="SN7", station_id="bench")
    bus.emit(ev.STEPS_DISCOVERED, items=[
        {"step_path": p, "kind": k, "vector_count": n}
        for p, k, n in (("main/rail", "measure", 2), ("main/retry", "measure", 1), ("main/trip", "call", 1),
                        ("main/grp", "group", 1), ("main/grp/child", "call", 1))])
    bus.flush()
    bus.emit(ev.STEP_STARTED, step_path="main/rail", step_index=0, node_id="n", name="rail", kind="measure",
             vector_count=2)
    for i in range(2):
        bus.emit(ev.VECTOR_STARTED, step_path="main/rail", vector_index=i, retry=0, params={})
        bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": "main/rail", "vector_index": i, "retry": 0,
                        "name": "rail", "value": 3.3, "text": None, "units": "V", "outcome": "passed",
                        "marginal": False, "limit": LIMIT})
        bus.emit(ev.VECTOR_ENDED, step_path="main/rail", vector_index=i, retry=0, outcome="passed")
    bus.emit(ev.STEP_ENDED, step_path="main/rail", outcome="passed", error=None)
    bus.flush()
    bus.emit(ev.STEP_STARTED, step_path="main/retry", step_index=1, node_id="n", name="retry", kind="measure",
             vector_count=1)
    for retry, (value, outcome) in enumerate(((4.0, "failed"), (3.9, "failed"))):
        bus.emit(ev.VECTOR_STARTED, step_path="main/retry", vector_index=0, retry=retry, params={})
        bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": "main/retry", "vector_index": 0,
                        "retry": retry, "name": "rail", "value": value, "text": None, "units": "V",
                        "outcome": outcome, "marginal": False, "limit": LIMIT})
        bus.emit(ev.VECTOR_ENDED, step_path="main/retry", vector_index=0, retry=retry, outcome=outcome)
    bus.emit(ev.STEP_ENDED, step_path="main/retry", outcome="failed", error="rail = 3.9 V, limit GELE")
    bus.flush()
    if prompt:
        bus.emit(ev.DIALOG_OPENED, prompt_id="p", step_path="main/trip", message="LED?", prompt_type="confirm")
        bus.flush()
    bus.emit(ev.STEP_STARTED, step_path="main/trip", step_index=2, node_id="n", name="trip", kind="call",
             vector_count=1)
    bus.emit(ev.ERROR, message="psu.trip: RuntimeError: tripped", step_path="main/trip")
    bus.emit(ev.STEP_ENDED, step_path="main/trip", outcome="errored", error="psu.trip: RuntimeError: tripped")
    bus.emit(ev.STEP_STARTED, step_path="main/grp", step_index=3, node_id="n", name="grp", kind="group",
             vector_count=1)
    bus.emit(ev.STEP_STARTED, step_path="main/grp/child", step_index=4, node_id="n", name="child", kind="call",
             vector_count=1)
    bus.emit(ev.STEP_ENDED, step_path="main/grp/child", outcome="done", error=None)
    bus.emit(ev.STEP_ENDED, step_path="main/grp", outcome="done", error=None)
    bus.emit(ev.RUN_ENDED, outcome="errored", error=None)
    bus.flush()


# --------------------------------------------------------------------------- PlainConsole


def test_plain_console_prints_one_line_per_finished_step() -> None:
    out = io.StringIO()
    console = PlainConsole(stream=out)
    a_run(feed(console))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("run 0123456789ab  fct  dut=SN7  station=bench")
    steps = [line.split() for line in lines if line.startswith("  ") and not line.startswith("  !")]
    assert [(s[0], s[1]) for s in steps] == [
        ("PASSED", "main/rail"), ("FAILED", "main/retry"), ("ERRORED", "main/trip"), ("DONE", "main/grp/child"),
        ("DONE", "main/grp")]
    assert steps[0][2:4] == ["2", "vectors"]
    assert steps[1][2:4] == ["1", "vector"]  # a retried vector is one vector, not two
    assert steps[4][2] == "group"
    assert "(rail = 3.9 V, limit GELE)" in lines[[i for i, line in enumerate(lines) if "main/retry" in line][0]]
    assert "  ! main/trip psu.trip: RuntimeError: tripped" in lines
    assert lines[-1] == "run ERRORED"


def test_plain_console_collects_failures_with_their_limits() -> None:
    console = PlainConsole(stream=io.StringIO())
    a_run(feed(console))
    assert console.failures == [  # the reporters' rendering (litmus_seq/reporters/render.py)
        "main/retry[0] rail = 4.0 V > high 3.6",
        "main/retry[0] rail = 3.9 V > high 3.6 (attempt 2)",
    ]


def test_plain_console_says_how_many_retries_a_step_took() -> None:
    out = io.StringIO()
    a_run(feed(PlainConsole(stream=out)))
    (retry,) = [line for line in out.getvalue().splitlines() if "main/retry" in line and line.startswith("  FAILED")]
    assert "failed after 1 retry" in retry
    assert not [line for line in out.getvalue().splitlines() if "main/rail" in line and "retr" in line]


def test_plain_console_shows_the_run_error() -> None:
    out = io.StringIO()
    bus = feed(PlainConsole(stream=out))
    bus.emit(ev.RUN_ENDED, outcome="terminated", error="terminated by operator")
    bus.flush()
    assert out.getvalue().strip() == "run TERMINATED: terminated by operator"


# --------------------------------------------------------------------------- LiveConsole


@pytest.fixture
def live() -> Any:
    from rich.console import Console

    console = LiveConsole()
    console.console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    yield console
    console.close()


def test_live_console_draws_the_step_table_and_stops_at_run_end(live: LiveConsole) -> None:
    a_run(feed(live))
    assert live._live is None  # stopped at run.ended: the terminal is the operator's again
    text = live.console.file.getvalue()
    for path, outcome in (("main/rail", "passed"), ("main/retry", "failed"), ("main/trip", "errored")):
        row = [line for line in text.splitlines() if path in line][-1]
        assert outcome in row
    assert "fct  dut=SN7" in text
    child = [line for line in text.splitlines() if "main/grp/child" in line][-1]
    assert "  main/grp/child" in child  # indented under its group
    rail = [line for line in text.splitlines() if "main/rail" in line][-1]
    assert "2/2" in rail
    assert live.failures and live.failures[0].startswith("main/retry[0] rail = 4.0 V")


def test_live_console_pauses_for_a_prompt(live: LiveConsole) -> None:
    bus = feed(live)
    bus.emit(ev.RUN_STARTED, sequence_name="fct", dut_serial="SN7")
    bus.emit(ev.STEPS_DISCOVERED, items=[{"step_path": "main/led", "kind": "prompt", "vector_count": 1}])
    bus.flush()
    assert live._live is not None
    bus.emit(ev.STEP_STARTED, step_path="main/led", step_index=0, node_id="n", name="led", kind="prompt",
             vector_count=1)
    bus.emit(ev.DIALOG_OPENED, prompt_id="p", step_path="main/led", message="LED?", prompt_type="confirm")
    bus.flush()
    assert live._live is None  # the prompt gets a clean terminal line
    bus.emit(ev.DIALOG_RESPONDED, prompt_id="p", response=True, responder=None, timed_out=False)
    bus.emit(ev.STEP_ENDED, step_path="main/led", outcome="passed", error=None)
    bus.flush()
    assert live._live is not None  # resumes once answered
    bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
    bus.flush()
    assert live._live is None
    last_row = [line for line in live.console.file.getvalue().splitlines() if "main/led" in line][-1]
    assert "passed" in last_row and "running" not in last_row  # the final table shows the answer


def test_live_console_close_is_safe_twice(live: LiveConsole) -> None:
    bus = feed(live)
    bus.emit(ev.RUN_STARTED, sequence_name="fct")
    bus.emit(ev.STEPS_DISCOVERED, items=[])
    bus.flush()
    live.close()
    live.close()
    assert live._live is None
