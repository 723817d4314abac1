"""``robot --listener litmus_seq.robot.Listener``: suites become runs and tests steps, with no
change to the suites (run by ``robot.run`` on a copy of the example project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from litmus_seq.robot.listener import Listener, failure_outcome
from robot_helpers import events, robot_project, rows, run_robot, write_suite

LISTENER = "litmus_seq.robot.Listener:station=sim_bench:dut_serial=SN-L1:product=power_board:guardband_pct=10"


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LITMUS_DATA_DIR", raising=False)
    return robot_project(example_project)


def test_failure_outcome_tells_assertions_from_errors() -> None:
    assert failure_outcome(AssertionError("x")) == "failed"
    assert failure_outcome(ZeroDivisionError()) == "errored"
    assert failure_outcome(None) == "errored"  # a failure whose cause is unknown is not a verdict


def test_listener_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"unknown option 'statoin' \(did you mean 'station'\?\)"):
        Listener("statoin=sim_bench")
    with pytest.raises(ValueError, match="expected name=value"):
        Listener("sim_bench")
    assert Listener("station=sim_bench", dut_serial="X").options == {"station": "sim_bench", "dut_serial": "X"}


def test_plain_suite_becomes_a_run_with_a_step_per_test(project: Path) -> None:
    suite = write_suite(project, "plain.robot", """
        *** Test Cases ***
        Passes
            Should Be Equal    1    1
        Asserts
            Should Be Equal    1    2
        Crashes
            Evaluate    1/0
        Warns
            Log    probe drifting    WARN
        Is Skipped
            Skip    not on this bench
        """)
    rc, result, console = run_robot(project, suite, listener=LISTENER)
    assert rc == 2, console
    data = rows(project / "data")
    run = next(r for r in data if r["record_type"] == "run")
    assert (run["dut_serial"], run["station_id"], run["product_id"]) == ("SN-L1", "sim_bench", "power_board")
    assert run["sequence_name"] == "Plain" and run["run_outcome"] == "errored"
    steps = {r["step_path"]: (r["step_outcome"], r["step_error"]) for r in data if r["record_type"] == "step"}
    assert steps["main/Passes"] == ("passed", None)
    assert steps["main/Asserts"] == ("failed", "1 != 2")
    assert steps["main/Crashes"][0] == "errored" and "ZeroDivisionError" in steps["main/Crashes"][1]
    assert steps["main/Warns"][0] == "passed"
    assert steps["main/Is Skipped"] == ("skipped", "not on this bench")
    assert any(e["message"] == "probe drifting" and e["step_path"] == "main/Warns"
               for e in events(project / "data", "diagnostic.warning"))


def test_exitonfailure_leaves_never_ran_rows(project: Path) -> None:
    suite = write_suite(project, "stop.robot", """
        *** Test Cases ***
        One
            No Operation
        Two
            Fail    broken
        Three
            No Operation
        """)
    run_robot(project, suite, listener=LISTENER, exitonfailure=True)
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert steps == {"main/One": "passed", "main/Two": "failed", "main/Three": None}
    assert rows(project / "data", "record_type = 'run'")[0]["run_outcome"] == "errored"


def test_each_suite_with_tests_is_its_own_run(project: Path) -> None:
    write_suite(project, "suites/first.robot", """
        *** Test Cases ***
        A
            No Operation
        """)
    write_suite(project, "suites/second.robot", """
        *** Test Cases ***
        B
            No Operation
        C
            No Operation
        """)
    rc, _, console = run_robot(project, project / "robot" / "suites", listener=LISTENER)
    assert rc == 0, console
    runs = rows(project / "data", "record_type = 'run'")
    assert sorted(r["sequence_name"] for r in runs) == ["Suites.First", "Suites.Second"]
    assert all(r["run_outcome"] == "passed" for r in runs)
    steps = sorted((r["sequence_name"], r["step_path"]) for r in rows(project / "data", "record_type = 'step'"))
    assert steps == [("Suites.First", "main/A"), ("Suites.Second", "main/B"), ("Suites.Second", "main/C")]


def test_library_keywords_record_into_the_listeners_run(project: Path) -> None:
    suite = write_suite(project, "both.robot", """
        *** Settings ***
        Library    litmus_seq.robot.LitmusSeq

        *** Test Cases ***
        Rail
            Call Instrument    psu    set_voltage    5.0
            Measure From    dmm.measure_dc_voltage    rail_3v3
        Start Run Is Refused
            Run Keyword And Expect Error    *already opened a run*    Start Run    dut_serial=other
        """)
    rc, result, console = run_robot(project, suite, listener=LISTENER)
    assert rc == 0, console
    data = rows(project / "data")
    assert len([r for r in data if r["record_type"] == "run"]) == 1
    m = [r for r in data if r["record_type"] == "measurement"]
    assert [(r["step_path"], r["measurement_name"], r["limit_high"], r["instrument_model"]) for r in m] == [
        ("main/Rail", "rail_3v3", 3.4485, "DMM-6500")]


def test_options_from_robot_variables(project: Path) -> None:
    suite = write_suite(project, "vars.robot", """
        *** Test Cases ***
        Only
            No Operation
        """)
    rc, _, console = run_robot(project, suite, listener="litmus_seq.robot.Listener",
                               variable=["DUT_SERIAL:SN-VAR", "OPERATOR:ana", "PHASE:rework"])
    assert rc == 0, console
    run = rows(project / "data", "record_type = 'run'")[0]
    assert (run["dut_serial"], run["operator_name"], run["test_phase"], run["station_id"]) == \
        ("SN-VAR", "ana", "rework", "sim_bench")  # the station from litmus.yaml
