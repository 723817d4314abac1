"""The lake on Spark: the same runs and the same analytics as ``litmus-seq stats``.

Spark's standard parquet reader does the reading; this module only decides which files (the
compaction manifest, :func:`litmus_seq.lake.manifest.plan_reads`, so that every run counts once)
and runs the SQL of :mod:`litmus_seq.lake.analytics`. Recipe (``docs/lake.md``)::

    from pyspark.sql import SparkSession
    from litmus_seq.lake import spark as lake

    spark = SparkSession.builder.master("local[*]").getOrCreate()
    runs = lake.read_runs(spark, "/mnt/lake")
    lake.yield_by_station_day(runs).show()
    lake.pareto(runs).show()
    lake.cpk(runs).show()

``uri`` is a lake folder Spark and this process can both read (a local or mounted folder; an
``s3a://`` lake needs Spark's hadoop-aws package and this process's S3 credentials alike).
"""

from __future__ import annotations

import itertools
from typing import Any

from litmus_seq.lake.analytics import render
from litmus_seq.lake.compact import RUN_FILE
from litmus_seq.lake.manifest import plan_reads
from litmus_seq.lake.store import open_lake

__all__ = ["read_runs", "yield_by_station_day", "first_pass_yield", "pareto", "cpk"]

_views = itertools.count()


def read_runs(spark: Any, uri: str, *, since: str | None = None, station: str | None = None) -> Any:
    """A DataFrame of every row of every run in the lake at ``uri``, each run once: the compacted
    parts (less the runs another part or a deleted run file accounts for) and the run files no
    part holds, with the columns of ``PARQUET.md`` (``union_by_name``: every file's columns)."""
    from pyspark.sql import functions as F

    store = open_lake(uri)
    if store.local:
        def url(rel: str) -> str:
            return "file://" + store.path(rel)
    else:
        scheme = "s3a://" if store.uri.startswith("s3://") else store.uri.split("://", 1)[0] + "://"

        def url(rel: str) -> str:
            return scheme + store.path(rel)
    plan = plan_reads(store, since=since, station=station)
    reader = spark.read.option("mergeSchema", "true")
    frames = []
    if plan.raw:
        frames.append(reader.parquet(*(url(rf.path) for rf in plan.raw)))
    if plan.parts:
        parts = reader.parquet(*(url(p.path) for p, _ in plan.parts))
        skip = sorted(set().union(*(s for _, s in plan.parts)))
        if skip:
            parts = parts.where(~F.col(RUN_FILE).isin(skip))
        frames.append(parts.drop(RUN_FILE))
    if not frames:
        raise ValueError(f"{uri}: no run files in the lake")
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other, allowMissingColumns=True)
    return df


def _run(runs: Any, table: str, since: str | None, station: str | None) -> Any:
    view = f"litmus_runs_{next(_views)}"
    runs.createOrReplaceTempView(view)
    sql, params = render(table, "spark", view, since=since, station=station)
    return runs.sparkSession.sql(sql, args=params) if params else runs.sparkSession.sql(sql)


def yield_by_station_day(runs: Any, *, since: str | None = None, station: str | None = None) -> Any:
    """Yield and first-pass yield by station and UTC day (:mod:`litmus_seq.lake.analytics`)."""
    return _run(runs, "yield", since, station)


def first_pass_yield(runs: Any, *, since: str | None = None, station: str | None = None) -> Any:
    """The first-pass columns of :func:`yield_by_station_day`."""
    return yield_by_station_day(runs, since=since, station=station).select(
        "station_id", "day", "units", "first_pass", "first_pass_yield")


def pareto(runs: Any, *, since: str | None = None, station: str | None = None) -> Any:
    """Failing steps, most frequent first, with share and cumulative share."""
    return _run(runs, "pareto", since, station)


def cpk(runs: Any, *, since: str | None = None, station: str | None = None) -> Any:
    """Cpk and Ppk per measurement against its spec limits."""
    return _run(runs, "cpk", since, station)
