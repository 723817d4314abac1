"""``litmus-seq run``: run a sequence on a station and leave a sealed record.

Exit codes come from the run outcome (DESIGN §3): 0 passed, 1 failed, 2 terminated, 3 errored,
4 usage/configuration error (nothing ran), 5 nothing to run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from litmus_seq.errors import ConfigError, Location, NothingToRun
from litmus_seq.outcomes import ABORTED, SEVERITY, TERMINATED


def load_station(ctx: Any, ref: str | None, where: Location | None = None) -> tuple[Any, Any]:
    """The station for a run and its loader document (for errors at its ``driver:`` lines)."""
    if ref is None:
        return None, None
    from litmus_seq import models

    path = ctx.resolve(ref, "stations", where)
    return ctx.load(path, models.Station), ctx.document(path)


def _reporters(junit_file: str | None, pubdir: str | None, publish_url: str | None) -> list[object]:
    """The ``--junit`` / ``--pubdir`` / ``--publish`` subscribers (litmus_seq.reporters)."""
    reporters: list[object] = []
    if junit_file is not None:
        if Path(junit_file).is_dir():
            raise ConfigError(f"--junit {junit_file}: is a folder; give a file name (e.g. {junit_file}/junit.xml)")
        from litmus_seq.reporters.junit import JUnitReport

        reporters.append(JUnitReport(junit_file))
    if pubdir is not None:
        if Path(pubdir).exists() and not Path(pubdir).is_dir():
            raise ConfigError(f"--pubdir {pubdir}: is a file; give a folder (it is created if missing)")
        from litmus_seq.reporters.pubdir import PubDir

        reporters.append(PubDir(pubdir))
    if publish_url is not None:
        from litmus_seq.reporters.publish import Publisher

        reporters.append(Publisher(publish_url))  # validates the URL: ConfigError, exit 4
    return reporters


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("sequence", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--station", "station_ref", metavar="ID|FILE", help="Station id (stations/<id>.yaml) or file.")
@click.option("--dut", "dut_serial", metavar="SERIAL", help="Serial number of the unit under test.")
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
@click.option("--operator", metavar="NAME", help="Operator name, recorded on every row.")
@click.option("--phase", "test_phase", metavar="NAME", help="Test phase (e.g. production, characterization).")
@click.option("-p", "plugins", multiple=True, metavar="MODULE", help="Load a plugin module (repeatable).")
@click.option("--mock", "mock_roles", multiple=True, metavar="ROLE", help="Use the station's mock: data for ROLE (repeatable).")
@click.option("--yes", "-y", "auto_confirm", is_flag=True, help="Answer confirm prompts 'yes' (unattended runs).")
@click.option("--allow-expired-cal", is_flag=True,
              help="Run even on instruments whose calibration expired; recorded on the run and its rows.")
@click.option("--dry-run", is_flag=True, help="Load, plan and check roles, methods and callables; run nothing.")
@click.option("--set", "custom", multiple=True, metavar="KEY=VALUE", help="Custom run metadata (custom_<key> column).")
@click.option("--junit", "junit_file", metavar="FILE", help="Write a JUnit XML report (one testcase per step) for CI.")
@click.option("--pubdir", metavar="DIR", help="Write each step result to DIR/<step_path>/<n>.<outcome>/.")
@click.option("--publish", "publish_url", metavar="URL", help="POST each step result as JSON to URL (http/https).")
@click.option("--report", "report_file", metavar="FILE", help="Write the run's HTML report to FILE.")
@click.option("-k", "keyword", metavar="EXPR", help="Run only main steps whose path matches EXPR (e.g. 'rail and not hot').")
@click.option("--from", "start", metavar="STEP", help="Run main steps from STEP on (a path such as main/rails, or a name).")
@click.option("--only", multiple=True, metavar="STEP", help="Run only STEP among the main steps (repeatable).")
@click.option("--maxfail", type=click.IntRange(min=1), metavar="N", help="Stop running main steps after N failed ones.")
@click.option("-x", "--exitfirst", is_flag=True, help="Stop running main steps after the first failed one (--maxfail 1).")
@click.option("--loop", is_flag=True, help="Test unit after unit: read each serial, run, show the verdict (Ctrl-C or an empty serial ends).")
@click.option("-v", "--verbose", is_flag=True, help="Show every measurement, instrument and diagnostic.")
@click.option("-q", "--quiet", is_flag=True, help="Show only the verdict, the failures and where results went.")
@click.pass_context
def run(
    click_ctx: click.Context,
    sequence: Path,
    station_ref: str | None,
    dut_serial: str | None,
    data_dir: str | None,
    operator: str | None,
    test_phase: str | None,
    plugins: tuple[str, ...],
    mock_roles: tuple[str, ...],
    auto_confirm: bool,
    dry_run: bool,
    custom: tuple[str, ...],
    junit_file: str | None = None,
    pubdir: str | None = None,
    publish_url: str | None = None,
    allow_expired_cal: bool = False,
    verbose: bool = False,
    quiet: bool = False,
    keyword: str | None = None,
    start: str | None = None,
    only: tuple[str, ...] = (),
    maxfail: int | None = None,
    exitfirst: bool = False,
    loop: bool = False,
    report_file: str | None = None,
) -> int:
    """Run SEQUENCE on a station and record events, waveforms and a parquet file.

    Plugins may add options of their own (`litmus-seq plugins` shows which are loaded).
    """
    from litmus_seq.plan import build_plan
    from litmus_seq.plugins import get_plugin_manager, plugin_options
    from litmus_seq.project import ProjectContext
    from litmus_seq.run import Session, preflight, run_plan, station_process
    from litmus_seq.run.selection import Selection
    from litmus_seq.stores import register_stores

    if not sequence.exists():
        raise ConfigError(f"{sequence}: no such file (give the path of a sequence YAML file)")
    reporters = _reporters(junit_file, pubdir, publish_url)  # option mistakes: exit 4, nothing ran
    meta: dict[str, str] = {}
    for item in custom:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item}: expected KEY=VALUE")
        meta[key] = value
    ctx = ProjectContext.for_path(sequence)
    plan = build_plan(sequence, project=ctx)
    if not plan.steps:
        raise NothingToRun(f"{ctx.display(sequence.resolve())}: nothing to run (no setup, steps or cleanup)")
    selection = Selection(keyword, start, only, 1 if exitfirst else maxfail)
    selection.deselected(plan)  # a selection that names no step: exit 4 before anything runs
    where = Location(f"--station {station_ref}") if station_ref else None
    station, station_doc = load_station(ctx, station_ref or plan.station_ref or ctx.config.station, where)
    pattern, pattern_where = serial_pattern(plan.product, station)
    if loop and dut_serial is not None:
        raise ConfigError(f"--dut {dut_serial}: --loop reads each unit's serial; leave out --dut")
    if dut_serial is not None and pattern is not None and not re.search(pattern, dut_serial):
        raise ConfigError(f"--dut {dut_serial}: does not match serial_pattern {pattern!r} ({pattern_where})")
    tty = sys.stdout.isatty()
    from litmus_seq.console import NORMAL, QUIET, VERBOSE, ask_serial, make_console

    console = make_console(tty, QUIET if quiet else VERBOSE if verbose else NORMAL)
    listeners: list[object] = [console, *reporters]
    if auto_confirm:
        from litmus_seq.prompts import AutoConfirm

        listeners.append(AutoConfirm())
    if sys.stdin.isatty():
        from litmus_seq.prompts import TerminalPrompt

        listeners.append(TerminalPrompt())
    data_root = ctx.data_dir(data_dir)
    for reporter in reporters:  # --publish keeps undelivered posts in the data folder's outbox
        use_data_dir = getattr(reporter, "use_data_dir", None)
        if use_data_dir is not None:
            use_data_dir(data_root)
    pm = get_plugin_manager(project_root=ctx.root, extra=plugins + tuple(ctx.config.plugins))
    session = Session(station, pm=pm, root=ctx.root, mock_roles=mock_roles, operator=operator,
                      listeners=listeners, live=tty, allow_expired_cal=allow_expired_cal, data_dir=data_root)
    session.options = plugin_options(pm, click_ctx.args, [o for p in click_ctx.command.params for o in p.opts])
    # Preflight before anything is written: a configuration error (exit 4) must leave nothing
    # behind -- no event file, no connected instrument (tests/test_cli_run.py).
    for line in preflight(plan, session, station_doc):
        click.echo(f"warning: {line}", err=True)
    if dry_run:
        n_vectors = sum(len(s.vectors) for s in plan.steps)
        click.echo(f"ok: {ctx.display(sequence.resolve())}: {len(plan.steps)} steps, {n_vectors} vectors; "
                   f"roles, methods and callables resolved (nothing ran)")
        return 0
    if dut_serial is None and not loop and sys.stdin.isatty():
        dut_serial = ask_serial(pattern, pattern_where)
        if dut_serial is None:
            raise NothingToRun("no DUT serial given: nothing was tested")
    with station_process(), register_stores(pm, data_root), session:
        units = 0
        worst: Any = None
        while True:
            if loop:
                try:
                    dut_serial = ask_serial(pattern, pattern_where)
                except KeyboardInterrupt:  # between units: the loop ends, no unit is cut short
                    dut_serial = None
                if dut_serial is None:
                    break
            result = run_plan(session, plan, dut_serial=dut_serial, test_phase=test_phase, custom=meta,
                              project_name=getattr(ctx.config, "name", None), selection=selection)
            console.banner(result.outcome, result.error, result.parquet)  # the verdict of the exit code
            if report_file is not None:
                _write_report(result.parquet, Path(report_file))
            if result.parquet is not None:
                _push_after_run(ctx, data_dir)
            units += 1
            if worst is None or SEVERITY[result.outcome] > SEVERITY[worst.outcome]:
                worst = result
            if not loop or result.outcome in (TERMINATED, ABORTED):
                break
    if worst is None:
        raise NothingToRun("--loop: no serial was read, no unit tested")
    if loop:
        click.echo(f"loop: {units} unit{'s' if units != 1 else ''} tested, worst {worst.outcome}")
    return worst.exit_code


def serial_pattern(product: Any, station: Any) -> tuple[str | None, str]:
    """The ``serial_pattern`` DUT serials must match (the product's, else the station's), and
    where it is written (for messages)."""
    for model, kind in ((product, "product"), (station, "station")):
        pattern = getattr(model, "serial_pattern", None)
        if pattern:
            return pattern, f"{kind} {model.id}"
    return None, ""


def _write_report(parquet: Path | None, out: Path) -> None:
    """``--report``: the run's HTML report; a report that cannot be written is a warning, the
    verdict (and the exit code) stay the run's."""
    from litmus_seq.report import write_run_report

    if parquet is None:
        click.echo(f"warning: --report {out}: no run file was sealed, so no report", err=True)
        return
    try:
        write_run_report(parquet, out)
    except OSError as exc:
        click.echo(f"warning: --report {out}: cannot write the report ({exc.strerror or exc})", err=True)
    else:
        click.echo(f"report: {out}")


def _push_after_run(ctx: Any, data_dir: str | None) -> None:
    """``push_to:`` in litmus.yaml: push in the background; never changes the run's outcome."""
    if ctx.config.push_to:
        from litmus_seq.cli.push import project_lake
        from litmus_seq.lake.push import push_in_background

        push_in_background(ctx.data_dir(data_dir), project_lake(ctx))
