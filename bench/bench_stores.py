"""Store costs: the run materializer and the event store on a large synthetic run.

Feeds ``--measurements`` (default 1,000,000) measurement events, in steps of 100 measurements
(one ``litmus_seq_events`` batch per step, as the engine delivers them), through
:class:`RunMaterializer` and, separately, :class:`EventStore`; prints µs per measurement in the
hook, the write time at ``run.ended``, rows/s overall and the peak RSS of the process.

Run: ``python bench/bench_stores.py [--measurements N] [--only materializer|events]``.
Targets: materializer ≥ 100k measurements/s all in, ≤ 300 MB peak RSS for 1,000,000.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from litmus_seq import events as ev

PER_STEP = 100

LIMIT = {
    "comparator": "GELE", "low": 3.1515, "high": 3.4485, "nominal": 3.3, "equals": None, "pattern": None,
    "units": "V", "marginal_low": None, "marginal_high": None, "spec_low": 3.135, "spec_high": 3.465,
    "guardband_pct": 10.0, "source": "spec", "characteristic_id": "rail_3v3", "spec_ref": "products.pb.rail_3v3",
}


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


def batches(n_measurements: int) -> Any:
    """Yield event batches like the engine's bus delivers them (stamped by a real EventBus)."""
    out: list[list[dict[str, Any]]] = []
    bus = ev.EventBus("bench-session", lambda events: out.append(events))
    bus.emit(ev.SESSION_STARTED, station_id="b", station_name="b", station_hostname="h", litmus_seq_version="0",
             python_version="3", platform="x", plugins=[])
    bus.run_id = "bench-run"
    n_steps = max(1, n_measurements // PER_STEP)
    items = [{"node_id": f"s.yaml::main/s{i}", "step_path": f"main/s{i}", "parent_path": "", "step_index": i,
              "name": f"s{i}", "kind": "measure", "phase": "main", "file": "s.yaml", "line": i + 1,
              "vector_count": 1} for i in range(n_steps)]
    bus.emit(ev.RUN_STARTED, dut_serial="SN1", sequence_name="bench", custom={})
    bus.emit(ev.INSTRUMENT_CONNECTED, role="dmm", driver="scpi.dmm", resource="USB::1", mocked=False,
             identity={"manufacturer": "K", "model": "M", "serial": "S", "firmware": "F"},
             calibration={"due": "2027-01-01", "certificate": "C"})
    bus.emit(ev.STEPS_DISCOVERED, items=items)
    bus.flush()
    yield from out
    out.clear()
    for i in range(n_steps):
        path = f"main/s{i}"
        bus.emit(ev.STEP_STARTED, step_path=path, step_index=i, node_id=items[i]["node_id"], name=f"s{i}",
                 kind="measure", vector_count=1)
        bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=0, retry=0, params={"vin": 5.0})
        for k in range(PER_STEP):
            bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": path, "vector_index": 0, "retry": 0,
                            "name": f"m{k % 10}", "value": 3.3 + k * 1e-4, "text": None, "units": "V",
                            "outcome": "passed", "marginal": False, "limit": LIMIT, "instrument": "dmm",
                            "channel": None, "dut_pin": "VOUT", "fixture_connection": None})
        bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=0, retry=0, outcome="passed", error=None)
        bus.emit(ev.STEP_ENDED, step_path=path, outcome="passed", error=None)
        bus.flush()
        yield out.pop()
    bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
    bus.flush()
    yield out.pop()


def bench(kind: str, n: int) -> None:
    from litmus_seq.stores.events import EventStore
    from litmus_seq.stores.materializer import RunMaterializer

    with tempfile.TemporaryDirectory() as tmp:
        store: Any = RunMaterializer(Path(tmp)) if kind == "materializer" else EventStore(Path(tmp))
        hook_s = 0.0
        last_s = 0.0
        gen = batches(n)
        t_all = time.perf_counter()
        for batch in gen:
            t0 = time.perf_counter()
            store.litmus_seq_events(batch)
            dt = time.perf_counter() - t0
            if batch and batch[-1]["event_type"] == ev.RUN_ENDED:
                last_s = dt
            else:
                hook_s += dt
        t0 = time.perf_counter()
        store.close()
        close_s = time.perf_counter() - t0
        total_s = hook_s + last_s + close_s
        wall = time.perf_counter() - t_all
        files = list(Path(tmp).rglob("*.parquet" if kind == "materializer" else "*.arrow"))
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"{kind}: {n:,} measurements")
        print(f"  hook        {hook_s * 1e6 / n:7.2f} µs/measurement")
        print(f"  run.ended   {last_s:7.2f} s   close {close_s:.2f} s")
        print(f"  all in      {total_s * 1e6 / n:7.2f} µs/measurement  {n / total_s:,.0f} rows/s "
              f"(wall incl. event generation {wall:.1f} s)")
        print(f"  file        {size:.1f} MB in {len(files)} file(s)")
        print(f"  peak RSS    {peak_rss_mb():.0f} MB")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--measurements", type=int, default=1_000_000)
    p.add_argument("--only", choices=("materializer", "events"))
    a = p.parse_args()
    for kind in ("materializer", "events"):
        if a.only in (None, kind):
            bench(kind, a.measurements)


if __name__ == "__main__":
    main()
