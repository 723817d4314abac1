"""End to end: whole processes, as a user starts them (the figures `bench/run.py` prints first).

Every sample is one fresh process, timed from spawn to exit, peak RSS from ``os.wait4``:

* litmus-seq: ``python -m litmus_seq.cli.main run SEQ --station mock --dut SN1 --yes`` with its
  own fresh data dir (parse + plan + run + event store + channels + parquet file), stdout and
  stderr to files (console off a TTY), mock instrument;
* OpenHTF: a script that imports OpenHTF, builds the test (one phase per step, ``in_range``) and
  executes it with the JSON output callback;
* pytest: ``python -m pytest -q`` over a file of one test per step (a reading checked against its
  limits), with ``--junitxml`` (its record of the run);
* Robot Framework: ``robot`` over a suite of one test per step calling a keyword library that
  reads and checks its own limits; outputs on (output.xml, log.html, report.html).

Cost per item = median over rounds of T(N) − T(1) divided by N − 1, both processes of the same
round (rounds interleave every tool and size, so a load spike hits all of them alike). T is the
process's CPU time (user + system, every thread, from ``os.wait4``); wall time is shown beside it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import projects

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

SUPERLINEAR = 1.5  # per-item cost at 10× the size above this multiple of the cost at 1× is flagged

ROBOT_LIB = '''\
from robot.api import logger


def _read():
    return 3.3


def measure_and_check(name, low, high):
    """Read the mock instrument and fail the test when the value is outside [low, high]."""
    v = _read()
    logger.info(f"{name} = {v}")
    if not float(low) <= v <= float(high):
        raise AssertionError(f"{name} = {v} outside {low}..{high}")
'''

HTF_SCRIPT = '''\
import sys
from pathlib import Path
sys.path.insert(0, {bench!r})
import openhtf_child as C
C._quiet()
kind, n, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
test = (C.build_steps_test if kind == "steps" else C.build_meas_test)(n, out)
sys.exit(0 if test.execute(test_start=lambda: "SN1") else 1)
'''


@dataclass
class Tool:
    """One contender: how to write a workload of size N and the command that runs it."""

    name: str
    make: Callable[[Path, str, int], list[str]]  # (dir, kind, n) -> argv; cwd is dir


def _litmus(d: Path, kind: str, n: int) -> list[str]:
    seq = {"steps": projects.steps, "meas": projects.meas,
           "vectors": lambda r, k: projects.sweep(r, 1, k, 1)}[kind](d, n)
    return [sys.executable, "-m", "litmus_seq.cli.main", "run", str(seq), "--station", str(d / "stations" / "mock.yaml"),
            "--data-dir", str(d / "data"), "--dut", "SN1", "--yes"]


def _openhtf(d: Path, kind: str, n: int) -> list[str]:
    script = d / "htf_run.py"
    script.write_text(HTF_SCRIPT.format(bench=str(HERE)))
    return [sys.executable, str(script), kind, str(n), str(d / "record.json")]


def _pytest(d: Path, kind: str, n: int) -> list[str]:
    lines = ["def read():", "    return 3.3", ""]
    if kind == "steps":
        for i in range(n):
            lines += [f"def test_s{i}():", "    v = read()", "    assert 3.0 <= v <= 3.6", ""]
    else:
        lines += ["def test_s0():"]
        for k in range(n):
            lines += [f"    v{k} = read()", f"    assert 3.0 <= v{k} <= 3.6"]
    (d / "test_bench.py").write_text("\n".join(lines) + "\n")
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml",
            str(d / "junit.xml"), "test_bench.py"]


def _robot(d: Path, kind: str, n: int) -> list[str]:
    (d / "BenchLib.py").write_text(ROBOT_LIB)
    lines = ["*** Settings ***", "Library    BenchLib.py", "", "*** Test Cases ***"]
    if kind == "steps":
        for i in range(n):
            lines += [f"s{i}", "    Measure And Check    v    3.0    3.6"]
    else:
        lines += ["s0"] + [f"    Measure And Check    v{k}    3.0    3.6" for k in range(n)]
    (d / "bench.robot").write_text("\n".join(lines) + "\n")
    return [sys.executable, "-m", "robot", "--outputdir", str(d / "out"), "--console", "quiet", "bench.robot"]


LITMUS = Tool("litmus-seq", _litmus)
OTHERS = {"OpenHTF": Tool("OpenHTF", _openhtf), "pytest": Tool("pytest", _pytest),
          "Robot Framework": Tool("Robot Framework", _robot)}


def available(openhtf: bool) -> list[Tool]:
    """The comparison tools that import here (OpenHTF is an optional extra)."""
    tools = [OTHERS["pytest"], OTHERS["Robot Framework"]]
    if openhtf:
        tools.insert(0, OTHERS["OpenHTF"])
    return tools


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)  # the litmus-seq of this tree, whatever is installed
    return env


def measure(run_child: Callable[..., Any], tmp: Path, plan: Sequence[tuple[Tool, str, int]],
            rounds: int) -> dict[tuple[str, str, int], list[Any]]:
    """Run every (tool, kind, N) once per round, rounds interleaved; keep each Child sample.

    Workloads are written once (untimed) and each tool runs one untimed warm-up of its
    smallest workload, so bytecode caches and the page cache are warm for every timed sample.
    """
    env = _env()
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    argvs: dict[tuple[str, str, int], tuple[Path, list[str]]] = {}
    for tool, kind, n in plan:
        d = tmp / "e2e" / f"{tool.name.replace(' ', '_')}_{kind}_{n}"
        d.mkdir(parents=True, exist_ok=True)
        argvs[(tool.name, kind, n)] = (d, tool.make(d, kind, n))
    warmed: set[str] = set()
    for (name, kind, n), (d, argv) in argvs.items():
        if name not in warmed and n == 1:
            run_child(argv, cwd=d, env=env)
            warmed.add(name)
    samples: dict[tuple[str, str, int], list[Any]] = {key: [] for key in argvs}
    for _ in range(rounds):
        for key, (d, argv) in argvs.items():
            shutil.rmtree(d / "data", ignore_errors=True)
            samples[key].append(run_child(argv, cwd=d, env=env))
    return samples


def per_item_us(samples: dict[tuple[str, str, int], list[Any]], name: str, kind: str, n: int,
                metric: str = "cpu_s") -> float:
    """Median over rounds of (T(N) − T(1)) / (N − 1), in µs; T(1) of the same round.

    T is CPU time (user + system, all threads) by default: on a shared machine wall time
    mostly measures the neighbours; ``metric="wall_s"`` gives spawn-to-exit time.
    """
    ones, big = samples[(name, kind, 1)], samples[(name, kind, n)]
    return statistics.median((getattr(b, metric) - getattr(o, metric)) / (n - 1) * 1e6 for o, b in zip(ones, big))


def spread_us(samples: dict[tuple[str, str, int], list[Any]], name: str, kind: str, n: int) -> str:
    """The per-round values of :func:`per_item_us` as "min–max", to show how far the median can be trusted."""
    ones, big = samples[(name, kind, 1)], samples[(name, kind, n)]
    xs = [(b.cpu_s - o.cpu_s) / (n - 1) * 1e6 for o, b in zip(ones, big)]
    return f"{min(xs):,.0f}–{max(xs):,.0f}"


def rss_mb(samples: dict[tuple[str, str, int], list[Any]], name: str, kind: str, n: int) -> float:
    return statistics.median(c.maxrss_mb for c in samples[(name, kind, n)])


def wall_s(samples: dict[tuple[str, str, int], list[Any]], name: str, kind: str, n: int) -> float:
    return statistics.median(c.wall_s for c in samples[(name, kind, n)])
