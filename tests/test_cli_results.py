"""``runs``, ``show`` and ``query`` over run files written by the real materializer."""

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
    assert lines[0].split() == ["started", "(UTC)", "run_id", "serial", "sequence", "outcome", "file"]
    body = lines[2:]
    assert len(body) == 2
    assert "run-s1-1" in body[0] and "run-s1-0" in body[1]  # newest first
    assert "failed" in body[0] and "power_board_fct" in body[0] and "runs/" in body[0]
    code, out, _ = run(capsys, "runs", "--data-dir", str(data_dir), "--limit", "1")
    assert len(out.splitlines()) == 3


def test_data_dir_from_environment(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITMUS_DATA_DIR", str(data_dir))
    code, out, _ = run(capsys, "runs")
    assert code == 0 and "run-s1-0" in out


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
    assert code == 4 and "no run matches 'nope'" in err


def test_query_formats(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = ("SELECT run_id, count(*) AS n FROM runs WHERE record_type = 'measurement' "
           "GROUP BY run_id ORDER BY run_id")
    code, out, _ = run(capsys, "query", sql, "--data-dir", str(data_dir))
    assert code == 0 and out.splitlines()[-1] == "(2 rows)" and "run-s1-0  5" in out
    code, out, _ = run(capsys, "query", sql, "--data-dir", str(data_dir), "--csv")
    assert list(csv.reader(io.StringIO(out))) == [["run_id", "n"], ["run-s1-0", "5"], ["run-s1-1", "5"]]
    code, out, _ = run(capsys, "query", "SELECT run_started_at, run_id FROM runs WHERE record_type = 'run' "
                                        "ORDER BY run_id", "--data-dir", str(data_dir), "--json")
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
