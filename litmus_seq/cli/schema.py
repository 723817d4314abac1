"""``litmus-seq schema``: write the JSON Schemas that editors use to check YAML while typing."""

from __future__ import annotations

import os
from pathlib import Path

import click

__all__ = ["schema"]


@click.command("schema")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder to write <kind>.schema.json into (default: <project root>/schemas).",
)
@click.option(
    "--no-plugins", is_flag=True,
    help="Do not load plugins (no driver-name hints; for machines without the plugins).",
)
def schema(out: Path | None, no_plugins: bool) -> int:
    """Write draft-07 JSON Schemas for sequence, product, station, fragment and litmus.yaml.

    A YAML file names its schema in its first line, for example:

    \b
    # yaml-language-server: $schema=../schemas/sequence.schema.json
    """
    from litmus_seq.errors import LitmusError
    from litmus_seq.project import find_root
    from litmus_seq.schema import installed_driver_names, write_schemas

    root = find_root(Path.cwd())
    target = out if out is not None else root / "schemas"
    drivers: list[str] = []
    if not no_plugins:
        try:
            drivers = installed_driver_names(root)
        except LitmusError as exc:
            # The schema is still useful without driver hints; say why they are missing.
            for line in exc.lines():
                click.echo(f"warning: plugins not loaded, no driver hints: {line}", err=True)
    for path in write_schemas(target, drivers):
        try:
            shown = Path(os.path.relpath(path.resolve(), Path.cwd().resolve())).as_posix()
        except ValueError:  # pragma: no cover - another drive on Windows
            shown = path.as_posix()
        if shown.startswith("../.."):  # far away: the absolute path reads better
            shown = path.resolve().as_posix()
        click.echo(f"wrote: {shown}")
    return 0
