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
from litmus_seq.suggest import did_you_mean

__all__ = ["validate", "detect_kind", "validate_file"]


def detect_kind(path: Path, data: dict[str, Any]) -> str | None:
    """The kind of a file (see :func:`litmus_seq.project.detect_kind`); the folder counts too."""
    from litmus_seq.project import detect_kind as _detect

    return _detect(path, data)


class DriverCheck:
    """Checks stations' ``driver:`` names, loading plugins only when a name is not built in.

    Built-in names (``mock``, ``scpi.*``) need no plugin manager, so the common case costs
    nothing; a station naming a plugin's driver loads the project's plugins once per project
    (entry points, ``plugins/*.py``, litmus.yaml ``plugins:``), exactly as ``run`` would. With
    ``load_plugins=False`` (``--no-plugins``) only built-in names can be confirmed and other
    names are not reported.
    """

    def __init__(self, load_plugins: bool = True) -> None:
        self.load_plugins = load_plugins
        self._known: dict[Path, Any] = {}  # project root -> registry | set | list[Problem]

    def problems(self, ctx: Any, station: Any, doc: Any) -> list[Problem]:
        wanted = {inst.driver for inst in station.instruments.values()}
        if wanted <= {"mock"}:
            return []  # mocks have no settings and are never identity-checked: import nothing
        from litmus_seq.drivers import BUILTIN_DRIVERS
        from litmus_seq.drivers.registry import builtin_registry, station_driver_problems

        if wanted <= set(BUILTIN_DRIVERS) or not self.load_plugins:
            # settings, expect_idn and contracts of the built-in drivers; other names unchecked
            unknown = {role for role, inst in station.instruments.items() if inst.driver not in BUILTIN_DRIVERS}
            return station_driver_problems(station, doc, builtin_registry(), mock_roles=unknown)
        known = self._registry(ctx)
        if isinstance(known, list):  # the plugins themselves are broken: that is the problem
            return list(known)
        return station_driver_problems(station, doc, known)

    def call_problems(self, ctx: Any, plan: Any, station: Any) -> list[Problem]:
        """Roles a sequence calls that its station lacks, and methods the role's driver lacks.

        The same rules as ``run``'s preflight, without connecting anything: a mock role must
        list the method under ``mock:``; a built-in (or, with plugins loaded, a plugin) driver
        class must have it. One problem per distinct call, at the ``call:``/``from:`` value.
        """
        roles = station.instruments
        problems: list[Problem] = []
        seen: set[tuple[str, str | None]] = set()
        for step in plan.steps:
            for action in step.actions:
                if action.role is None or (action.role, action.method) in seen:
                    continue
                seen.add((action.role, action.method))
                where = Location(action.file, action.line, action.column)
                inst = roles.get(action.role)
                if inst is None:
                    problems.append(Problem(where, (
                        f"role {action.role!r} is not on station {station.id!r}"
                        f"{did_you_mean(action.role, list(roles))}; roles there: {', '.join(roles) or '(none)'}")))
                    continue
                if inst.driver == "mock":
                    table = inst.mock or {}
                    if action.method not in table:
                        problems.append(Problem(where, (
                            f"{action.role}.{action.method}: the mock for role {action.role!r} has no "
                            f"method {action.method!r}{did_you_mean(action.method or '', list(table))}; add it "
                            f"under instruments.{action.role}.mock in the station")))
                    continue
                from litmus_seq.drivers import BUILTIN_DRIVERS  # (not needed for mock roles)

                cls = BUILTIN_DRIVERS.get(inst.driver)
                if cls is None and self.load_plugins:
                    registry = self._registry(ctx)
                    if not isinstance(registry, list) and inst.driver in registry:
                        cls = registry.get(inst.driver)
                if cls is None:
                    continue  # unknown driver: reported on the station's driver: line
                if not callable(getattr(cls, action.method or "", None)):
                    methods = [m for m in dir(cls) if not m.startswith("_") and callable(getattr(cls, m, None))]
                    problems.append(Problem(where, (
                        f"{action.role}.{action.method}: driver {inst.driver!r} has no method "
                        f"{action.method!r}{did_you_mean(action.method or '', methods)}")))
        return problems

    def plugin_problems(self, ctx: Any) -> list[Problem]:
        """What is wrong with loading the project's plugins (none with ``--no-plugins``)."""
        if not self.load_plugins:
            return []
        known = self._registry(ctx)
        return list(known) if isinstance(known, list) else []

    def _registry(self, ctx: Any) -> Any:
        if ctx.root not in self._known:
            from litmus_seq.drivers.registry import collect_drivers
            from litmus_seq.plugins import get_plugin_manager

            try:
                pm = get_plugin_manager(project_root=ctx.root, extra=tuple(ctx.config.plugins))
                self._known[ctx.root] = collect_drivers(pm)
            except LitmusError as exc:
                self._known[ctx.root] = _problems_of(exc, "plugins")
        return self._known[ctx.root]


