"""``litmus-seq plugins``: which plugins are loaded, from where, with which hooks and drivers.

The first thing to run when a station says "unknown driver": it shows what the plugin manager of
*this* project (found from the current directory) sees, with the same loading rules as ``run``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["collect", "plugins"]




def collect(project_root: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON document printed by ``--json``: ``{"project_root", "plugins", "drivers", "problems"}``.

    ``problems`` are the broken rules of the driver contract, one line each, located at the class.
    """
    from litmus_seq.drivers.registry import collect_drivers
    from litmus_seq.plugins import get_plugin_manager, plugin_info

    pm = get_plugin_manager(project_root=project_root, extra=extra)
    registry = collect_drivers(pm)
    local = {row["name"] for row in plugin_info(pm) if row["source"] in ("local", "cmdline")}
    drivers = []
    for name, cls, owner in registry.items():
        module = getattr(cls, "__module__", "?")
        if owner in local and module.startswith("_litmus_seq_"):
            module = owner  # a file imported by path: its hashed module name means nothing to users
        drivers.append({"name": name, "plugin": owner, "class": f"{module}:{cls.__qualname__}"})
    from litmus_seq.drivers.contract import contract_problems

    problems = [str(p) for p in contract_problems(((n, c) for n, c, _ in registry.items()), project_root)]
    return {"project_root": str(project_root), "plugins": plugin_info(pm), "drivers": drivers,
            "problems": problems}


def _name_column(table: Any, header: str, names: list[str]) -> None:
    """A column that is never cut or folded: the other columns fold to make room for it."""
    width = max([len(header), *(len(n) for n in names)])
    table.add_column(header, no_wrap=True, min_width=width)


_PLUGIN_OPTION = click.option(
    "-p", "--plugin", "extra", multiple=True, metavar="MODULE",
    help="Also load this plugin module (or .py file); 'no:NAME' blocks a plugin. Repeatable.",
)


@click.group("plugins", invoke_without_command=True)
@_PLUGIN_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON (plugins and drivers) for tools.")
@click.pass_context
def plugins(click_ctx: click.Context, extra: tuple[str, ...], as_json: bool) -> int | None:
    """List plugins (source, hooks) and the instrument drivers they register.

    A driver class that breaks the driver contract is reported at its file:line (exit 4).
    `litmus-seq plugins check DRIVER` runs the conformance suite on one driver.

    Loads what `run` loads: installed plugins, the project's plugins/*.py, the `plugins:` of
    litmus.yaml, and -p values.
    """
    if click_ctx.invoked_subcommand is not None:
        return None
    from litmus_seq.project import ProjectContext

    ctx = ProjectContext.for_path(Path.cwd())  # a broken litmus.yaml is reported (exit 4)
    doc = collect(ctx.root, extra + tuple(ctx.config.plugins))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return 4 if doc["problems"] else 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Plugins (project {doc['project_root']})", title_justify="left")
    _name_column(table, "name", [row["name"] for row in doc["plugins"]])
    for column in ("source", "from", "hooks"):
        table.add_column(column, overflow="fold")
    for row in doc["plugins"]:
        if row["source"] == "entrypoint":
            origin = f"{row['dist']} {row['version']} ({row['entry_point']})"
        elif row["source"] in ("local", "cmdline") and row["file"]:
            origin = "(this file)" if row["name"].endswith(".py") else row["file"]
        else:
            origin = row["module"] or row["file"] or ""
        hooks = ", ".join(h.removeprefix("litmus_seq_") for h in row["hooks"])
        table.add_row(row["name"], row["source"], origin, hooks)
    console.print(table)
    drivers = Table(title="Drivers", title_justify="left")
    _name_column(drivers, "driver", [row["name"] for row in doc["drivers"]])
    _name_column(drivers, "plugin", [row["plugin"] or "" for row in doc["drivers"]])
    drivers.add_column("class", overflow="fold")
    for row in doc["drivers"]:
        drivers.add_row(row["name"], row["plugin"] or "", row["class"])
    console.print(drivers)
    for line in doc["problems"]:
        click.echo(line, err=True)
    return 4 if doc["problems"] else 0


@plugins.command("check")
@click.argument("driver")
@click.option("--resource", metavar="R", help="VISA resource (or whatever the driver takes) to connect to.")
@click.option("--visa-library", metavar="LIB",
              help="pyvisa backend, e.g. '@py' or 'sim.yaml@sim' (a relative path is from the current folder).")
@click.option("--set", "values", multiple=True, metavar="KEY=VALUE",
              help="A settings: value for the driver (YAML scalar), as in the station file. Repeatable.")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds any one call may take before its rule fails.")
@_PLUGIN_OPTION
def check(driver: str, resource: str | None, visa_library: str | None, values: tuple[str, ...],
          timeout_s: float, extra: tuple[str, ...]) -> int:
    """Run the driver conformance suite on DRIVER and print a table (exit 1 if a rule fails).

    Rules: constructor (resource, settings); connect, close, identity present; options and
    construction; connect; identity fields; calibration(); an unanswered query is a timeout
    error; close twice; a call on a closed driver is an InstrumentError (error mapping).
    """
    import yaml

    from litmus_seq.drivers.conformance import FAIL, PASS, check_driver
    from litmus_seq.drivers.registry import collect_drivers
    from litmus_seq.errors import ConfigError
    from litmus_seq.plugins import get_plugin_manager
    from litmus_seq.project import ProjectContext

    settings: dict[str, Any] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. --set timeout_ms=500")
        settings[key] = yaml.safe_load(text) if text else ""
    if visa_library:
        path, at, backend = visa_library.rpartition("@")
        if at and path:
            visa_library = f"{Path(path).resolve()}@{backend}"
        settings["visa_library"] = visa_library
    ctx = ProjectContext.for_path(Path.cwd())
    registry = collect_drivers(get_plugin_manager(project_root=ctx.root, extra=extra + tuple(ctx.config.plugins)))
    cls = registry.get(driver)
    results = check_driver(cls, resource=resource, settings=settings, timeout_s=timeout_s)
    if sys.modules.get("litmus_seq.drivers.visa") is not None:
        sys.modules["litmus_seq.drivers.visa"].close_resource_managers()
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Conformance of driver {driver} ({cls.__module__}:{cls.__qualname__})",
                  title_justify="left")
    _name_column(table, "rule", [r.rule for r in results])
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold")
    style = {PASS: "green", FAIL: "bold red"}
    for r in results:
        table.add_row(r.rule, f"[{style.get(r.result, 'dim')}]{r.result}[/]", r.detail)
    Console(highlight=False).print(table)
    failed = [r for r in results if r.result == FAIL]
    click.echo(f"{driver}: {len(results) - len(failed)} of {len(results)} rules passed or skipped, "
               f"{len(failed)} failed")
    return 1 if failed else 0
