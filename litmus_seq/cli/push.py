"""``litmus-seq push``: copy sealed runs to a lake (:mod:`litmus_seq.lake.push`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from litmus_seq.errors import ConfigError, StoreError


def project_lake(ctx: Any) -> str | None:
    """``push_to:`` of a project's ``litmus.yaml`` (a relative folder is relative to its root)."""
    from litmus_seq.lake.store import is_uri

    target = ctx.config.push_to
    if not target:
        return None
    return target if is_uri(target) or Path(target).is_absolute() else (ctx.root / target).as_posix()


def lake_uri(cli_value: str | None) -> str:
    """``--to``, else ``push_to:`` of the project's ``litmus.yaml``."""
    if cli_value:
        return cli_value
    from litmus_seq.project import ProjectContext

    target = project_lake(ProjectContext.for_path(Path.cwd()))
    if not target:
        raise ConfigError("push: no lake to push to; give --to URI (a folder or s3://bucket/prefix) "
                          "or set push_to: in litmus.yaml")
    return target


@click.command()
@click.option("--to", "to", metavar="URI", help="The lake: a folder or s3://bucket/prefix (default: push_to: in litmus.yaml).")
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
def push(to: str | None, data_dir: str | None) -> int:
    """Upload sealed run files and their channel files to a lake (resumable, idempotent)."""
    from litmus_seq.results import resolve_data_dir
    from litmus_seq.lake.push import push as do_push
    from litmus_seq.lake.store import open_lake

    root = resolve_data_dir(data_dir)
    lake = open_lake(lake_uri(to), create=True)
    result = do_push(root, lake, progress=lambda line: click.echo(f"pushed {line}"))
    if result.busy:
        click.echo("another push of this data folder is running; it will push these runs too")
        return 0
    rate = result.bytes / result.seconds / 1e6 if result.seconds else 0.0
    click.echo(f"{result.runs} runs ({result.objects} objects, {result.bytes / 1e6:.1f} MB, {rate:.1f} MB/s) "
               f"pushed to {lake.uri}; {result.already} already there")
    if result.conflicts:
        shown = ", ".join(result.conflicts[:5]) + (", ..." if len(result.conflicts) > 5 else "")
        raise StoreError(f"{len(result.conflicts)} objects are in the lake with other contents and were "
                         f"left alone (objects are never overwritten): {shown}")
    return 0
