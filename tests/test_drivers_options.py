"""Driver options (issue 13 item 3): a driver's pydantic model checks the station's ``settings:``
in ``validate`` and ``run`` (file:line:col), parses them for the driver, and goes into the station
schema per driver name."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from litmus_seq.drivers import ScpiDmm
from litmus_seq.drivers.options import ENGINE_KEYS, user_settings
from litmus_seq.errors import ConfigError
from tests.test_drivers_calibration import cli, project, station  # noqa: F401 - fixture


def test_validate_checks_plugin_and_builtin_driver_settings_at_their_line(project: Path) -> None:
    station(project, "    settings: {reading: high, colour: red}\n")
    proc = cli(project, "validate", "stations/bench.yaml")
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "stations/bench.yaml:5:25: instruments.meter.settings.reading: expected a number, got 'high'",
        "stations/bench.yaml:5:31: instruments.meter.settings.colour: unknown key; allowed keys: reading, model, "
        "serial, reported_due, reported_certificate",
    ], lines
    (project / "stations" / "scpi.yaml").write_text(
        "id: scpi\ninstruments:\n  dmm:\n    driver: scpi.dmm\n    resource: 'TCPIP::1::INSTR'\n"
        "    settings: {timout_ms: 500}\n")
    proc = cli(project, "validate", "stations/scpi.yaml")
    assert proc.returncode == 4
    assert proc.stderr.startswith("stations/scpi.yaml:6:16: instruments.dmm.settings.timout_ms: unknown key "
                                  "(did you mean 'timeout_ms'?)")
    offline = cli(project, "validate", "--no-plugins", "stations/scpi.yaml")
    assert offline.returncode == 4 and "timout_ms" in offline.stderr  # built-in drivers need no plugins


def test_run_refuses_bad_settings_before_anything_runs(project: Path) -> None:
    station(project, "    settings: {reading: high}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert proc.returncode == 4
    assert proc.stderr.startswith("stations/bench.yaml:5:25: instruments.meter.settings.reading: ")
    assert not (project / "data").exists()


def test_the_driver_receives_parsed_options() -> None:
    dmm = ScpiDmm(resource="TCPIP::1::INSTR", settings={"timeout_ms": 750, "role": "dmm", "mock": None,
                                                         "visa_library": "x@sim"})
    assert dmm.options.timeout_ms == 750 and dmm.timeout_ms == 750 and dmm.options.check_errors is True
    with pytest.raises(ConfigError, match=r"role 'dmm': settings.timeout_ms: Input should be greater than 0"):
        ScpiDmm(resource=None, settings={"timeout_ms": 0, "role": "dmm"})
    assert user_settings({"a": 1, **{k: 0 for k in ENGINE_KEYS}}) == {"a": 1}


def test_schema_puts_each_drivers_options_into_the_station_schema(project: Path, tmp_path: Path) -> None:
    proc = cli(project, "schema", "--out", str(tmp_path / "schemas"))
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((tmp_path / "schemas" / "station.schema.json").read_text())
    rules = {r["if"]["properties"]["driver"]["const"]: r for r in schema["definitions"]["Instrument"]["allOf"]}
    assert {"lab.meter", "scpi.dmm", "scpi.psu", "scpi.eload"} <= set(rules)
    assert "mock" not in rules  # no options model
    assert rules["lab.meter"]["then"]["properties"]["settings"]["properties"]["reading"]["type"] == "number"
    checker = jsonschema.Draft7Validator(schema)

    def errors(settings: dict, driver: str = "lab.meter") -> list[str]:
        doc = {"id": "b", "instruments": {"m": {"driver": driver, "settings": settings}}}
        return [e.message for e in checker.iter_errors(doc)]

    assert errors({"reading": 2.5}) == []
    assert errors({"reading": "high"}) == ["'high' is not of type 'number'"]
    assert errors({"timeout_ms": 100}, "scpi.dmm") == []
    assert any("timout_ms" in m for m in errors({"timout_ms": 100}, "scpi.dmm"))
    assert errors({"anything": 1}, "vendor.unknown") == []  # a driver this machine lacks: not restricted
