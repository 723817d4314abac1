"""``litmus-seq submit FILE.json``: store a whole run sent as one JSON document (``-``: stdin)."""

from __future__ import annotations

import sys

import click

__all__ = ["submit"]


@click.command("submit")
@click.argument("document", metavar="FILE.json|-")
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
@click.option("-p", "plugins", multiple=True, metavar="MODULE", help="Load a plugin module (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def submit(document: str, data_dir: str | None, plugins: tuple[str, ...], as_json: bool) -> int:
    """Store a run recorded by another tool (LabVIEW, TestStand, a script).

    The document is checked whole first: every mistake is one line with its JSON path, and
    nothing is written. Sending the same document again (same run_id) stores it once. The exit
    code is the run's outcome, as for `litmus-seq run`. The schema: `litmus-seq schema`
    (schemas/submit.schema.json).
    """
    import json
    from pathlib import Path

    from litmus_seq import outcomes
    from litmus_seq.project import ProjectContext, find_root
    from litmus_seq.submit import read_source
    from litmus_seq.submit import submit as store

    text, source = read_source(document, sys.stdin.buffer.read)
    anchor = Path.cwd() if document == "-" else Path(document).resolve().parent
    project = ProjectContext(find_root(anchor))
    result = store(text, data_dir=project.data_dir(data_dir), project=project, source=source, plugins=plugins)
    if as_json:
        click.echo(json.dumps({"run_id": result.run_id, "outcome": result.outcome, "stored": result.stored,
                               "file": None if result.parquet is None else str(result.parquet)}))
    else:
        verb = "stored" if result.stored else "already stored, nothing written"
        click.echo(f"{(result.outcome or 'unknown').upper()}  run {result.run_id}  ({verb})")
        if result.parquet is not None:
            click.echo(f"results: {result.parquet}")
    return outcomes.exit_code(result.outcome) if result.outcome else 3
