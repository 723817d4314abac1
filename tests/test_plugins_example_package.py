"""The example plugin package (``plugins/litmus-seq-example-plugin``) installed for real.

``pip install --target`` builds the package from a copy of its folder (its own
``pyproject.toml``, flit-core) into a private site folder that only these tests' processes put on
their path, so the shared environment is untouched. Then, as a user would: the plugin is listed
(``plugins``), its options validate the station (``validate``), a sequence runs on its thermal
chamber, the chamber's identity and calibration are on its measurement rows (DuckDB), and its
result listener wrote its line. Where pip cannot build (no index reachable), a ``*.dist-info``
written by hand stands in, which still exercises real entry-point discovery.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "plugins" / "litmus-seq-example-plugin"
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder with the example package installed by pip (or, failing that, by hand)."""
    work = tmp_path_factory.mktemp("example_pkg")
    source = work / "src"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    target = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:  # no package index here: the metadata pip would have written
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source / "litmus_seq_example_plugin", target / "litmus_seq_example_plugin")
        info = target / "litmus_seq_example_plugin-0.2.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: litmus-seq-example-plugin\nVersion: 0.2.0\n")
        (info / "entry_points.txt").write_text("[litmus_seq]\nlitmus-seq-example-plugin = litmus_seq_example_plugin\n")
    assert sorted(p.name for p in source.iterdir()) == ["litmus_seq_example_plugin", "pyproject.toml"]
    return target


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    for folder in ("stations", "sequences"):
        (root / folder).mkdir(parents=True)
    (root / "litmus.yaml").write_text("name: lab\n")
    (root / "stations" / "thermal.yaml").write_text(textwrap.dedent("""\
        id: thermal
        instruments:
          chamber:
            driver: example.chamber
            settings: {serial: TC-7781, uniformity_c: 0.1, cal_due: 2099-06-30, cal_certificate: CTRL-CAL-9}
            calibration: {due: 2099-06-30, certificate: CTRL-CAL-9}
            expect_idn: {manufacturer: Example Thermal, model: TC-100}
        """))
    (root / "sequences" / "soak.yaml").write_text(textwrap.dedent("""\
        sequence: soak
        station: thermal
        steps:
          - name: hot
            do:
              - call: chamber.set_temperature
                args: {celsius: 85}
              - measure: chamber_temp
                from: chamber.read_temperature
                limit: {low: 84.5, high: 85.5}
          - name: cold
            do:
              - call: chamber.set_temperature
                args: {celsius: -40}
              - measure: chamber_temp_cold
                from: chamber.read_temperature
                limit: {low: -40.5, high: -39.5}
        """))
    return root


def cli(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}
    env["LITMUS_EXAMPLE_RESULTS"] = str(cwd / "example_results.jsonl")  # the listener's file
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(site)])
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def measurement_rows(data: Path) -> list[dict[str, Any]]:
    import duckdb

    rel = duckdb.sql(f"select * from read_parquet('{data}/runs/*/*.parquet', union_by_name=true) "
                     "where record_type = 'measurement' order by measurement_name")
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def test_installed_package_is_listed_with_its_distribution(site: Path, project: Path) -> None:
    proc = cli(site, project, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (row,) = [p for p in doc["plugins"] if p["name"] == "litmus-seq-example-plugin"]
    assert (row["source"], row["dist"], row["version"]) == ("entrypoint", "litmus-seq-example-plugin", "0.2.0")
    assert {"litmus_seq_register_drivers", "litmus_seq_events"} <= set(row["hooks"])
    drivers = {d["name"]: d for d in doc["drivers"]}
    assert drivers["example.chamber"]["plugin"] == "litmus-seq-example-plugin"
    assert drivers["example.chamber"]["class"] == "litmus_seq_example_plugin.chamber:ThermalChamber"
    assert doc["problems"] == []


def test_installed_drivers_options_validate_the_station(site: Path, project: Path) -> None:
    ok = cli(site, project, "validate", "stations/thermal.yaml", "sequences/soak.yaml")
    assert ok.returncode == 0, ok.stderr
    station = project / "stations" / "thermal.yaml"
    station.write_text(station.read_text().replace("uniformity_c: 0.1", "uniformity: 0.1"))
    bad = cli(site, project, "validate", "stations/thermal.yaml")
    assert bad.returncode == 4
    assert bad.stderr.startswith("stations/thermal.yaml:5:33: instruments.chamber.settings.uniformity: unknown key "
                                 "(did you mean 'uniformity_c'?)")


def test_a_sequence_runs_on_the_installed_chamber_with_identity_calibration_and_listener(
        site: Path, project: Path) -> None:
    proc = cli(site, project, "run", "sequences/soak.yaml", "--data-dir", "data", "--dut", "SN-1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = measurement_rows(project / "data")
    assert [r["measurement_name"] for r in got] == ["chamber_temp", "chamber_temp_cold"]
    for row in got:
        assert row["measurement_outcome"] == "passed"
        assert (row["instrument_name"], row["instrument_manufacturer"], row["instrument_model"],
                row["instrument_serial"], row["instrument_firmware"]) == (
            "chamber", "Example Thermal", "TC-100", "TC-7781", "4.2")
        assert (row["instrument_cal_due"], row["instrument_cal_certificate"]) == ("2099-06-30", "CTRL-CAL-9")
        assert row["instrument_cal_exception"] is None
        assert row["step_instruments_idn_check"] == ["matched"]
    (line,) = (project / "example_results.jsonl").read_text().splitlines()
    result = json.loads(line)
    assert result["outcome"] == "passed" and result["measurements"] == {"passed": 2}
    assert result["run_id"] == got[0]["run_id"]


def test_calibration_reported_by_the_installed_chamber_gates_the_run(site: Path, project: Path) -> None:
    station = project / "stations" / "thermal.yaml"
    text = station.read_text().replace("    calibration: {due: 2099-06-30, certificate: CTRL-CAL-9}\n", "")
    station.write_text(text.replace("cal_due: 2099-06-30", "cal_due: 2020-06-30"))
    blocked = cli(site, project, "run", "sequences/soak.yaml", "--data-dir", "data")
    assert blocked.returncode == 3
    assert "calibration expired on 2020-06-30 (certificate CTRL-CAL-9) (reported by the instrument)" in blocked.stdout \
        + blocked.stderr
    allowed = cli(site, project, "run", "sequences/soak.yaml", "--data-dir", "allowed", "--allow-expired-cal")
    assert allowed.returncode == 0, allowed.stderr
    for row in measurement_rows(project / "allowed"):
        assert row["instrument_cal_exception"] == ("calibration expired on 2020-06-30 (certificate CTRL-CAL-9) "
                                                   "(reported by the instrument); allowed by --allow-expired-cal")
