"""First-party drivers on real pyvisa + pyvisa-sim (``litmus_seq/drivers/sim/first_party.yaml``):
the multi-channel PSU, the oscilloscope and the serial DUT console, with their error paths
(``SYST:ERR?``, timeouts, garbage replies), and one end-to-end run checked with DuckDB."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from litmus_seq.drivers import ScpiPsuMulti, ScpiScope, SerialConsole
from litmus_seq.errors import InstrumentError

SIM = Path(__file__).resolve().parent.parent / "litmus_seq" / "drivers" / "sim" / "first_party.yaml"
CLI = [sys.executable, "-m", "litmus_seq.cli.main"]
PSU3, SCOPE, CONSOLE = "TCPIP::10.0.1.3::INSTR", "TCPIP::10.0.1.4::INSTR", "ASRL1::INSTR"


@pytest.fixture
def library(tmp_path: Path) -> Iterator[str]:
    from litmus_seq.drivers.visa import close_resource_managers

    copy = tmp_path / "first_party.yaml"  # pyvisa-sim keeps state per file path
    shutil.copy(SIM, copy)
    yield f"{copy}@sim"
    close_resource_managers()


def connect(cls: type, resource: str, library: str, **settings: object):
    drv = cls(resource=resource, settings={"timeout_ms": 200, **settings, "role": "r", "visa_library": library})
    drv.connect()
    return drv


# --------------------------------------------------------------------------- scpi.psu_multi


def test_psu_channels_are_independent(library: str) -> None:
    psu = connect(ScpiPsuMulti, PSU3, library)
    psu.set_voltage(5, channel=2)
    psu.set_voltage("3.3", channel=1)
    psu.output_on(channel=2)
    assert (psu.measure_voltage(channel=1), psu.measure_voltage(channel=2), psu.measure_voltage(3)) == (3.3, 5.0, 0.0)
    assert psu.output_state(channel=2) and not psu.output_state(channel=1)
    assert psu.measure_current(channel=3) == pytest.approx(0.3)
    assert psu.identity()["model"] == "PSU-M3303"


def test_psu_out_of_range_is_read_from_the_error_queue(library: str) -> None:
    psu = connect(ScpiPsuMulti, PSU3, library)
    with pytest.raises(InstrumentError) as info:
        psu.set_voltage(12, channel=3)  # channel 3 is a 6 V output
    assert "instrument reported '-222,\"Data out of range\"' after 'VOLT 12.0,(@3)'" in str(info.value)
    with pytest.raises(InstrumentError, match="channel must be a positive whole number"):
        psu.set_voltage(1, channel="two")


# --------------------------------------------------------------------------- scpi.scope


def test_scope_fetches_a_waveform_and_measures(library: str) -> None:
    scope = connect(ScpiScope, SCOPE, library)
    wave = scope.fetch_waveform(channel=1)
    assert len(wave) == 100 and max(wave) == pytest.approx(1.0, abs=0.01) and min(wave) == pytest.approx(-1.0, abs=0.01)
    assert scope.sample_interval(1) == 1e-05
    assert (scope.measure_vpp(1), scope.measure_frequency(1)) == (2.0, 2000.0)


def test_scope_error_paths(library: str) -> None:
    scope = connect(ScpiScope, SCOPE, library)
    with pytest.raises(InstrumentError, match="returned 'overload' among the samples"):
        scope.fetch_waveform(channel=2)
    with pytest.raises(InstrumentError, match=r"-222,\"Data out of range\"' after 'TIM:SCAL 100.0'"):
        scope.set_timebase(100)
    with pytest.raises(InstrumentError, match=r"'WAV:DATA\? CHAN3' failed: .*no answer within 200 ms"):
        scope.fetch_waveform(channel=3)  # a channel the scope does not have: it stays silent


# --------------------------------------------------------------------------- serial.console


def test_console_commands_expect_and_identity(library: str) -> None:
    con = connect(SerialConsole, CONSOLE, library, identify_command="version", model="PB-7")
    assert con.identity() == {"manufacturer": "", "model": "PB-7", "serial": CONSOLE, "firmware": "fw 1.4.2 build 2211"}
    assert con.command("selftest", r"SELFTEST (PASS|FAIL)") == "SELFTEST PASS 12/12"
    con.send("serial")
    assert con.expect(r"^SN-", timeout_s=1) == "SN-CON-0042"


def test_console_timeout_names_command_pattern_and_what_arrived(library: str) -> None:
    con = connect(SerialConsole, CONSOLE, library, timeout_ms=100)
    with pytest.raises(InstrumentError) as info:
        con.command("reboot", r"login:", timeout_s=0.3)
    assert str(info.value) == (f"role 'r' ({CONSOLE}): no line matching 'login:' within 0.3 s after 'reboot'; "
                               "got 'rebooting'")
    with pytest.raises(InstrumentError, match="no line matching '.+' within 0.2 s after 'nonsense'; got nothing"):
        con.command("nonsense", r".+", timeout_s=0.2)


# --------------------------------------------------------------------------- end to end


def test_a_run_records_psu_channels_and_the_scope_waveform_uri(tmp_path: Path) -> None:
    import duckdb

    root = tmp_path / "proj"
    for folder in ("stations", "sequences"):
        (root / folder).mkdir(parents=True)
    shutil.copy(SIM, root / "stations" / "first_party.yaml")
    (root / "litmus.yaml").write_text("name: fp\n")
    (root / "stations" / "fp.yaml").write_text(textwrap.dedent(f"""\
        id: fp
        visa_library: "stations/first_party.yaml@sim"
        instruments:
          psu: {{driver: scpi.psu_multi, resource: "{PSU3}", settings: {{timeout_ms: 500}}}}
          scope: {{driver: scpi.scope, resource: "{SCOPE}"}}
          dut: {{driver: serial.console, resource: "{CONSOLE}", settings: {{identify_command: version}}}}
        """))
    (root / "sequences" / "fp.yaml").write_text(textwrap.dedent("""\
        sequence: fp
        station: fp
        steps:
          - name: rails
            do:
              - call: psu.set_voltage
                args: {volts: 5, channel: 2}
              - measure: v_aux
                from: psu.measure_voltage
                args: {channel: 2}
                limit: {low: 4.9, high: 5.1}
          - name: ripple
            measure: ripple_wave
            from: scope.fetch_waveform
            args: {channel: 1}
          - name: selftest
            measure: selftest
            from: dut.command
            args: {text: selftest, expect: "SELFTEST \\\\w+"}
            limit: {matches: "SELFTEST PASS.*"}
        """))
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}
    proc = subprocess.run([*CLI, "run", "sequences/fp.yaml", "--data-dir", "data"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rel = duckdb.sql(f"select * from read_parquet('{root}/data/runs/*/*.parquet', union_by_name=true) "
                     "where record_type = 'measurement'")
    rows = {r[rel.columns.index("measurement_name")]: dict(zip(rel.columns, r)) for r in rel.fetchall()}
    assert rows["v_aux"]["measurement_value"] == 5.0 and rows["v_aux"]["instrument_channel"] == "2"
    assert rows["v_aux"]["instrument_model"] == "PSU-M3303"
    uri = rows["ripple_wave"]["measurement_text"]
    assert uri.startswith("channel://") and rows["ripple_wave"]["instrument_channel"] == "1"
    from litmus_seq.stores.channels import ChannelStore

    assert len(ChannelStore(root / "data").read(uri)) == 100
    assert rows["selftest"]["measurement_text"] == "SELFTEST PASS 12/12"
    assert rows["selftest"]["instrument_firmware"] == "fw 1.4.2 build 2211"
