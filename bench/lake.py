"""The lake benchmark: push throughput, compaction, and the yield query over many runs, DuckDB and
Spark side by side. Not part of the test suite; run it by hand:

    python bench/lake.py                      # 100,000 runs in the lake, 10,000 in a data folder
    python bench/lake.py --runs 20000 --local-runs 2000 --push-runs 500

Run files are generated from real ones: ``litmus-seq run`` of the example FCT sequence on mock
benches (a passing, a failing and an erroring bench), each copy given its own run id, serial,
station (10), start time (spread over 10 days) and readings (jittered), written with the run
file's own writer settings. Figures go to stdout (and, with --json, to a file).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STATIONS = 10
DAYS = 10
DAY0_US = 1_764_547_200_000_000  # 2025-12-01T00:00:00Z


def templates(work: Path) -> list[Path]:
    """Three real run files: passed, failed (supply readback), errored (DMM unreadable)."""
    import yaml

    from litmus_seq.cli.main import main

    project = work / "project"
    for name in ("sequences", "products", "stations", "plugins", "checks"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    base = yaml.safe_load((project / "stations" / "mock_bench.yaml").read_text())
    out = []
    for name, vin, rail in (("good", [5.0, 12.0, 5.0], [3.28, 3.31, 3.30, 3.33]), ("bad", 5.0, 3.3),
                            ("dead", [5.0, 12.0, 5.0], None)):
        doc = yaml.safe_load(yaml.safe_dump(base))
        doc["id"] = f"bench-{name}"
        doc["instruments"]["psu"]["mock"]["measure_voltage"] = vin
        doc["instruments"]["dmm"]["mock"]["measure_dc_voltage"] = rail
        (project / "stations" / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        data = work / f"template-{name}"
        main(["run", str(project / "sequences" / "power_board_fct.yaml"), "--station", name, "--dut", "T",
              "--data-dir", str(data), "-y"])
        out.append(next((data / "runs").rglob("*.parquet")))
    return out


def _generate(args: tuple[list[str], str, bool, int, int]) -> int:
    """Write runs ``start``..``stop`` (one process of the pool); returns bytes written."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from litmus_seq.lake.store import partition

    paths, root, hive, start, stop = args
    tables = [pq.read_table(p) for p in paths]
    rng = random.Random(start)
    written = 0
    for i in range(start, stop):
        pick = rng.random()
        t = tables[0 if pick < 0.9 else 1 if pick < 0.97 else 2]
        n = t.num_rows
        station = f"st-{i % STATIONS:02d}"
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        started = DAY0_US + (i % DAYS) * 86_400_000_000 + (i // DAYS) * 500_000 % 86_400_000_000
        cols = {
            "run_id": pa.array([run_id] * n), "session_id": pa.array([run_id] * n),
            "dut_serial": pa.array([f"SN{i // 2:07d}"] * n),  # every unit tested twice
            "station_id": pa.array([station] * n),
            "run_started_at": pa.array([started] * n, pa.timestamp("us", tz="UTC")),
        }
        vals = t.column("measurement_value")
        noise = pa.array([1 + rng.gauss(0, 0.003) for _ in range(n)])
        cols["measurement_value"] = pc.multiply(vals, noise)
        for name, col in cols.items():
            t = t.set_column(t.schema.get_field_index(name), name, col)
        day = time.strftime("%Y-%m-%d", time.gmtime(started / 1e6))
        folder = Path(root) / "runs" / (partition(day, station) if hive else day)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run_id}.parquet"
        pq.write_table(t, path, compression="snappy", store_schema=False)
        written += path.stat().st_size
    return written


def generate(paths: list[Path], root: Path, runs: int, *, hive: bool) -> float:
    """``runs`` generated run files under ``root`` (lake layout if ``hive``); returns seconds."""
    t0 = time.perf_counter()
    workers = max(1, min(os.cpu_count() or 1, 4))
    step = (runs + workers * 8 - 1) // (workers * 8)
    jobs = [([str(p) for p in paths], str(root), hive, a, min(a + step, runs)) for a in range(0, runs, step)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_generate, jobs))
    return time.perf_counter() - t0


YIELD_PER_STEP = ("SELECT step_path, step_outcome, count(*) AS n FROM rows WHERE record_type = 'step' "
                  "GROUP BY ALL ORDER BY ALL")


def duck_time(store: object, sql: str | None = None, table: str = "yield") -> tuple[float, int]:
    """Seconds for connect (listing, manifest, view) + one query; and the rows it returned."""
    from litmus_seq.lake.analytics import compute
    from litmus_seq.lake.read import connect

    t0 = time.perf_counter()
    con = connect(store)
    if sql is not None:
        rows = con.sql(sql).fetchall()
    else:
        rows = compute(con, table)[1]
    return time.perf_counter() - t0, len(rows)


def best(fn, repeat: int = 3) -> tuple[float, int]:  # noqa: ANN001
    results = [fn() for _ in range(repeat)]
    return min(r[0] for r in results), results[0][1]


def moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000, help="runs in the lake (DuckDB vs Spark)")
    ap.add_argument("--local-runs", type=int, default=10_000, help="runs in a data folder (compact target)")
    ap.add_argument("--push-runs", type=int, default=2_000, help="runs pushed (throughput)")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--work", metavar="DIR", help="keep the generated files here")
    a = ap.parse_args()

    from litmus_seq.lake.compact import compact
    from litmus_seq.lake.push import push
    from litmus_seq.lake.store import open_data_dir, open_lake

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="litmus-lake-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {}
    paths = templates(work)

    def say(key: str, value: object, text: str) -> None:
        figures[key] = value
        print(text, flush=True)

    # 1. push throughput: a data folder of push-runs to a folder lake and to S3 (moto)
    src = work / "push-src"
    generate(paths, src, a.push_runs, hive=False)
    size = sum(p.stat().st_size for p in (src / "runs").rglob("*.parquet"))
    r = push(src, open_lake(str(work / "push-lake"), create=True))
    say("push_folder_runs_per_s", r.runs / r.seconds,
        f"push to a folder lake: {r.runs} runs, {size / 1e6:.1f} MB in {r.seconds:.2f} s = "
        f"{r.runs / r.seconds:.0f} runs/s, {size / 1e6 / r.seconds:.1f} MB/s")
    proc, endpoint = moto()
    try:
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
        import pyarrow.fs as pafs

        pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True).create_dir("bench")
        r = push(src, open_lake("s3://bench/lake"))
        say("push_s3_runs_per_s", r.runs / r.seconds,
            f"push to S3 (moto on 127.0.0.1): {r.runs} runs in {r.seconds:.2f} s = {r.runs / r.seconds:.0f} "
            f"runs/s, {size / 1e6 / r.seconds:.1f} MB/s")
    finally:
        proc.terminate()
        proc.wait()
    shutil.rmtree(src)

    # 2. issue 14: outcome counts per step over local-runs in a data folder, before/after compact
    data = work / "data"
    generate(paths, data, a.local_runs, hive=False)
    store = open_data_dir(data)
    secs, n = best(lambda: duck_time(store, YIELD_PER_STEP), repeat=1)
    say("local_query_raw_s", secs, f"outcome counts per step over {a.local_runs} run files: {secs:.2f} s ({n} rows)")
    t0 = time.perf_counter()
    c = compact(store)
    say("local_compact_s", time.perf_counter() - t0,
        f"compact {c.runs} runs ({c.rows} rows) into {len(c.parts)} parts: {time.perf_counter() - t0:.1f} s")
    secs, n = best(lambda: duck_time(store, YIELD_PER_STEP))
    say("local_query_compacted_s", secs, f"outcome counts per step after compact: {secs:.3f} s ({n} rows)")
    secs, n = best(lambda: duck_time(store, "SELECT run_started_at, run_id, dut_serial, run_outcome FROM rows "
                                     "WHERE record_type = 'run' ORDER BY run_started_at DESC LIMIT 20"))
    say("local_runs_compacted_s", secs, f"'runs' (newest 20) after compact: {secs:.3f} s")
    shutil.rmtree(data)

    # 3. the lake: runs generated in lake layout, compacted, yield by station/day: DuckDB vs Spark
    lake_dir = work / "lake"
    secs = generate(paths, lake_dir, a.runs, hive=True)
    print(f"generated {a.runs} runs in the lake in {secs:.0f} s", flush=True)
    lake = open_lake(str(lake_dir))
    t0 = time.perf_counter()
    c = compact(lake)
    say("lake_compact_s", time.perf_counter() - t0,
        f"compact the lake: {c.runs} runs, {c.rows} rows, {len(c.parts)} parts in {time.perf_counter() - t0:.0f} s")
    secs, n = best(lambda: duck_time(lake))
    say("lake_yield_duckdb_s", secs, f"yield by station/day over {a.runs} runs, DuckDB (litmus-seq): {secs:.3f} s ({n} rows)")
    secs, n = best(lambda: duck_time(lake, YIELD_PER_STEP))
    say("lake_steps_duckdb_s", secs, f"outcome counts per step, DuckDB: {secs:.3f} s")
    if not a.no_spark:
        from pyspark.sql import SparkSession

        from litmus_seq.lake import spark as lake_spark

        spark = (SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", "4").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")

        def spark_yield() -> tuple[float, int]:
            t0 = time.perf_counter()
            rows = lake_spark.yield_by_station_day(lake_spark.read_runs(spark, str(lake_dir))).collect()
            return time.perf_counter() - t0, len(rows)

        first = spark_yield()
        say("lake_yield_spark_first_s", first[0], f"yield by station/day, Spark local[*], first query: {first[0]:.2f} s")
        secs, n = best(spark_yield)
        say("lake_yield_spark_s", secs, f"yield by station/day, Spark local[*], warm: {secs:.2f} s ({n} rows)")
        spark.stop()
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=1))
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
