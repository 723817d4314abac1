"""``litmus-seq runs`` / ``show`` / ``query``: read the run files back.

All three go through DuckDB over ``<data_dir>/runs/**/*.parquet`` with ``union_by_name=true`` (the
schema is additive, so files of every version read together). Results are fetched as Arrow, not
as Python rows, because DuckDB's Python conversion of ``TIMESTAMPTZ`` needs ``pytz``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from litmus_seq.errors import LitmusError

__all__ = ["runs", "show", "query", "resolve_data_dir", "connect"]

_DATA_DIR_HELP = "Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data)."


def resolve_data_dir(cli_value: str | None) -> Path:
    """``--data-dir``, then ``LITMUS_DATA_DIR``, then ``litmus.yaml``'s ``data_dir``, then ./data."""
    try:
        from litmus_seq.project import ProjectContext
    except ImportError:  # pragma: no cover - the project module is optional for reading
        if cli_value:
            return Path(cli_value)
        env = os.environ.get("LITMUS_DATA_DIR")
        return Path(env) if env else Path.cwd() / "data"
    return ProjectContext.for_path(Path.cwd()).data_dir(cli_value)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def connect(data_dir: Path) -> Any:
    """A DuckDB connection with the view ``runs`` over every run file of ``data_dir``."""
    import duckdb

    root = Path(data_dir) / "runs"
    if not Path(data_dir).exists():
        raise LitmusError(f"{data_dir}: no such folder, so no run files (run a sequence first, or point --data-dir / "
                          "LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to)")
    if not Path(data_dir).is_dir():
        raise LitmusError(f"{data_dir}: is a file, not a data folder; point --data-dir / "
                          "LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to")
    try:
        found = sorted(root.glob("**/*.parquet"))
    except OSError as exc:
        raise LitmusError(f"{root}: cannot list the run files: {exc.strerror or exc}") from None
    if not found:
        raise LitmusError(f"{root}: no run files (run a sequence first, or point --data-dir / "
                          "LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to)")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    pattern = (root.resolve() / "**" / "*.parquet").as_posix().replace("'", "''")
    try:
        con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet('{pattern}', union_by_name = true, "
                    "filename = true)")
    except duckdb.Error:
        # One unreadable file (a copy cut short, a stray non-parquet file) must not hide every
        # other run: name it, leave it out, and read the rest.
        good = _readable_run_files(found)
        if not good:
            raise LitmusError(f"{root}: none of the {len(found)} .parquet files can be read "
                              "(see the warnings above)") from None
        listing = ", ".join("'" + p.resolve().as_posix().replace("'", "''") + "'" for p in good)
        try:
            con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet([{listing}], "
                        "union_by_name = true, filename = true)")
        except duckdb.Error as exc:
            raise LitmusError(f"{root}: cannot read the run files: {_one_line(exc)}") from None
    return con


