"""In-process tests of the YAML executor's finer semantics (litmus_seq/run/executor.py).

The end-to-end behaviour through a real process (exit codes, signals, kill -9) is in
``tests/test_cli_run.py``; here a :class:`~litmus_seq.run.Session` runs plans of the small
project ``tests/data/run/project`` in the test process, with the real stores, so each rule can be
checked directly on the run result, the emitted events and the parquet file.
"""

from __future__ import annotations

import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from litmus_seq import hookimpl
from litmus_seq.cli.main import main
from conftest import open_session
from litmus_seq.run import RunResult, run_plan, station_process
from litmus_seq.plan import build_plan
from litmus_seq.project import ProjectContext

DATA = Path(__file__).resolve().parent / "data" / "run"


class Collector:
    """A result listener plugin: keeps every event it is handed."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)

    def of(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event_type"] == event_type
                and all(e.get(k) == v for k, v in match.items())]


def _copy_project(dest: Path) -> Path:
    shutil.copytree(DATA / "project", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _forget_project_modules(saved_path: list[str]) -> None:
    """The project's root goes on sys.path and its python: modules into sys.modules; undo both."""
    sys.path[:] = saved_path
    for name in [m for m in sys.modules if m == "run_checks" or m.startswith("run_checks.")]:
        del sys.modules[name]


@pytest.fixture
def project(tmp_path: Path) -> Any:
    saved = list(sys.path)
    yield _copy_project(tmp_path / "proj")
    _forget_project_modules(saved)


def run_sequence(project: Path, name: str, data_dir: Path, auto_confirm: bool = False,
                 **session_kw: Any) -> tuple[RunResult, Collector]:
    seq = project / "sequences" / name
    ctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=ctx)
    station = ctx.load_station(plan.station_ref or ctx.config.station)
    col = Collector()
    listeners: list[Any] = [col]
    if auto_confirm:
        from litmus_seq.prompts import AutoConfirm

        listeners.append(AutoConfirm())
    with station_process(), open_session(ctx, station, data_dir, listeners, **session_kw) as session:
        result = run_plan(session, plan, dut_serial="SN-E")  # the CLI's process settings: SIGTERM stops
    return result, col


def rows(data_dir: Path, where: str = "true") -> list[dict[str, Any]]:
    import duckdb

    glob = (data_dir / "runs" / "**" / "*.parquet").as_posix()
    rel = duckdb.connect().sql(f"SELECT * FROM read_parquet('{glob}', union_by_name = true) WHERE {where} "
                               "ORDER BY step_index, vector_index, vector_retry")
    return rel.to_arrow_table().to_pylist()


def step_row(data_dir: Path, path: str, vector: int = 0) -> dict[str, Any]:
    (r,) = rows(data_dir, f"record_type = 'step' AND step_path = '{path}' AND vector_index = {vector}")
    return r


def measurements(data_dir: Path, path: str) -> list[dict[str, Any]]:
    return rows(data_dir, f"record_type = 'measurement' AND step_path = '{path}'")


# --------------------------------------------------------------------------- semantics.yaml, run once


class Semantics:
    def __init__(self, result: RunResult, col: Collector, data: Path) -> None:
        self.result, self.col, self.data = result, col, data


@pytest.fixture(scope="module")
def sem(tmp_path_factory: pytest.TempPathFactory) -> Any:
    saved = list(sys.path)
    root = tmp_path_factory.mktemp("semantics")
    proj = _copy_project(root / "proj")
    result, col = run_sequence(proj, "semantics.yaml", root / "data")
    yield Semantics(result, col, root / "data")
    _forget_project_modules(saved)


def test_when_false_skips_the_step_without_touching_the_instrument(sem: Semantics) -> None:
    assert sem.result.step_outcomes["main/skipped_by_when"] == "skipped"
    assert measurements(sem.data, "main/skipped_by_when") == []
    r = step_row(sem.data, "main/skipped_by_when")
    assert r["step_outcome"] == "skipped" and r["vector_outcome"] == "skipped"


def test_when_that_raises_is_errored_never_a_silent_pass(sem: Semantics) -> None:
    assert sem.result.step_outcomes["main/when_raises"] == "errored"
    assert "ZeroDivisionError" in step_row(sem.data, "main/when_raises")["step_error"]
    (err,) = sem.col.of("diagnostic.error", step_path="main/when_raises")
    assert "ZeroDivisionError" in err["message"] and err["traceback"]
    assert measurements(sem.data, "main/when_raises") == []


