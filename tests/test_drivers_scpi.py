"""SCPI drivers through real pyvisa + pyvisa-sim (stations/sim_instruments.yaml).

pyvisa-sim keeps simulator state per definition-file path, so every test gets its own copy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from litmus_seq.drivers import ScpiDmm, ScpiEload, ScpiInstrument, ScpiPsu
from litmus_seq.drivers.scpi import parse_idn
from litmus_seq.errors import ConfigError, InstrumentError

REPO = Path(__file__).resolve().parent.parent
PSU, DMM, ELOAD = "TCPIP::10.0.0.5::INSTR", "TCPIP::10.0.0.6::INSTR", "TCPIP::10.0.0.7::INSTR"


@pytest.fixture
def library(tmp_path: Path) -> Iterator[str]:
    from litmus_seq.drivers.visa import close_resource_managers

    sim = tmp_path / "sim_instruments.yaml"
    shutil.copy(REPO / "stations" / "sim_instruments.yaml", sim)
    yield f"{sim}@sim"
    close_resource_managers()


def connect(cls: type[ScpiInstrument], resource: str, library: str, role: str = "x", **settings: object):
    drv = cls(resource=resource, settings={**settings, "role": role, "mock": None, "visa_library": library})
    drv.connect()
    return drv


def test_connect_reads_identity(library: str) -> None:
    dmm = connect(ScpiDmm, DMM, library, role="dmm")
    try:
        assert dmm.identity() == {
            "manufacturer": "Litmus Sim", "model": "DMM-6500", "serial": "SIM-DMM-0001", "firmware": "2.0.1",
        }
    finally:
        dmm.close()


def test_dmm_measurements_and_settable_simulated_value(library: str) -> None:
    dmm = connect(ScpiDmm, DMM, library)
    assert dmm.measure_dc_voltage() == pytest.approx(3.30)
    assert dmm.measure_dc_current() == pytest.approx(0.25)
    assert dmm.measure_resistance() == pytest.approx(1000.0)
    dmm.write("SIM:VOLT:DC 3.1")
    assert dmm.measure_dc_voltage() == pytest.approx(3.1)
    dmm.configure("VOLT:DC", 10)
    assert dmm.query("CONF:VOLT:DC?") == "10.0"
    dmm.set_nplc(10)
    assert float(dmm.query("SENS:VOLT:DC:NPLC?")) == 10.0


def test_psu_setpoint_round_trip_accepts_ints_and_exponents(library: str) -> None:
    psu = connect(ScpiPsu, PSU, library, role="psu")
    psu.set_voltage(7)
    assert psu.measure_voltage() == pytest.approx(7.0)
    psu.set_voltage("5e-3")
    assert psu.measure_voltage() == pytest.approx(0.005)
    psu.set_current_limit(0.5)
    assert float(psu.query("CURR?")) == pytest.approx(0.5)
    assert psu.output_state() is False
    psu.output_on()
    assert psu.output_state() is True
    psu.output_off()
    assert psu.output_state() is False
    assert psu.measure_current() == pytest.approx(0.12)


def test_eload(library: str) -> None:
    load = connect(ScpiEload, ELOAD, library)
    load.set_mode("CURR")
    load.set_current(0.5)
    assert load.measure_current() == pytest.approx(0.5)
    load.input_on()
    assert load.input_state() is True
    load.input_off()
    assert load.input_state() is False
    assert load.measure_power() == pytest.approx(1.65)
    assert load.measure_voltage() == pytest.approx(3.30)


def test_state_is_per_definition_file(library: str, tmp_path: Path) -> None:
    psu = connect(ScpiPsu, PSU, library)
    psu.set_voltage(12)
    other = tmp_path / "other.yaml"
    shutil.copy(REPO / "stations" / "sim_instruments.yaml", other)
    fresh = connect(ScpiPsu, PSU, f"{other}@sim")
    assert fresh.measure_voltage() == 0.0
    assert psu.measure_voltage() == 12.0


def test_rejected_setting_is_reported_by_the_error_queue(library: str) -> None:
    psu = connect(ScpiPsu, PSU, library, role="psu")
    with pytest.raises(InstrumentError) as info:
        psu.set_voltage(50)
    message = str(info.value)
    assert "'psu'" in message and PSU in message
    assert "'VOLT 50.0'" in message and "-222" in message
    # the queue was read, so the next command is clean and answers are not shifted
    psu.set_voltage(3.3)
    assert psu.measure_voltage() == pytest.approx(3.3)


def test_check_errors_false_skips_the_error_queue(library: str) -> None:
    psu = connect(ScpiPsu, PSU, library, check_errors=False)
    psu.set_voltage(50)  # rejected silently by the instrument, as a real one would
    assert psu.measure_voltage() == 0.0
    assert psu.clear_errors() == ['-222,"Data out of range"']


def test_hung_instrument_times_out_as_instrument_error(library: str) -> None:
    dmm = connect(ScpiDmm, DMM, library, role="dmm", timeout_ms=150)
    start = time.perf_counter()
    with pytest.raises(InstrumentError) as info:
        dmm.query("MEAS:TEMP?")  # unknown to the simulator: nothing to read
    elapsed = time.perf_counter() - start
    assert 0.1 < elapsed < 2.0
    message = str(info.value)
    assert "'dmm'" in message and DMM in message and "'MEAS:TEMP?'" in message
    assert "150 ms" in message and "VI_ERROR_TMO" in message
    assert info.value.exit_code == 3


def test_non_numeric_answer_is_instrument_error(library: str) -> None:
    dmm = connect(ScpiDmm, DMM, library)
    with pytest.raises(InstrumentError, match="expected a number"):
        dmm.query_float("*IDN?")


@pytest.mark.filterwarnings("ignore:read string doesn't end")
def test_unknown_resource_is_instrument_error(library: str) -> None:
    with pytest.raises(InstrumentError) as info:
        connect(ScpiDmm, "TCPIP::10.9.9.9::INSTR", library, role="dmm")
    assert "TCPIP::10.9.9.9::INSTR" in str(info.value) and "'dmm'" in str(info.value)


def test_missing_resource_and_missing_sim_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a VISA resource"):
        ScpiDmm(resource=None, settings={"role": "dmm"}).connect()
    with pytest.raises(ConfigError, match="not found"):
        connect(ScpiDmm, DMM, f"{tmp_path / 'nope.yaml'}@sim")


def test_bad_timeout_setting_is_config_error() -> None:
    with pytest.raises(ConfigError, match="timeout_ms"):
        ScpiDmm(resource=DMM, settings={"role": "dmm", "timeout_ms": "fast"})


def test_not_connected_and_close_is_idempotent(library: str) -> None:
    dmm = ScpiDmm(resource=DMM, settings={"role": "dmm", "visa_library": library})
    with pytest.raises(InstrumentError, match="not connected"):
        dmm.measure_dc_voltage()
    assert dmm.identity()["model"] == "ScpiDmm"
    dmm.connect()
    dmm.close()
    dmm.close()
    with pytest.raises(InstrumentError, match="not connected"):
        dmm.measure_dc_voltage()


def test_number_formatting_rejects_non_numbers(library: str) -> None:
    psu = connect(ScpiPsu, PSU, library)
    with pytest.raises(InstrumentError, match="expected a number"):
        psu.set_voltage("five")
    with pytest.raises(InstrumentError, match="boolean"):
        psu.set_voltage(True)


def test_resource_manager_is_cached_per_library(library: str) -> None:
    from litmus_seq.drivers.visa import resource_manager

    assert resource_manager(library) is resource_manager(library)


def test_parse_idn_tolerates_short_and_long_replies() -> None:
    assert parse_idn("ACME,X1") == {"manufacturer": "ACME", "model": "X1", "serial": "", "firmware": ""}
    assert parse_idn("A, B ,C,1.0,build 7")["firmware"] == "1.0,build 7"


def test_importing_drivers_and_plugins_does_not_import_pyvisa() -> None:
    code = (
        "import sys, litmus_seq.plugins, litmus_seq.drivers;"
        "from litmus_seq.drivers.registry import collect_drivers;"
        "collect_drivers(litmus_seq.plugins.get_plugin_manager());"
        "assert 'pyvisa' not in sys.modules, 'pyvisa imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
