"""Process-wide settings (litmus_seq/run/process.py): applied by station_process(), never by
library code on its own.

The Arrow memory pool is process-global, so each case runs in a child interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent / "data" / "run" / "project"

CHILD = """
import sys
from pathlib import Path
import pyarrow as pa
from litmus_seq.plan import build_plan
from litmus_seq.plugins import get_plugin_manager
from litmus_seq.project import ProjectContext
from litmus_seq.run import Session, run_plan, station_process
from litmus_seq.stores import register_stores

def one_run(serial, settings):
    pm = get_plugin_manager(project_root=ctx.root)
    with register_stores(pm, Path(sys.argv[2])), Session(ctx.load_station("bench"), pm=pm, root=ctx.root) as s:
        if not settings:
            return run_plan(s, plan, dut_serial=serial).outcome
        with station_process():
            return run_plan(s, plan, dut_serial=serial).outcome

before = pa.default_memory_pool().backend_name
seq = Path(sys.argv[1]) / "sequences" / "pass.yaml"
ctx = ProjectContext.for_path(seq)
plan = build_plan(seq, project=ctx)
outcome = one_run("SN0", False)
untouched = pa.default_memory_pool().backend_name
outcome += "," + one_run("SN1", True)
after = pa.default_memory_pool().backend_name
if len(sys.argv) > 3:  # the program picks a pool of its own after the first session
    pa.set_memory_pool(getattr(pa, sys.argv[3] + "_memory_pool")())
    one_run("SN2", True)
    after += "," + pa.default_memory_pool().backend_name
print(before, untouched, after, outcome)
"""


def _child(tmp_path: Path, pool: str | None, *later: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    project = tmp_path / "proj"  # (its drivers log calls into the project folder)
    if not project.exists():
        shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-c", CHILD, str(project), str(tmp_path / "data"), *later], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_station_process_switches_to_the_system_allocator_and_a_plain_session_does_not(tmp_path: Path) -> None:
    """mimalloc (pyarrow's default) keeps freed batches for reuse, so a long run's memory only
    grows; station_process() switches the default pool to the C library's allocator. A session
    alone (an embedding program that did not ask) leaves the process's pool as it was."""
    before, untouched, after, outcome = _child(tmp_path, None)
    assert untouched == before
    assert after == "system" and outcome == "passed,passed"


def test_a_pool_the_program_sets_later_is_left_alone(tmp_path: Path) -> None:
    pool = next((p for p in ("jemalloc", "mimalloc") if _has(p)), None)
    if pool is None:
        pytest.skip("pyarrow built without another pool than the system one")
    _, _, after, outcome = _child(tmp_path, None, pool)
    first, second = after.split(",")
    assert first == "system" and second != "system" and outcome == "passed,passed"


def _has(pool: str) -> bool:
    import pyarrow as pa

    try:
        getattr(pa, f"{pool}_memory_pool")()
    except (NotImplementedError, AttributeError, pa.ArrowException):
        return False
    return True


@pytest.mark.parametrize("pool", ["mimalloc", "jemalloc"])
def test_the_users_choice_of_pool_is_kept(tmp_path: Path, pool: str) -> None:
    if not _has(pool):
        pytest.skip(f"pyarrow built without {pool}")
    before, untouched, after, outcome = _child(tmp_path, pool)
    assert before == untouched == after == pool and outcome == "passed,passed"
