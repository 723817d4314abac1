"""``--junit FILE`` (litmus_seq/reporters/junit.py): the report a CI server reads.

Reports come from real runs of the mock-only project in ``tests/data/reporters/project`` (the CLI
in process, or a :class:`~litmus_seq.run.Session` when a test needs two runs or a run cut
short). Each report is parsed with ``xml.etree`` and checked for what Jenkins, GitLab and GitHub
read: ``testsuite`` counts that agree with its ``testcase`` children, ``classname``/``name``/
``time`` on each case, and exactly one of ``failure``/``error``/``skipped`` on cases that did not
pass. Every report is also validated with ``xmlschema`` against the Jenkins/Surefire XSD
(``tests/data/junit/junit-10.xsd``, see ``conftest.junit_schema``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import junit_schema, open_session, run_in_data, validate_junit

from litmus_seq.reporters.junit import JUnitReport
from litmus_seq.run import run_plan

DATA = Path(__file__).resolve().parent / "data" / "reporters" / "project"


@pytest.fixture
def project(reporters_project: Path) -> Path:
    return reporters_project


run = run_in_data


def check_structure(root: ET.Element) -> list[ET.Element]:
    """The invariants CI tools rely on (and the XSD); returns the suites."""
    junit_schema().validate(root)
    assert root.tag == "testsuites" and root.get("skipped") is None
    suites = root.findall("testsuite")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites:
        cases = suite.findall("testcase")
        kinds = [[c.tag for c in case if c.tag in ("failure", "error", "skipped")] for case in cases]
        assert all(len(k) <= 1 for k in kinds)
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(k == ["failure"] for k in kinds)
        assert int(suite.get("errors")) == sum(k == ["error"] for k in kinds)
        assert int(suite.get("skipped")) == sum(k == ["skipped"] for k in kinds)
        assert float(suite.get("time")) >= 0 and suite.get("timestamp", "").endswith("Z")
        for case in cases:
            assert set(case.keys()) == {"name", "classname", "time"}
            assert float(case.get("time")) >= 0 and len(case.get("time").partition(".")[2]) <= 3
        for key in totals:
            totals[key] += int(suite.get(key))
    for key, n in totals.items():
        if key != "skipped":
            assert int(root.get(key)) == n
    return suites


def props(suite: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in suite.find("properties")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in suite.findall("testcase")}


def test_report_of_a_mixed_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run("sequences/mixed.yaml", "--dut", "SN-9", "--junit", "reports/ci/junit.xml")
    out, err = capsys.readouterr()
    assert code == 3 and "junit" not in err
    report = project / "reports" / "ci" / "junit.xml"  # missing folders are created
    (suite,) = check_structure(ET.parse(report).getroot())
    assert suite.get("name") == "mixed"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("7", "1", "1", "1")
    p = props(suite)
    assert p["dut_serial"] == "SN-9" and p["station_id"] == "rep_bench" and p["run_outcome"] == "errored"
    assert f"run {p['run_id']}" in out
    by_name = cases(suite)
    assert list(by_name) == ["setup/1", "main/rail_sweep", "main/rail_low", "main/option_board",
                             "main/garbage", "main/firmware", "cleanup/1"]
    assert {c.get("classname") for c in by_name.values()} == {"sequences.mixed"}  # not class "yaml"
    assert len(by_name["main/rail_sweep"]) == 0 and len(by_name["cleanup/1"]) == 0  # passed / done
    failure = by_name["main/rail_low"].find("failure")
    assert failure.get("message") == "rail = 2.0 V < low 3.1"
    assert failure.text.splitlines()[:2] == ["sequences/mixed.yaml:16", "[0]: rail = 2.0 V < low 3.1"]
    error = by_name["main/garbage"].find("error")
    assert "cannot be judged" in error.get("message") and "not-a-number" in error.text
    assert by_name["main/option_board"].find("skipped") is not None
    assert not list(report.parent.glob("*.tmp"))  # written atomically: no leftovers


def test_steps_that_never_ran_are_skipped_never_ran(project: Path) -> None:
    assert run("sequences/stop.yaml", "--junit", "junit.xml") == 1
    (suite,) = check_structure(ET.parse(project / "junit.xml").getroot())
    by_name = cases(suite)
    assert list(by_name) == ["main/first", "main/bad", "main/never_a", "main/never_b", "cleanup/1"]  # plan order
    for name in ("main/never_a", "main/never_b"):
        skipped = by_name[name].find("skipped")
        assert skipped is not None and skipped.get("message") == "never ran"
    assert by_name["main/bad"].find("failure") is not None
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "2")


def test_control_bytes_and_metacharacters_stay_valid_xml(project: Path) -> None:
    assert run("sequences/bell.yaml", "--junit", "junit.xml") == 3
    (suite,) = check_structure(ET.parse(project / "junit.xml").getroot())
    error = cases(suite)["main/bell"].find("error")
    assert "bell\\x07<&>" in error.text  # the bell shown, not dropped; < & > escaped by the writer


def test_junit_pointing_at_a_folder_is_exit_4(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "out").mkdir()
    assert run("sequences/passing.yaml", "--junit", "out") == 4
    _, err = capsys.readouterr()
    assert err.strip() == "--junit out: is a folder; give a file name (e.g. out/junit.xml)"
    assert not (project / "data").exists()


def test_unwritable_report_warns_but_keeps_the_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "afile").write_text("not a folder")
    code = run("sequences/passing.yaml", "--junit", "afile/junit.xml")
    _, err = capsys.readouterr()
    assert code == 0
    assert list((project / "data" / "runs").rglob("*.parquet"))  # the record was not lost
    warnings = [line for line in err.splitlines() if line.startswith("junit:")]
    assert len(warnings) == 1 and "cannot write afile/junit.xml" in warnings[0]


# ------------------------------------------------------------------ sessions, cut-short runs


def _session(project: Path, sequence: str, listeners: list[Any]) -> tuple[Any, Any]:
    from litmus_seq.plan import build_plan
    from litmus_seq.project import ProjectContext

    seq = project / sequence
    ctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=ctx)
    station = ctx.load_station(plan.station_ref or ctx.config.station)
    return open_session(ctx, station, project / "data", listeners), plan


def test_two_runs_in_one_session_make_two_suites(project: Path) -> None:
    report = JUnitReport(project / "two.xml")
    session, plan = _session(project, "sequences/passing.yaml", [report])
    with session as s:
        first = run_plan(s, plan, dut_serial="A")
        assert report.writes == 1
        second = run_plan(s, plan, dut_serial="B")
    assert report.writes == 2  # rewritten at each run end, not again at close
    root = ET.parse(project / "two.xml").getroot()
    suites = check_structure(root)
    assert [props(s)["run_id"] for s in suites] == [first.run_id, second.run_id]
    assert [props(s)["dut_serial"] for s in suites] == ["A", "B"]
    assert root.get("tests") == "4"


def test_close_writes_a_run_that_never_ended(project: Path) -> None:
    """A run cut short mid-step (no run.ended): the report still appears at close()."""
    from litmus_seq.hookspecs import hookimpl

    batches: list[list[dict[str, Any]]] = []

    class Tap:
        @hookimpl
        def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
            batches.append(list(events))

    session, plan = _session(project, "sequences/mixed.yaml", [Tap()])
    with session as s:
        run_plan(s, plan, dut_serial="SN-CUT")
    events = [e for batch in batches for e in batch]
    cut = next(i for i, e in enumerate(events)
               if e["event_type"] == "test.step_started" and e["step_path"] == "main/garbage")
    report = JUnitReport(project / "cut.xml")
    report.litmus_seq_events(events[: cut + 1])
    assert not (project / "cut.xml").exists()  # nothing ended yet
    report.close()
    (suite,) = check_structure(ET.parse(project / "cut.xml").getroot())
    by_name = cases(suite)
    error = by_name["main/garbage"].find("error")
    assert error.get("message") == "the run did not end (the process stopped before run.ended)"
    assert error.get("type") == "aborted"
    assert by_name["main/rail_low"].find("failure") is not None
    for name in ("main/firmware", "cleanup/1"):
        assert by_name[name].find("skipped").get("message") == "never ran"
    assert props(suite)["run_outcome"] == "aborted"
    assert props(suite)["dut_serial"] == "SN-CUT"


def test_vendored_schema_is_pytests_and_rejects_what_it_should(project: Path) -> None:
    """The XSD is the real one: the four faults of the old report are each invalid under it."""
    assert run("sequences/passing.yaml", "--junit", "ok.xml") == 0
    junit_schema(as_vendored=True).validate(str(project / "ok.xml"))  # no <error>: valid unchanged
    schema = junit_schema()
    good = ET.parse(project / "ok.xml").getroot()
    bad_cases = []
    for mutate in (
        lambda r: r.find("testsuite").set("time", "0.000123"),
        lambda r: r.set("skipped", "0"),
        lambda r: r.find("testsuite/testcase").set("file", "sequences/passing.yaml"),
        lambda r: r.find("testsuite/testcase").set("line", "4"),
    ):
        root = ET.fromstring(ET.tostring(good))
        mutate(root)
        bad_cases.append(schema.is_valid(root))
    assert bad_cases == [False, False, False, False]


def test_connect_failure_is_a_run_level_error_and_the_plan_never_ran(project: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sequences/powered.yaml", "--station", "dead", "--junit", "junit.xml") == 3
    validate_junit(project / "junit.xml")
    (suite,) = check_structure(ET.parse(project / "junit.xml").getroot())
    by_name = cases(suite)
    error = by_name["run"].find("error")
    assert "psu: cannot connect to TCPIP::10.0.0.99::INSTR" in error.get("message")
    assert error.get("type") == "errored" and "ConnectionRefusedError" in error.text
    assert list(by_name)[0] == "run"  # first: the cause is read before the plan
    assert [c.find("skipped").get("message") for n, c in by_name.items() if n != "run"] == ["never ran"] * 4
    assert (suite.get("errors"), suite.get("skipped")) == ("1", "4")
    assert props(suite)["run_outcome"] == "errored"


def test_retries_are_flaky_and_rerun_failures(project: Path) -> None:
    assert run("sequences/retry.yaml", "--junit", "junit.xml") == 1
    (suite,) = check_structure(ET.parse(project / "junit.xml").getroot())
    by_name = cases(suite)
    flaky = by_name["main/flaky"]
    assert [c.tag for c in flaky] == ["flakyFailure"]  # passed in the end: no <failure>
    assert flaky[0].get("message") == "rail = 3.9 V > high 3.5"
    assert flaky[0].find("stackTrace").text == "[0] retry 0: rail = 3.9 V > high 3.5"
    stuck = by_name["main/stuck"]
    assert [c.tag for c in stuck] == ["failure", "rerunFailure", "rerunFailure"]
    assert [c.find("stackTrace").text for c in stuck[1:]] == [
        "[0] retry 0: rail = 2.0 V < low 3.1", "[0] retry 1: rail = 2.0 V < low 3.1"]
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")  # a retry is not another test
    assert props(suite)["run_retry_count"] == "3"


def test_an_error_that_ends_the_run_mid_step_lands_on_that_step(project: Path) -> None:
    """run.ended (errored, with run_error) arrives while a step is still open: the <error> with
    the run's cause goes on that step, not on a separate case."""
    from litmus_seq.hookspecs import hookimpl

    batches: list[list[dict[str, Any]]] = []

    class Tap:
        @hookimpl
        def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
            batches.append(list(events))

    session, plan = _session(project, "sequences/mixed.yaml", [Tap()])
    with session as s:
        run_plan(s, plan, dut_serial="SN-MID")
    events = [e for batch in batches for e in batch]
    cut = next(i for i, e in enumerate(events)
               if e["event_type"] == "test.step_started" and e["step_path"] == "main/garbage")
    ended = next(e for e in events if e["event_type"] == "run.ended")
    report = JUnitReport(project / "mid.xml")
    report.litmus_seq_events([*events[: cut + 1], {**ended, "outcome": "errored",
                                                    "error": "SystemExit: 2 (raised in a driver)"}])
    report.close()
    (suite,) = check_structure(ET.parse(project / "mid.xml").getroot())
    by_name = cases(suite)
    assert "run" not in by_name
    error = by_name["main/garbage"].find("error")
    assert (error.get("message"), error.get("type")) == ("SystemExit: 2 (raised in a driver)", "errored")
    assert props(suite)["run_outcome"] == "errored"
