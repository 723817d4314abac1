"""``expect_idn:`` (issue 13 item 2): checked at connect, decision recorded on the run, a mismatch
ends the run errored before any step; bad patterns are validation errors at their line."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from litmus_seq.drivers import ScpiDmm
from litmus_seq.drivers.identity import MATCHED, NOT_CHECKED_MOCK, check_identity, idn_text
from litmus_seq.errors import InstrumentError
from tests.test_drivers_calibration import cli, project, rows, station  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parent.parent
IDENT = {"manufacturer": "Lab", "model": "LM-100", "serial": "LM-0001", "firmware": "2.1"}


@pytest.fixture
def dmm(tmp_path: Path) -> Iterator[ScpiDmm]:
    from litmus_seq.drivers.visa import close_resource_managers

    sim = tmp_path / "sim.yaml"
    shutil.copy(REPO / "stations" / "sim_instruments.yaml", sim)
    drv = ScpiDmm(resource="TCPIP::10.0.0.6::INSTR", settings={"role": "dmm", "visa_library": f"{sim}@sim"})
    drv.connect()
    yield drv
    drv.close()
    close_resource_managers()


def test_pattern_on_the_idn_reply_of_a_simulated_scpi_instrument(dmm: ScpiDmm) -> None:
    assert dmm.idn == "Litmus Sim,DMM-6500,SIM-DMM-0001,2.0.1"
    assert check_identity("dmm", r"Litmus Sim,DMM-65\d\d,SIM-DMM-\d+,.*", dmm, dmm.identity(), False) == MATCHED
    with pytest.raises(InstrumentError) as info:
        check_identity("dmm", r"Keysight.*,34465A,.*", dmm, dmm.identity(), False)
    assert str(info.value) == (
        "role 'dmm': identity mismatch: expected *IDN? matching 'Keysight.*,34465A,.*', the instrument says "
        "'Litmus Sim,DMM-6500,SIM-DMM-0001,2.0.1'; connect the right instrument or fix expect_idn in the station file")


def test_fields_must_match_whole_values() -> None:
    assert check_identity("m", {"model": r"LM-1\d\d"}, object(), IDENT, False) == MATCHED
    with pytest.raises(InstrumentError, match=r"expected model 'LM-1' \(is 'LM-100'\)"):
        check_identity("m", {"model": "LM-1"}, object(), IDENT, False)
    assert check_identity("m", None, object(), IDENT, False) is None
    assert check_identity("m", {"model": "other"}, object(), IDENT, True) == NOT_CHECKED_MOCK
    assert idn_text(object(), IDENT) == "Lab,LM-100,LM-0001,2.1"


def test_match_is_recorded_on_the_run(project: Path) -> None:
    station(project, "    expect_idn: {manufacturer: Lab, model: 'LM-1\\d\\d'}\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert proc.returncode == 0, proc.stderr
    run = rows(project / "data")[0]
    assert dict(zip(run["step_instruments_name"], run["step_instruments_idn_check"])) == {"meter": "matched", "dut": None}


def test_mismatch_errors_the_run_with_role_expected_and_actual(project: Path) -> None:
    station(project, "    expect_idn: 'Lab,LM-200,.*'\n")
    proc = cli(project, "run", "sequences/meter.yaml", "--data-dir", "data")
    assert proc.returncode == 3
    got = rows(project / "data")
    run = got[0]
    assert run["run_outcome"] == "errored"
    assert run["run_error"].startswith("role 'meter': identity mismatch: expected *IDN? matching 'Lab,LM-200,.*', "
                                       "the instrument says 'Lab,LM-100,LM-0001,2.1'")
    meter = run["step_instruments_name"].index("meter")
    assert run["step_instruments_model"][meter] == "LM-100"  # what was connected is on the run
    assert run["step_instruments_idn_check"][meter].startswith("mismatch: role 'meter': identity mismatch")
    assert not [r for r in got if r["record_type"] == "measurement"]


def test_validate_reports_bad_patterns_and_unknown_fields_at_their_line(project: Path) -> None:
    station(project, "    expect_idn: {modle: LM-100, serial: 'LM-(0001'}\n")
    proc = cli(project, "validate", "stations/bench.yaml")
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("stations/bench.yaml:5:18: instruments.meter.expect_idn.modle: unknown identity "
                               "field 'modle' (did you mean 'model'?)")
    assert lines[1].startswith("stations/bench.yaml:5:41: instruments.meter.expect_idn.serial: 'LM-(0001' is not "
                               "a regular expression")
    run = cli(project, "run", "sequences/meter.yaml", "--dry-run")
    assert run.returncode == 4 and "unknown identity field 'modle'" in run.stderr
