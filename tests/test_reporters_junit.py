"""``--junit FILE`` (litmus_seq/reporters/junit.py): the report a CI server reads.

Reports come from real runs of the mock-only project in ``tests/data/reporters/project`` (the CLI
in process, or a :class:`~litmus_seq.engine.Session` when a test needs two runs or a run cut
short). Each report is parsed with ``xml.etree`` and checked for what Jenkins, GitLab and GitHub
read: ``testsuite`` counts that agree with its ``testcase`` children, ``classname``/``name``/
``time`` on each case, and exactly one of ``failure``/``error``/``skipped`` on cases that did not
pass.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import run_in_data

from litmus_seq.reporters.junit import JUnitReport

DATA = Path(__file__).resolve().parent / "data" / "reporters" / "project"


@pytest.fixture
def project(reporters_project: Path) -> Path:
    return reporters_project


run = run_in_data


def check_structure(root: ET.Element) -> list[ET.Element]:
    """The invariants CI tools rely on; returns the suites."""
    assert root.tag == "testsuites"
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
            assert case.get("classname") and case.get("name")
            assert float(case.get("time")) >= 0
        for key in totals:
            totals[key] += int(suite.get(key))
    for key, n in totals.items():
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
    assert {c.get("classname") for c in by_name.values()} == {"sequences/mixed.yaml"}
    assert by_name["main/rail_low"].get("line") == "16"
    assert len(by_name["main/rail_sweep"]) == 0 and len(by_name["cleanup/1"]) == 0  # passed / done
    failure = by_name["main/rail_low"].find("failure")
    assert "rail = 2.0 V" in failure.get("message")
    assert "rail = 2.0 V, limits low=3.1 high=3.5 (GELE): failed" in failure.text
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
        assert by_name[name].get("file") == "sequences/stop.yaml"
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
    from litmus_seq.engine import Session
    from litmus_seq.plan import build_plan
    from litmus_seq.project import ProjectContext

    seq = project / sequence
    ctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=ctx)
    station = ctx.load_station(plan.station_ref or ctx.config.station)
    return Session(project=ctx, station=station, data_dir=project / "data", listeners=listeners), plan


def test_two_runs_in_one_session_make_two_suites(project: Path) -> None:
    report = JUnitReport(project / "two.xml")
    session, plan = _session(project, "sequences/passing.yaml", [report])
    with session:
        first = session.run(plan, dut_serial="A")
        assert report.writes == 1
        second = session.run(plan, dut_serial="B")
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
    with session:
        session.run(plan, dut_serial="SN-CUT")
    events = [e for batch in batches for e in batch]
    cut = next(i for i, e in enumerate(events)
               if e["event_type"] == "test.step_started" and e["step_path"] == "main/garbage")
    report = JUnitReport(project / "cut.xml")
    report.litmus_seq_events(events[: cut + 1])
    assert not (project / "cut.xml").exists()  # nothing ended yet
    report.close()
    (suite,) = check_structure(ET.parse(project / "cut.xml").getroot())
    by_name = cases(suite)
    assert by_name["main/garbage"].find("error").get("message") == "run did not end (step in flight)"
    assert by_name["main/rail_low"].find("failure") is not None
    for name in ("main/firmware", "cleanup/1"):
        assert by_name[name].find("skipped").get("message") == "never ran"
    assert props(suite)["run_outcome"] == "aborted"
    assert props(suite)["dut_serial"] == "SN-CUT"
