"""``litmus-seq runs`` / ``show`` / ``query`` / ``columns``: read the run files back.

Thin commands over :class:`litmus_seq.results.Results` (the read side the Python client uses
too; with ``--lake URI``, :class:`litmus_seq.lake.results.LakeResults`): ``runs`` lists from its index, ``show`` reads one run's file, ``query`` runs DuckDB SQL over
the views ``rows`` (every row of every file), ``runs``, ``steps`` and ``measurements``
(``union_by_name=true``: files of every schema version read together).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import click

from litmus_seq.errors import LitmusError
from litmus_seq.results import VIEWS, Results, parse_since, resolve_data_dir

__all__ = ["columns", "query", "resolve_data_dir", "runs", "show"]

_DATA_DIR_HELP = "Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data)."
_OUTCOMES = ("passed", "failed", "errored", "terminated", "aborted")


def _results(data_dir: str | None, lake: str | None = None) -> Results:
    if lake:
        from litmus_seq.lake.results import LakeResults
        from litmus_seq.lake.store import open_lake

        return LakeResults(open_lake(lake))
    return Results(resolve_data_dir(data_dir))


_LAKE_HELP = "Read the lake at URI (a folder or s3://bucket/prefix) instead of the data folder."


def _warn(results: Results) -> None:
    for line in results.warnings:
        click.echo(f"warning: {line}", err=True)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _json(rows: Any) -> str:
    return json.dumps(rows, default=_json_default, indent=1)


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
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
@click.option("--dut", metavar="SERIAL", help="Only runs of this DUT serial.")
@click.option("--station", metavar="ID", help="Only runs on this station id.")
@click.option("--outcome", type=click.Choice(_OUTCOMES), help="Only runs that ended so.")
@click.option("--since", metavar="WHEN",
              help="Only runs started since WHEN: 2026-12-01, 2026-12-01T08:00, 7d, 12h, 30m.")
@click.option("--limit", "-n", "limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of run summaries.")
@click.option("--lake", metavar="URI", help=_LAKE_HELP)
def runs(data_dir: str | None, dut: str | None, station: str | None, outcome: str | None, since: str | None,
         limit: int, as_json: bool, lake: str | None = None) -> int:
    """List recorded runs, newest first."""
    results = _results(data_dir, lake)
    when = parse_since(since) if since is not None else None
    try:
        found = results.list_runs(dut=dut, station=station, outcome=outcome, since=when, limit=limit)
    finally:
        _warn(results)
    if as_json:
        click.echo(_json(found))
        return 0
    out = [[_fmt(r["run_started_at"]), r["run_id"], _fmt(r["dut_serial"]), _fmt(r["station_id"]),
            _fmt(r["sequence_name"]), _fmt(r["run_outcome"]) + (f" ({r['run_retry_count']} retries)"
                                                                 if r.get("run_retry_count") else ""),
            r["file"]] for r in found]
    click.echo(_table_text(["started (UTC)", "run_id", "serial", "station", "sequence", "outcome", "file"], out))
    return 0


@click.command()
@click.argument("run_ref", metavar="RUN_ID|PREFIX|SERIAL")
@click.option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
@click.option("--all", "every", is_flag=True, help="With a DUT serial: every run of that unit, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the run, its steps and measurements as JSON.")
@click.option("--lake", metavar="URI", help=_LAKE_HELP)
def show(run_ref: str, data_dir: str | None, every: bool, as_json: bool, lake: str | None = None) -> int:
    """Show a run: its steps with outcomes and every measurement with value, limit and outcome.

    RUN_ID|PREFIX|SERIAL is a run id, its first characters, or a DUT serial (its latest run)."""
    if not run_ref.strip():
        raise LitmusError("show: the run id is empty; give a run id, its first characters or a DUT serial "
                          "(list them with 'litmus-seq runs')")
    results = _results(data_dir, lake)
    try:
        found = results.find_runs(run_ref, every=every)
    finally:
        _warn(results)
    docs = []
    for i, summary in enumerate(found):
        rows = results.rows(summary["run_id"])
        if as_json:
            docs.append({
                "run": summary,
                "steps": [r for r in rows if r["record_type"] == "step"],
                "measurements": [r for r in rows if r["record_type"] == "measurement"],
                "logs": results.logs(summary),
            })
        else:
            if i:
                click.echo("")
            _show_text(summary, rows, results.logs(summary))
    if as_json:
        click.echo(_json(docs if every else docs[0]))
    return 0


def _show_text(summary: dict[str, Any], rows: list[dict[str, Any]], logs: list[dict[str, Any]]) -> None:
    from litmus_seq.logging import format_record

    run = next(r for r in rows if r["record_type"] == "run")
    steps = [r for r in rows if r["record_type"] == "step"]
    meas: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for r in rows:
        if r["record_type"] == "measurement":
            meas.setdefault((r["step_path"], r["vector_index"]), []).append(r)
    w = click.echo
    w(f"run {run['run_id']}  {str(run.get('run_outcome') or '').upper()}")
    w(f"  sequence {_fmt(run.get('sequence_name'))}  dut {_fmt(run.get('dut_serial')) or '-'}  "
      f"station {_fmt(run.get('station_id')) or '-'}  operator {_fmt(run.get('operator_name')) or '-'}")
    w(f"  started {_fmt(run.get('run_started_at'))}  ended {_fmt(run.get('run_ended_at')) or '-'}")
    w(f"  file {summary['file_path']}")
    if run.get("run_error"):
        w(f"  error: {run['run_error']}")
    if run.get("run_retry_count"):
        w(f"  retries: {run['run_retry_count']} (steps marked 'retried' below)")
    retries = {key: max((m.get("vector_retry") or 0) for m in ms) for key, ms in meas.items()}
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
        for e in logs:
            if e.get("step_path") == s["step_path"] and e.get("vector_index") in (None, s["vector_index"]):
                w(f"             log: {format_record(e)}")


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
@click.option("--lake", metavar="URI", help=_LAKE_HELP)
def query(sql: str, data_dir: str | None, as_csv: bool, as_json: bool, lake: str | None = None) -> int:
    """Run DuckDB SQL over the views runs, steps, measurements (and rows: every row)."""
    if as_csv and as_json:
        raise LitmusError("--csv and --json exclude each other: pick one output format")
    if not sql.strip():
        raise LitmusError("query: the SQL is empty; give a query, e.g. "
                          "litmus-seq query \"SELECT run_id, run_outcome FROM runs\"")
    results = _results(data_dir, lake)
    columns, rows = results.query(sql)
    _warn(results)
    if as_json:
        click.echo(_json(rows))
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


@click.command()
@click.option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {name, type}.")
@click.option("--lake", metavar="URI", help=_LAKE_HELP)
def columns(data_dir: str | None, as_json: bool, lake: str | None = None) -> int:
    """List the columns of the run files (and of the query views) with their types."""
    results = _results(data_dir, lake)
    found = results.columns()
    _warn(results)
    if as_json:
        click.echo(_json([{"name": n, "type": t} for n, t in found]))
        return 0
    click.echo(_table_text(["column", "type"], [[n, t] for n, t in found]))
    click.echo(f"views: {', '.join(VIEWS)} (query them with 'litmus-seq query')")
    return 0