def test_group_rolls_up_the_worst_child_and_a_skipped_group_skips_its_children(sem: Semantics) -> None:
    o = sem.result.step_outcomes
    assert (o["main/thermal/g_pass"], o["main/thermal/g_fail"], o["main/thermal/g_done"]) == ("passed", "failed", "done")
    assert o["main/thermal"] == "failed"
    g = step_row(sem.data, "main/thermal")
    assert g["step_kind"] == "group" and g["step_outcome"] == "failed" and g["parent_path"] == ""
    assert step_row(sem.data, "main/thermal/g_fail")["parent_path"] == "main/thermal"
    assert o["main/cold"] == "skipped" and o["main/cold/c_one"] == "skipped"


def test_python_step_context_services_land_in_the_run_file(sem: Semantics) -> None:
    from litmus_seq.stores.channels import ChannelStore

    assert sem.result.step_outcomes["main/py_full"] == "passed"
    ms = {m["measurement_name"]: m for m in measurements(sem.data, "main/py_full")}
    assert set(ms) == {"rail", "ripple"}
    assert ms["rail"]["limit_source"] == "spec" and ms["rail"]["limit_low"] == pytest.approx(3.0)
    assert ms["rail"]["measurement_outcome"] == "passed" and ms["rail"]["instrument_name"] is None
    assert ms["ripple"]["limit_source"] == "step" and ms["ripple"]["limit_high"] == pytest.approx(0.05)
    assert ms["ripple"]["measurement_units"] == "V"
    r = step_row(sem.data, "main/py_full")
    assert r["in_vset"] == pytest.approx(10.0)  # configure(): 5.0 * gain 2.0
    assert r["out_ambient_c"] == pytest.approx(24.5)
    uri = r["out_waveform"]
    assert uri == f"channel://{sem.result.run_id}/waveform"
    assert ChannelStore(sem.data).read(uri).to_pylist() == [0.0, 0.5, 1.0, 0.5, 0.0]
    (rec,) = sem.col.of("test.record", step_path="main/py_full")
    assert rec["key"] == "note" and rec["value"] == {"operator_said": "ok", "k": 7}
    (warn,) = sem.col.of("diagnostic.warning", step_path="main/py_full")
    assert warn["message"] == "just a warning"


def test_python_measure_returning_a_value_is_judged_per_vector(sem: Semantics) -> None:
    ms = measurements(sem.data, "main/py_measure")
    assert [(m["vector_index"], m["measurement_value"], m["measurement_outcome"]) for m in ms] == [
        (0, pytest.approx(0.8), "passed"), (1, pytest.approx(1.1), "failed")]
    assert [m["in_load"] for m in ms] == [0.3, 0.6]
    assert sem.result.step_outcomes["main/py_measure"] == "failed"
    assert step_row(sem.data, "main/py_measure", 0)["vector_outcome"] == "passed"
    assert step_row(sem.data, "main/py_measure", 1)["vector_outcome"] == "failed"


def test_declared_but_never_recorded_measurement_is_errored(sem: Semantics) -> None:
    assert sem.result.step_outcomes["main/py_forget"] == "errored"
    assert "'forgotten' was declared but never recorded" in step_row(sem.data, "main/py_forget")["step_error"]
    assert measurements(sem.data, "main/py_forget") == []


def test_exception_in_user_code_is_errored_with_traceback(sem: Semantics) -> None:
    assert sem.result.step_outcomes["main/py_boom"] == "errored"
    assert step_row(sem.data, "main/py_boom")["step_error"] == "ValueError: user code exploded"
    (err,) = sem.col.of("diagnostic.error", step_path="main/py_boom")
    assert err["exception_type"] == "ValueError" and "steps.py" in err["traceback"]


def test_marginal_pass_is_flagged(sem: Semantics) -> None:
    (m,) = measurements(sem.data, "main/marginal")
    assert m["measurement_outcome"] == "passed" and m["measurement_marginal"] is True
    assert m["step_outcome"] == "passed"
    others = rows(sem.data, "record_type = 'measurement' AND step_path <> 'main/marginal'")
    assert others and not any(o["measurement_marginal"] for o in others)


def test_run_outcome_is_the_worst_step_and_the_file_is_written(sem: Semantics) -> None:
    assert sem.result.outcome == "errored" and sem.result.exit_code == 3
    assert sem.result.parquet is not None and sem.result.parquet.exists()
    assert {r["run_outcome"] for r in rows(sem.data)} == {"errored"}
    assert rows(sem.data, "record_type = 'run'")[0]["dut_serial"] == "SN-E"


