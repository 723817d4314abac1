"""End-to-end tests of ``litmus-seq run`` (issue "Execution spine"), each in a real subprocess.

Every test runs the CLI as an operator would (``python -m litmus_seq.cli.main run ...``) on its own
copy of a small project (``tests/data/run/project``: mock roles plus a local plugin driver,
``plugins/rig.py``, that logs every call to ``calls.log`` so a test can prove a cleanup call
reached the instrument from outside the process), then checks the exit code *and* what was left
on disk: the run's parquet file read with DuckDB and the Arrow event store read with
:func:`litmus_seq.stores.events.read_events`. Interrupt tests poll the event store with a deadline
instead of sleeping blindly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent / "data" / "run"
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A private copy of the run-test project (the rig's calls.log is per copy)."""
    dest = tmp_path / "proj"
    shutil.copytree(DATA / "project", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "PYVISA_LIBRARY")}
    env.update(extra)
    return env


def run_cli(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env or _env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start_cli(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def rows(data_dir: Path, where: str = "true", order: str = "step_index, vector_index, vector_retry") -> list[dict[str, Any]]:
    """Rows of every run file under ``data_dir`` as dicts (DuckDB, ``union_by_name``)."""
    import duckdb

    glob = (data_dir / "runs" / "**" / "*.parquet").as_posix()
    con = duckdb.connect()
    # through Arrow: DuckDB's own conversion of TIMESTAMPTZ to Python needs pytz
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}', union_by_name = true) WHERE {where} ORDER BY {order}")
    return rel.to_arrow_table().to_pylist()


def steps_by_path(data_dir: Path) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["step_path"], r["vector_index"]): r for r in rows(data_dir, "record_type = 'step'")}


def events(data_dir: Path) -> list[dict[str, Any]]:
    from litmus_seq.stores.events import iter_event_files, read_events

    out: list[dict[str, Any]] = []
    for path in iter_event_files(data_dir):
        out.extend(read_events(path))
    return out


