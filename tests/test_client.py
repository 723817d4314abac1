"""The results client (issue "Results from any source"): runs recorded through LitmusClient land
in the same stores as ``litmus-seq run`` and read back through the same client."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from litmus_seq.client import LitmusClient, RunSummary
from litmus_seq.errors import ConfigError, LitmusError



@pytest.fixture
def project(reporters_project: Path) -> Path:
    """A copy of the reporters' mock project as the working directory (tests/conftest.py)."""
    return reporters_project


def rows(parquet: Path, where: str = "true") -> list[dict[str, object]]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{parquet}') WHERE {where} ORDER BY record_type, step_index, "
                     "vector_index, measurement_name")
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def labview_style(client: LitmusClient) -> object:
    """What an integrator's script does: two steps, one with vectors, one failing limit."""
    run = client.start_run(dut_serial="SN-LV-1", station_id="labview_3", operator="ana", phase="production",
                           lot="L7")
    step = run.step("rail")
    step.vector(vin=5.0).measure("rail_3v3", 3.31, "V", low=3.1, high=3.5)
    step.vector(vin=12.0).measure("rail_3v3", 3.62, "V", low=3.1, high=3.5)
    step.finish()
    run.step("firmware").measure("fw_version", "1.4.2", equals="1.4.2").finish()
    return run.finish()


def test_a_client_run_is_sealed_with_the_verdict_and_every_row(project: Path) -> None:
    run = labview_style(LitmusClient("data"))
    assert run.outcome == "failed"  # 3.62 V > high 3.5
    got = rows(run.result.parquet)
    kinds = [r["record_type"] for r in got]
    assert kinds.count("run") == 1 and kinds.count("step") == 3 and kinds.count("measurement") == 3
    meas = {(r["step_name"], r["vector_index"]): r for r in got if r["record_type"] == "measurement"}
    assert meas[("rail", 1)]["measurement_outcome"] == "failed"
    assert meas[("rail", 1)]["limit_high"] == 3.5 and meas[("rail", 1)]["in_vin"] == 12.0
    assert meas[("firmware", 0)]["measurement_text"] == "1.4.2"
    assert meas[("firmware", 0)]["measurement_outcome"] == "passed"
    first = got[0]
    assert (first["station_id"], first["operator_name"], first["test_phase"], first["custom_lot"]) == (
        "labview_3", "ana", "production", "L7")


