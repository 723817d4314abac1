"""The driver contract (issue 9 item 10): a broken driver class is reported before anything runs,
by ``validate``, ``plugins``, ``run --dry-run`` and ``run``, at the class's file:line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from litmus_seq.drivers import BUILTIN_DRIVERS, Driver
from litmus_seq.drivers.contract import EXPECTED_INIT, class_location, contract_violations

CLI = [sys.executable, "-m", "litmus_seq.cli.main"]

BAD_PLUGIN = '''\
from litmus_seq import hookimpl


class PortOnly:
    def __init__(self, port):
        self.port = port

    def connect(self):
        pass

    def close(self):
        pass

    def read(self):
        return 1.0


class NoIdentity:
    def __init__(self, resource=None, settings=None):
        pass

    def read(self):
        return 1.0


@hookimpl
def litmus_seq_register_drivers(registry):
    registry.register("bad.port", PortOnly)
    registry.register("bad.noid", NoIdentity)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for folder in ("plugins", "stations", "sequences"):
        (root / folder).mkdir(parents=True)
    (root / "litmus.yaml").write_text("name: contract\n")
    (root / "plugins" / "bad.py").write_text(BAD_PLUGIN)
    (root / "stations" / "bench.yaml").write_text(textwrap.dedent("""\
        id: bench
        instruments:
          dmm:
            driver: bad.port
            resource: "TCPIP::1::INSTR"
          meter:
            driver: bad.noid
          fx:
            driver: mock
            mock: {read_id: FX-1}
        """))
    (root / "sequences" / "seq.yaml").write_text(textwrap.dedent("""\
        sequence: contract
        station: bench
        steps:
          - name: v
            measure: v
            from: dmm.read
            limit: {low: 0, high: 2}
        """))
    return root


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------- the rules


def test_builtin_drivers_conform() -> None:
    for name, cls in BUILTIN_DRIVERS.items():
        assert contract_violations(cls) == [], name


def test_a_driver_subclass_conforms_and_a_plain_object_does_not() -> None:
    class Good(Driver):
        pass

    assert contract_violations(Good) == []
    found = contract_violations(object)
    assert len(found) == 2 and "object()" in found[0] and "connect(), close(), identity() methods" in found[1]
    assert contract_violations(lambda resource, settings: None)[0].endswith(f"({EXPECTED_INIT})")


def test_constructor_rule_names_the_signature_and_the_expected_one() -> None:
    class Positional:
        def __init__(self, port: str) -> None: ...
        def connect(self) -> None: ...
        def close(self) -> None: ...
        def identity(self) -> dict: ...

    (line,) = contract_violations(Positional)
    assert "Positional(port) cannot be called" in line and EXPECTED_INIT in line
    where = class_location(Positional, Path(__file__).parent)
    assert where.file == "test_drivers_contract.py" and where.line is not None


def test_var_keyword_constructor_is_accepted() -> None:
    class Loose:
        def __init__(self, **kwargs: object) -> None: ...
        connect = close = identity = lambda self: None

    assert contract_violations(Loose) == []


# --------------------------------------------------------------------------- end to end


def _expected_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("plugins/bad.py:")]


def test_validate_reports_each_broken_rule_at_the_class(project: Path) -> None:
    proc = cli(project, "validate", "stations/bench.yaml")
    assert proc.returncode == 4, proc.stderr
    lines = _expected_lines(proc.stderr)
    assert len(lines) == 3, proc.stderr  # PortOnly breaks two rules, NoIdentity one
    port, port_identity, noid = sorted(lines, key=lambda l: ("bad.port" not in l, "identity" in l))
    assert "it has no identity() method" in port_identity
    assert port.startswith("plugins/bad.py:4: driver 'bad.port' class PortOnly (station role dmm): ")
    assert "PortOnly(port)" in port and EXPECTED_INIT in port
    assert noid.startswith("plugins/bad.py:18: driver 'bad.noid' class NoIdentity (station role meter): ")
    assert "no connect(), close(), identity() methods" in noid
    assert "Traceback" not in proc.stderr


def test_dry_run_and_run_refuse_before_anything_is_touched(project: Path) -> None:
    dry = cli(project, "run", "sequences/seq.yaml", "--dry-run", "--data-dir", "data")
    assert dry.returncode == 4
    assert "resolved" not in dry.stdout
    assert len(_expected_lines(dry.stderr)) == 3, dry.stderr
    real = cli(project, "run", "sequences/seq.yaml", "--data-dir", "data")
    assert real.returncode == 4
    assert len(_expected_lines(real.stderr)) == 3, real.stderr
    assert "cannot connect" not in real.stderr
    assert not (project / "data").exists()  # no event store, no run file: nothing ran


def test_plugins_lists_everything_and_reports_the_broken_classes(project: Path) -> None:
    proc = cli(project, "plugins")
    assert proc.returncode == 4
    assert "bad.port" in proc.stdout and "scpi.dmm" in proc.stdout  # the table is still printed
    assert len(_expected_lines(proc.stderr)) == 3, proc.stderr
