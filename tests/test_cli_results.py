"""``runs``, ``show``, ``query`` and ``columns`` over run files written by the real materializer
(and, where the verdict matters, by real ``litmus-seq run`` invocations)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from litmus_seq.cli.main import main
from test_stores_stream import full_session


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    from litmus_seq.stores.materializer import RunMaterializer

    d = tmp_path / "data"
    m = RunMaterializer(d)
    full_session(m, runs=2, session_id="s1")
    m.close()
    return d


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_lists_newest_first(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "runs", "--data-dir", str(data_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["started", "(UTC)", "run_id", "serial", "station", "sequence", "outcome", "file"]
    body = lines[2:]
    assert len(body) == 2
    assert "run-s1-1" in body[0] and "run-s1-0" in body[1]  # newest first
    assert "failed (1 retries)" in body[0] and "power_board_fct" in body[0] and "runs/" in body[0]
    code, out, _ = run(capsys, "runs", "--data-dir", str(data_dir), "--limit", "1")
    assert len(out.splitlines()) == 3


def test_data_dir_from_environment(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITMUS_DATA_DIR", str(data_dir))
    code, out, _ = run(capsys, "runs")
    assert code == 0 and "run-s1-0" in out


def test_show_by_serial_latest_or_all_and_as_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "SN 42/A", "--data-dir", str(data_dir))
    assert code == 0 and out.splitlines()[0] == "run run-s1-1  FAILED"  # the latest run of that unit
    code, out, _ = run(capsys, "show", "SN 42/A", "--all", "--data-dir", str(data_dir))
    assert [line for line in out.splitlines() if line.startswith("run ")] == ["run run-s1-1  FAILED",
                                                                             "run run-s1-0  FAILED"]
    code, out, _ = run(capsys, "show", "run-s1-0", "--json", "--data-dir", str(data_dir))
    doc = json.loads(out)
    assert doc["run"]["run_id"] == "run-s1-0" and doc["run"]["file_path"].endswith(".parquet")
    assert {s["record_type"] for s in doc["steps"]} == {"step"}
    assert [m["measurement_name"] for m in doc["measurements"]][:2] == ["rail_3v3", "rail_3v3"]
    code, out, _ = run(capsys, "show", "SN 42/A", "--all", "--json", "--data-dir", str(data_dir))
    assert [d["run"]["run_id"] for d in json.loads(out)] == ["run-s1-1", "run-s1-0"]


def test_show_by_prefix(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "run-s1-0", "--data-dir", str(data_dir))
    assert code == 0
    assert out.splitlines()[0] == "run run-s1-0  FAILED"
    assert "main/output_voltage[0]  (load=0.1, vin=5, volts_set=5)  retried 1x" in out
    assert "rail_3v3 = 3.6 V > high 3.4485 (spec 3.135–3.465, gb 10 %)  failed" in out  # as every reporter
    assert "rail_3v3 = 3.31 V  3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10 %)  passed  (attempt 2)" in out
    assert "fw_version = '1.4.1' != expected '1.4.2'  failed" in out
    assert "  retries: 1 " in out
    assert "None" not in out
    assert "not run    main/never_ran" in out


def test_show_errors(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "run-s1", "--data-dir", str(data_dir))
    assert code == 4 and "matches 2 runs" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "show", "nope", "--data-dir", str(data_dir))
    assert code == 4 and "no run id or DUT serial matches 'nope'" in err
    code, _, err = run(capsys, "show", " ", "--data-dir", str(data_dir))
    assert code == 4 and "the run id is empty" in err


def test_query_formats(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT run_id, count(*) AS n FROM measurements GROUP BY run_id ORDER BY run_id"
    code, out, _ = run(capsys, "query", sql, "--data-dir", str(data_dir))
    assert code == 0 and out.splitlines()[-1] == "(2 rows)" and "run-s1-0  5" in out
    code, out, _ = run(capsys, "query", sql, "--data-dir", str(data_dir), "--csv")
    assert list(csv.reader(io.StringIO(out))) == [["run_id", "n"], ["run-s1-0", "5"], ["run-s1-1", "5"]]
    code, out, _ = run(capsys, "query", "SELECT run_started_at, run_id FROM runs ORDER BY run_id",
                       "--data-dir", str(data_dir), "--json")
    got = json.loads(out)
    assert [r["run_id"] for r in got] == ["run-s1-0", "run-s1-1"]
    assert got[0]["run_started_at"].endswith("+00:00")


def test_query_errors_are_one_line(data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "query", "SELEC nonsense", "--data-dir", str(data_dir))
    assert code == 4 and err.startswith("query failed:") and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "query", "SELECT 1", "--data-dir", str(tmp_path / "empty"))
    assert code == 4 and "no run files" in err
    code, _, err = run(capsys, "query", "SELECT 1", "--data-dir", str(data_dir), "--csv", "--json")
    assert code == 4 and "exclude each other" in err


def test_query_views_split_the_rows_by_record_type(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = ("SELECT (SELECT count(*) FROM rows) AS all_rows, (SELECT count(*) FROM runs) AS runs, "
           "(SELECT count(*) FROM steps) AS steps, (SELECT count(*) FROM measurements) AS meas, "
           "(SELECT count(DISTINCT record_type) FROM steps) AS kinds")
    code, out, _ = run(capsys, "query", sql, "--data-dir", str(data_dir), "--json")
    (got,) = json.loads(out)
    assert got["runs"] == 2 and got["kinds"] == 1 and got["meas"] == 10
    assert got["all_rows"] == got["runs"] + got["steps"] + got["meas"]


def test_columns_lists_fixed_and_dynamic_columns(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from litmus_seq.stores.schema import COLUMN_NAMES

    code, out, _ = run(capsys, "columns", "--data-dir", str(data_dir), "--json")
    got = json.loads(out)
    names = [c["name"] for c in got]
    assert names[: len(COLUMN_NAMES)] == list(COLUMN_NAMES)
    assert "in_vin" in names and {c["name"]: c["type"] for c in got}["run_retry_count"] == "BIGINT"
    code, out, _ = run(capsys, "columns", "--data-dir", str(data_dir))
    assert "views: rows, runs, steps, measurements" in out


def test_runs_filters(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real runs of the reporter project: filters by serial, station, outcome and time."""
    from conftest import run_in_data

    assert run_in_data("sequences/passing.yaml", "--dut", "A1") == 0
    assert run_in_data("sequences/stop.yaml", "--dut", "A1") == 1
    assert run_in_data("sequences/passing.yaml", "--dut", "B2") == 0
    assert run_in_data("sequences/powered.yaml", "--dut", "C3", "--station", "dead") == 3
    capsys.readouterr()

    def listed(*argv: str) -> list[tuple[str, str, str]]:
        code, out, err = run(capsys, "runs", "--data-dir", "data", "--json", *argv)
        assert code == 0, err
        return [(r["dut_serial"], r["station_id"], r["run_outcome"]) for r in json.loads(out)]

    assert listed() == [("C3", "dead_bench", "errored"), ("B2", "rep_bench", "passed"),
                        ("A1", "rep_bench", "failed"), ("A1", "rep_bench", "passed")]
    assert listed("--dut", "A1") == [("A1", "rep_bench", "failed"), ("A1", "rep_bench", "passed")]
    assert listed("--station", "dead_bench") == [("C3", "dead_bench", "errored")]
    assert listed("--outcome", "passed", "--limit", "1") == [("B2", "rep_bench", "passed")]
    assert listed("--since", "1h") == listed()
    assert listed("--since", "2999-01-01") == []
    code, _, err = run(capsys, "runs", "--data-dir", "data", "--since", "yesterday")
    assert code == 4 and err.startswith("--since yesterday: not a date or a duration")
    code, out, _ = run(capsys, "runs", "--data-dir", "data", "--json", "--dut", "C3")
    (c3,) = json.loads(out)
    assert (c3["step_count"], c3["steps_never_ran"], c3["measurement_count"]) == (4, 4, 0)
    assert "cannot connect" in c3["run_error"]


@pytest.fixture
def project(reporters_project: Path) -> Path:
    return reporters_project
