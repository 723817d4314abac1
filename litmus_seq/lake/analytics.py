"""Fleet analytics, one SQL text per table for DuckDB and Spark alike.

Each table is defined once, below, in the SQL both engines accept; only the UTC day of a
timestamp and the parameter markers differ (:data:`_DIALECTS`). ``litmus-seq stats`` runs them
on DuckDB (:func:`compute`), :mod:`litmus_seq.lake.spark` on Spark; a test checks that both
return the same rows. What they mean (also in ``docs/lake.md``):

* **yield** by station and UTC day: ``runs``, ``passed``, ``yield = passed / runs`` (every run
  counts: errored, terminated and aborted runs did not yield a good unit); **first-pass yield**:
  a unit (``dut_serial``; a run without a serial is a unit of its own) is counted once per
  station, on the day of its first run there, ``units``, ``first_pass`` (that first run passed),
  ``first_pass_yield = first_pass / units``.
* **pareto** of failing steps: per sequence and step, in how many runs it ended ``failed`` or
  ``errored`` (group steps, which only repeat their children, left out), most first, with each
  step's ``share`` of all failures and the ``cumulative_share``.
* **cpk** per measurement (sequence, step, measurement name, units and spec limits -- the spec
  band before guardband, else the limits): numeric readings of every attempt, ``n``, ``mean``,
  ``sigma`` (sample standard deviation), ``sigma_within`` (average moving range in time order /
  1.128); ``ppk`` uses ``sigma``, ``cpk`` ``sigma_within``: ``min(usl - mean, mean - lsl) / 3σ``,
  one-sided where only one limit exists, NULL without spread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litmus_seq.errors import LitmusError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = ["TABLES", "render", "compute"]

_DIALECTS: dict[str, dict[str, str]] = {
    "duckdb": {
        "day": "CAST(CAST({col} AS DATE) AS VARCHAR)",  # the connection's time zone is UTC
        "param": "${name}",
    },
    "spark": {
        # from the epoch, so that the session time zone plays no part
        "day": "date_format(date_from_unix_date(CAST(floor(unix_micros({col}) / 86400000000) AS INT)), 'yyyy-MM-dd')",
        "param": ":{name}",
    },
}

_YIELD = """
WITH base AS ({base}),
r AS (
  SELECT station_id, {run_day} AS day, run_outcome,
         row_number() OVER (PARTITION BY station_id, coalesce(dut_serial, run_id)
                            ORDER BY run_started_at, run_id) AS attempt
  FROM base WHERE record_type = 'run'),
g AS (
  SELECT station_id, day, count(*) AS runs,
         count(CASE WHEN run_outcome = 'passed' THEN 1 END) AS passed,
         count(CASE WHEN attempt = 1 THEN 1 END) AS units,
         count(CASE WHEN attempt = 1 AND run_outcome = 'passed' THEN 1 END) AS first_pass
  FROM r GROUP BY station_id, day)
SELECT station_id, day, runs, passed, CAST(passed AS DOUBLE) / runs AS yield,
       units, first_pass, CASE WHEN units > 0 THEN CAST(first_pass AS DOUBLE) / units END AS first_pass_yield
FROM g ORDER BY station_id NULLS FIRST, day
"""

_PARETO = """
WITH base AS ({base}),
f AS (
  SELECT DISTINCT sequence_name, step_path, run_id, step_outcome FROM base
  WHERE record_type = 'step' AND step_outcome IN ('failed', 'errored')
    AND coalesce(step_kind, '') <> 'group'),
g AS (
  SELECT sequence_name, step_path, count(CASE WHEN step_outcome = 'failed' THEN 1 END) AS failed,
         count(CASE WHEN step_outcome = 'errored' THEN 1 END) AS errored, count(*) AS failures
  FROM f GROUP BY sequence_name, step_path),
