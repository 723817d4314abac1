"""The live console on a real terminal: ``litmus-seq run`` inside tmux, the screen read back.

tmux is a real terminal emulator with a real pseudo-terminal: what ``capture-pane`` returns is
what an operator sees. The tests synchronise on screen content (a step that waits for a file the
test creates, a prompt), never on the clock; the deadlines only stop a broken run from hanging
the suite. CI installs tmux (.ci/run).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from litmus_seq.cli.main import main

REPO = Path(__file__).resolve().parent.parent
ROWS, COLUMNS = 30, 110

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (CI installs it: .ci/run)")


class Tmux:
    """One private tmux server (its own socket) running one command in a ROWS x COLUMNS pane."""

    def __init__(self) -> None:
        self.socket = f"litmus-test-{uuid.uuid4().hex[:8]}"

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout

    def start(self, cwd: Path, *argv: str) -> None:
        env = {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "", "LINES": ""}
        command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(
            [sys.executable, "-m", "litmus_seq.cli.main", *argv])
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(COLUMNS), "-y", str(ROWS), "-c",
                  str(cwd), "sh", "-c", f"unset COLUMNS LINES; {command}")
        self.tmux("set-option", "-t", "t", "remain-on-exit", "on")
        self.tmux("set-option", "-t", "t", "history-limit", "5000")

    def screen(self) -> list[str]:
        """The visible rows, as the operator sees them."""
        return self.tmux("capture-pane", "-t", "t", "-p").rstrip("\n").split("\n")

    def everything(self) -> list[str]:
        """The scrollback and the screen."""
        return [line.rstrip() for line in self.tmux("capture-pane", "-t", "t", "-p", "-J", "-S", "-", "-E", "-").split("\n")]

    def exit_status(self) -> int | None:
        dead, _, status = self.tmux("display-message", "-t", "t", "-p",
                                    "#{pane_dead} #{pane_dead_status}").strip().partition(" ")
        return int(status) if dead == "1" else None

    def wait_for(self, done: Callable[[], bool], what: str, deadline_s: float = 120) -> None:
        end = time.monotonic() + deadline_s
        while not done():
            if self.exit_status() is not None and not done():
                raise AssertionError(f"the run ended before {what}:\n" + "\n".join(self.everything()))
            if time.monotonic() > end:
                raise AssertionError(f"no {what} on screen:\n" + "\n".join(self.screen()))
            time.sleep(0.05)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def terminal() -> Iterator[Tmux]:
    t = Tmux()
    yield t
    t.kill()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`litmus-seq init` plus a 60-step sequence whose step 40 waits for a file named `go`."""
    assert main(["init", str(tmp_path), "--station", "mock"]) == 0
    steps = []
    for i in range(60):
        if i == 40:
            steps.append("  - name: s40_probe\n    python: checks.board:probe_and_wait\n")
            continue
        steps.append(f"  - name: s{i:02d}\n    vectors: {{vin: [5.0, 12.0]}}\n    do:\n"
                     "      - measure: rail_3v3\n        from: dmm.measure_dc_voltage\n"
                     "      - measure: input_current\n        from: psu.measure_current\n")
    (tmp_path / "sequences" / "long.yaml").write_text(
        "sequence: long\nproduct: board\nstation: bench\nsteps:\n" + "".join(steps))
    with open(tmp_path / "checks" / "board.py", "a") as f:
        f.write('''

def probe_and_wait(ctx):
    """Record two values, then wait (at most two minutes) until the test creates ./go."""
    import os
    import time

    ctx.measure("probe_a", 1.2345, units="V", limit={"low": 1.0, "high": 2.0})
    ctx.measure("probe_b", 0.0421, units="A", limit={"high": 0.05, "marginal_high": 0.04})
    end = time.monotonic() + 120
    while not os.path.exists("go") and time.monotonic() < end:
        time.sleep(0.02)
''')
    return tmp_path


