"""litmus_seq.lake.spark: three stations pushed to S3 (one push killed and resumed), the lake
compacted, and DuckDB (through litmus-seq) and Spark (local mode) give the same tables."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FLEET_RUNS, make_bucket
from test_lake_push import cli, push_killed_midway

pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("litmus-seq-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Equal rows: counts and text exactly, floats to 1e-9 (the engines sum in different orders)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if ra.keys() != rb.keys():
            return False
        for k in ra:
            x, y = ra[k], rb[k]
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


@pytest.mark.slow
def test_duckdb_and_spark_agree_over_the_lake(fleet: dict[str, Path], s3_env: str, tmp_path: Path,
                                              spark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import pyarrow.fs as pafs

    from litmus_seq.lake import spark as lake_spark
    from litmus_seq.lake.store import open_lake

    uri = f"s3://{make_bucket(s3_env)}/fleet"
    interrupted = tmp_path / "data-st-b"
    shutil.copytree(fleet["st-b"], interrupted)
    push_killed_midway(interrupted, uri, at=2)  # st-b's push dies half-way through its 2nd upload
    for st, data in (("st-a", fleet["st-a"]), ("st-c", fleet["st-c"]), ("st-b", interrupted)):
        code, out, _ = cli(capsys, "push", "--data-dir", str(data), "--to", uri)
        assert code == 0, out
    code, before, _ = cli(capsys, "stats", "--lake", uri, "--json")
    assert code == 0
    code, out, _ = cli(capsys, "compact", "--lake", uri)
    assert code == 0 and "8 runs" in out
    code, after, _ = cli(capsys, "stats", "--lake", uri, "--json")
    assert code == 0 and after == before
    duck = json.loads(after)
    code, out, _ = cli(capsys, "query", "SELECT station_id, count(*) AS runs, count(DISTINCT run_id) AS ids "
                       "FROM runs GROUP BY 1 ORDER BY 1", "--lake", uri, "--csv")
    expected = [f"{st},{len(r)},{len(r)}" for st, r in sorted(FLEET_RUNS.items())]
    assert out.splitlines()[1:] == expected  # no run counted twice or lost

    # Spark reads a local copy of the lake (S3 from Spark needs the hadoop-aws jars)
    local = tmp_path / "lake"
    store = open_lake(uri)
    pafs.copy_files(store.root, str(local), source_filesystem=store.fs,
                    destination_filesystem=pafs.LocalFileSystem())
    runs = lake_spark.read_runs(spark, str(local))
    ids = runs.where("record_type = 'run'").groupBy("station_id").count().orderBy("station_id").collect()
    assert [(r["station_id"], r["count"]) for r in ids] == [(st, len(r)) for st, r in sorted(FLEET_RUNS.items())]
    assert runs.select("run_id").distinct().count() == sum(len(r) for r in FLEET_RUNS.values())
    tables = {"yield": lake_spark.yield_by_station_day(runs), "pareto": lake_spark.pareto(runs),
              "cpk": lake_spark.cpk(runs)}
    for name, frame in tables.items():
        rows = [r.asDict() for r in frame.collect()]
        assert rows and same(rows, duck[name]), (name, rows, duck[name])
    fpy = [r.asDict() for r in lake_spark.first_pass_yield(runs, station="st-b").collect()]
    assert [(r["units"], r["first_pass"]) for r in fpy] == [(2, 0)]
    assert any(r["cpk"] is not None for r in duck["cpk"])  # capability computed, not just NULLs
