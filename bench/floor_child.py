"""The raw floor: the same workload hand-written against pyarrow, no sequencer at all.

What a minimal script must do to leave the same record: loop over the steps, call the
"instrument" (a plain function returning 3.3, like litmus-seq's ``mock`` driver), take the
timestamps, judge 3.0 <= v <= 3.6, collect the rows per column, and write one parquet file with
litmus-seq's exact schema (taken from a file litmus-seq wrote for the same workload) through a
temporary file renamed into place. Columns that are the same on every row of a record type (run
identity, station, instrument list…) are broadcast from that file's rows with ``pa.repeat``: the
floor pays only for what varies, which is what makes it a floor. It writes no event store (litmus-seq also writes
one, and that is part of what the ratio measures).

Usage: ``python bench/floor_child.py TEMPLATE.parquet --steps S --meas M --tmp DIR``; times a
1×1 run and an S×M run in one fresh process and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

#: columns that vary per row; everything else is broadcast from the template rows
STEP_VARYING = ("step_name", "step_index", "step_path", "step_node_id", "step_line", "step_started_at",
                "step_ended_at", "vector_started_at", "vector_ended_at", "step_outcome", "vector_outcome")
MEAS_VARYING = STEP_VARYING + ("vector_retry", "measurement_name", "measurement_timestamp",
                               "measurement_value", "measurement_outcome")


def _read() -> float:
    return 3.3


def _templates(path: Path) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Schema and one run / step / measurement row of a litmus-seq file (off the clock)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rows = table.to_pylist()
    pick = {kind: next(r for r in rows if r["record_type"] == kind) for kind in ("run", "step", "measurement")}
    return table.schema, pick["run"], pick["step"], pick["measurement"]


def write_floor(schema: Any, run_row: dict[str, Any], step_row: dict[str, Any], meas_row: dict[str, Any],
                n_steps: int, n_meas: int, out: Path, seq_file: str) -> int:
    """Run the workload and write its parquet; returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    now = time.time_ns
    sv: dict[str, list[Any]] = {c: [] for c in STEP_VARYING}
    mv: dict[str, list[Any]] = {c: [] for c in MEAS_VARYING}
    run_start = now() // 1000
    for i in range(n_steps):
        t_step = now() // 1000
        path = f"main/s{i}"
        worst = "passed"
        m_first = len(mv["measurement_name"])
        for k in range(n_meas):
            ts = now() // 1000
            value = _read()
            outcome = "passed" if 3.0 <= value <= 3.6 else "failed"
            if outcome != "passed":
                worst = "failed"
            mv["measurement_name"].append(f"v{k}" if n_meas > 1 else "v")
            mv["measurement_timestamp"].append(ts)
            mv["measurement_value"].append(value)
            mv["measurement_outcome"].append(outcome)
            mv["vector_retry"].append(0)
        t_end = now() // 1000
        step = (f"s{i}", i, path, f"{seq_file}::{path}", 5 + i, t_step, t_end, t_step, t_end, worst, worst)
        for c, v in zip(STEP_VARYING, step):
            sv[c].append(v)
        n_new = len(mv["measurement_name"]) - m_first
        for c, v in zip(STEP_VARYING, step):
            mv[c].extend([v] * n_new)
    run_end = now() // 1000
    n_m = len(mv["measurement_name"])
    n_rows = 1 + n_steps + n_m
    arrays = []
    for field in schema:
        name, typ = field.name, field.type
        if name in ("run_started_at", "run_ended_at"):
            arrays.append(pa.repeat(pa.scalar(run_start if name == "run_started_at" else run_end, typ), n_rows))
            continue
        parts = [pa.array([run_row[name]], type=typ)]
        parts.append(pa.array(sv[name], type=typ) if name in sv else pa.repeat(pa.scalar(step_row[name], typ), n_steps))
        parts.append(pa.array(mv[name], type=typ) if name in mv else pa.repeat(pa.scalar(meas_row[name], typ), n_m))
        arrays.append(pa.concat_arrays(parts))
    table = pa.Table.from_arrays(arrays, schema=schema)
    tmp = out.with_name(f".{out.name}.tmp")
    with pq.ParquetWriter(str(tmp), schema) as writer:
        writer.write_table(table)
    os.replace(tmp, out)
    return table.num_rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("template", type=Path)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--meas", type=int, required=True)
    p.add_argument("--tmp", type=Path, required=True)
    a = p.parse_args(argv)
    schema, run_row, step_row, meas_row = _templates(a.template)
    seq_file = run_row["sequence_file"] or "sequences/x.yaml"
    a.tmp.mkdir(parents=True, exist_ok=True)
    write_floor(schema, run_row, step_row, meas_row, 1, 1, a.tmp / "warmup.parquet", seq_file)
    times: dict[str, list[float]] = {"1": [], "n": []}
    # T(1): median of 5 one-item runs, as litmus_child does
    for label, steps, meas in (*(("1", 1, 1),) * 5, ("n", a.steps, a.meas)):
        t0 = time.perf_counter()
        rows = write_floor(schema, run_row, step_row, meas_row, steps, meas, a.tmp / f"{label}.parquet", seq_file)
        times[label].append(time.perf_counter() - t0)
        expected = 1 + steps + steps * meas
        if rows != expected:
            raise SystemExit(f"floor wrote {rows} rows, expected {expected}")
    results = {"t1": statistics.median(times["1"]), "tn": times["n"][0],
               "parquet_bytes": (a.tmp / "n.parquet").stat().st_size}
    print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