def test_event_stream_order_and_seq(sem: Semantics) -> None:
    evs = sem.col.events
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    types = [e["event_type"] for e in evs]
    assert types[0] == "session.started" and types[-1] == "session.ended"
    assert types.index("run.started") < types.index("fixture.instrument_connected") < types.index(
        "test.steps_discovered") < types.index("test.step_started")
    assert types.index("run.ended") < types.index("fixture.instrument_disconnected")
    assert all(e["run_id"] is None for e in evs if e["event_type"].startswith("session."))
    assert {e["run_id"] for e in evs if e["event_type"].startswith("test.")} == {sem.result.run_id}
    (disc,) = sem.col.of("test.steps_discovered")
    assert disc["items"][0]["node_id"] == "sequences/semantics.yaml::main/skipped_by_when"


# --------------------------------------------------------------------------- interrupts in user code


def test_sigterm_cannot_be_swallowed_by_user_code(project: Path, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    result, col = run_sequence(project, "terminate.yaml", tmp_path / "d")
    assert result.outcome == "terminated" and result.exit_code == 2
    assert result.step_outcomes["main/first"] == "passed"
    assert result.step_outcomes["main/stopped"] == "terminated"
    assert "main/never" not in result.step_outcomes
    assert result.step_outcomes["cleanup/1"] == "done"
    assert not col.of("test.measurement", name="after_sigterm")
    assert step_row(tmp_path / "d", "main/never")["step_outcome"] is None
    assert signal.getsignal(signal.SIGTERM) == before  # the run's handler is removed again


def test_keyboard_interrupt_in_user_code_terminates_and_cleans_up(project: Path, tmp_path: Path) -> None:
    result, col = run_sequence(project, "ctrl_c.yaml", tmp_path / "d")
    assert result.outcome == "terminated"
    assert result.step_outcomes == {"main/interrupted": "terminated", "cleanup/1": "done"}
    assert (project / "calls.log").read_text().splitlines()[-2:] == ["output_off", "close"]
    (ended,) = col.of("run.ended")
    assert ended["outcome"] == "terminated" and ended["error"] == "terminated by operator"


# --------------------------------------------------------------------------- prompts without a plugin


def test_no_prompt_answerer_errors_each_prompt_never_fails_the_dut(project: Path, tmp_path: Path) -> None:
    """No answer is a fault of the station, not of the unit: errored, never failed (issue 9.3)."""
    result, col = run_sequence(project, "prompts.yaml", tmp_path / "d")
    assert result.outcome == "errored"
    for path in ("main/led", "main/colour", "main/batch"):
        assert result.step_outcomes[path] == "errored"
        assert step_row(tmp_path / "d", path)["step_error"].startswith("no answer: no prompt handler")
    assert result.step_outcomes["main/after"] == "passed"
    assert all(e["response"] is None and e["timed_out"] is False for e in col.of("dialog.responded"))


def test_auto_confirm_answers_confirm_and_choice_but_not_input(project: Path, tmp_path: Path) -> None:
    result, _ = run_sequence(project, "prompts.yaml", tmp_path / "d", auto_confirm=True)
    o = result.step_outcomes
    assert (o["main/led"], o["main/colour"], o["main/batch"]) == ("passed", "done", "errored")
    texts = {m["measurement_name"]: m["measurement_text"] for m in rows(tmp_path / "d", "record_type = 'measurement'")}
    assert texts["led"] == "true" and texts["colour"] == "red"  # the first choice
    assert "batch" not in texts


# --------------------------------------------------------------------------- the run command in-process


def cli(*args: str) -> int:
    return main(list(args))


@pytest.mark.parametrize(("sequence", "line_col", "fragment"), [
    ("unknown_role.yaml", "5:11", "role 'scope' is not on station 'bench'"),
    ("unknown_method.yaml", "6:11", "driver 'rig.psu' has no method 'output_onn' (did you mean 'output_on'?)"),
    ("unknown_mock_method.yaml", "5:11", "the mock for role 'dmm' has no method 'measure_dc_voltag' "
                                         "(did you mean 'measure_dc_voltage'?)"),
    ("unknown_callable.yaml", "4:13", "python: run_checks.steps:no_such_function: cannot import"),
])
def test_preflight_errors_exit_4_with_one_located_line(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], sequence: str,
                                                       line_col: str, fragment: str) -> None:
    monkeypatch.chdir(project)
    assert cli("run", f"sequences/{sequence}", "--data-dir", "d") == 4
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"sequences/{sequence}:{line_col}: ") and fragment in err[0]
    assert not (project / "d").exists() and not (project / "calls.log").exists()


