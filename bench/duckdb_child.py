"""DuckDB over the run store: per-step outcome counts across all runs, as the store grows.

The query is the one a test engineer runs first ("which steps fail, how often?") and the one
PARQUET.md promises works across every file ever written: ``read_parquet`` over the run folder
glob with ``union_by_name = true``. Timed in a fresh process with a fresh in-memory connection;
the first execution (metadata of every file read cold from DuckDB's point of view, though the OS
page cache is warm) and the median of the repeats are both reported. The result is checked: the
counts must add up to runs × steps.

Usage: ``python bench/duckdb_child.py GLOB [GLOB ...] --expect-rows N [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

QUERY = """
SELECT step_name, step_outcome, count(*) AS n
FROM read_parquet({files}, union_by_name = true)
WHERE record_type = 'step'
GROUP BY step_name, step_outcome
ORDER BY step_name, step_outcome
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("globs", nargs="+")
    p.add_argument("--expect-rows", type=int, required=True)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    import duckdb

    con = duckdb.connect()
    sql = QUERY.format(files="[" + ", ".join("'" + g.replace("'", "''") + "'" for g in a.globs) + "]")
    times = []
    rows: list[tuple[str, str, int]] = []
    for _ in range(1 + a.repeats):
        t0 = time.perf_counter()
        rows = con.execute(sql).fetchall()
        times.append(time.perf_counter() - t0)
    total = sum(r[2] for r in rows)
    if total != a.expect_rows:
        raise SystemExit(f"GROUP BY counted {total} step rows, expected {a.expect_rows}")
    outcomes = sorted({r[1] for r in rows if r[1] is not None})
    print(json.dumps({"first_s": times[0], "median_s": statistics.median(times[1:]), "groups": len(rows),
                      "step_rows": total, "outcomes": outcomes, "duckdb": duckdb.__version__}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
