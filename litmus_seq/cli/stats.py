"""``litmus-seq stats``: yield, first-pass yield, Pareto of failing steps and Cpk/Ppk
(:mod:`litmus_seq.lake.analytics`) over a data folder or a lake."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone

import click

from litmus_seq.errors import ConfigError


def _since(value: str | None) -> str | None:
    """``YYYY-MM-DD``, or ``N`` days back (``7d``), as the first UTC day to include."""
    if value is None:
        return None
    text = value.strip()
    m = re.fullmatch(r"(\d+)d", text)
    if m:
        return (datetime.now(timezone.utc).date() - timedelta(days=int(m.group(1)))).isoformat()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(f"--since {value}: expected a UTC day YYYY-MM-DD or a number of days "
                          "back such as 7d") from None


@click.command()
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
@click.option("--lake", metavar="URI", help="Read the lake at URI (a folder or s3://bucket/prefix) instead.")
@click.option("--since", metavar="DAY", help="Only runs started on or after this UTC day (YYYY-MM-DD, or 7d).")
@click.option("--station", metavar="ID", help="Only runs of this station id.")
@click.option("--table", "tables", multiple=True, type=click.Choice(["yield", "pareto", "cpk"]),
              help="Print only this table (repeatable; default: all three).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: table name -> rows.")
def stats(data_dir: str | None, lake: str | None, since: str | None, station: str | None,
          tables: tuple[str, ...], as_json: bool) -> int:
    """Print yield and first-pass yield by station/day, the Pareto of failing steps and Cpk/Ppk."""
    from litmus_seq.cli.results import _fmt, _table_text
    from litmus_seq.lake.analytics import TABLES, compute
    from litmus_seq.lake.read import connect
    from litmus_seq.lake.store import open_data_dir, open_lake
    from litmus_seq.results import resolve_data_dir

    first_day = _since(since)
    store = open_lake(lake) if lake else open_data_dir(resolve_data_dir(data_dir))
    con = connect(store, since=first_day, station=station)
    out = {}
    for name in tables or tuple(TABLES):
        out[name] = compute(con, name, since=first_day, station=station)
    if as_json:
        click.echo(json.dumps({k: rows for k, (_, rows) in out.items()}, indent=1, default=str))
        return 0
    for name, (columns, rows) in out.items():
        click.echo(f"{TABLES[name][1]}:")
        if rows:
            click.echo(_table_text(columns, [[_fmt(r[c]) for c in columns] for r in rows]))
        else:
            click.echo("  (no rows)")
        click.echo()
    return 0
