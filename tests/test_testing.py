"""The plugin author's kit (``litmus_seq.testing``, pytest11): an author's test suite using its
fixtures runs in a real pytest process; loading the plugin without using it imports nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ACME_DRIVER = '''\
from litmus_seq import hookimpl
from litmus_seq.drivers import ScpiDmm


class AcmeDmm(ScpiDmm):
    CMD_DC_VOLTAGE = "VOLT?"


@hookimpl
def litmus_seq_register_drivers(registry):
    registry.register("acme.dmm", AcmeDmm)
'''

ACME_SIM = '''\
spec: "1.1"
devices:
  dmm:
    eom:
      TCPIP INSTR: {q: "\\\\n", r: "\\\\n"}
    dialogues:
      - q: "*IDN?"
        r: "Acme,D-1,A-77,0.9"
      - q: "VOLT?"
        r: "1.25"
    error:
      error_queue:
        - q: "SYST:ERR?"
          default: '+0,"No error"'
          command_error: '-100,"Command error"'
resources:
  TCPIP::10.9.0.1::INSTR:
    device: dmm
'''

AUTHOR_TESTS = '''\
from pathlib import Path

from acme_dmm import AcmeDmm
from litmus_seq.drivers.conformance import FAIL, check_driver

SIM = Path(__file__).parent / "acme.yaml"
RESOURCE = "TCPIP::10.9.0.1::INSTR"


def test_driver_on_its_simulator(litmus_driver):
    dmm = litmus_driver(AcmeDmm, RESOURCE, sim=SIM, timeout_ms=200)
    assert dmm.measure_dc_voltage() == 1.25
    assert dmm.identity()["model"] == "D-1"


def test_one_step_sequence(litmus_step):
    result = litmus_step("acme.dmm", "measure_dc_voltage", resource=RESOURCE, sim=SIM,
                         limit={"low": 1.0, "high": 1.5}, plugins=["acme_dmm"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.row["measurement_value"] == 1.25
    assert result.row["measurement_outcome"] == "passed"
    assert result.row["instrument_model"] == "D-1"


def test_one_step_sequence_failing_limit(litmus_step):
    result = litmus_step("acme.dmm", "measure_dc_voltage", resource=RESOURCE, sim=SIM,
                         limit={"low": 2.0, "high": 3.0}, plugins=["acme_dmm"])
    assert result.returncode == 1
    assert result.row["measurement_outcome"] == "failed"


def test_conformance(litmus_driver):
    library = litmus_driver(AcmeDmm, RESOURCE, sim=SIM, connect=False).settings["visa_library"]
    results = check_driver(AcmeDmm, resource=RESOURCE, settings={"visa_library": library, "timeout_ms": 100})
    assert [r for r in results if r.result == FAIL] == []
'''


def pytest_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "PYVISA_LIBRARY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(folder)])
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # exactly the plugins named here
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "litmus_seq.testing", "-p", "no:cacheprovider",
                           "-q", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_an_authors_suite_uses_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "acme_dmm.py").write_text(ACME_DRIVER)
    (tmp_path / "acme.yaml").write_text(ACME_SIM)
    (tmp_path / "test_acme.py").write_text(AUTHOR_TESTS)
    proc = pytest_run(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout
    assert (tmp_path / "acme.yaml").read_text() == ACME_SIM  # the simulator ran on private copies


def test_the_plugin_is_off_unless_used(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(textwrap.dedent('''\
        import sys

        def test_nothing_of_litmus_seq_is_loaded():
            heavy = [m for m in ("litmus_seq.drivers", "litmus_seq.plugins", "pyvisa", "duckdb", "pyarrow")
                     if m in sys.modules]
            assert heavy == []
        '''))
    proc = pytest_run(tmp_path, "--fixtures")
    assert "litmus_driver" in proc.stdout and "litmus_step" in proc.stdout
    proc = pytest_run(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_it_is_shipped_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"litmus_seq.testing": "litmus_seq.testing"}