def _readable_run_files(paths: list[Path]) -> list[Path]:
    """The parquet files whose footer can be read; a warning on stderr for each other one."""
    import pyarrow.parquet as pq

    good: list[Path] = []
    for path in paths:
        try:
            pq.read_metadata(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            click.echo(f"warning: {path}: not a readable parquet file ({_one_line(exc)}); ignored",
                       err=True)
        else:
            good.append(path)
    return good


def _fetch(con: Any, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    import duckdb

    try:
        rel = con.sql(sql, params=list(params)) if params else con.sql(sql)
        if rel is None:
            return [], []
        table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()
    except duckdb.Error as exc:
        raise LitmusError(f"query failed: {_one_line(exc)}") from exc
    return table.column_names, table.to_pylist()


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _table_text(columns: list[str], rows: list[list[str]]) -> str:
    widths = [len(c) for c in columns]
    for r in rows:
        widths = [max(w, len(x)) for w, x in zip(widths, r)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


@click.command()
@click.option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
@click.option("--limit", "-n", "limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most N runs.")
def runs(data_dir: str | None, limit: int) -> int:
    """List recorded runs, newest first."""
    root = resolve_data_dir(data_dir)
    con = connect(root)
    _, rows = _fetch(con, (
        "SELECT run_started_at, run_id, dut_serial, sequence_name, run_outcome, filename FROM runs "
        "WHERE record_type = 'run' ORDER BY run_started_at DESC, run_id LIMIT ?"), [limit])
    out = []
    for r in rows:
        try:
            file = Path(r["filename"]).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            file = r["filename"]
        out.append([_fmt(r["run_started_at"]), r["run_id"], _fmt(r["dut_serial"]), _fmt(r["sequence_name"]),
                    _fmt(r["run_outcome"]), file])
    click.echo(_table_text(["started (UTC)", "run_id", "serial", "sequence", "outcome", "file"], out))
    return 0


@click.command()
@click.argument("run_ref", metavar="RUN_ID_OR_PREFIX")
@click.option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
def show(run_ref: str, data_dir: str | None) -> int:
    """Show one run: its steps with outcomes and every measurement with value, limits and outcome."""
    if not run_ref.strip():
        raise LitmusError("show: the run id is empty; give a run id or its first characters "
                          "(list them with 'litmus-seq runs')")
    root = resolve_data_dir(data_dir)
    con = connect(root)
    _, found = _fetch(con, (
        "SELECT run_id, filename, run_started_at FROM runs WHERE record_type = 'run' AND starts_with(run_id, ?) "
        "ORDER BY run_started_at DESC"), [run_ref])
    if not found:
        raise LitmusError(f"no run matches {run_ref!r} in {root / 'runs'} (list them with 'litmus-seq runs')")
    ids = sorted({r["run_id"] for r in found})
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise LitmusError(f"{run_ref!r} matches {len(ids)} runs ({shown}): give more of the run id")
    run_id = ids[0]
    _, rows = _fetch(con, "SELECT * FROM runs WHERE run_id = ? ORDER BY "
                          "CASE record_type WHEN 'run' THEN 0 WHEN 'step' THEN 1 ELSE 2 END, "
                          "step_index NULLS LAST, vector_index NULLS FIRST, measurement_timestamp", [run_id])
    run = next(r for r in rows if r["record_type"] == "run")
    steps = [r for r in rows if r["record_type"] == "step"]
    meas: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for r in rows:
        if r["record_type"] == "measurement":
            meas.setdefault((r["step_path"], r["vector_index"]), []).append(r)
    w = click.echo
    w(f"run {run_id}  {str(run.get('run_outcome') or '').upper()}")
    w(f"  sequence {_fmt(run.get('sequence_name'))}  dut {_fmt(run.get('dut_serial')) or '-'}  "
      f"station {_fmt(run.get('station_id')) or '-'}  operator {_fmt(run.get('operator_name')) or '-'}")
    w(f"  started {_fmt(run.get('run_started_at'))}  ended {_fmt(run.get('run_ended_at')) or '-'}")
    w(f"  file {run.get('filename')}")
    if run.get("run_error"):
        w(f"  error: {run['run_error']}")
    if run.get("run_retry_count"):
        w(f"  retries: {run['run_retry_count']} (steps marked 'retried' below)")
    retries: dict[tuple[Any, Any], int] = {}
    for key, ms in meas.items():
        retries[key] = max((m.get("vector_retry") or 0) for m in ms)
    in_cols = [k for k in (steps[0] if steps else {}) if k.startswith("in_")]
    for s in steps:
        params = ", ".join(f"{k[3:]}={_fmt(s[k])}" for k in in_cols if s.get(k) is not None)
        many = (s.get("step_vector_count") or 0) > 1
        vec = f"[{s['vector_index']}]" if many and s.get("vector_index") is not None else ""
        outcome = s.get("vector_outcome") or s.get("step_outcome") or "not run"
        retried = retries.get((s["step_path"], s["vector_index"]), 0)
        mark = f"  retried {retried}x" if retried else ""
        w(f"  {outcome:<10} {s['step_path']}{vec}" + (f"  ({params})" if params else "") + mark)
        err = s.get("vector_error") or (s.get("step_error") if s.get("vector_index") in (None, 0) else None)
        if err and outcome not in ("passed", "done"):
            w(f"             ! {err}")
        for m in meas.get((s["step_path"], s["vector_index"]), []):
            w(f"             {_measurement_line(m)}")
    return 0


def _measurement_line(row: dict[str, Any]) -> str:
    """``rail = 3.3 V  3.1 ≤ x ≤ 3.5 V  passed``; a bad one as every reporter says it."""
    from litmus_seq.reporters.render import failure_text, from_row, limit_text

    m = from_row(row)
    retry = f"  (attempt {row['vector_retry'] + 1})" if row.get("vector_retry") else ""
    marginal = " marginal" if row.get("measurement_marginal") else ""
    if m["outcome"] in ("failed", "errored"):
        return f"{m['name']} = {failure_text(m)}  {m['outcome']}{retry}"
    v = m["value"] if m["value"] is not None else m["text"]
    units = f" {m['units']}" if m.get("units") else ""
    lim = limit_text(m["limit"])
    return f"{m['name']} = {_fmt(v)}{units}" + (f"  {lim}" if lim else "") + f"  {m['outcome']}{marginal}{retry}"


@click.command()
@click.argument("sql")
@click.option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
def query(sql: str, data_dir: str | None, as_csv: bool, as_json: bool) -> int:
    """Run a DuckDB SQL query; the view `runs` holds every row of every run file."""
    if as_csv and as_json:
        raise LitmusError("--csv and --json exclude each other: pick one output format")
    if not sql.strip():
        raise LitmusError("query: the SQL is empty; give a query, e.g. "
                          "litmus-seq query \"SELECT run_id, run_outcome FROM runs WHERE record_type = 'run'\"")
    root = resolve_data_dir(data_dir)
    con = connect(root)
    columns, rows = _fetch(con, sql)
    if as_json:
        click.echo(json.dumps(rows, default=_json_default, indent=1))
    elif as_csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r[c] is None else (r[c].isoformat() if isinstance(r[c], datetime) else r[c])
                             for c in columns])
        click.echo(buf.getvalue(), nl=False)
    elif columns:
        click.echo(_table_text(columns, [[_fmt(r[c]) for c in columns] for r in rows]))
        click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return 0


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)
