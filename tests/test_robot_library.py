"""The ``LitmusSeq`` Robot Framework library: Robot runs suites (``robot.run``) on a copy of the
example project; the verdicts are read from ``output.xml`` and the rows from the run files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from litmus_seq.limits import Limit, resolve_limit
from litmus_seq.robot.library import convert, scalar
from robot_helpers import REPO, events, robot_project, rows, run_robot, statuses, write_suite

SETTINGS = """
*** Settings ***
Library           litmus_seq.robot.LitmusSeq    station=sim_bench
Suite Setup       Start Run    dut_serial=SN-R1    product=power_board    guardband_pct=10
Suite Teardown    End Run
"""


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LITMUS_DATA_DIR", raising=False)
    return robot_project(example_project)


# --------------------------------------------------------------------------- conversions


def test_scalar_reads_what_a_robot_string_spells() -> None:
    assert [scalar(s) for s in ("12", "3.3", "-2e-3", "true", "False", "1.4.2", "nan", "")] == \
        [12, 3.3, -0.002, True, False, "1.4.2", "nan", ""]
    assert scalar(5) == 5 and scalar(None) is None


@pytest.mark.parametrize(("limit", "text", "expected"), [
    ({"low": 3.1, "high": 3.5}, "3.30", 3.3),
    ({"low": 3.1, "high": 3.5}, "3.3 V", "3.3 V"),  # not a number: kept, judged errored
    ({"equals": True}, "yes", True),
    ({"equals": True}, "FALSE", False),
    ({"equals": True}, "maybe", "maybe"),
    ({"equals": 7}, "7", 7),
    ({"equals": "1.4.2"}, "1.4.2", "1.4.2"),
    ({"equals": "007"}, "007", "007"),
    ({"matches": "^1\\.4"}, "1.4.9", "1.4.9"),
    (None, "42", 42),
    (None, "0.5", 0.5),
    (None, "SN-1", "SN-1"),
])
def test_convert_to_the_limits_type(limit: Any, text: str, expected: Any) -> None:
    resolved = resolve_limit(Limit(**limit), source="step") if limit else None
    got = convert(text, resolved)
    assert got == expected and type(got) is type(expected)


# --------------------------------------------------------------------------- the example suite


def test_example_suite_passes_from_the_readme_command(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LITMUS_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "robot", "--outputdir", "data/robot", "robot/"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from robot.api import ExecutionResult

    result = ExecutionResult(str(project / "data" / "robot" / "output.xml"))
    assert result.suite.statistics.failed == 0 and result.suite.statistics.passed == 5
    got = rows(project / "data")
    run = next(r for r in got if r["record_type"] == "run")
    assert run["run_outcome"] == "passed" and run["dut_serial"] == "SN-ROBOT-0001"
    steps = [r["step_path"] for r in got if r["record_type"] == "step" and r["vector_index"] == 0]
    assert steps == ["main/Output Voltage", "main/Firmware", "main/Self Test", "main/Chamber Temperature",
                     "main/LED Check"]
    m = {(r["step_path"], r["vector_index"], r["measurement_name"]): r for r in got if r["record_type"] == "measurement"}
    hot = m[("main/Output Voltage", 3, "input_current")]  # vin 12 V: the 12 V band, guardbanded
    assert (hot["in_vin"], hot["in_load"], hot["limit_high"], hot["limit_spec_high"]) == (12.0, 0.5, 0.27, 0.3)
    assert hot["instrument_model"] == "PSU-3005" and hot["instrument_cal_certificate"] == "CAL-SIM-PSU-0001"
    assert m[("main/Self Test", 0, "self_test")]["measurement_text"] == "true"
    chamber = m[("main/Chamber Temperature", 0, "chamber_temperature")]
    assert (chamber["limit_low"], chamber["limit_high"], chamber["limit_source"], chamber["measurement_units"]) == \
        (15.0, 35.0, "step", "degC")
    assert chamber["in_chamber_setpoint"] == 25 and chamber["out_ambient"] == 25.0
    assert m[("main/LED Check", 0, "LED Check")]["measurement_outcome"] == "passed"


# --------------------------------------------------------------------------- verdicts


def test_failing_measurement_fails_its_test_readably_and_is_a_failed_row(project: Path) -> None:
    suite = write_suite(project, "fail.robot", SETTINGS, """
        *** Test Cases ***
        Rail Too High
            Measure    rail_3v3    3.7    units=V
            Log    never reached
        Firmware
            Measure    fw_version    1.4.1
        Still Runs
            Measure    self_test    true
        """)
    rc, result, _ = run_robot(project, suite)
    assert rc == 2
    got = statuses(result)
    status, message = got["Rail Too High"]
    assert status == "FAIL"
    assert message == ("rail_3v3 = 3.7 V: outside 3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10%) "
                       "[products.power_board.rail_3v3]")
    assert got["Firmware"] == ("FAIL", "fw_version = '1.4.1': outside x == '1.4.2' [products.power_board.fw_version]")
    assert got["Still Runs"][0] == "PASS"
    data = rows(project / "data")
    m = {r["measurement_name"]: r for r in data if r["record_type"] == "measurement"}
    assert m["rail_3v3"]["measurement_outcome"] == "failed" and m["rail_3v3"]["measurement_value"] == 3.7
    assert m["fw_version"]["measurement_outcome"] == "failed"
    steps = {r["step_path"]: r["step_outcome"] for r in data if r["record_type"] == "step"}
    assert steps == {"main/Rail Too High": "failed", "main/Firmware": "failed", "main/Still Runs": "passed"}
    assert next(r for r in data if r["record_type"] == "run")["run_outcome"] == "failed"


def test_errors_are_errored_and_assertions_failed(project: Path) -> None:
    suite = write_suite(project, "errors.robot", SETTINGS, """
        *** Test Cases ***
        Instrument Fault
            Call Instrument    psu    set_voltag    5
        Assertion
            Should Be Equal    1    2
        Python Error
            Evaluate    1/0
        Unjudgeable
            Measure    rail_3v3    three
        """)
    rc, result, _ = run_robot(project, suite)
    got = statuses(result)
    assert "did you mean 'set_voltage'" in got["Instrument Fault"][1]
    assert "cannot be judged" in got["Unjudgeable"][1]
    steps = {r["step_path"]: (r["step_outcome"], r["step_error"]) for r in rows(project / "data", "record_type = 'step'")}
    assert steps["main/Instrument Fault"][0] == "errored"
    assert steps["main/Assertion"] == ("failed", "1 != 2")
    assert steps["main/Python Error"][0] == "errored" and "ZeroDivisionError" in steps["main/Python Error"][1]
    assert steps["main/Unjudgeable"][0] == "errored"
    assert rows(project / "data", "record_type = 'run'")[0]["run_outcome"] == "errored"


def test_tests_not_run_after_exitonfailure_are_never_ran_rows(project: Path) -> None:
    suite = write_suite(project, "stop.robot", SETTINGS, """
        *** Test Cases ***
        First
            Measure    self_test    true
        Second
            Measure    rail_3v3    9
        Third
            Measure    self_test    true
        Fourth
            Measure    self_test    true
        """)
    rc, result, _ = run_robot(project, suite, exitonfailure=True)
    assert [s for s, _ in statuses(result).values()] == ["PASS", "FAIL", "FAIL", "FAIL"]
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert steps == {"main/First": "passed", "main/Second": "failed", "main/Third": None, "main/Fourth": None}
    run = rows(project / "data", "record_type = 'run'")[0]
    assert run["run_outcome"] == "errored" and "2 planned step(s)" in run["run_error"]


def test_warn_and_error_messages_become_diagnostic_events(project: Path) -> None:
    suite = write_suite(project, "log.robot", SETTINGS, """
        *** Test Cases ***
        Noisy
            Log    fixture clamp loose    WARN
            Log    relay stuck    ERROR
            Log    just info
            Measure    self_test    true
        """)
    rc, result, _ = run_robot(project, suite)
    assert rc == 0
    assert any(e["message"] == "fixture clamp loose" for e in events(project / "data", "diagnostic.warning"))
    assert any(e["message"] == "relay stuck" for e in events(project / "data", "diagnostic.error"))
    assert not any("just info" in str(e.get("message")) for e in events(project / "data", "diagnostic.warning"))
    assert rows(project / "data", "record_type = 'run'")[0]["run_outcome"] == "passed"


# --------------------------------------------------------------------------- keywords


def test_vectors_limits_steps_and_records(project: Path) -> None:
    sidecar = project / "robot" / "sidecar.yaml"
    sidecar.write_text("vectors: {vin: [5.0, 12.0]}\nlimits: {vin_readback: {nominal: 8.5, tolerance_pct: 50}}\n")
    suite = write_suite(project, "keywords.robot", """
        *** Settings ***
        Library    litmus_seq.robot.LitmusSeq

        *** Test Cases ***
        Whole Unit
            Open Station    sim_bench
            ${run_id}=    Start Run    dut_serial=SN-K    product=power_board    config=${CURDIR}/sidecar.yaml
            Should Match Regexp    ${run_id}    ^[0-9a-f]{32}$
            ${vectors}=    Get Vectors
            Length Should Be    ${vectors}    2
            Start Step    readback
            FOR    ${v}    IN    @{vectors}
                Start Vector    ${v}
                Call Instrument    psu    set_voltage    ${v}[vin]
                ${got}=    Measure From    psu.measure_voltage    vin_readback
                Should Be Equal As Numbers    ${got}    ${v}[vin]
                ${outcome}=    End Vector
                Should Be Equal    ${outcome}    passed
            END
            ${lim}=    Get Limit    vin_readback
            Should Be Equal    ${lim}[source]    step
            ${spec}=    Get Limit    rail_3v3
            Should Be Equal As Numbers    ${spec}[spec_low]    3.135
            ${none}=    Get Limit    not_a_spec
            Should Be Equal    ${none}    ${None}
            Record    note    checked
            ${outcome}=    End Step
            Should Be Equal    ${outcome}    passed
            ${zipped}=    Get Vectors    expand=zip    vin=5,12    load=0.1,0.2
            Should Be Equal As Numbers    ${zipped}[1][load]    0.2
            Start Step    too_low
            Run Keyword And Expect Error    vin_readback = 1.0: outside 4.25 ≤ x ≤ 12.75
            ...    Measure    vin_readback    1.0
            End Step
            ${outcome}=    End Run
            Should Be Equal    ${outcome}    failed
        """)
    rc, result, console = run_robot(project, suite)
    assert statuses(result)["Whole Unit"][0] == "PASS", console
    m = rows(project / "data", "record_type = 'measurement'")
    assert [(r["step_path"], r["in_vin"], r["measurement_outcome"]) for r in m] == [
        ("main/readback", 5.0, "passed"), ("main/readback", 12.0, "passed"), ("main/too_low", None, "failed")]


def test_prompt_operator_answers_from_variables_or_the_hook(project: Path) -> None:
    (project / "plugins" / "fixture_button.py").write_text(
        "import litmus_seq\n\n"
        "@litmus_seq.hookimpl\n"
        "def litmus_seq_prompt(prompt):\n"
        "    return 'FX-42' if prompt['prompt_type'] == 'input' else None\n")
    suite = write_suite(project, "prompts.robot", SETTINGS, """
        *** Variables ***
        ${LED_GREEN}    yes

        *** Test Cases ***
        From Variable
            ${a}=    Prompt Operator    Is the LED green?    answer=${LED_GREEN}
            Should Be Equal    ${a}    ${True}
        Operator Says No
            Prompt Operator    Is the LED green?    answer=no
        From The Hook
            ${id}=    Prompt Operator    Fixture id?    type=input
            Should Be Equal    ${id}    FX-42
        Nobody Answers
            Prompt Operator    Anyone there?
        """)
    rc, result, _ = run_robot(project, suite)
    got = statuses(result)
    assert got["From Variable"][0] == "PASS" and got["From The Hook"][0] == "PASS"
    assert got["Operator Says No"] == ("FAIL", "'Is the LED green?': the operator answered no")
    assert got["Nobody Answers"][0] == "FAIL" and "no answer" in got["Nobody Answers"][1]
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert steps == {"main/From Variable": "passed", "main/Operator Says No": "failed",
                     "main/From The Hook": "passed", "main/Nobody Answers": "errored"}
    responded = events(project / "data", "dialog.responded")
    assert [e["response"] for e in responded] == [True, False, "FX-42", None]


def test_a_run_never_ended_is_sealed_when_robot_ends(project: Path) -> None:
    suite = write_suite(project, "noend.robot", """
        *** Settings ***
        Library    litmus_seq.robot.LitmusSeq
        Suite Setup    Start Run    dut_serial=SN-NOEND

        *** Test Cases ***
        Only
            Measure    self_test    true
        """)
    rc, result, _ = run_robot(project, suite)
    assert rc == 0
    run = rows(project / "data", "record_type = 'run'")
    assert [(r["dut_serial"], r["run_outcome"]) for r in run] == [("SN-NOEND", "passed")]


def test_keywords_without_a_run_say_what_to_do(project: Path) -> None:
    suite = write_suite(project, "norun.robot", """
        *** Settings ***
        Library    litmus_seq.robot.LitmusSeq

        *** Test Cases ***
        No Run
            Measure    x    1
        """)
    rc, result, _ = run_robot(project, suite)
    assert statuses(result)["No Run"] == ("FAIL", "no run is open: call 'Start Run    dut_serial=...' first "
                                                  "(in a Suite Setup, so that each test is a step)")
    assert not (project / "data" / "runs").exists()


# --------------------------------------------------------------------------- same run, two front doors

TWIN_YAML = """
sequence: twin
product: power_board
station: sim_bench
guardband_pct: 10
steps:
  - name: Output Voltage
    vectors: {expand: product, vin: [5.0, 12.0], load: [0.1, 0.5]}
    do:
      - call: psu.set_voltage
        args: {volts: "${vin}"}
      - call: eload.set_current
        args: {amps: "${load}"}
      - measure: rail_3v3
        from: dmm.measure_dc_voltage
      - measure: input_current
        from: psu.measure_current
  - name: Firmware
    do:
      - measure: fw_version
        from: dut.read_firmware
      - measure: fw_family
        from: dut.read_firmware
