"""The run recorder (litmus_seq/run/recorder.py), driven directly as a front door would.

The YAML executor is one client of the recorder; a harness, the Robot library or the results
client are others. The first test proves they write the same record: the run file of
``sequences/pass.yaml`` written by ``run_plan`` and the one written by calling the recorder by
hand for the same steps are equal in every column and value (timestamps and ids aside). The
others pin down the recorder's own rules: the verdict (DESIGN §6), the context managers that
always seal, limits resolved explicit → spec → none.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from conftest import open_session
from litmus_seq import hookimpl
from litmus_seq.errors import SubscriberError, Terminated
from litmus_seq.plan import build_plan
from litmus_seq.project import ProjectContext
from litmus_seq.run import RunResult, run_plan
from litmus_seq.run.executor import git_info
from test_run_executor import Collector

DATA = Path(__file__).resolve().parent / "data" / "run"

#: what differs between two runs by nature: ids, clocks and durations
VOLATILE = {"session_id", "run_id", "run_started_at", "run_ended_at", "step_started_at", "step_ended_at",
            "vector_started_at", "vector_ended_at", "measurement_timestamp"}


@pytest.fixture
def project(tmp_path: Path) -> Any:
    saved = list(sys.path)
    dest = tmp_path / "proj"
    shutil.copytree(DATA / "project", dest, ignore=shutil.ignore_patterns("__pycache__"))
    yield dest
    sys.path[:] = saved


def _load(project: Path, name: str) -> tuple[ProjectContext, Any, Any]:
    seq = project / "sequences" / name
    ctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=ctx)
    return ctx, plan, ctx.load_station(plan.station_ref or ctx.config.station)


def _table(path: Path) -> list[dict[str, Any]]:
    rows = pq.read_table(path).to_pylist()
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def _by_hand(session: Any, plan: Any, product: Any) -> RunResult:
    """``pass.yaml`` written out as a front door would call the recorder (no plan walking)."""
    commit, branch = git_info(plan.root)
    sequence = {"name": plan.sequence_name, "version": plan.sequence_version, "file": plan.sequence_file,
                "project_name": plan.root.name, "git_commit": commit, "git_branch": branch,
                "plan": plan.json_text()}
    with session.start_run(dut_serial="SN-EQ", product=product, guardband_pct=10, sequence=sequence) as run:
        run.discover(plan.discovered_items())  # the planned steps, as any front door declares them
        node = "sequences/pass.yaml::"
        with run.step("1", path="setup/1", node_id=node + "setup/1", kind="call", index=0):
            run.instrument("psu").output_on()
        with run.step("supply", path="main/supply", node_id=node + "main/supply", kind="measure", index=1,
                      vector_count=2):
            for i, vin in enumerate([5.0, 12.0]):
                with run.vector({"vin": vin}, index=i):
                    psu = run.instrument("psu")
                    psu.set_voltage(volts=vin)
                    time.sleep(0.001)
                    run.measure("vin_readback", psu.measure_voltage(), limit={"comparison": "LOG", "units": "V"},
                                instrument="psu")
        for index, (name, method) in enumerate([("rail", "measure_dc_voltage"), ("current", "measure_current")], 2):
            with run.step(name, node_id=node + f"main/{name}", kind="measure", index=index):
                run.measure(name, getattr(run.instrument("dmm"), method)(), instrument="dmm")
        with run.step("firmware", node_id=node + "main/firmware", kind="measure", index=4):
            run.measure("fw_version", run.instrument("dut").read_firmware(), instrument="dut")
        with run.step("1", path="cleanup/1", node_id=node + "cleanup/1", kind="call", index=5):
            run.instrument("psu").output_off()
    assert run.result is not None
    return run.result


def test_a_run_recorded_by_hand_equals_the_yaml_executors_run(project: Path, tmp_path: Path) -> None:
    ctx, plan, station = _load(project, "pass.yaml")
    with open_session(ctx, station, tmp_path / "yaml") as session:
        from_yaml = run_plan(session, plan, dut_serial="SN-EQ")
    with open_session(ctx, station, tmp_path / "hand") as session:
        by_hand = _by_hand(session, plan, ctx.load_product("board"))
    assert from_yaml.outcome == by_hand.outcome == "passed"
    assert from_yaml.parquet is not None and by_hand.parquet is not None
    yaml_rows, hand_rows = _table(from_yaml.parquet), _table(by_hand.parquet)
    assert [r["record_type"] for r in yaml_rows].count("measurement") == 5  # supply twice, rail, current, fw
    for a, b in zip(yaml_rows, hand_rows, strict=True):
        assert a == b
    assert pq.read_schema(from_yaml.parquet) == pq.read_schema(by_hand.parquet)  # footer (plan) included


# --------------------------------------------------------------------------- the verdict


def _session(project: Path, tmp_path: Path, *listeners: Any) -> Any:
    ctx, _, station = _load(project, "pass.yaml")
    return open_session(ctx, station, tmp_path / "d", list(listeners))


def test_nothing_decides_a_run_before_finish_and_every_planned_step_must_finish(project: Path, tmp_path: Path) -> None:
    with _session(project, tmp_path) as session:
        run = session.start_run(dut_serial="SN")
        run.discover([{"step_path": "main/a"}, {"step_path": "main/b"}])
        with run.step("a"):
            run.measure("x", 1.0, limit={"low": 0})
        assert run.outcome is None  # undecided
        result = run.finish()
    assert result.outcome == "errored" and result.exit_code == 3
    assert "main/b" in (result.error or "")
    assert result.step_outcomes == {"main/a": "passed"}
    assert result.parquet is not None and result.parquet.exists()


def test_a_run_whose_planned_steps_all_finished_is_rolled_up(project: Path, tmp_path: Path) -> None:
    with _session(project, tmp_path) as session:
        with session.start_run(dut_serial="SN") as run:
            run.discover([{"step_path": "main/a"}, {"step_path": "main/b"}])
            with run.step("a"):
                run.measure("x", 1.0, limit={"low": 0})
            with run.step("b"):
                run.measure("y", -1.0, limit={"low": 0})
    assert run.result is not None and run.result.outcome == "failed" and run.result.error is None


@pytest.mark.parametrize(("exc", "outcome", "cause"), [
    (SystemExit(7), "errored", "SystemExit: 7"),
    (KeyboardInterrupt(), "terminated", "terminated by operator"),
    (Terminated("SIGTERM"), "terminated", "SIGTERM"),
    (GeneratorExit("odd"), "errored", "GeneratorExit: odd"),
])
def test_the_context_manager_seals_on_any_base_exception_and_raises_it_on(
        project: Path, tmp_path: Path, exc: BaseException, outcome: str, cause: str) -> None:
    col = Collector()
    with _session(project, tmp_path, col) as session:
        with pytest.raises(type(exc)):
            with session.start_run(dut_serial="SN") as run:
                with run.step("a"):
                    run.measure("x", 1.0, limit={"low": 0})
                with run.step("b"):
                    raise exc
    assert run.result is not None
    assert (run.result.outcome, run.result.error) == (outcome, cause)
    (ended,) = col.of("run.ended")
    assert (ended["outcome"], ended["error"]) == (outcome, cause)
    assert run.result.step_outcomes == {"main/a": "passed", "main/b": outcome}
    row = pq.read_table(run.result.parquet).to_pylist()[0]
    assert (row["run_outcome"], row["run_error"]) == (outcome, cause)


def test_an_exception_in_a_step_errors_that_step_and_the_next_one_runs(project: Path, tmp_path: Path) -> None:
    with _session(project, tmp_path) as session:
        with session.start_run() as run:
            with run.step("a"):
                raise ValueError("bad fixture")
            with run.step("b"):
                run.measure("x", 1.0, limit={"low": 0})
    assert run.result is not None
    assert run.result.step_outcomes == {"main/a": "errored", "main/b": "passed"}
    assert run.result.outcome == "errored"


class _Raises:
    """A listener that fails on the batch holding a given event type."""

    def __init__(self, on: str) -> None:
        self.on = on

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        if any(e["event_type"] == self.on for e in events):
            raise RuntimeError(f"listener broke on {self.on}")


def test_a_failing_listener_errors_the_run_and_the_stores_still_get_every_event(project: Path, tmp_path: Path) -> None:
    col = Collector()
    with _session(project, tmp_path, _Raises("test.step_ended"), col) as session:
        with pytest.raises(SubscriberError, match="listener broke"):  # raised on, once sealed
            with session.start_run() as run:
                with run.step("a"):
                    run.measure("x", 1.0, limit={"low": 0})
                with run.step("b"):
                    run.measure("y", 1.0, limit={"low": 0})
    result = run.result
    assert result is not None and result.outcome == "errored"
    assert "listener broke on test.step_ended" in (result.error or "")
    assert col.of("run.ended")[0]["outcome"] == "errored"  # the other subscribers saw everything
    row = pq.read_table(result.parquet).to_pylist()[0]
    assert (row["run_outcome"], row["run_error"]) == ("errored", result.error)


def test_limits_resolve_explicit_then_product_spec_then_none(project: Path, tmp_path: Path) -> None:
    ctx, _, station = _load(project, "pass.yaml")
    col = Collector()
    with open_session(ctx, station, tmp_path / "d", [col]) as session:
        with session.start_run(product=ctx.load_product("board"), guardband_pct=10) as run:
            with run.step("s"):
                assert run.measure("rail", 3.02) == "failed"  # spec 3.0..3.6, guardbanded to 3.03..3.57
                assert run.measure("rail", 3.02, limit={"low": 3.0, "high": 3.6}) == "passed"
                assert run.measure("free", 1.0) == "done"
                assert run.measure("rail_pin", 1.0, dut_pin="TP7") == "done"
    spec, explicit, free, pinned = col.of("test.measurement")
    assert spec["limit"]["source"] == "spec" and spec["limit"]["low"] == pytest.approx(3.03)
    assert spec["dut_pin"] == "VOUT" and spec["units"] == "V"
    assert explicit["limit"]["source"] == "step" and free["limit"] is None
    assert pinned["dut_pin"] == "TP7"


def test_a_role_the_run_never_uses_is_never_connected(project: Path, tmp_path: Path) -> None:
    col = Collector()
    with _session(project, tmp_path, col) as session:
        with session.start_run() as run:
            with run.step("a"):
                run.measure("v", run.instrument("dmm").measure_dc_voltage())
        assert set(session.instruments) == {"dmm"}
    assert [e["role"] for e in col.of("fixture.instrument_connected")] == ["dmm"]
    assert not (project / "calls.log").exists()  # the psu driver (rig.psu) was never constructed


def test_scopes_accessors_and_diagnostics_for_front_doors(project: Path, tmp_path: Path) -> None:
    from litmus_seq.errors import LitmusError
    from litmus_seq.stores.events import iter_event_files, read_events

    with _session(project, tmp_path) as session:
        with session.start_run(dut_serial="SN") as run:
            assert (run.step_path, run.step_name, run.vector_context) == (None, None, None)
            run.configure("fixture", "FX-1")  # run scope: every row
            with pytest.raises(LitmusError, match="no step is open"):
                run.configure("x", 1, scope="step")
            with run.step("s"):
                assert (run.step_path, run.step_name) == ("main/s", "s")
                run.configure("load", 0.5)  # step scope
                with run.vector({"vin": 5.0}) as ctx:
                    assert run.vector_context is ctx
                    run.configure("late_fixture", "FX-2", scope="run")
                    run.observe("trace", [1.0, 2.0], scope="step", channel=False)
                    run.observe("temp", 24.5)
                    run.diagnostic("relay chatter", level="error")
                    run.measure("x", 1.0)
                    with pytest.raises(LitmusError, match="scope 'suite'"):
                        run.record("k", 1, scope="suite")
                assert run.vector_context is None
    rows = pq.read_table(run.result.parquet).to_pylist()
    m = next(r for r in rows if r["record_type"] == "measurement")
    assert (m["in_fixture"], m["in_late_fixture"], m["in_load"], m["out_temp"]) == ("FX-1", "FX-2", 0.5, 24.5)
    assert m["out_trace"] == "[1.0, 2.0]"  # written as given (as text), not to the channel store
    assert run.result.outcome == "passed"  # a diagnostic changes no outcome
    errors = [e for p in iter_event_files(tmp_path / "d") for e in read_events(p) if e["event_type"] == "diagnostic.error"]
    assert [(e["message"], e["step_path"]) for e in errors] == [("relay chatter", "main/s")]
