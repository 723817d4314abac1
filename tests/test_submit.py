"""``litmus-seq submit``: a whole run as one JSON document, checked whole, stored whole or not at
all, and once however often it is sent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest

from litmus_seq.client import LitmusClient
from litmus_seq.submit import document_schema


DOC: dict[str, Any] = {
    "dut_serial": "SN-LV-1", "station_id": "labview_3", "operator": "ana", "phase": "production",
    "custom": {"lot": "L7"},
    "started_at": "2026-12-01T10:00:00Z", "ended_at": "2026-12-01T10:05:00Z",
    "steps": [
        {"name": "rail", "vectors": [
            {"params": {"vin": 5.0}, "measurements": [{"name": "rail_3v3", "value": 3.31, "units": "V",
                                                       "low": 3.1, "high": 3.5}]},
            {"params": {"vin": 12.0}, "measurements": [{"name": "rail_3v3", "value": 3.62, "units": "V",
                                                        "low": 3.1, "high": 3.5}]}]},
        {"name": "firmware", "measurements": [{"name": "fw_version", "value": "1.4.2", "equals": "1.4.2"}]},
    ],
}


@pytest.fixture
def project(reporters_project: Path) -> Path:
    """A copy of the reporters' mock project as the working directory (tests/conftest.py)."""
    return reporters_project


