"""What the light commands import: ``validate`` and ``--help`` must stay cheap to start.

``litmus-seq validate`` runs in editors' save hooks and CI steps, so its cold start is a product
figure (bench/run.py ``--only cold``, target ≤ 0.3 s). Most of it is imports, and a heavy import
slips in silently (one module-level ``import pyarrow`` in a module validate touches). These tests
run each command in a fresh interpreter and look at ``sys.modules`` afterwards: they check what
is imported, never how long it takes (machines are noisy).

They also cover the tricks that make it cheap and could break behaviour: the models are built
lazily (``defer_build``), asyncio is kept out of pydantic's import
(:func:`litmus_seq.cli.main.import_pydantic_without_asyncio`) and ``litmus_seq`` re-exports its
API lazily.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: never needed to check files: stores, queries, instruments, rich output, schema checking
HEAVY = ("pyarrow", "duckdb", "jsonschema", "rich", "pyvisa", "pyvisa_sim", "asyncio")


def run_python(code: str, cwd: Path) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def imported_after(argv: list[str], cwd: Path, modules: tuple[str, ...], prelude: str = "") -> dict[str, object]:
    """Run the CLI with ``argv`` in a fresh interpreter; its exit code, output and which of
    ``modules`` ended up imported."""
    code = (
        "import contextlib, io, json, sys\n"
        f"{prelude}"
        "from litmus_seq.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main({argv!r})\n"
        f"loaded = sorted(m for m in {modules!r} if m in sys.modules)\n"
        "print(json.dumps({'rc': rc, 'out': out.getvalue(), 'loaded': loaded}))\n"
    )
    return run_python(code, cwd)


@pytest.fixture()
def mock_project(tmp_path: Path) -> Path:
    """The bench's cold-start project: a 10-step sequence on a mock-only station."""
    (tmp_path / "sequences").mkdir()
    (tmp_path / "stations").mkdir()
    (tmp_path / "stations" / "mock.yaml").write_text(
        "id: mock\ninstruments:\n  dmm:\n    driver: mock\n    mock: {read: 3.3}\n", encoding="utf-8")
    steps = "".join(f"  - {{name: s{i}, measure: v, from: dmm.read, limit: {{low: 3.0, high: 3.6}}}}\n"
                    for i in range(10))
    (tmp_path / "sequences" / "steps_10.yaml").write_text(
        f"sequence: steps_10\nversion: 1\nstation: mock\nsteps:\n{steps}", encoding="utf-8")
    return tmp_path


def test_validate_mock_project_imports_nothing_heavy(mock_project: Path) -> None:
    # pluggy and the driver package are not needed either when every role is a mock
    result = imported_after(["validate", "sequences/steps_10.yaml", "stations/mock.yaml"], mock_project,
                            (*HEAVY, "pluggy", "litmus_seq.drivers"))
    assert result["rc"] == 0
    assert result["out"] == "ok: sequences/steps_10.yaml (sequence)\nok: stations/mock.yaml (station)\n"
    assert result["loaded"] == []


def test_validate_example_project_imports_nothing_heavy() -> None:
    # the example project: a product, includes, scpi drivers on a pyvisa-sim station
    files = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "sequences").glob("*.yaml"))]
    files += [p.relative_to(REPO).as_posix() for p in sorted((REPO / "stations").glob("*.yaml"))]
    result = imported_after(["validate", *files], REPO, HEAVY)
    assert result["rc"] == 0
    assert str(result["out"]).count("ok: ") == len(files)
    assert result["loaded"] == []


def test_asyncio_still_works_after_validate(mock_project: Path) -> None:
    # asyncio was kept out while pydantic was imported: a later import (a plugin, a driver)
    # must get the real, complete package
    code = (
        "import contextlib, io, json, sys\n"
        "from litmus_seq.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['validate', 'sequences/steps_10.yaml'])\n"
        "before = 'asyncio' in sys.modules\n"
        "import asyncio, asyncio.coroutines\n"
        "async def answer():\n"
        "    await asyncio.sleep(0)\n"
        "    return 42\n"
        "print(json.dumps({'rc': rc, 'before': before, 'run': asyncio.run(answer()),\n"
        "                  'coro': asyncio.coroutines.iscoroutinefunction(answer),\n"
        "                  'loop': hasattr(asyncio, 'get_event_loop') and hasattr(asyncio, 'Queue')}))\n"
    )
    assert run_python(code, mock_project) == {"rc": 0, "before": False, "run": 42, "coro": True, "loop": True}


