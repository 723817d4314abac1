"""The example stations, the demo chamber (local plugin) and the example installable plugin."""

from __future__ import annotations

import importlib
import math
import shutil
import sys
from pathlib import Path

import pytest

from litmus_seq.drivers.registry import collect_drivers
from litmus_seq.errors import ConfigError, InstrumentError
from litmus_seq.models import Station
from litmus_seq.plugins import get_plugin_manager

REPO = Path(__file__).resolve().parent.parent
STATIONS = ["sim_bench.yaml", "mock_bench.yaml"]


def load_station(path: Path) -> Station:
    from litmus_seq.loader import load_model

    return load_model(path, Station)[0]  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def _isolated_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.mark.parametrize("name", STATIONS)
def test_station_files_load_and_declare_the_schema(name: str) -> None:
    path = REPO / "stations" / name
    assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schemas/station.schema.json"
    station = load_station(path)
    assert station.id == path.stem
    assert {"psu", "dmm", "eload", "dut", "chamber"} <= set(station.instruments)


def test_sim_bench_contents() -> None:
    station = load_station(REPO / "stations" / "sim_bench.yaml")
    assert station.visa_library == "stations/sim_instruments.yaml@sim"
    for role in ("psu", "dmm", "eload"):
        inst = station.instruments[role]
        assert inst.driver == f"scpi.{role}"
        assert inst.calibration is not None and inst.calibration.due and inst.calibration.certificate
    assert station.instruments["dut"].mock["read_firmware"] == "1.4.2"
    assert station.instruments["dut"].mock["read_serial"] == "SN-SIM-0001"
    assert station.instruments["chamber"].mock == {"set_temperature": None, "read_temperature": 25.0}


@pytest.mark.parametrize("name", STATIONS)
def test_every_role_connects_and_answers_like_the_engine_builds_it(name: str, example_project: Path) -> None:
    """Station, pyvisa-sim file and drivers agree: construct each role exactly as the engine does."""
    from litmus_seq.drivers.visa import close_resource_managers

    station = load_station(example_project / "stations" / name)
    registry = collect_drivers(get_plugin_manager(project_root=example_project, entry_points=False))
    library = station.visa_library
    if library and library.endswith("@sim"):
        library = f"{(example_project / library[:-4]).resolve()}@sim"
    drivers = {}
    try:
        for role, inst in station.instruments.items():
            cls = registry.get(inst.driver)
            settings = {**inst.settings, "role": role, "mock": inst.mock, "visa_library": library}
            drv = cls(resource=inst.resource, settings=settings)
            drv.connect()
            drivers[role] = drv
            assert set(drv.identity()) >= {"manufacturer", "model", "serial", "firmware"}
        drivers["psu"].set_voltage(5.0)
        drivers["psu"].output_on()
        assert drivers["dmm"].measure_dc_voltage() == pytest.approx(3.30)
        assert drivers["dmm"].measure_dc_current() == pytest.approx(0.25)
        assert drivers["dmm"].measure_resistance() == pytest.approx(1000.0)
        drivers["eload"].set_current(0.5)
        assert drivers["eload"].measure_power() == pytest.approx(1.65)
        assert drivers["dut"].read_firmware() == "1.4.2"
        assert drivers["dut"].self_test() is True
        assert drivers["chamber"].set_temperature(85) is None
        assert drivers["chamber"].read_temperature() == 25.0
        if name == "sim_bench.yaml":
            assert drivers["psu"].measure_voltage() == pytest.approx(5.0)
            assert drivers["psu"].identity()["model"] == "PSU-3005"
    finally:
        for drv in drivers.values():
            drv.close()
        close_resource_managers()


# --------------------------------------------------------------------------- demo.chamber


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def chamber_cls(monkeypatch: pytest.MonkeyPatch):
    registry = collect_drivers(get_plugin_manager(project_root=REPO, entry_points=False))
    cls = registry.get("demo.chamber")
    assert registry.owner("demo.chamber") == "plugins/demo_chamber.py"
    fake = FakeTime()
    monkeypatch.setattr(cls, "clock", staticmethod(fake.clock))
    monkeypatch.setattr(cls, "sleep", staticmethod(fake.sleep))
    return cls, fake


def test_chamber_follows_a_first_order_response(chamber_cls) -> None:
    cls, fake = chamber_cls
    ch = cls(resource=None, settings={"role": "chamber", "time_constant_s": 60})
    ch.connect()
    assert ch.read_temperature() == 25.0
    ch.set_temperature(85)
    fake.now += 60  # one time constant: 63.2 % of the way
    assert ch.read_temperature() == pytest.approx(85 - 60 * math.exp(-1), abs=1e-3)
    fake.now += 600
    assert ch.read_temperature() == pytest.approx(85 - 60 * math.exp(-11), abs=1e-3)


def test_chamber_setpoint_change_starts_from_the_current_temperature(chamber_cls) -> None:
    cls, fake = chamber_cls
    ch = cls(resource=None, settings={"time_constant_s": 10})
    ch.set_temperature(100)
    fake.now += 10
    halfway = ch.read_temperature()
    ch.set_temperature(25)
    assert ch.read_temperature() == pytest.approx(halfway, abs=1e-3)


def test_chamber_wait_until_stable_and_time_scale(chamber_cls) -> None:
    cls, fake = chamber_cls
    ch = cls(resource=None, settings={"time_constant_s": 60, "time_scale": 60})
    ch.set_temperature(-40)
    temp = ch.wait_until_stable(tolerance_c=0.5)
    assert abs(temp - -40) <= 0.5 + 1e-3
    # 60 s time constant at 60x: ln(65 / 0.5) simulated minutes = that many real seconds
    assert fake.slept == [pytest.approx(math.log(65 / 0.5))]
    with pytest.raises(InstrumentError, match="outside the chamber range"):
        ch.set_temperature(200)
    ch.set_temperature(150)
    with pytest.raises(InstrumentError, match="timeout_s"):
        ch.wait_until_stable(tolerance_c=0.01, timeout_s=1)


# --------------------------------------------------------------------------- example.noisy_dmm


def test_example_plugin_driver_is_seeded_and_noisy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a copy on sys.path: the package folder itself may hold build leftovers of an earlier install
    source = REPO / "plugins" / "litmus-seq-example-plugin"
    shutil.copytree(source / "litmus_seq_example_plugin", tmp_path / "litmus_seq_example_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("litmus_seq_example_plugin")
    a = module.NoisyDmm(settings={"value": 5.0, "noise": 0.01, "seed": 7})
    b = module.NoisyDmm(settings={"value": 5.0, "noise": 0.01, "seed": 7})
    with pytest.raises(ConfigError, match="noise"):
        module.NoisyDmm(settings={"noise": -1})
    readings = [a.measure_dc_voltage() for _ in range(200)]
    assert readings == [b.measure_dc_voltage() for _ in range(200)]
    assert len(set(readings)) > 100
    assert sum(readings) / len(readings) == pytest.approx(5.0, abs=0.005)
    a.set_value(1.0)
    assert a.measure_dc_voltage() == pytest.approx(1.0, abs=0.1)
    pyproject = (source / "pyproject.toml").read_text()
    assert '[project.entry-points.litmus_seq]\nlitmus-seq-example-plugin = "litmus_seq_example_plugin"' in pyproject
