"""The calibration gate (issue 13 item 1), end to end: real ``litmus-seq run`` processes on
``tests/data/drivers/project`` (a local ``lab.meter`` driver that can report calibration), rows
read back with DuckDB, warnings from the event store."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from litmus_seq.drivers.calibration import driver_calibration, status
from litmus_seq.errors import InstrumentError

DATA = Path(__file__).resolve().parent / "data" / "drivers" / "project"
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]
TODAY = dt.date.today()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(DATA, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def station(project: Path, meter: str) -> None:
    """Replace the meter role's extra lines (settings, calibration, ...) in the station file."""
    (project / "stations" / "bench.yaml").write_text(
        "id: bench\ninstruments:\n  meter:\n    driver: lab.meter\n" + meter
        + "  dut:\n    driver: mock\n    mock: {read_id: DUT-7}\n")


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}
    return subprocess.run([*CLI, *args], cwd=project, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def rows(data: Path) -> list[dict[str, Any]]:
    import duckdb

    rel = duckdb.sql(f"select * from read_parquet('{data}/runs/*/*.parquet', union_by_name=true) "
                     "order by record_type = 'run' desc, measurement_name")
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def warnings_in_event_store(data: Path) -> list[str]:
    from litmus_seq.stores.events import read_events

    found = []
    for path in sorted((data / "events").rglob("*.arrow")):
        found += [e["message"] for e in read_events(path) if e["event_type"] == "diagnostic.warning"]
    return found


# --------------------------------------------------------------------------- the gate


def test_expired_calibration_blocks_before_anything_is_touched(project: Path) -> None:
    station(project, "    calibration: {due: 2020-01-01, certificate: CAL-OLD-1}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("stations/bench.yaml:5:24: instruments.meter.calibration.due: role 'meter': "
                               "calibration expired on 2020-01-01 (certificate CAL-OLD-1); ")
    assert "--allow-expired-cal" in lines[0] and "allow_expired_cal: true" in lines[0]
    assert not (project / "data").exists()
    dry = cli(project, "run", "sequences/meter.yaml", "--dry-run")
    assert dry.returncode == 4 and "CAL-OLD-1" in dry.stderr


def test_allow_expired_cal_runs_and_records_the_exception_on_run_and_measurement_rows(project: Path) -> None:
    station(project, "    calibration: {due: 2020-01-01, certificate: CAL-OLD-1}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data", "--allow-expired-cal")
    assert proc.returncode == 0, proc.stderr
    assert "warning: role 'meter': calibration expired on 2020-01-01" in proc.stderr
    got = rows(project / "data")
    run = got[0]
    assert run["record_type"] == "run" and run["run_outcome"] == "passed"
    exceptions = dict(zip(run["step_instruments_name"], run["step_instruments_cal_exception"]))
    assert exceptions["dut"] is None
    assert exceptions["meter"] == ("calibration expired on 2020-01-01 (certificate CAL-OLD-1); "
                                   "allowed by --allow-expired-cal")
    by_name = {r["measurement_name"]: r for r in got if r["record_type"] == "measurement"}
    assert by_name["reading"]["instrument_cal_exception"] == exceptions["meter"]
    assert by_name["reading"]["instrument_cal_due"] == "2020-01-01"
    assert by_name["dut_id"]["instrument_cal_exception"] is None


def test_allow_expired_cal_on_the_role(project: Path) -> None:
    station(project, "    allow_expired_cal: true\n    calibration: {due: 2020-01-01, certificate: CAL-OLD-2}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert proc.returncode == 0, proc.stderr
    reading = [r for r in rows(project / "data") if r["measurement_name"] == "reading"][0]
    assert reading["instrument_cal_exception"].endswith("allowed by allow_expired_cal on the role")


def test_a_due_date_inside_the_warning_window_warns(project: Path) -> None:
    due = TODAY + dt.timedelta(days=5)
    station(project, f"    calibration: {{due: {due.isoformat()}, certificate: CAL-SOON}}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert proc.returncode == 0, proc.stderr
    assert f"warning: role 'meter': calibration due on {due.isoformat()} (certificate CAL-SOON), in 5 days" in proc.stderr
    (project / "stations" / "bench.yaml").write_text(
        (project / "stations" / "bench.yaml").read_text().replace("id: bench\n", "id: bench\ncalibration_warn_days: 3\n"))
    quiet = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


def test_calibration_reported_by_the_driver_is_used_and_can_block(project: Path) -> None:
    station(project, "    settings: {reported_due: '2099-05-01', reported_certificate: CAL-INST}\n")
    ok = cli(project, "run", "sequences/meter.yaml", "--data-dir", "ok")
    assert ok.returncode == 0, ok.stderr
    reading = [r for r in rows(project / "ok") if r["measurement_name"] == "reading"][0]
    assert (reading["instrument_cal_due"], reading["instrument_cal_certificate"]) == ("2099-05-01", "CAL-INST")

    station(project, "    settings: {reported_due: '2019-05-01', reported_certificate: CAL-INST}\n")
    bad = cli(project, "run", "sequences/meter.yaml", "--data-dir", "bad")
    assert bad.returncode == 3  # the instrument was connected to learn it: errored, no step ran
    got = rows(project / "bad")
    assert got[0]["run_outcome"] == "errored"
    assert "role 'meter': calibration expired on 2019-05-01 (certificate CAL-INST) (reported by the instrument)" \
        in got[0]["run_error"]
    assert all(r["step_outcome"] is None for r in got if r["record_type"] == "step")
    assert not [r for r in got if r["record_type"] == "measurement"]


def test_station_file_wins_and_a_disagreement_is_a_warning(project: Path) -> None:
    station(project, "    settings: {reported_due: '2098-01-01', reported_certificate: CAL-INST}\n"
                     "    calibration: {due: 2099-01-01, certificate: CAL-FILE}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert proc.returncode == 0, proc.stderr
    reading = [r for r in rows(project / "data") if r["measurement_name"] == "reading"][0]
    assert (reading["instrument_cal_due"], reading["instrument_cal_certificate"]) == ("2099-01-01", "CAL-FILE")
    (warning,) = warnings_in_event_store(project / "data")
    assert warning == ("role 'meter': the station file says calibration due 2099-01-01 (certificate CAL-FILE), "
                       "the instrument says 2098-01-01 (certificate CAL-INST) (reported by the instrument); "
                       "using the station file's")


def test_mocked_roles_are_not_gated(project: Path) -> None:
    station(project, "    calibration: {due: 2020-01-01, certificate: CAL-OLD-1}\n"
                     "    mock: {read: 1.5, identity: {model: fake}}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data", "--mock", "meter")
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- units


def test_status_judges_dates() -> None:
    assert status("2020-01-01", "C", "station", TODAY).expired
    assert not status(TODAY.isoformat(), "C", "station", TODAY).expired  # due today: still in date
    assert status(TODAY, None, "station", TODAY).days_left == 0
    assert status("not a date", None, "instrument", TODAY).due is None


def test_a_failing_calibration_read_is_a_warning_not_a_crash() -> None:
    class Inst:
        driver, calibration, allow_expired_cal = "x", None, False

    class Broken:
        def calibration(self) -> dict:
            raise OSError("no such register")

    record, warnings = driver_calibration("m", Inst(), Broken(), False, allow_all=False, window=30)
    assert record["due"] is None and "OSError: no such register" in warnings[0]

    class Expired:
        def calibration(self) -> dict:
            return {"due": "2001-01-01"}

    with pytest.raises(InstrumentError, match="calibration expired on 2001-01-01"):
        driver_calibration("m", Inst(), Expired(), False, allow_all=False, window=30)
    record, _ = driver_calibration("m", Inst(), Expired(), False, allow_all=True, window=30)
    assert record["exception"].endswith("allowed by --allow-expired-cal")
