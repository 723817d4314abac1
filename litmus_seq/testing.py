"""The plugin author's kit: a pytest plugin shipped with litmus-seq (entry point ``pytest11``).

It only defines fixtures, none of them autouse, and imports nothing of litmus-seq until a test
asks for one: a test suite that does not use them is not affected. Two fixtures:

``litmus_driver``
    A factory: ``litmus_driver(DriverClass_or_name, resource, sim="defs.yaml", **settings)``
    builds the driver as the engine would (``cls(resource=..., settings=...)`` with the engine's
    keys), pointed at a private copy of a pyvisa-sim definition file (pyvisa-sim keeps state per
    file path), connects it and closes it after the test.

``litmus_step``
    A factory: ``litmus_step(driver, method, resource=..., sim=..., settings=..., args=...,
    limit=..., plugins=[...])`` writes a temporary project (``litmus.yaml``, a station with one
    role ``instr``, a one-step sequence measuring ``instr.<method>``), runs ``litmus-seq run`` in a
    real subprocess and returns a :class:`StepResult`: the exit code, the output and the run's
    measurement rows read back with DuckDB.

``litmus_seq.drivers.conformance.check_driver`` runs the conformance suite of
``litmus-seq plugins check`` from a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["StepResult", "litmus_driver", "litmus_step"]


@dataclass
class StepResult:
    """What ``litmus_step`` ran: exit code, output, and the measurement rows (dicts)."""

    returncode: int
    stdout: str
    stderr: str
    project: Path
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def row(self) -> dict[str, Any]:
        """The one measurement row (fails the test if there is not exactly one)."""
        assert len(self.rows) == 1, f"expected one measurement row, got {len(self.rows)}: {self.stderr}"
        return self.rows[0]


def _sim_copy(sim: str | os.PathLike[str], folder: Path) -> str:
    """``<private copy>@sim`` of a pyvisa-sim definition file."""
    source = Path(sim)
    if not source.is_file():
        raise FileNotFoundError(f"pyvisa-sim definition file {source} not found")
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / source.name
    shutil.copy(source, copy)
    return f"{copy}@sim"


@pytest.fixture
def litmus_driver(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory of connected drivers on a private pyvisa-sim copy (closed after the test)."""
    made: list[Any] = []

    def make(driver: Any, resource: str | None = None, *, sim: str | os.PathLike[str] | None = None,
             role: str = "instr", connect: bool = True, **settings: Any) -> Any:
        cls = driver
        if isinstance(driver, str):
            from litmus_seq.drivers.registry import collect_drivers
            from litmus_seq.plugins import get_plugin_manager

            cls = collect_drivers(get_plugin_manager()).get(driver)
        library = _sim_copy(sim, tmp_path / f"sim{len(made)}") if sim is not None else settings.pop("visa_library", None)
        instance = cls(resource=resource, settings={**settings, "role": role, "mock": None, "visa_library": library})
        made.append(instance)
        if connect:
            instance.connect()
        return instance

    yield make
    for instance in reversed(made):
        try:
            instance.close()
        except Exception:  # noqa: BLE001 - a close failure is the conformance suite's business
            pass
    visa = sys.modules.get("litmus_seq.drivers.visa")
    if visa is not None:
        visa.close_resource_managers()


@pytest.fixture
def litmus_step(tmp_path: Path) -> Callable[..., StepResult]:
    """Factory: run a one-step sequence on one instrument in a temporary project."""

    def run(driver: str, method: str, *, resource: str | None = None, sim: str | os.PathLike[str] | None = None,
            settings: dict[str, Any] | None = None, args: dict[str, Any] | None = None,
            limit: dict[str, Any] | None = None, plugins: Sequence[str] = (), extra: Sequence[str] = (),
            env: dict[str, str] | None = None, timeout: float = 120) -> StepResult:
        import json

        root = tmp_path / f"project{len(list(tmp_path.glob('project*')))}"
        (root / "stations").mkdir(parents=True)
        (root / "sequences").mkdir()
        instr: dict[str, Any] = {"driver": driver, "settings": dict(settings or {})}
        if resource is not None:
            instr["resource"] = resource
        station: dict[str, Any] = {"id": "kit", "instruments": {"instr": instr}}
        if sim is not None:
            station["visa_library"] = _sim_copy(sim, root / "stations")
        step: dict[str, Any] = {"name": method, "measure": method, "from": f"instr.{method}"}
        if args:
            step["args"] = dict(args)
        if limit:
            step["limit"] = dict(limit)
        # JSON is YAML: no quoting rules to get wrong
        (root / "litmus.yaml").write_text(json.dumps({"name": "kit", "plugins": list(plugins)}))
        (root / "stations" / "kit.yaml").write_text(json.dumps(station))
        (root / "sequences" / "one.yaml").write_text(
            json.dumps({"sequence": "one", "station": "kit", "steps": [step]}))
        environ = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "PYVISA_LIBRARY")}
        environ.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "litmus_seq.cli.main", "run", "sequences/one.yaml", "--data-dir", "data", *extra],
            cwd=root, env=environ, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        rows: list[dict[str, Any]] = []
        if list((root / "data" / "runs").rglob("*.parquet")) if (root / "data" / "runs").is_dir() else []:
            import duckdb

            rel = duckdb.sql(f"select * from read_parquet('{root / 'data' / 'runs'}/*/*.parquet', "
                             "union_by_name=true) where record_type = 'measurement'")
            rows = [dict(zip(rel.columns, r)) for r in rel.fetchall()]
        return StepResult(proc.returncode, proc.stdout, proc.stderr, root, rows)

    return run
