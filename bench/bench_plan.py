"""Planning cost: build a plan of ~10,000 vectors (2 x 5 vectors x 1,001 sweep points, two
spec-limited measurements with temperature bands) and print the time and per-vector figure.

Run: ``python bench/bench_plan.py`` (not a test; the test suite asserts a loose bound).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

PRODUCT = """\
id: board
specs:
  rail: {units: V, low: 3.0, high: 3.6, bands: [{when: {temperature: [50, 125]}, low: 3.1, high: 3.5}]}
  current: {units: A, high: 0.5}
"""

SEQUENCE = """\
sequence: big
product: board
guardband_pct: 10
steps:
  - name: grid
    vectors: {vin: [5.0, 12.0], load: [0.1, 0.2, 0.3, 0.4, 0.5]}
    sweep: {temperature: {start: -40, stop: 125, step: 0.165}}
    do:
      - call: psu.set_voltage
        args: {volts: "${vin}"}
      - measure: rail
        from: dmm.measure_dc_voltage
      - measure: current
        from: psu.measure_current
"""


def main() -> None:
    from litmus_seq.plan import build_plan

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "products").mkdir()
        (root / "sequences").mkdir()
        (root / "products" / "board.yaml").write_text(PRODUCT)
        seq = root / "sequences" / "big.yaml"
        seq.write_text(SEQUENCE)
        build_plan(seq)  # warm imports
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            plan = build_plan(seq)
            best = min(best, time.perf_counter() - t0)
        n = sum(len(s.vectors) for s in plan.steps)
        shared = len({id(lim) for s in plan.steps for v in s.vectors for lim in v.limits.values()})
        print(f"plan: {n} vectors in {best * 1e3:.1f} ms ({best / n * 1e6:.2f} µs/vector), "
              f"{shared} distinct ResolvedLimit objects")


if __name__ == "__main__":
    main()