def validate_file(path: Path, ctx: Any, drivers: DriverCheck | None = None) -> tuple[str | None, list[Problem]]:
    """Validate one file in project ``ctx``; returns its kind and every problem found.

    ``drivers`` also checks stations' driver names (see :class:`DriverCheck`).
    """
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
    if kind == "station" and drivers is not None:
        return kind, drivers.problems(ctx, model, doc)
    if kind == "project" and drivers is not None and model.plugins:
        return kind, drivers.plugin_problems(ctx)  # the plugins it lists must load
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
    station = None
    if station_ref:
        where = doc.locate(("station",)) if model.station else None
        try:
            station = ctx.load_station(station_ref, where=where)
            if drivers is not None:
                problems += drivers.problems(
                    ctx, station, ctx.document(ctx.resolve(station_ref, "stations", where)))
        except LitmusError as exc:
            problems += _problems_of(exc, doc.display)
    if product_ok:
        from litmus_seq.plan import build_plan

        try:
            planned = build_plan(Path(path), project=ctx)
        except LitmusError as exc:
            problems += _problems_of(exc, doc.display)
        else:
            if station is not None and drivers is not None:
                problems += drivers.call_problems(ctx, planned, station)
    return kind, problems


def _problems_of(exc: LitmusError, display: str) -> list[Problem]:
    if exc.problems:
        return list(exc.problems)
    return [Problem(Location(display), str(exc))]


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH...")
@click.option("--no-plugins", is_flag=True,
              help="Do not load plugins: drivers other than the built-in ones are not checked.")
def validate(files: tuple[Path, ...], no_plugins: bool) -> int:
    """Check sequence, product, station, fragment and litmus.yaml files (exit 4 on any problem).

    A folder means every such file in it (`validate .` checks the whole project).

    Sequences are also planned, and their product and default station checked; stations'
    driver names are checked against the installed and project plugins.
    """
    from litmus_seq.cli.main import import_pydantic_without_asyncio

    import_pydantic_without_asyncio()  # before the models import pydantic: ~30 ms saved
    from litmus_seq.project import ProjectContext

    drivers = DriverCheck(load_plugins=not no_plugins)

    contexts: dict[Path, ProjectContext] = {}
    problems: list[Problem] = []
    ok: list[tuple[str, str]] = []
    seen: set[str] = set()
    paths, walked = _expand(files)
    for file in paths:
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
        kind, found = validate_file(Path(file), ctx, drivers)
        if file in walked and kind is None and not _KNOWN_FOLDERS & set(file.parent.parts):
            continue  # a YAML file found in a folder that is not ours (CI config, compose files)
        fresh = [p for p in found if str(p) not in seen]
        seen.update(str(p) for p in fresh)
        problems += fresh
        if not found:
            ok.append((ctx.display(Path(file)), kind or "?"))
    _print_ok(ok)
    if problems:
        raise ConfigError(problems=problems)
    if not ok:
        from litmus_seq.errors import NothingToRun

        shown = ", ".join(str(f) for f in files)
        raise NothingToRun(f"{shown}: no sequence, product, station or litmus.yaml file to check")
    return 0


#: Folders whose YAML files are litmus-seq files even when their keys do not say which kind.
_KNOWN_FOLDERS = frozenset({"sequences", "products", "stations"})
#: Folders a walk never enters (hidden ones neither): caches and environments.
_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})


def _expand(args: tuple[Path, ...]) -> tuple[list[Path], set[Path]]:
    """Files to check: each file given, and the YAML files under each folder given (those
    found in folders are also returned as a set: files of other tools among them are skipped)."""
    paths: list[Path] = []
    walked: set[Path] = set()
    for arg in args:
        if not Path(arg).is_dir():
            paths.append(Path(arg))
            continue
        for path in _yaml_files(Path(arg)):
            paths.append(path)
            walked.add(path)
    return paths, walked


def _yaml_files(folder: Path) -> list[Path]:
    """The YAML files under ``folder``, sorted; hidden folders, caches and the data folder left out."""
    from litmus_seq.project import ProjectContext

    try:
        data: Path | None = ProjectContext.for_path(folder).data_dir_source()[0].resolve()
    except LitmusError:  # a broken litmus.yaml: reported when its own file is checked
        data = None
    found: list[Path] = []
    for path in sorted(folder.rglob("*")):
        inner = path.relative_to(folder).parts[:-1]
        if path.suffix not in (".yaml", ".yml") or not path.is_file() or any(
                part.startswith(".") or part in _SKIPPED_FOLDERS for part in inner):
            continue
        if data is not None and data in path.resolve().parents:
            continue
        found.append(path)
    return found


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
