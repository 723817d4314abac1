"""``litmus-seq plugins`` through main() and once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from litmus_seq.cli.main import main


@pytest.fixture(autouse=True)
def _isolated_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_json_lists_plugins_and_drivers(example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(example_project)
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert Path(doc["project_root"]).resolve() == example_project.resolve()
    sources = {p["name"]: p["source"] for p in doc["plugins"]}
    assert sources["litmus_seq.drivers"] == "builtin"
    assert sources["plugins/demo_chamber.py"] == "local"
    drivers = {d["name"]: d for d in doc["drivers"]}
    assert drivers["scpi.dmm"] == {
        "name": "scpi.dmm", "plugin": "litmus_seq.drivers", "class": "litmus_seq.drivers.scpi:ScpiDmm",
    }
    assert drivers["demo.chamber"]["class"] == "plugins/demo_chamber.py:DemoChamber"


def test_p_loads_an_extra_plugin_file(example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    (example_project / "extra.py").write_text(
        "from litmus_seq.drivers import Driver\n"
        "class Thing(Driver):\n    pass\n"
        "def litmus_seq_register_drivers(registry):\n    registry.register('extra.thing', Thing)\n"
    )
    monkeypatch.chdir(example_project)
    assert main(["plugins", "-p", "extra.py", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"name": "extra.thing", "plugin": "extra.py", "class": "extra.py:Thing"} in doc["drivers"]
    assert doc["problems"] == []


def test_json_reports_a_class_breaking_the_driver_contract(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (example_project / "extra.py").write_text(
        "def litmus_seq_register_drivers(registry):\n    registry.register('extra.thing', object)\n"
    )
    monkeypatch.chdir(example_project)
    assert main(["plugins", "-p", "extra.py", "--json"]) == 4
    doc = json.loads(capsys.readouterr().out)
    assert {"name": "extra.thing", "plugin": "extra.py", "class": "builtins:object"} in doc["drivers"]
    assert len(doc["problems"]) == 2 and all("driver 'extra.thing' class object" in p for p in doc["problems"])


def test_broken_plugin_exits_4_with_one_line_and_no_traceback(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (example_project / "plugins" / "broken.py").write_text("import litmus_missing_dependency\n")
    monkeypatch.chdir(example_project)
    assert main(["plugins"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("plugins/broken.py:1: ")
    assert "litmus_missing_dependency" in err
    assert "Traceback" not in err


def test_table_output_in_a_subprocess(example_project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "litmus_seq.cli.main", "plugins"],
        cwd=example_project, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for text in ("litmus_seq.drivers", "builtin", "plugins/demo_chamber.py", "local", "demo.chamber", "scpi.eload"):
        assert text in proc.stdout


def test_table_never_cuts_plugin_or_driver_names(example_project: Path) -> None:
    name = "a_vendor_instrument_family_with_a_long_name"
    (example_project / "plugins" / f"{name}.py").write_text(
        "from litmus_seq.drivers import Driver\n"
        "class Psu(Driver):\n    pass\n"
        "def litmus_seq_register_drivers(registry):\n"
        "    registry.register('vendor.programmable_dc_power_supply_series_9000', Psu)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [sys.executable, "-m", "litmus_seq.cli.main", "plugins"],
        cwd=example_project, capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "60"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(f"plugins/{name}.py" in line for line in lines), proc.stdout  # whole, on one line
    assert any("vendor.programmable_dc_power_supply_series_9000" in line for line in lines), proc.stdout
