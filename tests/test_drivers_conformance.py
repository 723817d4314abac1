"""The conformance suite (``litmus-seq plugins check``): first-party drivers pass on their
simulators, a deliberately broken driver fails with one table line per broken rule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from litmus_seq.drivers import BUILTIN_DRIVERS
from litmus_seq.drivers.conformance import FAIL, PASS, SKIP, check_driver

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]

BROKEN = '''\
import time

from litmus_seq import hookimpl


class Sloppy:
    """Takes (resource, settings) and has the methods, but gets every behaviour wrong."""

    def __init__(self, resource=None, settings=None):
        self.closed = 0

    def connect(self):
        pass

    def identity(self):
        return ("Sloppy", "S-1")  # a tuple, not a dict

    def calibration(self):
        return {"due": "next spring"}

    def query(self, command):
        time.sleep(60)  # never answers, never times out

    def close(self):
        self.closed += 1
        if self.closed > 1:
            raise RuntimeError("already closed")

    def measure_voltage(self):
        return self.port.read()  # AttributeError leaks out instead of an InstrumentError


@hookimpl
def litmus_seq_register_drivers(registry):
    registry.register("sloppy.dmm", Sloppy)
'''


@pytest.fixture
def sim(tmp_path: Path) -> str:
    copy = tmp_path / "sim.yaml"
    shutil.copy(REPO / "stations" / "sim_instruments.yaml", copy)
    return str(copy)


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name, resource", [
    ("scpi.dmm", "TCPIP::10.0.0.6::INSTR"), ("scpi.psu", "TCPIP::10.0.0.5::INSTR"),
    ("scpi.eload", "TCPIP::10.0.0.7::INSTR"), ("scpi.psu_multi", "TCPIP::10.0.1.3::INSTR"),
    ("scpi.scope", "TCPIP::10.0.1.4::INSTR"), ("serial.console", "ASRL1::INSTR"),
])
def test_first_party_drivers_pass_on_their_simulators(name: str, resource: str, tmp_path: Path) -> None:
    from litmus_seq.drivers.visa import close_resource_managers

    source = REPO / ("stations/sim_instruments.yaml" if ":10.0.0." in resource else "litmus_seq/drivers/sim/first_party.yaml")
    sim = tmp_path / "sim.yaml"
    shutil.copy(source, sim)
    try:
        results = check_driver(BUILTIN_DRIVERS[name], resource=resource,
                               settings={"visa_library": f"{sim}@sim", "timeout_ms": 100})
    finally:
        close_resource_managers()
    assert [r for r in results if r.result == FAIL] == [], results
    by_rule = {r.rule: r for r in results}
    assert by_rule["timeout is an error"].result == PASS
    if name != "serial.console":  # (its methods all take a command: nothing to try closed)
        assert by_rule["error mapping"].result == PASS
        assert by_rule["identity fields"].detail.startswith("Litmus Sim,")


def test_a_broken_driver_fails_one_rule_per_fault() -> None:
    namespace: dict = {}
    exec(compile(BROKEN, "broken.py", "exec"), namespace)
    results = check_driver(namespace["Sloppy"], timeout_s=0.5)
    failed = {r.rule: r.detail for r in results if r.result == FAIL}
    assert set(failed) == {"identity fields", "calibration()", "timeout is an error", "close twice", "error mapping"}
    assert "returned tuple, expected a dict" in failed["identity fields"]
    assert "'next spring' is not a date" in failed["calibration()"]
    assert "still waiting after 0.5 s" in failed["timeout is an error"]
    assert "second close() raised RuntimeError" in failed["close twice"]
    assert "measure_voltage() on a closed driver raised AttributeError" in failed["error mapping"]


def test_a_class_breaking_the_contract_stops_before_constructing_it() -> None:
    class NoCtor:
        def __init__(self, port: str) -> None:
            raise AssertionError("must not be constructed")

    results = check_driver(NoCtor)
    assert results[0].result == FAIL and "NoCtor(port)" in results[0].detail
    assert {r.result for r in results[2:]} == {SKIP}


def test_cli_passes_a_first_party_driver_and_fails_the_broken_one_line_per_rule(tmp_path: Path, sim: str) -> None:
    project = tmp_path / "proj"
    (project / "plugins").mkdir(parents=True)
    (project / "litmus.yaml").write_text("name: check\n")
    (project / "plugins" / "sloppy.py").write_text(BROKEN)
    ok = cli(project, "plugins", "check", "scpi.psu", "--resource", "TCPIP::10.0.0.5::INSTR",
             "--visa-library", f"{sim}@sim", "--set", "timeout_ms=100")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "scpi.psu: 9 of 9 rules passed or skipped, 0 failed" in ok.stdout
    bad = cli(project, "plugins", "check", "sloppy.dmm", "--timeout", "0.5")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    fail_lines = [line for line in bad.stdout.splitlines() if " FAIL " in line]
    assert len(fail_lines) == 5, bad.stdout
    assert "sloppy.dmm: 4 of 9 rules passed or skipped, 5 failed" in bad.stdout
    unknown = cli(project, "plugins", "check", "sloppy.dm")
    assert unknown.returncode == 4 and "did you mean 'sloppy.dmm'" in unknown.stderr
    assert "Traceback" not in bad.stderr + unknown.stderr