def test_client_and_sequencer_runs_read_together_with_the_same_columns(project: Path) -> None:
    from litmus_seq.cli.main import main

    assert main(["run", "sequences/passing.yaml", "--dut", "SN-SEQ", "--data-dir", "data"]) == 0
    labview_style(LitmusClient("data"))
    files = sorted(Path("data/runs").glob("*/*.parquet"))
    assert len(files) == 2
    fixed = [{c for c in duckdb.sql(f"SELECT * FROM read_parquet('{f}')").columns
              if not c.startswith(("in_", "out_", "custom_"))} for f in files]
    assert fixed[0] == fixed[1]
    counts = duckdb.sql("SELECT dut_serial, count(*) FROM read_parquet('data/runs/**/*.parquet', "
                        "union_by_name = true) WHERE record_type = 'run' GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == [("SN-LV-1", 1), ("SN-SEQ", 1)]


def test_a_product_spec_judges_by_name_with_the_guardband(project: Path) -> None:
    run = LitmusClient("data").start_run(dut_serial="SN2", station_id="bench", product="board", guardband_pct=10)
    run.step("rail").measure("rail", 3.3).finish()
    run.finish()
    (m,) = rows(run.result.parquet, "record_type = 'measurement'")
    assert m["limit_source"] == "spec" and m["limit_guardband_pct"] == 10
    assert m["characteristic_id"] == "rail" and m["product_id"] == "board"


def test_an_unknown_product_is_an_error_before_anything_is_written(project: Path) -> None:
    with pytest.raises(ConfigError, match="boardd"):
        LitmusClient("data").start_run(dut_serial="SN3", station_id="bench", product="boardd")
    assert not Path("data").exists()


def test_an_exception_in_a_step_errors_it_and_the_run(project: Path) -> None:
    client = LitmusClient("data")
    with pytest.raises(RuntimeError, match="fixture fell over"):
        with client.start_run(dut_serial="SN4", station_id="bench") as run:
            with run.step("rail"):
                raise RuntimeError("fixture fell over")
    assert run.outcome == "errored"
    (step,) = rows(run.result.parquet, "record_type = 'step'")
    assert step["step_outcome"] == "errored" and "fixture fell over" in step["step_error"]


def test_a_planned_step_never_recorded_is_a_never_ran_row_and_the_run_errors(project: Path) -> None:
    run = LitmusClient("data").start_run(dut_serial="SN5", station_id="bench", steps=["a", "b"])
    run.step("a").measure("x", 1.0, low=0, high=2).finish()
    run.finish()
    assert run.outcome == "errored" and "b" in run.result.error
    steps = {r["step_name"]: r["step_outcome"] for r in rows(run.result.parquet, "record_type = 'step'")}
    assert steps == {"a": "passed", "b": None}


def test_fail_and_error_on_each_level(project: Path) -> None:
    client = LitmusClient("data")
    run = client.start_run(dut_serial="SN6", station_id="bench")
    run.step("s1").vector(n=1).fail("wrong beep").finish()
    run.step("s2").error("adapter lost")
    run.finish()
    steps = {r["step_name"]: (r["step_outcome"], r["step_error"]) for r in rows(run.result.parquet, "record_type = 'step'")}
    assert steps["s1"] == ("failed", "wrong beep")
    assert steps["s2"][0] == "errored" and "adapter lost" in steps["s2"][1]
    assert run.outcome == "errored"
    other = client.start_run(dut_serial="SN7", station_id="bench")
    other.step("ok").measure("x", 1.0, low=0, high=2).finish()
    other.fail("operator rejected the unit").finish()
    assert other.outcome == "failed" and other.result.error == "operator rejected the unit"


def test_a_tool_verdict_is_recorded_as_given_with_its_limit(project: Path) -> None:
    run = LitmusClient("data").start_run(dut_serial="SN8", station_id="bench")
    run.step("cal").measure("offset", 0.7, "mV", high=0.5, outcome="passed").finish()
    run.finish()
    (m,) = rows(run.result.parquet, "record_type = 'measurement'")
    assert m["measurement_outcome"] == "passed" and m["limit_high"] == 0.5


def test_builders_refuse_writing_into_closed_levels(project: Path) -> None:
    run = LitmusClient("data").start_run(dut_serial="SN9", station_id="bench")
    first = run.step("a")
    run.step("b")
    with pytest.raises(LitmusError, match="step 'a' is finished"):  # opening b closed a
        first.measure("x", 1.0, low=0, high=2)
    with pytest.raises(ConfigError, match="already recorded"):
        run.step("a")
    with pytest.raises(ConfigError, match="did you mean 'high'"):
        run.step("c").measure("x", 1.0, hihg=2)
    run.finish()
    with pytest.raises(LitmusError, match="finished"):
        run.step("d")


def test_read_side(project: Path) -> None:
    client = LitmusClient("data")
    labview_style(client)
    ok = client.start_run(dut_serial="SN-OK", station_id="ate_9")
    ok.step("s").measure("x", 1.0, low=0, high=2).finish()
    ok.finish()
    runs = client.list_runs()
    assert [r.dut_serial for r in runs] == ["SN-OK", "SN-LV-1"]  # newest first
    assert [r.dut_serial for r in client.list_runs(outcome="failed")] == ["SN-LV-1"]
    assert [r.dut_serial for r in client.list_runs(station="ate_9")] == ["SN-OK"]
    assert len(client.list_runs(limit=1)) == 1
    summary = client.get_run(ok.run_id[:10])
    assert isinstance(summary, RunSummary)
    assert (summary.run_id, summary.outcome, summary.station_id) == (ok.run_id, "passed", "ate_9")
    assert summary.file_path and Path(summary.file_path).exists()
    steps = client.get_steps(ok.run_id)
    assert [s["step_name"] for s in steps] == ["s"] and steps[0]["step_outcome"] == "passed"
    meas = client.get_measurements(ok.run_id)
    assert meas[0]["measurement_name"] == "x" and meas[0]["measurement_value"] == 1.0
    ended = client.events(event_type="run.ended", run_id=ok.run_id)
    assert [e["outcome"] for e in ended] == ["passed"]
    with pytest.raises(LitmusError, match="no run"):
        client.get_run("ffffffffffff")


def test_seed_001_logging_bridge_works_as_printed(project: Path) -> None:
    """The seed's own handler class, copied as printed, on our client."""

    class LitmusHandler(logging.Handler):
        """Forward warnings/errors to the active run as step failures."""

        def __init__(self, run):  # type: ignore[no-untyped-def]
            super().__init__()
            self.run = run
            self.step = None  # set by caller before emitting failing records

        def emit(self, record):  # type: ignore[no-untyped-def]
            if record.levelno >= logging.WARNING and self.step is not None:
                self.step.fail(record.getMessage())

    client = LitmusClient()
    run = client.start_run(dut_serial="SN001", station_id="bench_1")
    handler = LitmusHandler(run)
    logging.getLogger("my_test").addHandler(handler)
    try:
        handler.step = run.step("boot")
        logging.getLogger("my_test").warning("boot took 9 s")
        run.finish()
    finally:
        logging.getLogger("my_test").removeHandler(handler)
    assert run.outcome == "failed"
    (step,) = rows(run.result.parquet, "record_type = 'step'")
    assert step["step_error"] == "boot took 9 s"


def test_seed_004_sync_to_database_works_as_printed(project: Path) -> None:
    client = LitmusClient()
    made = labview_style(client)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE test_runs (id, serial, outcome)")
    db.execute("CREATE TABLE measurements (run_id, name, value)")

    def sync_to_database(run_id: str, db_connection):  # type: ignore[no-untyped-def]
        """Mirror one Litmus run's summary + measurements into an external DB."""
        client = LitmusClient()
        run = client.get_run(run_id)  # RunSummary (Pydantic model)
        measurements = client.get_measurements(run_id)  # list[dict] keyed by parquet columns
        db_connection.execute(
            "INSERT INTO test_runs (id, serial, outcome) VALUES (?, ?, ?)",
            (run_id, run.dut_serial, run.outcome)
        )
        for m in measurements:
            db_connection.execute(
                "INSERT INTO measurements (run_id, name, value) VALUES (?, ?, ?)",
                (run_id, m["measurement_name"], m["measurement_value"])
            )

    sync_to_database(made.run_id, db)
    assert db.execute("SELECT serial, outcome FROM test_runs").fetchall() == [("SN-LV-1", "failed")]
    assert sorted(db.execute("SELECT name, value FROM measurements").fetchall(), key=str) == sorted(
        [("rail_3v3", 3.31), ("rail_3v3", 3.62), ("fw_version", None)], key=str)


def test_seed_queries_run_unchanged(project: Path) -> None:
    client = LitmusClient("data")
    labview_style(client)
    data_dir = "data"
    # seed 001: "Querying the existing store"
    got = duckdb.sql(f"""
SELECT dut_serial, step_name, measurement_outcome, COUNT(*)
FROM '{data_dir}/runs/**/*.parquet'
GROUP BY dut_serial, step_name, measurement_outcome
""").fetchall()
    assert ("SN-LV-1", "rail", "failed", 1) in got
    # seed 004: "Find steps that are frequently skipped or never run"
    duckdb.sql("""
SELECT step_name,
COUNT(*) AS total,
SUM(CASE WHEN step_outcome IS NULL THEN 1 ELSE 0 END) AS never_ran
FROM read_parquet('data/runs/**/*.parquet')
WHERE record_type = 'step'
GROUP BY step_name
HAVING never_ran > 0;""").fetchall()


def test_a_client_run_killed_mid_way_is_recovered(project: Path) -> None:
    script = (
        "import os, signal\n"
        "from litmus_seq.client import LitmusClient\n"
        "run = LitmusClient('data').start_run(dut_serial='SN-KILL', station_id='bench', steps=['a', 'b'])\n"
        "run.step('a').measure('x', 1.0, low=0, high=2).finish()\n"
        "run.step('b')\n"
        "run.recorder.bus.flush()\n"
        "from litmus_seq.stores.events import iter_event_files, read_events\n"
        "def written():  # the event store writes on its own thread: wait until step a's end is on disk\n"
        "    return any(e.get('event_type') == 'test.step_ended' for f in iter_event_files('data') for e in read_events(f))\n"
        "while not written():\n"
        "    pass\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9
    from litmus_seq.cli.main import main

    assert main(["recover", "--data-dir", "data"]) == 0
    (f,) = Path("data/runs").glob("*/*.parquet")
    steps = {r["step_name"]: r["step_outcome"] for r in rows(f, "record_type = 'step'")}
    assert steps["a"] == "passed"
    assert rows(f, "record_type = 'run'")[0]["run_outcome"] == "aborted"
