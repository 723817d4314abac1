"""``litmus-seq report RUN [-o FILE]``: one self-contained HTML report of a stored run."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["report", "write_report"]


def write_report(data_dir: Path, run_ref: str, out: Path | None) -> Path:
    """Write the report of the run ``run_ref`` names (id, prefix or DUT serial) to ``out``
    (default ``<data_dir>/reports/<run_id>.html``), atomically; returns the file."""
    from litmus_seq.report import write_run_report
    from litmus_seq.results import Results

    (summary,) = Results(data_dir).find_runs(run_ref)[:1]
    target = out if out is not None else Path(data_dir) / "reports" / f"{summary['run_id']}.html"
    return write_run_report(Path(summary["file_path"]), target)


@click.command("report")
@click.argument("run_ref", metavar="RUN_ID|PREFIX|SERIAL")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the HTML file (default: <data dir>/reports/<run_id>.html).")
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
def report(run_ref: str, out: Path | None, data_dir: str | None) -> int:
    """Write one run as a self-contained HTML page.

    The page holds the run header, the instruments with their calibration, every step and
    measurement with its limit, plots for sweeps, and the steps that never ran.
    """
    from litmus_seq.results import resolve_data_dir

    click.echo(f"report: {write_report(resolve_data_dir(data_dir), run_ref, out)}")
    return 0