def test_mock_role_replaces_the_driver(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert cli("run", "sequences/pass.yaml", "--mock", "psu", "--data-dir", "d") == 0
    ms = rows(project / "d", "record_type = 'measurement' AND measurement_name = 'vin_readback'")
    assert [m["measurement_value"] for m in ms] == [9.5, 9.5]  # the station's mock: answer
    assert all(m["instrument_mocked"] is True and m["instrument_model"] == "mock" for m in ms)
    run = rows(project / "d", "record_type = 'run'")[0]
    mocked = dict(zip(run["step_instruments_name"], run["step_instruments_mocked"]))
    drivers = dict(zip(run["step_instruments_name"], run["step_instruments_driver"]))
    assert mocked["psu"] is True and drivers["psu"] == "mock"  # the driver that actually answered
    assert not (project / "calls.log").exists()  # the rig driver was never constructed


def test_unknown_mock_role_is_a_usage_error(project: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project)
    assert cli("run", "sequences/pass.yaml", "--mock", "psx", "--data-dir", "d") == 4
    assert capsys.readouterr().err.strip() == (
        "--mock psx: unknown role 'psx' (did you mean 'psu'?); the station's roles are: dmm, dut, psu")


def test_empty_sequence_exits_5(project: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project)
    assert cli("run", "sequences/empty.yaml", "--data-dir", "d") == 5
    assert capsys.readouterr().err.strip() == "sequences/empty.yaml: nothing to run (no setup, steps or cleanup)"


def test_dry_run_checks_everything_and_runs_nothing(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project)
    assert cli("run", "sequences/pass.yaml", "--dry-run", "--data-dir", "d") == 0
    out = capsys.readouterr().out
    assert "sequences/pass.yaml: 6 steps, 7 vectors" in out and "nothing ran" in out
    assert not (project / "d").exists() and not (project / "calls.log").exists()
    assert cli("run", "sequences/unknown_role.yaml", "--dry-run") == 4  # same checks as a real run


@pytest.mark.parametrize("case", ["flag", "env", "litmus_yaml", "default"])
def test_data_dir_resolution(case: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("LITMUS_DATA_DIR", str(tmp_path / "from_env"))
    (project / "litmus.yaml").write_text((project / "litmus.yaml").read_text() + "data_dir: from_yaml\n")
    args = ["run", str(project / "sequences" / "retry.yaml")]
    if case == "flag":
        args += ["--data-dir", str(tmp_path / "from_flag")]
        expected = tmp_path / "from_flag"
    elif case == "env":
        expected = tmp_path / "from_env"
    elif case == "litmus_yaml":
        monkeypatch.delenv("LITMUS_DATA_DIR")
        expected = project / "from_yaml"  # relative to the project root, not the cwd
    else:
        monkeypatch.delenv("LITMUS_DATA_DIR")
        (project / "litmus.yaml").write_text("name: run-tests\nstation: bench\n")
        expected = cwd / "data"
    assert cli(*args) == 0
    written = list((expected / "runs").glob("*/*.parquet"))
    assert len(written) == 1
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z\.parquet", written[0].name)  # no serial: no suffix
    others = [p for p in (tmp_path / "from_flag", tmp_path / "from_env", project / "from_yaml", cwd / "data")
              if p != expected]
    assert not any(p.exists() for p in others)


def test_young_collections_are_rarer_during_a_run_and_restored_after(project: Path, tmp_path: Path) -> None:
    """station_process() collects less often while a run executes (bench/RESULTS.md) and puts
    the interpreter's setting back afterwards, even when the run fails."""
    import gc

    from litmus_seq.run.process import RUN_GC_THRESHOLD

    seen: list[int] = []

    class Watcher:
        @hookimpl
        def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
            seen.append(gc.get_threshold()[0])

    before = gc.get_threshold()
    seq = project / "sequences" / "fail.yaml"
    ctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=ctx)
    station = ctx.load_station(plan.station_ref or ctx.config.station)
    with open_session(ctx, station, tmp_path / "data", [Watcher()]) as session:
        with station_process():
            result = run_plan(session, plan, dut_serial="SN-GC")
    assert result.outcome == "failed"
    assert RUN_GC_THRESHOLD in seen  # deliveries inside the run saw the run's setting
    assert gc.get_threshold() == before
    assert not gc.isenabled() or gc.get_freeze_count() == 0  # the freeze is undone too


def test_python_steps_call_their_own_projects_code(tmp_path: Path) -> None:
    """Two projects with a ``checks`` package each, in one process (a server, a test suite):
    each sequence calls its own project's function, whichever was imported first."""
    from litmus_seq.run.executor import import_callable

    roots = []
    for name in ("one", "two"):
        root = tmp_path / name
        (root / "checks").mkdir(parents=True)
        (root / "checks" / "__init__.py").write_text("")
        (root / "checks" / "which.py").write_text(f"def which(ctx=None):\n    return {name!r}\n")
        roots.append(root)
    assert import_callable("checks.which:which", roots[0])() == "one"
    assert import_callable("checks.which:which", roots[1])() == "two"
    assert import_callable("json:dumps", roots[1])([1]) == "[1]"  # not the project's: left alone
