"""The stores package's process-wide setting (litmus_seq/stores/__init__.py).

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
from litmus_seq.engine import Session
from litmus_seq.plan import build_plan
from litmus_seq.project import ProjectContext

before = pa.default_memory_pool().backend_name
seq = Path(sys.argv[1]) / "sequences" / "pass.yaml"
ctx = ProjectContext.for_path(seq)
plan = build_plan(seq, project=ctx)
with Session(project=ctx, station=ctx.load_station("bench"), data_dir=Path(sys.argv[2])) as session:
    outcome = session.run(plan, dut_serial="SN1").outcome
print(before, pa.default_memory_pool().backend_name, outcome)
"""


def _child(tmp_path: Path, pool: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    project = tmp_path / "proj"  # (its drivers log calls into the project folder)
    if not project.exists():
        shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-c", CHILD, str(project), str(tmp_path / "data")], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_session_runs_on_the_system_allocator(tmp_path: Path) -> None:
    """mimalloc (pyarrow's default) keeps freed batches for reuse, so a long run's memory only
    grows; a session switches the default pool to the C library's allocator."""
    _, after, outcome = _child(tmp_path, None)
    assert after == "system" and outcome == "passed"


@pytest.mark.parametrize("pool", ["mimalloc", "jemalloc"])
def test_the_users_choice_of_pool_is_kept(tmp_path: Path, pool: str) -> None:
    import pyarrow as pa

    try:
        getattr(pa, f"{pool}_memory_pool")()
    except (NotImplementedError, AttributeError, pa.ArrowException):
        pytest.skip(f"pyarrow built without {pool}")
    before, after, outcome = _child(tmp_path, pool)
    assert before == after == pool and outcome == "passed"
