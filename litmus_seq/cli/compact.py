"""``litmus-seq compact``: merge run files into date/station parts (:mod:`litmus_seq.lake.compact`)."""

from __future__ import annotations

import click


@click.command()
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
@click.option("--lake", metavar="URI", help="Compact the lake at URI (a folder or s3://bucket/prefix) instead.")
def compact(data_dir: str | None, lake: str | None) -> int:
    """Merge sealed run files into larger files per date and station (idempotent, crash-safe)."""
    from litmus_seq.results import resolve_data_dir
    from litmus_seq.lake.compact import compact as do_compact
    from litmus_seq.lake.store import open_data_dir, open_lake

    store = open_lake(lake) if lake else open_data_dir(resolve_data_dir(data_dir))
    result = do_compact(store, progress=lambda line: click.echo(f"wrote {line}"))
    if not result.parts:
        click.echo(f"{store.uri}: nothing to compact (every run file is in a part)")
    else:
        click.echo(f"{result.runs} runs ({result.rows} rows) in {len(result.parts)} new parts under "
                   f"{store.display('compacted')}; the run files are unchanged")
    return 0
