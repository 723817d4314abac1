"""``litmus-seq init [DIR]``: a new project that validates and runs at once.

The files come from ``litmus_seq/templates/project`` (package data): ``common/`` for every
project, plus ``mock/`` or ``sim/`` for the station. A template's name ends in ``.tmpl`` (so that
no tool mistakes ``checks/board.py`` inside the package for code of ours); ``dot-`` at the start
of a name stands for ``.`` (``dot-gitignore`` is ``.gitignore``). ``{{name}}``,
``{{name_yaml}}`` and ``{{station_kind}}`` are filled in. The JSON Schemas the files' modelines
point at are generated, as ``litmus-seq schema`` would write them.

Nothing is ever overwritten: if any file to write exists, nothing is written (exit 4); a write
that fails half-way removes what this command created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import click

from litmus_seq.errors import ConfigError, Location, Problem

__all__ = ["STATION_KINDS", "init", "project_files"]

#: ``--station`` values: the template folder holding that station, and how the README names it.
STATION_KINDS: dict[str, str] = {
    "mock": "every instrument mocked: runs anywhere",
    "sim": "supply and meter simulated by pyvisa-sim through the real SCPI drivers",
}
_SUFFIX = ".tmpl"
_DOT = "dot-"
#: The sequence the skeleton's README and the hint after ``init`` run.
SEQUENCE = "sequences/board_fct.yaml"


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(relative path, text)`` of every template under ``folder``, names translated."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = entry.name
        if name.startswith(_DOT):
            name = "." + name[len(_DOT):]
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{name}/")
        elif name.endswith(_SUFFIX):
            yield f"{prefix}{name[:-len(_SUFFIX)]}", entry.read_text(encoding="utf-8")


def project_files(name: str, station: str) -> dict[str, str]:
    """Relative posix path -> text of every file of a new project named ``name``."""
    if station not in STATION_KINDS:
        raise ConfigError(f"--station {station}: unknown; use one of {', '.join(STATION_KINDS)}")
    root = resources.files("litmus_seq") / "templates" / "project"
    fill = {"{{name}}": name, "{{name_yaml}}": json.dumps(name), "{{station_kind}}": f"{station} station: "
            f"{STATION_KINDS[station]}"}
    files: dict[str, str] = {}
    for part in ("common", station):
        for rel, text in _walk(root / part):
            for key, value in fill.items():
                text = text.replace(key, value)
            files[rel] = text
    from litmus_seq.schema import build_schemas

    for kind, schema in build_schemas(_driver_names()).items():
        files[f"schemas/{kind}.schema.json"] = json.dumps(schema, indent=2) + "\n"
    return files


def _driver_names() -> list[str]:
    """Driver names for the schemas' hints: the built-in and installed plugins' drivers."""
    from litmus_seq.errors import LitmusError
    from litmus_seq.schema import installed_driver_names

    try:
        return list(installed_driver_names(None))
    except LitmusError:  # a broken installed plugin: `litmus-seq schema` reports it later
        from litmus_seq.drivers import BUILTIN_DRIVERS

        return list(BUILTIN_DRIVERS)


def write_project(target: Path, files: dict[str, str]) -> list[Path]:
    """Create every file under ``target``; none may exist. All or nothing."""
    if target.exists() and not target.is_dir():
        raise ConfigError(problems=[Problem(Location(str(target)), "is a file; give a folder (new or existing)")])
    clashes = [rel for rel in files if (target / rel).exists() or (target / rel).is_symlink()]
    if clashes:
        raise ConfigError(problems=[
            Problem(Location((target / rel).as_posix()), "exists; init never overwrites a file: choose "
                    "another folder, or move the file away") for rel in clashes])
    needed = sorted({target, *((target / rel).parent for rel in files)}, key=lambda p: len(p.parts))
    folders = [p for p in needed if not p.exists()]
    created: list[Path] = []
    made: list[Path] = []
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            made.append(folder)
        for rel, text in files.items():
            with open(target / rel, "x", encoding="utf-8") as f:  # "x": never replace a file made meanwhile
                created.append(target / rel)
                f.write(text)
    except BaseException:  # leave the folder as it was
        for path in reversed(created):
            path.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    return created


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--station", "station", type=click.Choice(list(STATION_KINDS)), default="mock", show_default=True,
              help="mock: every instrument mocked. sim: supply and meter on pyvisa-sim.")
def init(directory: Path, station: str) -> int:
    """Create a project in DIRECTORY (default: here) that validates and runs at once.

    It holds litmus.yaml, a station, a product spec, a sequence, a Python check, the editor
    schemas, a .gitignore and a README. Existing files are never overwritten.
    """
    name = directory.resolve().name or "project"
    files = project_files(name, station)
    write_project(directory, files)
    shown = directory.as_posix()
    click.echo(f"created {len(files)} files in {shown}/ ({station} station):")
    for rel in sorted(files):
        if not rel.startswith("schemas/"):
            click.echo(f"  {rel}")
    click.echo("  schemas/*.schema.json")
    click.echo("next:")
    if directory.resolve() != Path.cwd().resolve():
        click.echo(f"  cd {shown}")
    click.echo("  litmus-seq validate .")
    click.echo(f"  litmus-seq run {SEQUENCE} --dut SN0001")
    return 0