def test_asyncio_imported_first_is_left_alone(mock_project: Path) -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "import asyncio\n"
        "first = sys.modules['asyncio']\n"
        "from litmus_seq.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['validate', 'sequences/steps_10.yaml'])\n"
        "print(json.dumps({'rc': rc, 'same': sys.modules['asyncio'] is first,\n"
        "                  'complete': hasattr(sys.modules['asyncio'], 'run')}))\n"
    )
    assert run_python(code, mock_project) == {"rc": 0, "same": True, "complete": True}


def test_lazy_models_still_give_did_you_mean_in_a_fresh_process(tmp_path: Path) -> None:
    # Group's `steps: list[StepItem]` is a forward reference until Group itself is built; the
    # error mapping must resolve it for the hint (in-process tests may have built it already)
    (tmp_path / "sequences").mkdir()
    (tmp_path / "sequences" / "g.yaml").write_text(
        "sequence: g\nsteps:\n  - group: outer\n    steps:\n      - nme: x\n        wait: 1\n",
        encoding="utf-8")
    code = (
        "import contextlib, io, json\n"
        "from litmus_seq.cli.main import main\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        "    rc = main(['validate', 'sequences/g.yaml'])\n"
        "print(json.dumps({'rc': rc, 'err': err.getvalue()}))\n"
    )
    assert run_python(code, tmp_path) == {
        "rc": 4,
        "err": "sequences/g.yaml:5:9: steps[0].steps[0].nme: unknown key (did you mean 'name'?)\n",
    }


def test_help_imports_neither_pydantic_nor_yaml() -> None:
    result = imported_after(["--help"], REPO, (*HEAVY, "pydantic", "yaml", "pluggy", "litmus_seq.errors"))
    assert result["rc"] == 0
    assert "validate" in str(result["out"])
    assert result["loaded"] == []


def test_package_import_is_light_and_every_public_name_resolves() -> None:
    code = (
        "import json, sys\n"
        "import litmus_seq\n"
        "light = sorted(m for m in ('pydantic', 'yaml', 'pluggy', 'litmus_seq.errors') if m in sys.modules)\n"
        "names = {n: type(getattr(litmus_seq, n)).__name__ for n in litmus_seq.__all__}\n"
        "ns = {}\n"
        "exec('from litmus_seq import *', ns)\n"
        "print(json.dumps({'light': light, 'missing': sorted(set(litmus_seq.__all__) - set(ns)),\n"
        "                  'errors_module': litmus_seq.errors.__name__, 'names': names}))\n"
    )
    result = run_python(code, REPO)
    assert result["light"] == []
    assert result["missing"] == []
    assert result["errors_module"] == "litmus_seq.errors"
    names = result["names"]
    assert isinstance(names, dict)
    assert names["LitmusError"] == "type" and names["build_plan"] == "function"
    assert names["hookimpl"] == "HookimplMarker" and names["__version__"] == "str"


def test_pydantic_import_failing_inside_the_window_falls_back_to_a_plain_import(tmp_path: Path) -> None:
    """Another pydantic or typing_extensions release might not import under the asyncio
    placeholder: then everything the window loaded is forgotten and imported the ordinary way,
    never a crash of ``validate``."""
    code = (
        "import json, sys\n"
        "class Once:\n"
        "    hit = False\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pydantic.main' and not Once.hit:\n"
        "            Once.hit = True\n"
        "            raise RuntimeError('simulated incompatibility')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Once())\n"
        "from litmus_seq.cli.main import import_pydantic_without_asyncio\n"
        "import_pydantic_without_asyncio()\n"
        "import asyncio, pydantic\n"
        "class M(pydantic.BaseModel):\n"
        "    x: int\n"
        "print(json.dumps({'hit': Once.hit, 'x': M(x='3').x, 'loop': hasattr(asyncio, 'new_event_loop'),\n"
        "                  'real': sys.modules['asyncio'].__spec__ is not None and hasattr(asyncio, 'run')}))\n"
    )
    out = run_python(code, tmp_path)
    assert out == {"hit": True, "x": 3, "loop": True, "real": True}
