"""``litmus-seq validate FILE...``: every mistake in every file, before any hardware is touched.

Problems are collected across all files (one run of ``validate`` in CI shows everything to fix),
sequences are also planned (include cycles, unknown names in ``when:``, guardband inverting a
band only show up there), and the sequence's product and default station are checked too. This
command must stay light: it never imports pyarrow, duckdb or pyvisa.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from litmus_seq.errors import ConfigError, LitmusError, Location, Problem

__all__ = ["validate", "detect_kind", "validate_file"]

_FRAGMENT_KEYS = frozenset({"steps", "variables"})


def detect_kind(path: Path, data: dict[str, Any]) -> str | None:
    """``sequence`` | ``product`` | ``station`` | ``fragment`` | ``project`` | ``visa-sim``
    (a pyvisa-sim definition file, not checked here), or None if unclear.

    Keys decide first (a sequence says ``sequence:``); the folder decides for files whose keys do
    not (a product with a typo in ``specs:`` is still a product if it lives in ``products/``).
    """
    folder = path.parent.name
    keys = set(data)
    if path.name == "litmus.yaml":
        return "project"
    if "sequence" in keys:
        return "sequence"
    if "devices" in keys and "resources" in keys and "instruments" not in keys:
        return "visa-sim"  # a pyvisa-sim definition file kept beside the stations
    if "specs" in keys or folder == "products":
        return "product"
    if "instruments" in keys or folder == "stations":
        return "station"
    if keys and keys <= _FRAGMENT_KEYS:
        return "fragment"
    if "sequences" in path.parent.parts:
        return "sequence"
    return None


def validate_file(path: Path, ctx: Any) -> tuple[str | None, list[Problem]]:
    """Validate one file in project ``ctx``; returns its kind and every problem found."""
    from litmus_seq import models

    problems: list[Problem] = []
    try:
        doc = ctx.document(path)
    except LitmusError as exc:
        return None, _problems_of(exc, ctx.display(path))
    kind = detect_kind(Path(path), doc.data)
    if kind is None:
        return None, [Problem(
            Location(doc.display, 1, 1),
            "cannot tell what kind of file this is: a sequence has `sequence:`, a product "
            "`specs:`, a station `instruments:`, a fragment only `steps:`/`variables:`; "
            "add the key (or move the file into sequences/, products/ or stations/)",
        )]
    if kind == "visa-sim":
        return kind, problems  # pyvisa-sim checks its own format when the station opens it
    try:
        model = ctx.load(path, models.KINDS[kind])
    except LitmusError as exc:
        return kind, _problems_of(exc, doc.display)
    if kind != "sequence":
        return kind, problems

    product_ok = True
    if model.product:
        try:
            ctx.load_product(model.product, where=doc.locate(("product",)))
        except LitmusError as exc:
            product_ok = False
            problems += _problems_of(exc, doc.display)
    station_ref = model.station or ctx.config.station
    if station_ref:
        where = doc.locate(("station",)) if model.station else None
        try:
            ctx.load_station(station_ref, where=where)
        except LitmusError as exc:
            problems += _problems_of(exc, doc.display)
    if product_ok:
        from litmus_seq.plan import build_plan

        try:
            build_plan(Path(path), project=ctx)
        except LitmusError as exc:
            problems += _problems_of(exc, doc.display)
    return kind, problems


def _problems_of(exc: LitmusError, display: str) -> list[Problem]:
    if exc.problems:
        return list(exc.problems)
    return [Problem(Location(display), str(exc))]


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> int:
    """Check sequence, product, station, fragment and litmus.yaml files (exit 4 on any problem).

    Sequences are also planned, and their product and default station checked.
    """
    from litmus_seq.project import ProjectContext

    contexts: dict[Path, ProjectContext] = {}
    problems: list[Problem] = []
    ok: list[tuple[str, str]] = []
    seen: set[str] = set()
    for file in files:
        try:
            probe = ProjectContext.for_path(file)
            ctx = contexts.setdefault(probe.root, probe)
        except LitmusError as exc:  # a broken litmus.yaml: report it, check nothing else there
            for p in _problems_of(exc, str(file)):
                if str(p) not in seen:
                    seen.add(str(p))
                    problems.append(p)
            continue
        if not Path(file).is_file():
            shown = ctx.display(Path(file))
            problems.append(Problem(Location(shown), "file not found; check the path"))
            continue
        kind, found = validate_file(Path(file), ctx)
        fresh = [p for p in found if str(p) not in seen]
        seen.update(str(p) for p in fresh)
        problems += fresh
        if not found:
            ok.append((ctx.display(Path(file)), kind or "?"))
    _print_ok(ok)
    if problems:
        raise ConfigError(problems=problems)
    return 0


def _print_ok(ok: list[tuple[str, str]]) -> None:
    if not ok:
        return
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console(highlight=False)
        for shown, kind in ok:
            console.print(f"[green]ok[/green]: {shown} [dim]({kind})[/dim]")
    else:
        for shown, kind in ok:
            click.echo(f"ok: {shown} ({kind})")
