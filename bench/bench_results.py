"""The read side over many runs: ``litmus-seq runs`` and ``Results.list_runs`` at 10,000 run files.

Builds ``--runs`` (default 10,000) run files from one real run written by the materializer (each
copy gets its own run id, serial, station and start time, 11 rows like a small production test),
then measures:

* the first listing, which builds the index from the parquet files alone (cold);
* ``Results.list_runs(limit=20)`` and ``list_runs(dut=...)`` with the index up to date (warm,
  in process, median of 5);
* ``litmus-seq runs`` and ``litmus-seq runs --dut SERIAL`` as a user types them (a new process
  each time: interpreter start and imports included, median of 5);
* after 100 new runs were added: the listing that brings the index up to date.

Run: ``python bench/bench_results.py [--runs N] [--keep DIR]``. Target: ``runs`` over 10,000
stored runs <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def make_runs(data: Path, n: int, start: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from test_stores_stream import full_session

    from litmus_seq.stores.materializer import RunMaterializer

    seed = data.parent / "seed"
    m = RunMaterializer(seed)
    full_session(m, runs=1, session_id="seed")
    m.close()
    table = pq.read_table(m.written[0])
    rows = table.num_rows
    t0 = table["run_started_at"][0].as_py()
    for i in range(start, start + n):
        when = t0 + timedelta(seconds=i)
        serial = f"SN{i:06d}"
        t = table
        for name, value in (("run_id", f"run-{i:08d}"), ("dut_serial", serial),
                            ("station_id", f"station_{i % 8}")):
            t = t.set_column(t.schema.get_field_index(name), name, pa.array([value] * rows, pa.string()))
        t = t.set_column(t.schema.get_field_index("run_started_at"), "run_started_at",
                         pa.array([when] * rows, t.schema.field("run_started_at").type))
        folder = data / "runs" / when.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, folder / f"{when.strftime('%Y%m%dT%H%M%S.%fZ')}_{serial}.parquet")


def timed(fn: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cli(data: Path, *args: str) -> float:
    """Run ``litmus-seq runs``; returns the CPU seconds (user + system) the process used."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "runs", "--data-dir", str(data), *args],
                       capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_cpu(data: Path, *args: str) -> float:
    return statistics.median(cli(data, *args) for _ in range(5))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="build the data folder here and keep it")
    args = ap.parse_args()
    from litmus_seq.results import Results

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench-results-"))
    data = tmp / "data"
    t = time.perf_counter()
    if not (data / "runs").exists():
        make_runs(data, args.runs)
    print(f"{args.runs} run files ready in {time.perf_counter() - t:.1f} s")

    (data / "cache" / "runs-index.parquet").unlink(missing_ok=True)
    t = time.perf_counter()
    n = len(Results(data).list_runs())
    print(f"cold: first listing (index built from {n} files): {time.perf_counter() - t:.2f} s")
    assert n == args.runs
    print(f"warm: Results.list_runs(limit=20): {timed(lambda: Results(data).list_runs(limit=20)) * 1e3:.0f} ms")
    print(f"warm: Results.list_runs(dut=...): {timed(lambda: Results(data).list_runs(dut='SN000042')) * 1e3:.0f} ms")
    print(f"warm: litmus-seq runs: wall {timed(lambda: cli(data)) * 1e3:.0f} ms, "
          f"CPU {cli_cpu(data) * 1e3:.0f} ms")
    print(f"warm: litmus-seq runs --dut SN000042: wall {timed(lambda: cli(data, '--dut', 'SN000042')) * 1e3:.0f} ms, "
          f"CPU {cli_cpu(data, '--dut', 'SN000042') * 1e3:.0f} ms")
    make_runs(data, 100, start=len(Results(data).files()))
    t = time.perf_counter()
    Results(data).list_runs(limit=20)
    print(f"after 100 new runs: listing that updates the index: {(time.perf_counter() - t) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