def wait_until(predicate: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 30) -> None:
    """Poll ``predicate`` until it holds; fail early (with the output) if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process exited ({proc.returncode}) before {what}\nstdout:\n{out}\nstderr:\n{err}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def step_started(data_dir: Path, step_path: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return any(e["event_type"] == "test.step_started" and e.get("step_path") == step_path
                       for e in events(data_dir))
        except Exception:  # the file may be mid-write; try again
            return False

    return check


def calls(project: Path) -> list[str]:
    log = project / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"process did not end within {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err


# --------------------------------------------------------------------------- 1. pass


def test_pass_on_simulated_bench_records_guardbanded_limits_and_traceability(example_project: Path) -> None:
    data = example_project / "out"
    res = run_cli(example_project, "run", "sequences/power_board_fct.yaml", "--dut", "SN001", "--yes",
                  "--data-dir", str(data), "--operator", "alice", "--phase", "production")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    files = list((data / "runs").glob("*/*_SN001.parquet"))
    assert len(files) == 1 and str(files[0]) in res.stdout

    all_rows = rows(data, order="record_type, step_index, vector_index, vector_retry")
    kinds = [r["record_type"] for r in all_rows]
    assert kinds.count("run") == 1
    assert kinds.count("step") >= 19 and kinds.count("measurement") >= 20
    assert {r["run_outcome"] for r in all_rows} == {"passed"}
    run = next(r for r in all_rows if r["record_type"] == "run")
    assert run["dut_serial"] == "SN001" and run["operator_name"] == "alice" and run["test_phase"] == "production"
    assert run["sequence_name"] == "power_board_fct" and run["station_id"] == "sim_bench"
    assert run["product_id"] == "power_board" and run["step_path"] is None and run["measurement_name"] is None

    steps = steps_by_path(data)
    assert steps[("main/output_voltage", 3)]["step_outcome"] == "passed"
    assert steps[("main/output_voltage", 3)]["step_vector_count"] == 4
    assert steps[("main/thermal", 0)]["step_kind"] == "group"
    assert steps[("cleanup/2", 0)]["step_outcome"] == "done"
    assert all(r["step_started_at"] is not None for r in steps.values())

    meas = rows(data, "record_type = 'measurement' AND measurement_name = 'rail_3v3' AND step_path = 'main/output_voltage'")
    assert len(meas) == 4
    m = meas[0]
    # spec 3.135..3.465 with the sequence's 10 % guardband: 0.0165 inward on each side
    assert m["limit_spec_low"] == pytest.approx(3.135) and m["limit_spec_high"] == pytest.approx(3.465)
    assert m["limit_low"] == pytest.approx(3.1515) and m["limit_high"] == pytest.approx(3.4485)
    assert m["limit_guardband_pct"] == pytest.approx(10.0) and m["limit_source"] == "spec"
    assert m["measurement_value"] == pytest.approx(3.3) and m["measurement_outcome"] == "passed"
    assert m["measurement_units"] == "V" and m["dut_pin"] is not None
    # traceability: the pyvisa-sim DMM's *IDN? and the station's calibration data
    assert m["instrument_name"] == "dmm" and m["instrument_resource"] == "TCPIP::10.0.0.6::INSTR"
    assert (m["instrument_manufacturer"], m["instrument_model"], m["instrument_serial"], m["instrument_firmware"]) == (
        "Litmus Sim", "DMM-6500", "SIM-DMM-0001", "2.0.1")
    assert str(m["instrument_cal_due"]) == "2031-01-15" and m["instrument_cal_certificate"] == "CAL-SIM-DMM-0001"
    assert m["instrument_mocked"] is False
    assert set(m["step_instruments_name"]) == {"psu", "dmm", "eload", "dut", "chamber"}
    assert m["in_vin"] in (5.0, 12.0) and m["in_load"] in (0.1, 0.5)

    fw = rows(data, "record_type = 'measurement' AND measurement_name = 'fw_version'")[0]
    assert fw["measurement_text"] == "1.4.2" and fw["limit_equals"] == "1.4.2" and fw["instrument_mocked"] is True

    connected = {e["role"]: e for e in events(data) if e["event_type"] == "fixture.instrument_connected"}
    assert connected["psu"]["identity"]["model"] == "PSU-3005" and connected["psu"]["mocked"] is False


# --------------------------------------------------------------------------- 2. fail


def test_failing_measurement_exits_1_and_fails_step_and_run(project: Path) -> None:
    data = project / "d"
    res = run_cli(project, "run", "sequences/fail.yaml", "--dut", "SN2", "--data-dir", str(data))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "  main/rail_low: rail = 2.0 V < low" in res.stdout  # the failure summary names it

    bad = rows(data, "record_type = 'measurement' AND step_path = 'main/rail_low'")
    assert len(bad) == 1
    assert bad[0]["measurement_outcome"] == "failed" and bad[0]["measurement_value"] == 2.0
    assert bad[0]["limit_low"] == pytest.approx(3.03) and bad[0]["step_outcome"] == "failed"
    steps = steps_by_path(data)
    assert steps[("main/rail_low", 0)]["step_outcome"] == "failed"
    assert steps[("main/rail_low", 0)]["vector_outcome"] == "failed"
    assert steps[("main/rail_ok", 0)]["step_outcome"] == "passed"
    assert steps[("main/firmware", 0)]["step_outcome"] == "passed"  # on_fail: continue
    assert {r["run_outcome"] for r in rows(data)} == {"failed"}
    assert "output_off" in calls(project)


# --------------------------------------------------------------------------- 3. instrument fault


def test_instrument_exception_exits_3_with_diagnostic_and_cleanup(project: Path) -> None:
    data = project / "d"
    res = run_cli(project, "run", "sequences/error.yaml", "--data-dir", str(data))
    assert res.returncode == 3, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr

    steps = steps_by_path(data)
    trip = steps[("main/trip", 0)]
    assert trip["step_outcome"] == "errored"
    assert "overcurrent protection tripped at 2.5 A" in trip["step_error"]
    assert steps[("main/firmware", 0)]["step_outcome"] == "passed"
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"
    assert steps[("cleanup/2", 0)]["step_outcome"] == "done"
    assert {r["run_outcome"] for r in rows(data)} == {"errored"}

    errs = [e for e in events(data) if e["event_type"] == "diagnostic.error"]
    assert len(errs) == 1 and errs[0]["step_path"] == "main/trip"
    assert "RuntimeError: overcurrent protection tripped" in errs[0]["traceback"]
    assert "rig.py" in errs[0]["traceback"]  # the traceback reaches into the driver
    log = calls(project)
    assert log.index("output_off") > log.index("trip") and log[-1] == "close"


# --------------------------------------------------------------------------- 4. on_fail: stop


def test_on_fail_stop_leaves_never_ran_rows_and_runs_cleanup(project: Path) -> None:
    data = project / "d"
    res = run_cli(project, "run", "sequences/stop.yaml", "--data-dir", str(data))
    assert res.returncode == 1, res.stdout + res.stderr
    steps = steps_by_path(data)
    assert steps[("main/bad", 0)]["step_outcome"] == "failed"
    never = [r for (path, _), r in steps.items() if path in ("main/never_a", "main/never_b")]
    assert len(never) == 4  # never_a: 1 vector, never_b: 3 planned vectors
    for r in never:
        assert r["step_outcome"] is None and r["vector_outcome"] is None
        assert r["step_started_at"] is None and r["step_ended_at"] is None
    assert steps[("main/never_b", 2)]["step_vector_count"] == 3
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"
    assert "output_off" in calls(project) and not any(c.startswith("set_voltage") for c in calls(project))


# --------------------------------------------------------------------------- 5. interrupts


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_mid_run_terminates_and_runs_cleanup(project: Path, sig: signal.Signals) -> None:
    data = project / "d"
    proc = start_cli(project, "run", "sequences/long.yaml", "--dut", "SN5", "--data-dir", str(data))
    wait_until(step_started(data, "main/long_wait"), proc, "main/long_wait to start")
    t0 = time.monotonic()
    proc.send_signal(sig)
    code, out, err = finish(proc)
    assert code == 2, out + err
    assert time.monotonic() - t0 < 20  # the 60 s wait was cut short
    assert "Traceback" not in err

    steps = steps_by_path(data)
    assert steps[("main/first", 0)]["step_outcome"] == "passed"
    assert steps[("main/long_wait", 0)]["step_outcome"] == "terminated"
    assert steps[("main/after", 0)]["step_outcome"] is None
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"
    assert {r["run_outcome"] for r in rows(data)} == {"terminated"}
    assert calls(project)[-2:] == ["output_off", "close"]


def test_second_sigint_during_cleanup_cannot_skip_cleanup_calls(project: Path) -> None:
    """A second Ctrl-C while a cleanup call runs waits for that call, and the remaining cleanup
    calls still run (an electronic load is never left on); the console says so (issue 9.8)."""
    seq = project / "sequences" / "slow_cleanup.yaml"
    seq.write_text(seq.read_text().replace("seconds: 60", "seconds: 2"))
    data = project / "d"
    proc = start_cli(project, "run", "sequences/slow_cleanup.yaml", "--data-dir", str(data))
    wait_until(step_started(data, "main/long_wait"), proc, "main/long_wait to start")
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: "slow_off started" in calls(project), proc, "the slow cleanup call")
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 2, out + err
    assert "Traceback" not in err
    assert "cleanup calls still run" in err and "only SIGKILL skips them" in err

    steps = steps_by_path(data)
    assert steps[("main/long_wait", 0)]["step_outcome"] == "terminated"
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"  # the call ran to its end
    assert steps[("cleanup/2", 0)]["step_outcome"] == "done"  # and the next cleanup call ran
    run = rows(data, "record_type = 'run'")[0]
    assert run["run_outcome"] == "terminated" and run["run_ended_at"] is not None
    assert "cleanup" in run["run_error"]
    log = calls(project)
    assert log.index("slow_off started") < log.index("slow_off done") < log.index("output_off")
    ended = [e for e in events(data) if e["event_type"] == "run.ended"]
    assert [e["outcome"] for e in ended] == ["terminated"]


def test_a_second_sigterm_cuts_a_cleanup_wait_short_but_not_the_calls_after_it(project: Path) -> None:
    seq = project / "sequences" / "slow_cleanup.yaml"
    seq.write_text(seq.read_text().replace("  - call: psu.slow_off\n    args: {seconds: 60}\n",
                                           "  - wait: 60\n"))
    data = project / "d"
    proc = start_cli(project, "run", "sequences/slow_cleanup.yaml", "--data-dir", str(data))
    wait_until(step_started(data, "main/long_wait"), proc, "main/long_wait to start")
    proc.send_signal(signal.SIGTERM)
    wait_until(step_started(data, "cleanup/1"), proc, "the cleanup wait")
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 2, out + err
    steps = steps_by_path(data)
    assert steps[("cleanup/2", 0)]["step_outcome"] == "done"
    assert "output_off" in calls(project)


# --------------------------------------------------------------------------- 6. retry


def test_retry_that_passes_keeps_both_attempts(project: Path) -> None:
    data = project / "d"
    res = run_cli(project, "run", "sequences/retry.yaml", "--data-dir", str(data))
    assert res.returncode == 0, res.stdout + res.stderr
    meas = rows(data, "record_type = 'measurement'")
    assert [(m["vector_retry"], m["measurement_value"], m["measurement_outcome"]) for m in meas] == [
        (0, 4.0, "failed"), (1, 3.3, "passed")]
    assert {m["step_outcome"] for m in meas} == {"passed"}
    steps = steps_by_path(data)
    assert len(steps) == 1 and steps[("main/settle", 0)]["step_outcome"] == "passed"
    assert steps[("main/settle", 0)]["vector_outcome"] == "passed"
    assert "1 vector " in res.stdout  # the console counts a retried vector once


# --------------------------------------------------------------------------- 7. prompts


def _with_answerer(project: Path, name: str) -> None:
    shutil.copy(DATA / "answerers" / f"{name}.py", project / "plugins" / f"answer_{name}.py")


def test_prompts_answered_by_a_local_plugin_are_recorded(project: Path) -> None:
    _with_answerer(project, "values")
    data = project / "d"
    res = run_cli(project, "run", "sequences/prompts.yaml", "--data-dir", str(data))
    assert res.returncode == 0, res.stdout + res.stderr
    meas = {m["measurement_name"]: m for m in rows(data, "record_type = 'measurement'")}
    assert (meas["led"]["measurement_text"], meas["led"]["measurement_outcome"]) == ("true", "passed")
    assert (meas["colour"]["measurement_text"], meas["colour"]["measurement_outcome"]) == ("green", "done")
    assert (meas["batch"]["measurement_text"], meas["batch"]["step_path"]) == ("LOT-77", "main/batch")
    evs = events(data)
    opened = [e for e in evs if e["event_type"] == "dialog.opened"]
    assert [(e["prompt_type"], e["step_path"]) for e in opened] == [
        ("confirm", "main/led"), ("choice", "main/colour"), ("input", "main/batch")]
    assert opened[0]["timeout_s"] == 5 and opened[1]["choices"] == ["red", "green", "blue"]
    responded = [e for e in evs if e["event_type"] == "dialog.responded"]
    assert [(e["prompt_id"], e["response"], e["timed_out"]) for e in responded] == [
        (opened[0]["prompt_id"], True, False), (opened[1]["prompt_id"], "green", False),
        (opened[2]["prompt_id"], "LOT-77", False)]


def test_prompt_answered_abort_terminates_with_cleanup(project: Path) -> None:
    _with_answerer(project, "abort")
    data = project / "d"
    res = run_cli(project, "run", "sequences/prompts.yaml", "--data-dir", str(data))
    assert res.returncode == 2, res.stdout + res.stderr
    steps = steps_by_path(data)
    assert steps[("main/led", 0)]["step_outcome"] == "terminated"
    assert steps[("main/colour", 0)]["step_outcome"] is None
    assert steps[("main/after", 0)]["step_outcome"] is None
    assert steps[("cleanup/1", 0)]["step_outcome"] == "done"
    assert {r["run_outcome"] for r in rows(data)} == {"terminated"}
    assert "output_off" in calls(project)


def test_prompt_timeout_errors_the_step_never_fails_the_dut(project: Path) -> None:
    _with_answerer(project, "timeout")
    data = project / "d"
    res = run_cli(project, "run", "sequences/prompts.yaml", "--data-dir", str(data))
    assert res.returncode == 3, res.stdout + res.stderr
    assert {r["run_outcome"] for r in rows(data)} == {"errored"}
    steps = steps_by_path(data)
    assert steps[("main/led", 0)]["step_outcome"] == "errored"
    assert "timed out after 5 s" in steps[("main/led", 0)]["step_error"]
    assert steps[("main/after", 0)]["step_outcome"] == "passed"
    responded = [e for e in events(data) if e["event_type"] == "dialog.responded"]
    assert len(responded) == 3 and all(e["timed_out"] is True and e["response"] is None for e in responded)


# --------------------------------------------------------------------------- 8. kill -9 + recover


def test_kill_9_keeps_finished_steps_in_the_event_store_and_recover_seals_aborted(project: Path) -> None:
    data = project / "d"
    proc = start_cli(project, "run", "sequences/long.yaml", "--dut", "SN9", "--data-dir", str(data))
    wait_until(step_started(data, "main/long_wait"), proc, "main/long_wait to start")
    proc.send_signal(signal.SIGKILL)
    code, _, _ = finish(proc)
    assert code == -signal.SIGKILL
    assert not list((data / "runs").glob("**/*.parquet"))  # nothing sealed it

    evs = events(data)  # readable with pyarrow despite the kill
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))  # no hole
    ended = {e["step_path"]: e["outcome"] for e in evs if e["event_type"] == "test.step_ended"}
    assert ended == {"setup/1": "done", "main/first": "passed", "main/second": "passed"}
    types = [e["event_type"] for e in evs]
    for t in ("session.started", "run.started", "fixture.instrument_connected", "test.steps_discovered"):
        assert t in types
    assert "run.ended" not in types
    assert sum(1 for e in evs if e["event_type"] == "test.measurement") == 2

    rec = run_cli(project, "recover", "--data-dir", str(data))
    assert rec.returncode == 0, rec.stdout + rec.stderr
    steps = steps_by_path(data)
    assert {r["run_outcome"] for r in rows(data)} == {"aborted"}
    assert steps[("main/first", 0)]["step_outcome"] == "passed"
    assert steps[("main/second", 0)]["step_outcome"] == "passed"
    assert steps[("main/after", 0)]["step_outcome"] is None
    assert steps[("cleanup/1", 0)]["step_outcome"] is None  # cleanup never ran: rig state unknown
    assert len(rows(data, "record_type = 'measurement'")) == 2
    assert "output_off" not in calls(project)


# --------------------------------------------------------------------------- usage errors


def test_preflight_error_is_one_located_line_and_touches_nothing(project: Path) -> None:
    data = project / "d"
    res = run_cli(project, "run", "sequences/unknown_method.yaml", "--data-dir", str(data))
    assert res.returncode == 4
    assert res.stderr.splitlines() == [
        "sequences/unknown_method.yaml:6:11: psu.output_onn: driver 'rig.psu' has no method "
        "'output_onn' (did you mean 'output_on'?)"]
    assert not data.exists() and calls(project) == []  # nothing ran, nothing was connected



def test_config_errors_of_run_name_where_to_fix_them(tmp_path: Path) -> None:
    """--station typo, a station driver typo (once, at the station's driver: line), no station."""
    repo = Path(__file__).resolve().parent.parent
    proj = tmp_path / "p"
    for name in ("sequences", "products", "stations", "checks"):
        shutil.copytree(repo / name, proj / name)
    text = (proj / "stations" / "sim_bench.yaml").read_text()
    (proj / "stations" / "typo.yaml").write_text(
        text.replace("id: sim_bench", "id: typo").replace("driver: scpi.dmm", "driver: scpi.dmmm"))
    seq = str(proj / "sequences" / "power_board_fct.yaml")
    proc = subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", seq, "--station", "nope"],
                          capture_output=True, text=True, cwd=proj)
    assert proc.returncode == 4 and proc.stderr.startswith("--station nope: station 'nope' not found")
    proc = subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", seq, "--station", "typo", "--yes"],
                          capture_output=True, text=True, cwd=proj)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 4 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("stations/typo.yaml:") and "unknown driver 'scpi.dmmm' (did you mean 'scpi.dmm'?)" in lines[0]
    assert not (proj / "data").exists()  # nothing ran, nothing written
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "bare.yaml").write_text("sequence: x\nsteps:\n  - call: psu.output_on\n  - call: psu.output_off\n")
    proc = subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", "bare.yaml"],
                          capture_output=True, text=True, cwd=lone)
    assert proc.returncode == 4 and proc.stderr.strip() == (
        "bare.yaml: no station: the sequence calls instruments (psu); give --station ID, or "
        "`station:` in the sequence or in litmus.yaml")