def cli(*args: str, stdin: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def table(where: str = "true") -> list[tuple[Any, ...]]:
    """Every row of every run file, ids and file-level timestamps aside, in a stable order."""
    rel = duckdb.sql(f"SELECT * FROM read_parquet('data/runs/**/*.parquet', union_by_name = true) WHERE {where}")
    skip = {"session_id", "run_id", "run_started_at", "run_ended_at", "step_started_at", "step_ended_at",
            "vector_started_at", "vector_ended_at", "measurement_timestamp", "station_hostname",
            "python_version", "litmus_seq_version", "project_name", "git_commit", "git_branch", "filename",
            "step_vector_count"}  # a document says how many vectors a step has; a client run learns it
    cols = [c for c in rel.columns if c not in skip]
    got = duckdb.sql(f"SELECT {', '.join(cols)} FROM rel ORDER BY record_type, step_index, vector_index, "
                     "measurement_name").fetchall()
    return got


def test_a_submitted_run_equals_the_same_run_recorded_with_the_client(project: Path, tmp_path: Path) -> None:
    proc = cli("submit", str(write(tmp_path / "doc.json", DOC)), "--data-dir", "data", cwd=project)
    assert proc.returncode == 1, proc.stderr  # failed: 3.62 V > high 3.5
    assert "FAILED" in proc.stdout and "stored" in proc.stdout
    submitted = table()
    shutil.rmtree("data")
    run = LitmusClient("data").start_run(dut_serial="SN-LV-1", station_id="labview_3", operator="ana",
                                         phase="production", lot="L7",
                                         steps=["rail", "firmware"])
    step = run.step("rail")
    step.vector(vin=5.0).measure("rail_3v3", 3.31, "V", low=3.1, high=3.5)
    step.vector(vin=12.0).measure("rail_3v3", 3.62, "V", low=3.1, high=3.5)
    step.finish()
    run.step("firmware").measure("fw_version", "1.4.2", equals="1.4.2").finish()
    run.finish()
    assert table() == submitted


def test_submitted_times_stamp_the_run(project: Path, tmp_path: Path) -> None:
    cli("submit", str(write(tmp_path / "doc.json", DOC)), "--data-dir", "data", cwd=project)
    ((started, ended),) = duckdb.sql("SELECT strftime(run_started_at, '%Y-%m-%dT%H:%M:%S'), "
                                  "strftime(run_ended_at, '%Y-%m-%dT%H:%M:%S') FROM "
                                  "read_parquet('data/runs/**/*.parquet') WHERE record_type = 'run'").fetchall()
    assert (started, ended) == ("2026-12-01T10:00:00", "2026-12-01T10:05:00")
    assert [p.parent.name for p in Path("data/runs").glob("*/*.parquet")] == ["2026-12-01"]


def test_resubmitting_stores_once(project: Path, tmp_path: Path) -> None:
    doc = write(tmp_path / "doc.json", {**DOC, "run_id": "lv3-000123"})
    first = cli("submit", str(doc), "--data-dir", "data", "--json", cwd=project)
    second = cli("submit", str(doc), "--data-dir", "data", "--json", cwd=project)
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert (a["stored"], b["stored"]) == (True, False)
    assert a["run_id"] == b["run_id"] == "lv3-000123" and a["outcome"] == b["outcome"] == "failed"
    assert second.returncode == 1
    assert len(list(Path("data/runs").glob("*/*.parquet"))) == 1
    # without a run_id the same content is the same run too (a retry after a lost reply)
    plain = write(tmp_path / "plain.json", DOC)
    ids = {json.loads(cli("submit", str(plain), "--data-dir", "data", "--json", cwd=project).stdout)["run_id"]
           for _ in range(2)}
    assert len(ids) == 1
    assert len(list(Path("data/runs").glob("*/*.parquet"))) == 2


def test_stdin(project: Path) -> None:
    proc = cli("submit", "-", "--data-dir", "data", stdin=json.dumps(DOC), cwd=project)
    assert proc.returncode == 1 and "stored" in proc.stdout


def test_every_mistake_is_reported_with_its_json_path_and_nothing_is_written(project: Path, tmp_path: Path) -> None:
    bad = json.loads(json.dumps(DOC))
    del bad["station_id"]
    bad["steps"][0]["vectors"][0]["measurements"][0]["hihg"] = 3.5
    bad["steps"][1]["measurements"][0]["value"] = {"nested": 1}
    bad["steps"][0]["vectors"][1]["measurements"][0]["low"] = 4.0  # low above high
    proc = cli("submit", str(write(tmp_path / "bad.json", bad)), "--data-dir", "data", cwd=project)
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert any("$.station_id" in line and "required" in line.lower() for line in lines), lines
    assert any("$.steps[0].vectors[0].measurements[0].hihg: unknown key (did you mean 'high'?)" in line
               for line in lines), lines
    assert any("$.steps[1].measurements[0].value" in line for line in lines), lines
    assert "Traceback" not in proc.stderr
    assert not Path("data").exists()
    # limit errors are found before anything is recorded too
    bad = json.loads(json.dumps(DOC))
    bad["steps"][0]["vectors"][1]["measurements"][0]["low"] = 4.0
    proc = cli("submit", str(write(tmp_path / "bad2.json", bad)), "--data-dir", "data", cwd=project)
    assert proc.returncode == 4 and "$.steps[0].vectors[1].measurements[0]" in proc.stderr
    assert not list(Path("data").glob("runs/*/*.parquet")) if Path("data").exists() else True


def test_not_json_and_not_an_object(project: Path, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"dut_serial": "SN1",\n  "steps": [}')
    proc = cli("submit", str(tmp_path / "x.json"), "--data-dir", "data", cwd=project)
    assert proc.returncode == 4 and f"{tmp_path / 'x.json'}:2:" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "y.json").write_text("[1, 2]")
    proc = cli("submit", str(tmp_path / "y.json"), "--data-dir", "data", cwd=project)
    assert proc.returncode == 4 and "a run document is a JSON object" in proc.stderr
    proc = cli("submit", str(tmp_path / "missing.json"), "--data-dir", "data", cwd=project)
    assert proc.returncode == 4 and "cannot read" in proc.stderr


def test_with_a_product_every_measurement_is_judged_or_explicitly_unjudged(project: Path, tmp_path: Path) -> None:
    doc = {"dut_serial": "SN2", "station_id": "ate", "product": "board", "guardband_pct": 10,
           "steps": [{"name": "rail", "measurements": [{"name": "rail", "value": 3.3},
                                                        {"name": "raill", "value": 3.3}]}]}
    proc = cli("submit", str(write(tmp_path / "d.json", doc)), "--data-dir", "data", cwd=project)
    assert proc.returncode == 4
    assert "$.steps[0].measurements[1]: no limit for 'raill'" in proc.stderr and "did you mean 'rail'" in proc.stderr
    doc["steps"][0]["measurements"][1]["outcome"] = "passed"
    proc = cli("submit", str(write(tmp_path / "d.json", doc)), "--data-dir", "data", cwd=project)
    assert proc.returncode == 0, proc.stderr
    ((src, gb),) = duckdb.sql("SELECT limit_source, limit_guardband_pct FROM read_parquet('data/runs/**/*.parquet') "
                           "WHERE measurement_name = 'rail'").fetchall()
    assert (src, gb) == ("spec", 10)


def test_a_crash_half_way_leaves_nothing_a_reader_sees(project: Path, tmp_path: Path) -> None:
    """Killed while the run is being recorded: no run file, no event file in the stores; the next
    submission of the same document stores it."""
    doc = write(tmp_path / "doc.json", {**DOC, "run_id": "crash-1"})
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "import litmus_seq.client as client\n"
        "from litmus_seq.project import ProjectContext, find_root\n"
        "from litmus_seq.submit import submit\n"
        "real = client.StepBuilder.finish\n"
        "def finish(self):\n"
        "    out = real(self)\n"
        "    if self.name == 'rail':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return out\n"
        "client.StepBuilder.finish = finish\n"
        f"text = Path({str(doc)!r}).read_bytes()\n"
        "project = ProjectContext(find_root(Path.cwd()))\n"
        "submit(text, data_dir=Path('data'), project=project)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert not list(Path("data/runs").glob("*/*.parquet")) if Path("data/runs").exists() else True
    assert not list(Path("data/events").glob("*/*.arrow")) if Path("data/events").exists() else True
    retry = cli("submit", str(doc), "--data-dir", "data", "--json", cwd=project)
    assert json.loads(retry.stdout)["stored"] is True
    assert len(list(Path("data/runs").glob("*/*.parquet"))) == 1
    assert not list(Path("data/.staging").glob("*/*/*/*")), "the staging folder of the next run is cleaned"


def test_two_submissions_at_once_store_once(project: Path, tmp_path: Path) -> None:
    doc = write(tmp_path / "doc.json", {**DOC, "run_id": "twice"})
    procs = [subprocess.Popen([sys.executable, "-m", "litmus_seq.cli.main", "submit", str(doc), "--data-dir", "data",
                               "--json"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert sorted(o["stored"] for o in outs) == [False, False, True]
    assert len(list(Path("data/runs").glob("*/*.parquet"))) == 1


def test_the_schema_is_published_and_matches_the_documents(project: Path) -> None:
    proc = cli("schema", cwd=project)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((project / "schemas" / "submit.schema.json").read_text())
    assert schema == json.loads(json.dumps(document_schema()))
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(DOC)
    assert list(validator.iter_errors({**DOC, "hihg": 1}))


def test_one_row_per_step_and_vector_and_the_sequence_name(project: Path, tmp_path: Path) -> None:
    cli("submit", str(write(tmp_path / "doc.json", {**DOC, "sequence": "lv_fct"})), "--data-dir", "data",
        cwd=project)
    rows = duckdb.sql("SELECT step_name, vector_index, sequence_name FROM read_parquet('data/runs/**/*.parquet') "
                      "WHERE record_type = 'step' ORDER BY step_index, vector_index").fetchall()
    assert rows == [("rail", 0, "lv_fct"), ("rail", 1, "lv_fct"), ("firmware", 0, "lv_fct")]
