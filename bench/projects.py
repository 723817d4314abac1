"""Generated litmus-seq projects for the benchmarks (written to a temp dir, never into the repo).

Every workload is plain YAML in the documented formats (DESIGN §2), run through the same
``build_plan`` → ``run_plan`` path as ``litmus-seq run``; the only mock is the instrument
(``driver: mock``), as in the project's own CI station.

Workloads:

* ``steps N``  — N steps, one vector, one measurement each (``measure: v, from: dmm.read``, limit
  3.0–3.6): the per-step engine overhead.
* ``meas N``   — one step, one vector, N distinct measurements in ``do:``: the cost of an extra
  measurement.
* ``sweep S V M`` — S steps, each a sweep of V points (vectors) × M measurements in ``do:``;
  10 × 1,000 × 100 = 1,000,000 measurements for the sustained-throughput run. This is how a
  characterization run reaches a million readings (a sweep over a parameter, many readings per
  point) and it exercises planned vectors, per-vector limit lookup and step/vector events, not
  just a tight ``ctx.measure()`` loop.
* ``tiny``     — 5 steps whose mocked readings vary run to run (seeded), so some fail: the
  thousands of small run files the DuckDB query reads.
"""

from __future__ import annotations

import random
from pathlib import Path

STATION = """\
id: mock
name: Bench mock station
instruments:
  dmm:
    driver: mock
    mock: {read: 3.3}
"""

LIMIT = "{low: 3.0, high: 3.6}"


def _project(root: Path, name: str, body: list[str], station: str = STATION) -> Path:
    """Write ``stations/mock.yaml`` and ``sequences/<name>.yaml`` under ``root``; return the sequence."""
    (root / "stations").mkdir(parents=True, exist_ok=True)
    (root / "sequences").mkdir(parents=True, exist_ok=True)
    (root / "stations" / "mock.yaml").write_text(station)
    seq = root / "sequences" / f"{name}.yaml"
    seq.write_text("\n".join([f"sequence: {name}", "version: 1", "station: mock", *body]) + "\n")
    return seq


def steps(root: Path, n: int) -> Path:
    """N one-measurement steps (the per-step workload)."""
    body = ["steps:"]
    body += [f"  - {{name: s{i}, measure: v, from: dmm.read, limit: {LIMIT}}}" for i in range(n)]
    return _project(root, f"steps_{n}", body)


def meas(root: Path, n: int) -> Path:
    """One step, one vector, N measurements (the per-measurement workload)."""
    body = ["steps:", "  - name: s0", "    do:"]
    body += [f"      - {{measure: v{k}, from: dmm.read, limit: {LIMIT}}}" for k in range(n)]
    return _project(root, f"meas_{n}", body)


def sweep(root: Path, n_steps: int, n_points: int, n_meas: int) -> Path:
    """S steps × V sweep points × M measurements per point."""
    body = ["steps:"]
    for i in range(n_steps):
        body += [f"  - name: s{i}", f"    sweep: {{x: {{start: 1, stop: {n_points}, step: 1}}}}", "    do:"]
        body += [f"      - {{measure: v{k}, from: dmm.read, limit: {LIMIT}}}" for k in range(n_meas)]
    return _project(root, f"sweep_{n_steps}x{n_points}x{n_meas}", body)


TINY_STEPS = 5


def tiny(root: Path, runs: int, seed: int = 1) -> Path:
    """Five steps with varying readings: about 1 in 10 readings falls outside 3.0–3.6.

    The mock returns its list one item per call (the last repeats), so one list covers every
    measurement of ``runs`` runs made in one session.
    """
    rng = random.Random(seed)
    values = [round(rng.gauss(3.3, 0.18), 4) for _ in range(TINY_STEPS * runs)]
    station = STATION.replace("mock: {read: 3.3}", "mock: {read: [" + ", ".join(map(str, values)) + "]}")
    body = ["steps:"]
    body += [f"  - {{name: s{i}, measure: v, from: dmm.read, limit: {LIMIT}}}" for i in range(TINY_STEPS)]
    return _project(root, "tiny", body, station)
