"""The logging bridge: log records as verdicts (LitmusHandler) and as a step's log (capture_logs)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import pytest

from litmus_seq.client import LitmusClient
from litmus_seq.logging import LitmusHandler, capture_logs, format_record



@pytest.fixture
def project(reporters_project: Path) -> Path:
    """A copy of the reporters' mock project as the working directory (tests/conftest.py)."""
    return reporters_project


def steps_of(parquet: Path) -> dict[str, tuple[str, str | None]]:
    rel = duckdb.sql(f"SELECT step_name, step_outcome, step_error FROM read_parquet('{parquet}') "
                     "WHERE record_type = 'step'")
    return {name: (outcome, error) for name, outcome, error in rel.fetchall()}


def test_warning_fails_and_error_errors_the_open_step(project: Path) -> None:
    log = logging.getLogger("dut.console")
    run = LitmusClient("data").start_run(dut_serial="SN1", station_id="bench")
    handler = LitmusHandler(run)
    log.addHandler(handler)
    try:
        run.step("quiet")
        log.info("booting")  # below the fail level: ignored
        run.step("slow")
        log.warning("boot took %d s", 9)
        run.step("broken")
        log.error("no response")
        run.finish()
    finally:
        log.removeHandler(handler)
    steps = steps_of(run.result.parquet)
    assert steps["quiet"] == ("done", None)
    assert steps["slow"] == ("failed", "WARNING: boot took 9 s")
    assert steps["broken"][0] == "errored" and steps["broken"][1] == "ERROR: no response"
    assert run.outcome == "errored"


def test_levels_are_configurable(project: Path) -> None:
    log = logging.getLogger("dut.strict")
    run = LitmusClient("data").start_run(dut_serial="SN2", station_id="bench")
    handler = LitmusHandler(run, fail_level=logging.ERROR, error_level=None)
    log.addHandler(handler)
    try:
        run.step("a")
        log.warning("only a warning")
        log.critical("bad")
        run.finish()
    finally:
        log.removeHandler(handler)
    assert steps_of(run.result.parquet)["a"] == ("failed", "CRITICAL: bad")


def test_a_broken_target_never_raises_into_the_code_under_test(capsys: pytest.CaptureFixture[str]) -> None:
    class Closed:
        def fail(self, message: str) -> None:
            raise RuntimeError("run is finished")

        error = fail

    log = logging.getLogger("dut.closed")
    handler = LitmusHandler(Closed())
    log.addHandler(handler)
    try:
        log.warning("still logging")  # must not raise
    finally:
        log.removeHandler(handler)
    assert "run is finished" in capsys.readouterr().err  # logging's own error report


def test_capture_logs_keeps_records_as_step_events(project: Path) -> None:
    client = LitmusClient("data")
    run = client.start_run(dut_serial="SN3", station_id="bench")
    run.step("flash")
    with capture_logs(run.recorder):
        logging.getLogger("flasher").info("writing %d blocks", 12)
        logging.getLogger("flasher").debug("below the level: not kept")
    run.finish()
    logs = client.events(event_type="test.log", run_id=run.run_id)
    assert [(e["level"], e["logger"], e["message"], e["step_path"]) for e in logs] == [
        ("INFO", "flasher", "writing 12 blocks", "main/flash")]
    assert format_record(logs[0]).startswith("INFO     flasher:test_logging.py:")
    assert logging.getLogger().level == logging.WARNING  # restored


def test_a_python_step_log_reaches_the_store_show_and_pubdir(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "checks").mkdir()
    (project / "checks" / "__init__.py").write_text("")
    (project / "checks" / "talk.py").write_text(
        "import logging\n"
        "def talk(ctx):\n"
        "    logging.getLogger('checks.talk').warning('fan at %d rpm', 900)\n"
        "    ctx.measure('fan', 900.0, limit={'low': 500})\n")
    (project / "sequences" / "talk.yaml").write_text(
        "sequence: talk\nproduct: board\nsteps:\n  - name: fan\n    python: checks.talk:talk\n")
    from litmus_seq.cli.main import main

    assert main(["run", "sequences/talk.yaml", "--dut", "SN4", "--data-dir", "data", "--pubdir", "pub"]) == 0
    logs = LitmusClient("data").events(event_type="test.log")
    assert [(e["level"], e["message"], e["step_path"]) for e in logs] == [("WARNING", "fan at 900 rpm", "main/fan")]
    line = "WARNING  checks.talk:talk.py:3 fan at 900 rpm"
    (log_txt,) = Path("pub").rglob("log.txt")
    assert line in log_txt.read_text()
    capsys.readouterr()
    assert main(["show", "SN4", "--data-dir", "data"]) == 0
    assert f"log: {line}" in capsys.readouterr().out
    assert main(["show", "SN4", "--data-dir", "data", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["logs"][0]["message"] == "fan at 900 rpm"
