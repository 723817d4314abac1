"""A DuckDB view ``rows`` over a data folder or a lake: compacted parts plus the run files no part
holds (:func:`litmus_seq.lake.manifest.plan_reads`), so ``query``/``stats`` give
the same answers before, during and after compaction.

Local files are read by DuckDB's own parquet reader; an object store through pyarrow datasets
(DuckDB's remote access needs an extension this installation may not have). The view's columns
are the same either way: the fixed columns in ``PARQUET.md`` order, then the dynamic ones
(``in_*``, ``out_*``, ``custom_*``, ...) by name, then ``filename`` (where the run file is, also
for rows read from a part).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from litmus_seq.errors import LitmusError
from litmus_seq.lake.compact import RUN_FILE, unify
from litmus_seq.lake.manifest import ReadPlan, plan_reads
from litmus_seq.lake.store import RunFile, Store

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = ["connect", "connect_plan", "dataset"]


def connect(store: Store, *, since: str | None = None, station: str | None = None, view: str = "rows",
            warn: Callable[[str], None] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (time zone UTC) whose view ``view`` holds every row of every run of
    ``store`` once (pruned by partition to ``since``/``station`` where given). ``warn`` gets one
    line per run file that cannot be read (default: stderr)."""
    plan = plan_reads(store, since=since, station=station)
    if plan.empty and (since or station):
        plan = plan_reads(store)  # nothing in those partitions: the queries' filters say so
    if plan.empty:
        where = store.display("runs")
        raise LitmusError(f"{where}: no run files (run a sequence first, or point --data-dir / "
                          "LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to)" if not store.hive else
                          f"{store.uri}: no run files in the lake (fill it with 'litmus-seq push --to "
                          f"{store.uri}')")
    return connect_plan(plan, view=view, warn=warn)


def connect_plan(plan: ReadPlan, *, view: str = "rows",
                 warn: Callable[[str], None] | None = None) -> duckdb.DuckDBPyConnection:
    """The connection of :func:`connect` for a read plan already made."""
    import duckdb

    try:
        return _build(plan, plan.raw, view)
    except duckdb.Error as exc:
        if not (plan.raw and plan.store.local):
            raise LitmusError(f"{plan.store.uri}: cannot read the run files: {_one_line(exc)}") from None
    # One unreadable file (a copy cut short, a stray non-parquet file) must not hide every
    # other run: name it, leave it out, and read the rest.
    raw = _readable(plan.store, plan.raw, warn or _stderr)
    try:
        return _build(plan, raw, view)
    except duckdb.Error as exc:
        raise LitmusError(f"{plan.store.uri}: cannot read the run files: {_one_line(exc)}") from None


def _stderr(line: str) -> None:
    click.echo(f"warning: {line}", err=True)


def _build(plan: ReadPlan, raw: list[RunFile], view: str) -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    selects = []
    if raw:
        selects.append(_raw_select(con, plan.store, raw))
    if plan.parts:
        selects.extend(_part_selects(con, plan))
    if not selects:
        raise LitmusError(f"{plan.store.display('runs')}: none of the {len(plan.raw)} .parquet files "
                          "can be read (see the warnings above)")
    union = " UNION ALL BY NAME ".join(f"({s})" for s in selects)
    con.execute(f"CREATE TEMP VIEW _litmus_all AS {union}")
    names = [r[0] for r in con.execute("DESCRIBE _litmus_all").fetchall()]
    con.execute(f"CREATE TEMP VIEW {_quote(view)} AS SELECT {', '.join(_quote(n) for n in _ordered(names))} "
                "FROM _litmus_all")
    return con


def _ordered(names: list[str]) -> list[str]:
    from litmus_seq.stores.schema import COLUMN_NAMES

    present = set(names)
    fixed = [n for n in COLUMN_NAMES if n in present]
    rest = sorted(present - set(fixed) - {"filename"})
    return [*fixed, *rest, *(["filename"] if "filename" in present else [])]


def _raw_select(con: Any, store: Store, files: list[RunFile]) -> str:
    if not store.local:
        con.register("_litmus_raw", dataset(store, [rf.path for rf in files], with_filename=True))
        return "SELECT * FROM _litmus_raw"
    return (f"SELECT * FROM read_parquet({_list(store.path(rf.path) for rf in files)}, "
            "union_by_name = true, filename = true, hive_partitioning = false)")


def _readable(store: Store, files: list[RunFile], warn: Callable[[str], None]) -> list[RunFile]:
    """``files`` whose footer can be read; a ``warn`` line for each other one."""
    import pyarrow.parquet as pq

    good = []
    for rf in files:
        try:
            pq.read_metadata(store.path(rf.path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            warn(f"{store.display(rf.path)}: not a readable parquet file ({_one_line(exc)}); ignored")
        else:
            good.append(rf)
    return good


def _part_selects(con: Any, plan: ReadPlan) -> list[str]:
    store = plan.store
    prefix = _literal(store.display("") + "/")
    project = f"SELECT * EXCLUDE ({RUN_FILE}), {prefix} || {RUN_FILE} AS filename FROM "
    whole = [p.path for p, skip in plan.parts if not skip]
    trimmed = [(p.path, skip) for p, skip in plan.parts if skip]
    out = []
    if not store.local:
        paths = [p.path for p, _ in plan.parts]
        con.register("_litmus_parts", dataset(store, paths, with_filename=False))
        skip_all = sorted(set().union(*(s for _, s in trimmed))) if trimmed else []
        where = f" WHERE {RUN_FILE} NOT IN ({', '.join(_literal(f) for f in skip_all)})" if skip_all else ""
        return [project + "_litmus_parts" + where]
    if whole:
        out.append(project + f"read_parquet({_list(store.path(p) for p in whole)}, union_by_name = true, hive_partitioning = false)")
    for path, skip in trimmed:
        out.append(project + f"read_parquet({_literal(store.path(path))}, hive_partitioning = false) "
                   f"WHERE {RUN_FILE} NOT IN ({', '.join(_literal(f) for f in sorted(skip))})")
    return out


def dataset(store: Store, paths: list[str], *, with_filename: bool) -> Any:
    """A pyarrow dataset over ``paths`` of an object store, with the union of their schemas and,
    ``with_filename``, a ``filename`` column holding each file's URI."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.dataset as ds

    fmt = ds.ParquetFileFormat()
    full = [store.path(p) for p in paths]
    with ThreadPoolExecutor(8) as pool:
        fragments = list(pool.map(lambda p: fmt.make_fragment(p, store.fs), full))
        schemas = list(pool.map(lambda f: f.physical_schema, fragments))
    schema = unify(schemas)
    if RUN_FILE not in set().union(*(s.names for s in schemas)):
        schema = schema.remove(schema.get_field_index(RUN_FILE))
    if with_filename:
        schema = schema.append(pa.field("filename", pa.string()))
        fragments = [fmt.make_fragment(p, store.fs, partition_expression=ds.field("filename") == store.display(rel))
                     for p, rel in zip(full, paths)]
    return ds.FileSystemDataset(fragments, schema, fmt, store.fs)


def _list(paths: Any) -> str:
    return "[" + ", ".join(_literal(p) for p in paths) + "]"


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())