o AS (
  SELECT *, CAST(sum(failures) OVER (ORDER BY failures DESC, sequence_name NULLS FIRST, step_path
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cumulative,
         CAST(sum(failures) OVER () AS BIGINT) AS total
  FROM g)
SELECT sequence_name, step_path, failed, errored, failures,
       CAST(failures AS DOUBLE) / total AS share, CAST(cumulative AS DOUBLE) / total AS cumulative_share
FROM o ORDER BY failures DESC, sequence_name NULLS FIRST, step_path
"""

_CPK = """
WITH base AS ({base}),
m AS (
  SELECT sequence_name, step_path, measurement_name, measurement_units AS units,
         coalesce(limit_spec_low, limit_low) AS lsl, coalesce(limit_spec_high, limit_high) AS usl,
         measurement_value AS x, measurement_timestamp AS t, run_id, vector_index, vector_retry
  FROM base WHERE record_type = 'measurement' AND measurement_value IS NOT NULL
    AND NOT isnan(measurement_value)),
k AS (
  SELECT *, abs(x - lag(x) OVER (PARTITION BY sequence_name, step_path, measurement_name, units, lsl, usl
                                 ORDER BY t, run_id, vector_index, vector_retry)) AS mr
  FROM m WHERE lsl IS NOT NULL OR usl IS NOT NULL),
s AS (
  SELECT sequence_name, step_path, measurement_name, units, lsl, usl, count(*) AS n, avg(x) AS mean,
         stddev_samp(x) AS sigma, avg(mr) / CAST(1.128 AS DOUBLE) AS sigma_within
  FROM k GROUP BY sequence_name, step_path, measurement_name, units, lsl, usl)
SELECT sequence_name, step_path, measurement_name, units, lsl, usl, n, mean, sigma, sigma_within,
       {cpk_within} AS cpk, {cpk_overall} AS ppk
FROM s ORDER BY sequence_name NULLS FIRST, step_path, measurement_name, units NULLS FIRST,
                lsl NULLS FIRST, usl NULLS FIRST
"""

_CAPABILITY = """CASE WHEN {s} > 0 THEN CASE
    WHEN lsl IS NULL THEN (usl - mean) / (3 * {s})
    WHEN usl IS NULL THEN (mean - lsl) / (3 * {s})
    WHEN usl - mean < mean - lsl THEN (usl - mean) / (3 * {s})
    ELSE (mean - lsl) / (3 * {s}) END END"""

#: table name -> (SQL template, what it is)
TABLES: dict[str, tuple[str, str]] = {
    "yield": (_YIELD, "Yield and first-pass yield by station and UTC day"),
    "pareto": (_PARETO, "Pareto of failing steps (runs in which each failed or errored)"),
    "cpk": (_CPK, "Capability per measurement against its spec limits"),
}


def render(table: str, dialect: str, source: str, *, since: str | None = None,
           station: str | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL of ``table`` for ``dialect`` (``duckdb`` | ``spark``) over the relation ``source``,
    with its parameters: rows of runs started on or after the UTC day ``since`` (``YYYY-MM-DD``)
    and of ``station`` only, where given."""
    d = _DIALECTS[dialect]
    conditions, params = [], {}
    if station is not None:
        conditions.append(f"station_id = {d['param'].format(name='station')}")
        params["station"] = station
    if since is not None:
        conditions.append(f"{d['day'].format(col='run_started_at')} >= {d['param'].format(name='since')}")
        params["since"] = since
    base = f"SELECT * FROM {source}" + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
    sql = TABLES[table][0].format(
        base=base, run_day=d["day"].format(col="run_started_at"),
        cpk_within=_CAPABILITY.format(s="sigma_within"), cpk_overall=_CAPABILITY.format(s="sigma"))
    return sql, params


def compute(con: duckdb.DuckDBPyConnection, table: str, *, since: str | None = None,
            station: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """``table`` over the view ``rows`` (every row) of ``con`` (:func:`litmus_seq.lake.read.connect`)."""
    import duckdb

    sql, params = render(table, "duckdb", "rows", since=since, station=station)
    try:
        result = con.sql(sql, params=params).to_arrow_table()
    except duckdb.Error as exc:
        raise LitmusError(f"stats {table}: {' '.join(str(exc).split())}") from None
    return result.column_names, result.to_pylist()
