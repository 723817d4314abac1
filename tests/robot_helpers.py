"""Running Robot Framework suites in tests: ``robot.run`` in process, results read back from
``output.xml`` (Robot's view) and from the run files with DuckDB (litmus-seq's view)."""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def robot_project(example_project: Path) -> Path:
    """The example project with its ``robot/`` folder."""
    shutil.copytree(REPO / "robot", example_project / "robot")
    return example_project


def write_suite(project: Path, name: str, *parts: str) -> Path:
    """``robot/<name>`` in the project, from ``parts`` (each dedented on its own)."""
    path = project / "robot" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(textwrap.dedent(p).lstrip("\n") for p in parts), encoding="utf-8")
    return path


def run_robot(project: Path, *suites: Path, **options: Any) -> tuple[int, Any, str]:
    """``robot`` on ``suites`` with ``options``; returns (rc, the ExecutionResult, console text)."""
    import robot
    from robot.api import ExecutionResult

    out = project / "robot_out"
    console = io.StringIO()
    rc = robot.run(*[str(s) for s in suites], outputdir=str(out), log="NONE", report="NONE",
                   stdout=console, stderr=console, **options)
    return rc, ExecutionResult(str(out / "output.xml")), console.getvalue()


def statuses(result: Any) -> dict[str, tuple[str, str]]:
    """Test name -> (status, message) from an ExecutionResult."""
    found: dict[str, tuple[str, str]] = {}

    def walk(suite: Any) -> None:
        for test in suite.tests:
            found[test.name] = (test.status, test.message)
        for child in suite.suites:
            walk(child)

    walk(result.suite)
    return found


def rows(data_dir: Path, where: str = "true") -> list[dict[str, Any]]:
    import duckdb

    glob = (data_dir / "runs" / "**" / "*.parquet").as_posix()
    rel = duckdb.connect().sql(f"SELECT * FROM read_parquet('{glob}', union_by_name = true) WHERE {where} "
                               "ORDER BY run_started_at, step_index, vector_index, vector_retry, measurement_timestamp")
    return rel.to_arrow_table().to_pylist()


def events(data_dir: Path, event_type: str) -> list[dict[str, Any]]:
    from litmus_seq.stores.events import iter_event_files, read_events

    return [e for path in iter_event_files(data_dir) for e in read_events(path) if e["event_type"] == event_type]
