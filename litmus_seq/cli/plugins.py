"""``litmus-seq plugins``: which plugins are loaded, from where, with which hooks and drivers.

The first thing to run when a station says "unknown driver": it shows what the plugin manager of
*this* project (found from the current directory) sees, with the same loading rules as ``run``.
"""

from __future__ import annotations

import json
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


@click.command("plugins")
@click.option(
    "-p", "--plugin", "extra", multiple=True, metavar="MODULE",
    help="Also load this plugin module (or .py file); 'no:NAME' blocks a plugin. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (plugins and drivers) for tools.")
def plugins(extra: tuple[str, ...], as_json: bool) -> int:
    """List plugins (source, hooks) and the instrument drivers they register.

    A driver class that breaks the driver contract is reported at its file:line (exit 4).

    Loads what `run` loads: installed plugins, the project's plugins/*.py, the `plugins:` of
    litmus.yaml, and -p values.
    """
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
