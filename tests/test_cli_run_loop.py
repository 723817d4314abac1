"""The DUT serial and the station loop of ``litmus-seq run`` (litmus_seq/cli/run.py).

``--loop`` is TestStand's "Test UUTs": read a serial, run, show the verdict, next; the session
(and its connected instruments) stays open; each unit is its own run and file. Serials are fed
on stdin as a scanner would; the files are read with DuckDB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from litmus_seq.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
from test_console_tty import Tmux, terminal  # noqa: F401 - the tmux fixture


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`init`; the DMM answers 3.3, 3.3, 3.6, then 3.3 for ever (rails: two readings a unit)."""
    assert main(["init", str(tmp_path)]) == 0
    station = tmp_path / "stations" / "bench.yaml"
    station.write_text(station.read_text().replace("measure_dc_voltage: 3.30",
                                                   "measure_dc_voltage: [3.3, 3.3, 3.6, 3.3]"))
    product = tmp_path / "products" / "board.yaml"
    product.write_text(product.read_text().replace('"^[A-Z0-9-]{1,32}$"', '"^SN[0-9]+$"'))
    return tmp_path


def cli(project: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "LITMUS_DEBUG")}
    return subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", "sequences/board_fct.yaml", *args],
                          cwd=project, env=env, input=stdin, capture_output=True, text=True, timeout=120)


def runs(project: Path) -> list[tuple[str, str, str, str]]:
    """(dut_serial, run_outcome, run_id, session_id) of every run file, oldest first."""
    return duckdb.sql(f"""
        SELECT dut_serial, run_outcome, run_id, session_id FROM read_parquet('{project}/data/runs/**/*.parquet')
        WHERE record_type = 'run' ORDER BY run_started_at""").fetchall()


def test_loop_tests_each_serial_on_stdin_as_its_own_run_on_one_session(project: Path) -> None:
    res = cli(project, "--loop", "--yes", stdin="SN1\nSN2\n\nSN3\n")
    assert res.returncode == 1, res.stdout + res.stderr  # the worst unit failed
    found = runs(project)
    assert [(serial, outcome) for serial, outcome, _, _ in found] == [
        ("SN1", "passed"), ("SN2", "failed"), ("SN3", "passed")]  # the DMM's list went on: one connection
    assert len({run_id for _, _, run_id, _ in found}) == 3
    assert len({session for _, _, _, session in found}) == 1  # instruments stayed connected
    assert len(list((project / "data" / "runs").rglob("*.parquet"))) == 3
    assert [line.split()[0] for line in res.stdout.splitlines() if line.startswith(("PASSED", "FAILED"))] == [
        "PASSED", "FAILED", "PASSED"]
    assert res.stdout.rstrip().endswith("loop: 3 units tested, worst failed")


def test_loop_refuses_serials_that_do_not_match_the_pattern(project: Path) -> None:
    res = cli(project, "--loop", "--yes", stdin="SN1\nBAD-7\nSN2\n")
    assert res.returncode == 1, res.stdout + res.stderr
    assert [serial for serial, *_ in runs(project)] == ["SN1", "SN2"]
    assert "serial 'BAD-7' does not match serial_pattern '^SN[0-9]+$' (product board); that unit is not tested" \
        in res.stderr


def test_ctrl_c_between_units_ends_the_loop_cleanly(project: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DATA_DIR", "LITMUS_DEBUG")}
    out = (tmp_path / "out.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "litmus_seq.cli.main", "run", "sequences/board_fct.yaml",
                             "--loop", "--yes"], cwd=project, env=env, stdin=subprocess.PIPE, stdout=out,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdin is not None
        proc.stdin.write("SN1\n")
        proc.stdin.flush()
        end = time.monotonic() + 60  # (a deadline against a hang, not a timing assertion)
        while "results:" not in (tmp_path / "out.txt").read_text():
            assert proc.poll() is None and time.monotonic() < end, (tmp_path / "out.txt").read_text()
            time.sleep(0.05)
        time.sleep(0.2)  # let it reach the next read of a serial
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    text = (tmp_path / "out.txt").read_text()
    assert proc.returncode == 0, text + err  # SN1 passed; nothing was cut short
    assert "Traceback" not in err and "Aborted" not in err
    assert text.rstrip().endswith("loop: 1 unit tested, worst passed")
    assert [(serial, outcome) for serial, outcome, *_ in runs(project)] == [("SN1", "passed")]


@pytest.mark.parametrize("args, fragment", [
    (("--loop", "--dut", "SN1"), "--dut SN1: --loop reads each unit's serial; leave out --dut"),
    (("--dut", "X1"), "--dut X1: does not match serial_pattern '^SN[0-9]+$' (product board)"),
])
def test_serial_mistakes_are_usage_errors_and_nothing_runs(project: Path, args: tuple[str, ...], fragment: str) -> None:
    res = cli(project, *args, "--yes")
    assert res.returncode == 4 and fragment in res.stderr, res.stdout + res.stderr
    assert not (project / "data").exists()


def test_loop_with_no_serial_has_nothing_to_run(project: Path) -> None:
    res = cli(project, "--loop", "--yes", stdin="")
    assert res.returncode == 5 and "no unit tested" in res.stderr


def test_a_terminal_asks_for_the_serial_until_it_matches(terminal: Tmux, project: Path) -> None:
    terminal.start(project, "run", "sequences/board_fct.yaml", "--yes")
    terminal.wait_for(lambda: any("DUT serial" in line for line in terminal.screen()), "serial prompt")
    terminal.send("X1", "Enter")
    terminal.wait_for(lambda: any("does not match" in line for line in terminal.screen()), "pattern message")
    terminal.send("SN9", "Enter")
    terminal.wait_for(lambda: terminal.exit_status() is not None, "end of the run")
    assert terminal.exit_status() == 0, "\n".join(terminal.everything())
    assert [serial for serial, *_ in runs(project)] == ["SN9"]