def test_a_60_step_run_in_a_30_row_terminal_shows_the_running_step_and_its_values(
        terminal: Tmux, project: Path) -> None:
    terminal.start(project, "run", "sequences/long.yaml", "--dut", "SN5", "--yes")
    terminal.wait_for(lambda: any("probe_b" in line for line in terminal.screen()), "running step s40_probe")
    screen = terminal.screen()
    assert len(screen) <= ROWS
    text = "\n".join(screen)
    running = [line for line in screen if line.startswith("▶ ")]
    assert len(running) == 1 and running[0].startswith("▶ main/s40_probe"), text
    probe_a = next(line for line in screen if "probe_a" in line).split()
    assert probe_a[:3] == ["probe_a", "1.2345", "V"] and probe_a[-1] == "passed"
    assert "1 ≤ x ≤ 2" in " ".join(probe_a)  # value, limit and verdict
    probe_b = next(line for line in screen if "probe_b" in line)
    assert probe_b.split()[:3] == ["probe_b", "0.0421", "A"] and probe_b.rstrip().endswith("passed marginal")
    progress = screen[[i for i, line in enumerate(screen) if "probe_b" in line][0] + 1].split()
    assert progress[:4] == ["40/60", "steps", "40", "passed"] and "1 marginal" in " ".join(progress)
    assert "  PASSED     main/s39 " in text  # the last finished steps are above the window...
    assert "main/s00 " not in text  # ...and the first ones have scrolled into the scrollback
    assert not any(line.startswith("═") or "results:" in line for line in screen)

    (project / "go").write_text("")
    terminal.wait_for(lambda: terminal.exit_status() is not None, "end of the run")
    assert terminal.exit_status() == 0
    lines = terminal.everything()
    for i in range(60):
        name = f"main/s{i:02d}" if i != 40 else "main/s40_probe"
        rows = [line for line in lines if line.split()[1:2] == [name]]
        assert len(rows) == 1 and rows[0].split()[0] == "PASSED", (name, rows)  # all kept, once each
    assert not any(line.startswith("▶") for line in lines)  # the window left nothing behind
    banners = [line for line in lines if "PASSED" in line and "60 steps" in line]
    assert len(banners) == 1 and banners[0].startswith("═") and "1 marginal" in banners[0]
    assert "run PASSED" not in "\n".join(lines)
    results = [line for line in lines if line.startswith("results: ")]
    assert len(results) == 1 and Path(results[0].split()[1]).is_file()


def test_a_prompt_pauses_the_window_and_nothing_is_reprinted(terminal: Tmux, project: Path) -> None:
    terminal.start(project, "run", "sequences/board_fct.yaml", "--dut", "SN6")
    terminal.wait_for(lambda: any("Is the status LED green?" in line for line in terminal.screen()), "prompt")
    screen = terminal.screen()
    assert not any(line.startswith("▶") or " steps " in line for line in screen), screen  # window erased
    assert any(line.split()[:2] == ["PASSED", "main/firmware"] for line in screen)
    terminal.send("y", "Enter")
    terminal.wait_for(lambda: terminal.exit_status() is not None, "end of the run")
    assert terminal.exit_status() == 0
    lines = terminal.everything()
    for name in ("setup/1", "main/rails", "main/line_sweep", "main/firmware", "main/led_check", "cleanup/1"):
        assert sum(1 for line in lines if line.split()[1:2] == [name]) == 1, (name, lines)
    assert sum(1 for line in lines if "Is the status LED green?" in line) == 1
    assert sum(1 for line in lines if line.startswith("═") and "PASSED" in line) == 1


def test_a_failed_run_lists_its_failures_above_one_banner(terminal: Tmux, project: Path) -> None:
    station = project / "stations" / "bench.yaml"
    station.write_text(station.read_text().replace("measure_current: 0.12", "measure_current: [0.12, 0.4]"))
    terminal.start(project, "run", "sequences/board_fct.yaml", "--dut", "SN7", "--yes")
    terminal.wait_for(lambda: terminal.exit_status() is not None, "end of the run")
    assert terminal.exit_status() == 1
    lines = terminal.everything()
    start = lines.index("failures (1):")
    assert lines[start + 1].startswith("  main/rails[1] vin=12: input_current = 0.4 A > high 0.285 (spec ≤ 0.3, gb 5 %)")
    banner = [line for line in lines if line.startswith("═")]
    assert len(banner) == 1 and "FAILED" in banner[0] and "1 failed" in banner[0]
    assert lines[lines.index(banner[0]) + 1].startswith("results: ")
