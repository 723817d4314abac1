"""The read side (litmus_seq/results.py): the run index, run lookup, rows keyed by parquet columns.

Run files are written by the real materializer; the index is checked against what DuckDB reads
straight from the files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from litmus_seq.errors import LitmusError
from litmus_seq.results import INDEX_COLUMNS, Results, parse_since


def write_runs(data: Path, session: str, runs: int = 1) -> list[Path]:
    from test_stores_stream import full_session

    from litmus_seq.stores.materializer import RunMaterializer

    m = RunMaterializer(data)
    full_session(m, runs=runs, session_id=session)
    m.close()
    return list(m.written)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    write_runs(d, "s1", runs=2)
    return d


def spy(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record which files the index reads (only new or changed files should be)."""
    calls: list[list[str]] = []
    real = Results._summarise

    def summarise(self: Results, files: Any) -> Any:
        calls.append(sorted(files))
        return real(self, files)

    monkeypatch.setattr(Results, "_summarise", summarise)
    return calls


def test_index_matches_the_files_and_reads_only_what_changed(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    calls = spy(monkeypatch)
    results = Results(data)
    runs = results.list_runs()
    assert [r["run_id"] for r in runs] == ["run-s1-1", "run-s1-0"]
    assert len(calls) == 1 and len(calls[0]) == 2
    assert (data / "cache" / "runs-index.parquet").exists()
    glob = (data / "runs" / "**" / "*.parquet").as_posix()
    truth = duckdb.sql(f"SELECT run_id, run_outcome, count(*) FILTER (WHERE record_type = 'measurement') AS m "
                       f"FROM read_parquet('{glob}') GROUP BY ALL ORDER BY run_id").fetchall()
    assert sorted((r["run_id"], r["run_outcome"], r["measurement_count"]) for r in runs) == truth
    assert set(INDEX_COLUMNS) | {"file_path"} == set(runs[0])

    assert [r["run_id"] for r in Results(data).list_runs()] == ["run-s1-1", "run-s1-0"]
    assert len(calls) == 1  # nothing new: the index alone answered

    (new,) = write_runs(data, "s2")
    assert len(Results(data).list_runs()) == 3
    assert calls[-1] == [new.relative_to(data).as_posix()]  # only the new file was read

    new.unlink()
    assert [r["run_id"] for r in Results(data).list_runs()] == ["run-s1-1", "run-s1-0"]
    assert len(calls) == 2  # a deleted file is dropped without reading anything


def test_a_damaged_index_is_rebuilt_never_trusted(data: Path) -> None:
    Results(data).list_runs()
    index = data / "cache" / "runs-index.parquet"
    index.write_bytes(b"garbage")
    assert len(Results(data).list_runs()) == 2
    import pyarrow.parquet as pq

    assert pq.read_table(index).num_rows == 2


def test_a_file_without_newer_columns_reads_as_null(data: Path) -> None:
    """The schema is additive: a file written before run_retry_count existed still lists."""
    import pyarrow.parquet as pq

    old = sorted((data / "runs").rglob("*.parquet"))[0]
    table = pq.read_table(old)
    os.unlink(old)
    pq.write_table(table.drop_columns(["run_retry_count"]), old.with_name("old.parquet"))
    runs = {r["run_id"]: r for r in Results(data).list_runs()}
    assert {r["run_retry_count"] for r in runs.values()} == {None, 1}


def test_rows_are_keyed_by_parquet_columns(data: Path) -> None:
    results = Results(data)
    run = results.get_run("run-s1-0")
    assert run is not None and Path(run["file_path"]).exists()
    assert (run["dut_serial"], run["run_outcome"], run["station_id"]) == ("SN 42/A", "failed", "bench_1")
    assert run["run_started_at"].tzinfo is not None and run["run_ended_at"] >= run["run_started_at"]
    steps = results.get_steps("run-s1-0")
    assert {s["record_type"] for s in steps} == {"step"} and "main/never_ran" in {s["step_path"] for s in steps}
    meas = results.get_measurements("run-s1-0")
    assert len(meas) == run["measurement_count"] == 5
    assert {"measurement_name", "measurement_value", "measurement_outcome", "limit_low", "limit_high"} <= set(meas[0])
    assert results.get_run("nope") is None
    with pytest.raises(LitmusError, match="no run 'nope'"):
        results.get_steps("nope")


def test_find_runs_by_id_prefix_and_serial(data: Path) -> None:
    results = Results(data)
    assert [r["run_id"] for r in results.find_runs("run-s1-0")] == ["run-s1-0"]
    assert [r["run_id"] for r in results.find_runs("SN 42/A")] == ["run-s1-1"]
    assert [r["run_id"] for r in results.find_runs("SN 42/A", every=True)] == ["run-s1-1", "run-s1-0"]
    with pytest.raises(LitmusError, match="matches 2 runs"):
        results.find_runs("run-s1")


def test_an_empty_or_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LitmusError, match="no such folder"):
        Results(tmp_path / "nope").list_runs()
    (tmp_path / "empty").mkdir()
    with pytest.raises(LitmusError, match="no run files"):
        Results(tmp_path / "empty").list_runs()


def test_parse_since() -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
    assert parse_since("7d", now) == datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    assert parse_since("30m", now) == datetime(2026, 12, 5, 11, 30, tzinfo=timezone.utc)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert parse_since("2026-12-01T08:00+01:00") == datetime(2026, 12, 1, 7, tzinfo=timezone.utc)
    with pytest.raises(LitmusError, match="not a date or a duration"):
        parse_since("last tuesday")
