"""``driver: auto`` and ``litmus_seq_identify_driver`` (issue 13 item 4): the driver is chosen
from ``*IDN?`` of the simulated instrument; a vendor plugin wins over the generic drivers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from litmus_seq.drivers.auto import generic_driver_for

CLI = [sys.executable, "-m", "litmus_seq.cli.main"]

VENDOR = '''\
from litmus_seq import hookimpl
from litmus_seq.drivers import ScpiDmm


class Dmm6500(ScpiDmm):
    """What a vendor would ship for its DMM-6500."""


@hookimpl
def litmus_seq_register_drivers(registry):
    registry.register("vendor.dmm6500", Dmm6500)


@hookimpl
def litmus_seq_identify_driver(idn, resource):
    return "vendor.dmm6500" if ",DMM-6500," in idn else None
'''


@pytest.fixture
def project(example_project: Path) -> Path:
    (example_project / "stations" / "auto.yaml").write_text(textwrap.dedent("""\
        id: auto
        visa_library: "stations/sim_instruments.yaml@sim"
        instruments:
          dmm:
            driver: auto
            resource: "TCPIP::10.0.0.6::INSTR"
            settings: {timeout_ms: 500}
          psu:
            driver: auto
            resource: "TCPIP::10.0.0.5::INSTR"
        """))
    (example_project / "sequences" / "auto.yaml").write_text(textwrap.dedent("""\
        sequence: auto
        station: auto
        steps:
          - name: rail
            do:
              - call: psu.set_voltage
                args: {volts: 5}
              - measure: vout
                from: psu.measure_voltage
                limit: {low: 4.9, high: 5.1}
              - measure: vdmm
                from: dmm.measure_dc_voltage
        """))
    return example_project


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "PYVISA_LIBRARY")}
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def run_row(data: Path) -> dict[str, Any]:
    import duckdb

    rel = duckdb.sql(f"select * from read_parquet('{data}/runs/*/*.parquet', union_by_name=true) "
                     "where record_type = 'run'")
    return dict(zip(rel.columns, rel.fetchall()[0]))


def test_generic_drivers_by_model_keyword() -> None:
    assert generic_driver_for("Litmus Sim,DMM-6500,SIM-DMM-0001,2.0.1") == "scpi.dmm"
    assert generic_driver_for("Litmus Sim,PSU-3005,S,1") == "scpi.psu"
    assert generic_driver_for("Litmus Sim,EL-8500,S,1") == "scpi.eload"
    assert generic_driver_for("Acme,Frobnicator,1,1") is None


def test_auto_picks_the_generic_driver_from_idn_and_records_it(project: Path) -> None:
    dry = cli(project, "run", "sequences/auto.yaml", "--dry-run")
    assert dry.returncode == 0, dry.stderr  # nothing is asked before the run
    proc = cli(project, "run", "sequences/auto.yaml", "--data-dir", "data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = run_row(project / "data")
    drivers = dict(zip(run["step_instruments_name"], run["step_instruments_driver"]))
    assert drivers == {"psu": "scpi.psu", "dmm": "scpi.dmm"}


def test_a_vendor_plugin_wins_over_the_generic_driver(project: Path) -> None:
    (project / "plugins" / "vendor.py").write_text(VENDOR)
    proc = cli(project, "run", "sequences/auto.yaml", "--data-dir", "data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    drivers = dict(zip(*(run_row(project / "data")[k] for k in ("step_instruments_name", "step_instruments_driver"))))
    assert drivers == {"psu": "scpi.psu", "dmm": "vendor.dmm6500"}


def test_an_instrument_nobody_knows_errors_the_run_naming_role_and_reply(project: Path) -> None:
    sim = project / "stations" / "sim_instruments.yaml"
    sim.write_text(sim.read_text().replace("Litmus Sim,DMM-6500,", "Litmus Sim,Frobnicator,"))
    proc = cli(project, "run", "sequences/auto.yaml", "--data-dir", "data")
    assert proc.returncode == 3
    run = run_row(project / "data")
    assert run["run_outcome"] == "errored"
    assert "role 'dmm' (driver: auto): no plugin knows the instrument answering 'Litmus Sim,Frobnicator," \
        in run["run_error"]


def test_auto_without_a_resource_is_a_validation_error(project: Path) -> None:
    st = project / "stations" / "auto.yaml"
    st.write_text(st.read_text().replace('    resource: "TCPIP::10.0.0.6::INSTR"\n', ""))
    proc = cli(project, "validate", "stations/auto.yaml")
    assert proc.returncode == 4
    assert proc.stderr.startswith("stations/auto.yaml:5:13: instruments.dmm.driver: driver: auto reads *IDN?")
