"""The litmus-seq benchmark workloads written in OpenHTF, for the OpenHTF/litmus-seq ratios.

Same shape as :mod:`bench.litmus_child`: ``steps`` is N phases with one ``in_range``-validated
measurement each, ``meas`` is one phase recording N measurements. The "instrument" is a plain
function returning 3.3 (OpenHTF plugs cost nothing extra here, and litmus-seq's ``mock`` driver is
also a plain function call), and the record goes through OpenHTF's own JSON output callback — the
persistence OpenHTF users get out of the box. OpenHTF is an optional ``bench`` extra; this module
is only ever imported in a child process, so a missing OpenHTF cannot break the other columns.

Run as a child: ``python bench/openhtf_child.py steps|meas --n N --tmp DIR``; prints one JSON line
``{"t1": s, "tn": s, "n": N, ...}`` (wall seconds of a 1-item test and an N-item test).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable


def _read() -> float:
    """The mock instrument reading (litmus-seq's mock driver returns the same constant)."""
    return 3.3


def _quiet() -> None:
    """Keep OpenHTF's logging off the clock (litmus-seq logs nothing in-process either).

    This only makes OpenHTF faster, so the OpenHTF/litmus-seq ratio is, if anything, understated.
    OpenHTF's one-line outcome banner per test stays (a constant, cancelled by the marginal).
    """
    logging.disable(logging.CRITICAL)


def build_steps_test(n: int, out: Path) -> Any:
    """N phases, each one measurement ``v`` validated ``in_range(3.0, 3.6)``."""
    import openhtf as htf
    from openhtf.output.callbacks import json_factory

    phases = []
    for i in range(n):
        @htf.measures(htf.Measurement("v").in_range(3.0, 3.6))
        def phase(test: Any) -> None:
            test.measurements.v = _read()

        phases.append(htf.PhaseOptions(name=f"s{i}")(phase))
    test = htf.Test(*phases, test_name="bench_steps")
    test.add_output_callbacks(json_factory.OutputToJSON(str(out)))
    return test


def build_meas_test(n: int, out: Path) -> Any:
    """One phase recording N distinct measurements ``v0..v{N-1}``, each ``in_range(3.0, 3.6)``."""
    import openhtf as htf
    from openhtf.output.callbacks import json_factory

    names = [f"v{k}" for k in range(n)]

    @htf.measures(*[htf.Measurement(name).in_range(3.0, 3.6) for name in names])
    def phase(test: Any) -> None:
        m = test.measurements
        for name in names:
            m[name] = _read()

    test = htf.Test(htf.PhaseOptions(name="s0")(phase), test_name="bench_meas")
    test.add_output_callbacks(json_factory.OutputToJSON(str(out)))
    return test


def timed(build: Callable[[int, Path], Any], n: int, out: Path) -> float:
    """Wall time of one ``Test.execute`` including its JSON output callback (build is untimed)."""
    test = build(n, out)
    t0 = time.perf_counter()
    ok = test.execute(test_start=lambda: "SN1")
    dt = time.perf_counter() - t0
    if not ok:
        raise SystemExit(f"OpenHTF test of {n} items did not pass")
    record = json.loads(out.read_text())
    phases = [p for p in record["phases"] if p["name"] != "trigger_phase"]
    count = sum(len(p["measurements"]) for p in phases)
    if count != n and len(phases) != n:
        raise SystemExit(f"OpenHTF record holds {count} measurements in {len(phases)} phases, expected {n}")
    return dt


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=("steps", "meas"))
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--tmp", type=Path, required=True)
    a = p.parse_args(argv)
    _quiet()
    build = build_steps_test if a.workload == "steps" else build_meas_test
    a.tmp.mkdir(parents=True, exist_ok=True)
    timed(build, 1, a.tmp / "warmup.json")  # imports, first-use caches: off the clock
    # T(1): median of 5 one-item tests, as litmus_child does
    t1 = statistics.median(timed(build, 1, a.tmp / f"one_{i}.json") for i in range(5))
    tn = timed(build, a.n, a.tmp / "n.json")
    import openhtf

    print(json.dumps({"t1": t1, "tn": tn, "n": a.n, "json_bytes": os.path.getsize(a.tmp / "n.json"),
                      "version": getattr(openhtf, "__version__", "?")}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
