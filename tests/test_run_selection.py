"""Selection like pytest (litmus_seq/run/selection.py): -k, --from, --only, --maxfail, -x.

End to end through ``litmus-seq run`` in a subprocess, the run file read with DuckDB: steps left
out are step rows ``skipped`` with the reason, and the run row says the run was partial.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from litmus_seq.cli.main import main
from litmus_seq.errors import ConfigError
from litmus_seq.run.selection import parse_keyword


@pytest.mark.parametrize("expr, path, expected", [
    ("rail", "rails", True), ("RAIL", "thermal/rail_hot", True), ("rail", "firmware", False),
    ("rail and not hot", "thermal/rail_hot", False), ("rail and not hot", "rails", True),
    ("fw or rail", "fw_version", True), ("not (fw or rail)", "led", True), ("not (fw or rail)", "fw", False),
    ("thermal/soak", "thermal/soak", True), ("a or b and c", "a", True), ("(a or b) and c", "a", False),
])
def test_keyword_expressions(expr: str, path: str, expected: bool) -> None:
    assert parse_keyword(expr)(path) is expected


@pytest.mark.parametrize("expr, fragment", [
    ("", "empty expression"), ("(rail", "'(' is not closed"), ("rail and", "ends too early"),
    ("rail)", "unexpected ')'"), ("and rail", "unexpected 'and'"), ("rail rail", "unexpected 'rail'"),
])
def test_malformed_keyword_expressions_are_one_line(expr: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_keyword(expr)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`init`, a 12-step sequence (s05 inside a group), setup and cleanup."""
    assert main(["init", str(tmp_path)]) == 0
    steps = []
    for i in range(12):
        step = (f"  - name: s{i:02d}\n    measure: rail_3v3\n    from: dmm.measure_dc_voltage\n")
        if i == 5:
            step = "  - group: grp\n    steps:\n" + "".join("  " + line + "\n" for line in step.splitlines())
        steps.append(step)
    (tmp_path / "sequences" / "twelve.yaml").write_text(
        "sequence: twelve\nproduct: board\nstation: bench\nsetup:\n  - call: psu.output_on\n"
        "steps:\n" + "".join(steps) + "cleanup:\n  - call: psu.output_off\n")
    return tmp_path


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "LITMUS_DEBUG")}
    return subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", "sequences/twelve.yaml", "--dut", "SN1",
                           *args], cwd=project, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def rows(project: Path) -> tuple[dict[str, Any], dict[str, tuple[str | None, str | None]]]:
    """The run row, and step path -> (outcome, error) of every step row."""
    (file,) = (project / "data" / "runs").rglob("*.parquet")
    con = duckdb.connect()
    run = con.sql(f"SELECT run_outcome, run_selection, run_error FROM read_parquet('{file}') "
                  "WHERE record_type = 'run'").fetchall()
    steps = con.sql(f"SELECT step_path, step_outcome, step_error FROM read_parquet('{file}') "
                    "WHERE record_type = 'step'").fetchall()
    con.close()
    ((outcome, selection, error),) = run
    return {"outcome": outcome, "selection": selection, "error": error}, {p: (o, e) for p, o, e in steps}


def test_k_runs_matching_steps_and_records_the_rest_skipped(project: Path) -> None:
    res = run(project, "-k", "s0 and not s03")
    assert res.returncode == 0, res.stdout + res.stderr
    the_run, steps = rows(project)
    assert the_run == {"outcome": "passed", "selection": "-k 's0 and not s03'", "error": None}
    ran = {p for p, (o, _) in steps.items() if o != "skipped"}
    assert ran == {"setup/1", "main/s00", "main/s01", "main/s02", "main/s04", "main/grp", "main/grp/s05",
                   "main/s06", "main/s07", "main/s08", "main/s09", "cleanup/1"}  # setup and cleanup always run
    for path in ("main/s03", "main/s10", "main/s11"):
        assert steps[path] == ("skipped", "deselected (-k 's0 and not s03')")
    assert "partial: -k 's0 and not s03'" in res.stdout
    assert "main/s10" not in res.stdout  # the left-out steps are counted, not listed
    assert "3 skipped" in res.stdout


def test_a_full_run_is_not_partial(project: Path) -> None:
    assert run(project).returncode == 0
    the_run, steps = rows(project)
    assert the_run["selection"] is None and the_run["outcome"] == "passed"
    assert {o for o, _ in steps.values()} <= {"passed", "done"}


def test_from_and_only(project: Path) -> None:
    assert run(project, "--from", "main/s10").returncode == 0
    _, steps = rows(project)
    assert [p for p, (o, _) in steps.items() if p.startswith("main/") and o != "skipped"] == ["main/s10", "main/s11"]
    for file in (project / "data" / "runs").rglob("*.parquet"):
        file.unlink()
    res = run(project, "--only", "s05", "--only", "main/s11")
    assert res.returncode == 0, res.stderr
    the_run, steps = rows(project)
    assert [p for p, (o, _) in steps.items() if p.startswith("main/") and o != "skipped"] == [
        "main/grp", "main/grp/s05", "main/s11"]  # the group holding s05 runs, as a group
    assert the_run["selection"] == "--only s05 --only main/s11"


@pytest.mark.parametrize("args, failed, reason", [
    (("--maxfail", "2"), ["main/s00", "main/s01"], "not run: stopped after 2 failed step(s) (--maxfail 2)"),
    (("-x",), ["main/s00"], "not run: stopped after 1 failed step(s) (--maxfail 1)"),
])
def test_maxfail_stops_and_records_what_did_not_run(project: Path, args: tuple[str, ...], failed: list[str],
                                                    reason: str) -> None:
    station = project / "stations" / "bench.yaml"
    station.write_text(station.read_text().replace("measure_dc_voltage: 3.30", "measure_dc_voltage: [3.6, 3.6, 3.6, 3.3]"))
    res = run(project, *args)
    assert res.returncode == 1, res.stdout + res.stderr
    the_run, steps = rows(project)
    assert the_run["outcome"] == "failed"
    assert [p for p, (o, _) in steps.items() if o == "failed"] == failed
    after = [p for p in steps if p.startswith("main/") and p not in failed]
    assert after and all(steps[p] == ("skipped", reason) for p in after)
    assert steps["cleanup/1"][0] == "done"  # cleanup still runs
    assert reason.removeprefix("not run: ") in res.stdout  # said once, not one line per step
    assert sum(1 for line in res.stdout.splitlines() if "SKIPPED" in line) == 0


@pytest.mark.parametrize("args, fragment", [
    (("--only", "nope"), "--only nope: no such step"),
    (("--from", "s5"), "--from s5: no such step (did you mean 's05'?)"),
    (("-k", "zzz"), "-k zzz: selects no step of twelve"),
    (("-k", "s1 and"), "-k 's1 and': it ends too early"),
    (("--maxfail", "0"), "0 is not in the range x>=1"),
])
def test_a_bad_selection_is_a_usage_error_and_nothing_runs(project: Path, args: tuple[str, ...], fragment: str) -> None:
    res = run(project, *args)
    assert res.returncode == 4, res.stdout + res.stderr
    assert fragment in res.stderr and "Traceback" not in res.stderr
    assert not (project / "data").exists()
