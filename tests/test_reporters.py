"""One verdict everywhere (issue 9): console, JUnit, --pubdir, --publish, the parquet file and the
exit code agree, for every way a run can end.

Each case is a real ``litmus-seq run`` subprocess of the mock-only reporter project with all
three reporters on, a real HTTP server on 127.0.0.1 receiving ``--publish``, and the parquet
``run_outcome`` read back with DuckDB. "Terminated" stops the run with SIGTERM while a step is in
flight (the step's driver signals it is waiting through a file: no timing guesses).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import validate_junit
from test_reporters_publish import Collector

from litmus_seq.outcomes import exit_code
from litmus_seq.reporters import result_word

DATA = Path(__file__).resolve().parent / "data" / "reporters" / "project"
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]

CASES = {
    # name: (sequence, extra args, expected outcome)
    "passed": ("sequences/passing.yaml", (), "passed"),
    "failed": ("sequences/stop.yaml", (), "failed"),
    "errored at connect": ("sequences/powered.yaml", ("--station", "dead"), "errored"),
    "errored in a step": ("sequences/mixed.yaml", (), "errored"),
    "errored by SystemExit in a driver": ("sequences/bail.yaml", (), "errored"),
    "terminated": ("sequences/hang.yaml", (), "terminated"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(DATA, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _env() -> dict[str, str]:
    drop = ("LITMUS_DATA_DIR", "PYVISA_LIBRARY", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(project: Path, name: str, url: str) -> tuple[int, str, str]:
    sequence, extra, _ = CASES[name]
    args = [*CLI, "run", sequence, *extra, "--dut", "SN-V", "--data-dir", "data", "--junit", "junit.xml",
            "--pubdir", "pub", "--publish", url]
    proc = subprocess.Popen(args, cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    if name == "terminated":
        deadline = time.monotonic() + 60
        while not (project / "in_step").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"the step never started\nstdout:\n{out}\nstderr:\n{err}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the run did not end\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err


def _parquet_outcomes(data: Path) -> list[tuple[str, str]]:
    import duckdb

    glob = (data / "runs" / "**" / "*.parquet").as_posix()
    rel = duckdb.sql(f"SELECT run_id, run_outcome FROM read_parquet('{glob}', union_by_name = true) "
                     "WHERE record_type = 'run'")
    return [(r["run_id"], r["run_outcome"]) for r in rel.to_arrow_table().to_pylist()]


def _junit_verdict(path: Path) -> tuple[str, str, dict[str, int]]:
    validate_junit(path)
    (suite,) = ET.parse(path).getroot().findall("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    counts = {k: int(suite.get(k)) for k in ("failures", "errors")}
    return props["run_id"], props["run_outcome"], counts


@pytest.mark.parametrize("name", list(CASES))
def test_every_reporter_tells_the_same_verdict(project: Path, name: str) -> None:
    expected = CASES[name][2]
    server = Collector()
    try:
        code, out, err = _run(project, name, server.url)
    finally:
        server.close()
    where = f"stdout:\n{out}\nstderr:\n{err}"

    # the parquet file, read with DuckDB, is the reference
    ((run_id, sealed),) = _parquet_outcomes(project / "data")
    assert sealed == expected, where
    assert code == exit_code(sealed), where

    # the console: one verdict banner, and the run it names
    banners = [line for line in out.splitlines() if line[:1] != " " and line.split(":")[0].split()[:1] == [sealed.upper()]]
    assert len(banners) == 1, where
    assert f"(run {run_id})" in out, where

    # JUnit: the property, and a count that says it (an <error> for every errored end)
    junit_run, junit_outcome, counts = _junit_verdict(project / "junit.xml")
    assert (junit_run, junit_outcome) == (run_id, sealed)
    assert (counts["errors"] > 0) == (sealed in ("errored", "terminated"))
    assert (counts["failures"] > 0 or counts["errors"] > 0) == (sealed != "passed")
    if name == "errored by SystemExit in a driver":  # the cause once: on its step, not again on 'run'
        assert counts["errors"] == 1

    # --pubdir: the run's own result folder
    (folder,) = [p for p in (project / "pub" / "run").iterdir() if p.is_dir()]
    assert folder.name == f"0.{result_word(sealed)}"
    doc: dict[str, Any] = json.loads((folder / "result.json").read_text())
    assert (doc["run_id"], doc["outcome"]) == (run_id, sealed)
    assert (folder / "exception.txt").exists() == (sealed != "passed")

    # --publish: the run document, last
    assert server.posts, where
    final = server.posts[-1]
    assert (final["type"], final["run_id"], final["outcome"], final["result"]) == (
        "run", run_id, sealed, result_word(sealed))
    assert not (project / "data" / "outbox" / "publish").exists() or \
        not list((project / "data" / "outbox" / "publish").iterdir())


def test_a_run_that_never_ended_is_still_reported_by_pubdir_and_publish(tmp_path: Path) -> None:
    """The process stops between a step's start and run.ended (no run.ended event at all): at
    close, --pubdir writes the run's result and --publish posts its document, both 'aborted'."""
    import io

    from test_reporters_junit import _session

    from litmus_seq.hookspecs import hookimpl
    from litmus_seq.reporters.pubdir import PubDir
    from litmus_seq.reporters.publish import Publisher
    from litmus_seq.run import run_plan

    project = tmp_path / "proj"
    shutil.copytree(DATA, project, ignore=shutil.ignore_patterns("__pycache__"))
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
    server = Collector()
    try:
        pub = PubDir(project / "pub", stderr=io.StringIO())
        post = Publisher(server.url, outbox=project / "outbox", stderr=io.StringIO())
        for reporter in (pub, post):
            reporter.litmus_seq_events(events[: cut + 1])
            reporter.close()
    finally:
        server.close()
    (folder,) = [p for p in (project / "pub" / "run").iterdir() if p.is_dir()]
    assert folder.name == "0.fail"
    doc = json.loads((folder / "result.json").read_text())
    assert (doc["outcome"], doc["steps"]["in flight"]) == ("aborted", 1)
    assert "did not end" in doc["excinfo"]["value"]
    final = server.posts[-1]
    assert (final["type"], final["outcome"], final["dut_serial"]) == ("run", "aborted", "SN-CUT")