"""

TWIN_ROBOT = """
*** Settings ***
Library           litmus_seq.robot.LitmusSeq    station=sim_bench
Suite Setup       Start Run    dut_serial=SN-TWIN    product=power_board    guardband_pct=10
Suite Teardown    End Run

*** Test Cases ***
Output Voltage
    ${vectors}=    Get Vectors    vin=5.0,12.0    load=0.1,0.5
    FOR    ${v}    IN    @{vectors}
        Start Vector    ${v}
        Call Instrument    psu    set_voltage    ${v}[vin]
        Call Instrument    eload    set_current    ${v}[load]
        Measure From    dmm.measure_dc_voltage    rail_3v3
        Measure From    psu.measure_current    input_current
        End Vector
    END
Firmware
    Measure From    dut.read_firmware    fw_version
    Measure From    dut.read_firmware    fw_family
"""

#: what must be equal between the two runs, measurement by measurement
COMPARED = (
    "step_path", "vector_index", "measurement_name", "measurement_value", "measurement_text", "measurement_units",
    "measurement_outcome", "limit_low", "limit_high", "limit_nominal", "limit_comparator", "limit_equals",
    "limit_pattern", "limit_spec_low", "limit_spec_high", "limit_guardband_pct", "limit_source",
    "characteristic_id", "spec_ref", "dut_pin", "fixture_connection", "instrument_name", "instrument_resource",
    "instrument_manufacturer", "instrument_model", "instrument_serial", "instrument_firmware",
    "instrument_cal_due", "instrument_cal_certificate", "instrument_mocked", "step_instruments_name",
    "step_instruments_serial", "step_instruments_cal_due", "in_vin", "in_load", "dut_serial", "product_id",
    "product_name", "product_revision", "dut_part_number", "station_id", "station_name", "fixture_id",
    "step_outcome", "vector_outcome", "run_outcome",
)


def test_robot_and_yaml_runs_of_the_same_steps_write_the_same_rows(project: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from litmus_seq.cli.main import main

    (project / "sequences" / "twin.yaml").write_text(TWIN_YAML)
    yaml_data, robot_data = tmp_path / "yaml_data", tmp_path / "robot_data"
    assert main(["run", str(project / "sequences" / "twin.yaml"), "--dut", "SN-TWIN",
                 "--data-dir", str(yaml_data)]) == 0
    suite = write_suite(project, "twin.robot", TWIN_ROBOT)
    monkeypatch.setenv("LITMUS_DATA_DIR", str(robot_data))
    rc, result, console = run_robot(project, suite)
    assert rc == 0, console
    a, b = rows(yaml_data), rows(robot_data)
    assert set(a[0]) == set(b[0]), f"columns differ: {set(a[0]) ^ set(b[0])}"
    ma = [{k: r[k] for k in COMPARED} for r in a if r["record_type"] == "measurement"]
    mb = [{k: r[k] for k in COMPARED} for r in b if r["record_type"] == "measurement"]
    assert len(ma) == 10
    for x, y in zip(ma, mb):
        assert x == y, {k: (x[k], y[k]) for k in COMPARED if x[k] != y[k]}
    assert len(ma) == len(mb)


def test_run_sequence_runs_a_yaml_sequence_as_one_keyword(project: Path) -> None:
    (project / "sequences" / "bad_fw.yaml").write_text(
        "sequence: bad_fw\nproduct: power_board\nstation: mock_bench\n"
        "steps:\n  - name: firmware\n    measure: fw_version\n    limit: {equals: '9.9.9'}\n    from: dut.read_firmware\n")
    suite = write_suite(project, "seq.robot", """
        *** Settings ***
        Library    litmus_seq.robot.LitmusSeq    station=mock_bench

        *** Test Cases ***
        Smoke Passes
            ${outcome}=    Run Sequence    sequences/smoke.yaml    dut_serial=SN-SEQ
            Should Be Equal    ${outcome}    passed
        Bad Firmware Fails
            Run Sequence    sequences/bad_fw.yaml    dut_serial=SN-SEQ
        Missing File
            Run Sequence    sequences/nope.yaml
        """)
    rc, result, console = run_robot(project, suite)
    got = statuses(result)
    assert got["Smoke Passes"][0] == "PASS", console
    assert got["Bad Firmware Fails"][0] == "FAIL" and got["Bad Firmware Fails"][1].startswith("sequence sequences/bad_fw.yaml failed")
    assert got["Missing File"][0] == "FAIL" and "no such sequence file" in got["Missing File"][1]
    runs = {r["sequence_name"]: r["run_outcome"] for r in rows(project / "data", "record_type = 'run'")}
    assert runs == {"smoke": "passed", "bad_fw": "failed"}


def test_prompt_answered_abort_terminates_the_run_and_stops_robot(project: Path) -> None:
    suite = write_suite(project, "abort.robot", SETTINGS, """
        *** Test Cases ***
        Ask
            Prompt Operator    Go on?    answer=abort
        Never Runs
            Measure    self_test    true
        """)
    rc, result, _ = run_robot(project, suite)
    got = statuses(result)
    assert got["Ask"] == ("FAIL", "'Go on?': the operator stopped the run")
    assert got["Never Runs"][0] == "FAIL"
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert steps == {"main/Ask": "terminated", "main/Never Runs": None}
    run = rows(project / "data", "record_type = 'run'")[0]
    assert run["run_outcome"] == "terminated" and run["run_error"] == "operator answered 'abort'"


def test_bad_arguments_fail_the_keyword_with_one_readable_line(project: Path) -> None:
    suite = write_suite(project, "badargs.robot", SETTINGS, """
        *** Test Cases ***
        Volts Not A Number
            Call Instrument    psu    set_voltage    five
        Low Not A Number
            Measure    rail_3v3    3.3    low=three
        Inverted Limit
            Measure    rail_3v3    3.3    low=4    high=3
        No Such Role
            Measure From    scope.measure    x
        Not Role Dot Method
            Measure From    dmm    x
        """)
    rc, result, _ = run_robot(project, suite)
    got = statuses(result)
    assert got["Volts Not A Number"] == ("FAIL", "ValueError: argument 'volts': expected a number, got 'five'")
    assert got["Low Not A Number"] == ("FAIL", "ValueError: low='three': expected a number")
    assert got["Inverted Limit"][0] == "FAIL" and "low 4 is above high 3: swap them" in got["Inverted Limit"][1]
    assert got["No Such Role"][0] == "FAIL" and "no instrument role 'scope'" in got["No Such Role"][1]
    assert got["Not Role Dot Method"] == ("FAIL", "ValueError: 'dmm': expected ROLE.METHOD, e.g. dmm.measure_dc_voltage")
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert set(steps.values()) == {"errored"}  # mistakes in the suite are errors, never verdicts


def test_a_failing_suite_setup_errors_the_run_with_its_cause(project: Path) -> None:
    suite = write_suite(project, "badsetup.robot", """
        *** Settings ***
        Library           litmus_seq.robot.LitmusSeq
        Suite Setup       Power Up
        Suite Teardown    End Run

        *** Test Cases ***
        Never Runs
            Measure    self_test    true

        *** Keywords ***
        Power Up
            Start Run    dut_serial=SN-SETUP    product=power_board
            Call Instrument    psu    set_voltage    99
        """)
    rc, result, _ = run_robot(project, suite)
    assert statuses(result)["Never Runs"][0] == "FAIL"
    run = rows(project / "data", "record_type = 'run'")[0]
    assert run["run_outcome"] == "errored"
    assert run["run_error"].startswith("suite setup failed: ") and "Data out of range" in run["run_error"]
    assert [r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")] == [None]


def test_run_sequence_inside_a_run_makes_its_steps_steps_of_the_run(project: Path) -> None:
    suite = write_suite(project, "inside.robot", """
        *** Settings ***
        Library           litmus_seq.robot.LitmusSeq    station=sim_bench
        Suite Setup       Start Run    dut_serial=SN-IN    product=power_board
        Suite Teardown    End Run

        *** Test Cases ***
        Smoke Inside
            ${outcome}=    Run Sequence    sequences/smoke.yaml
            Should Be Equal    ${outcome}    passed
        Own Measure
            Measure    self_test    true
        """)
    rc, result, console = run_robot(project, suite)
    assert rc == 0, console
    data = rows(project / "data")
    assert len([r for r in data if r["record_type"] == "run"]) == 1  # one run, not two
    steps = {r["step_path"]: r["step_outcome"] for r in data if r["record_type"] == "step"}
    assert steps == {"main/Smoke Inside": "passed", "main/Smoke Inside/main/firmware": "passed",
                     "main/Smoke Inside/main/serial": "passed", "main/Smoke Inside/main/self_test": "passed",
                     "main/Smoke Inside/main/ambient": "passed", "main/Own Measure": "passed"}
    ambient = next(r for r in data if r["measurement_name"] == "chamber_temperature")
    assert (ambient["limit_low"], ambient["limit_high"], ambient["limit_source"]) == (15.0, 35.0, "step")
    assert next(r for r in data if r["record_type"] == "run")["run_outcome"] == "passed"
