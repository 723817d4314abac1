"""``litmus-seq plan``: the expanded plan with its resolved, guardbanded limits.

``--json`` is the machine form (DESIGN §3) for tools and tests; otherwise a readable listing:
a rich table on a terminal, plain aligned text in pipes and CI logs (where rich's styling would
only add escape codes). Nothing here touches an instrument.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from litmus_seq.errors import ConfigError

__all__ = ["plan", "render_text"]


def _vector_label(params: dict[str, Any]) -> str:
    from litmus_seq.limits import format_number

    if not params:
        return "-"
    parts = []
    for k, v in params.items():
        shown = format_number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
        parts.append(f"{k}={shown}")
    return " ".join(parts)


def _limit_label(lim: Any) -> str:
    text = lim.describe()
    if lim.source and lim.source != "spec":
        text += f" [{lim.source}]"
    elif lim.spec_ref and "@" in lim.spec_ref:
        text += f" [{lim.spec_ref.split(' @ ', 1)[1]}]"
    return text


def _header(p: Any, station: str | None) -> str:
    from litmus_seq.limits import format_number

    parts = [f"{p.sequence_name} v{p.sequence_version} ({p.sequence_file})"]
    if p.product is not None:
        parts.append(f"product {p.product.id}")
    parts.append(f"guardband {format_number(p.guardband_pct)}%")
    if station or p.station_ref:
        parts.append(f"station {station or p.station_ref}")
    vectors = sum(len(s.vectors) for s in p.steps if s.kind != "group")
    parts.append(f"{len(p.steps)} steps, {vectors} vectors")
    return " · ".join(parts)


def render_text(p: Any, *, station: str | None = None, max_vectors: int = 20) -> str:
    """The plain-text listing (also what tests read)."""
    lines = [_header(p, station)]
    for step in p.steps:
        depth = step.step_path.count("/") - 1
        pad = "  " * depth
        when = f"  when: {step.when.source}" if step.when is not None else ""
        count = f"  {len(step.vectors)} vectors" if len(step.vectors) > 1 else ""
        lines.append(f"{pad}{step.step_path}  [{step.kind}]{count}{when}  {step.file}:{step.line}")
        if step.kind == "group":
            continue
        single = len(step.vectors) == 1 and not step.vectors[0].params
        for v in step.vectors[:max_vectors]:
            vpad = pad + "    "
            if not single:
                lines.append(f"{pad}  [{v.index}] {_vector_label(v.params)}")
            if v.limits:
                width = max(len(n) for n in v.limits)
                for name, lim in v.limits.items():
                    lines.append(f"{vpad}{name.ljust(width)}  {_limit_label(lim)}")
        if len(step.vectors) > max_vectors:
            lines.append(f"{pad}  … {len(step.vectors) - max_vectors} more vectors (use --max-vectors)")
    return "\n".join(lines)


def _render_rich(p: Any, *, station: str | None, max_vectors: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title=_header(p, station), title_justify="left", show_lines=False, expand=False)
    table.add_column("step", style="bold")
    table.add_column("kind", style="cyan")
    table.add_column("vector")
    table.add_column("measurement", style="magenta")
    table.add_column("limit")
    table.add_column("source", style="dim")
    for step in p.steps:
        depth = step.step_path.count("/") - 1
        label = escape(step.step_path if step.parent_path == "" else
                       "  " * depth + step.step_path.rsplit("/", 1)[-1])
        if step.when is not None:
            label += f"\n[dim]when: {escape(step.when.source)}[/dim]"
        first = True
        if step.kind == "group" or not any(v.limits for v in step.vectors[:max_vectors]):
            n = len(step.vectors)
            table.add_row(label, step.kind, f"{n} vectors" if n > 1 else "", "", "", "")
            continue
        for v in step.vectors[:max_vectors]:
            vlabel = escape(f"[{v.index}] {_vector_label(v.params)}") if v.params else ""
            rows = list(v.limits.items()) or [("", None)]
            for name, lim in rows:
                source = ""
                if lim is not None:
                    source = lim.source or ""
                    if lim.spec_ref and " @ " in lim.spec_ref:
                        source += " @ " + lim.spec_ref.split(" @ ", 1)[1]
                table.add_row(
                    label if first else "",
                    step.kind if first else "",
                    vlabel,
                    escape(name),
                    escape(lim.describe()) if lim is not None else "",
                    escape(source),
                )
                first = False
                vlabel = ""
        if len(step.vectors) > max_vectors:
            table.add_row("", "", f"… {len(step.vectors) - max_vectors} more", "", "", "")
    console.print(table)


@click.command("plan")
@click.argument("sequence", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--station", "station", default=None, metavar="ID|FILE",
              help="Station to plan for (checked to exist; the plan itself does not depend on it).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (DESIGN §3).")
@click.option("--max-vectors", default=20, show_default=True, type=click.IntRange(min=1),
              help="Vectors listed per step in the readable form.")
def plan(sequence: Path, station: str | None, as_json: bool, max_vectors: int) -> int:
    """Show the expanded plan of SEQUENCE with resolved, guardbanded limits."""
    from litmus_seq.plan import build_plan
    from litmus_seq.project import ProjectContext

    if not sequence.is_file():
        raise ConfigError(f"{sequence}: no such sequence file: check the path")
    ctx = ProjectContext.for_path(sequence)
    p = build_plan(sequence, project=ctx)
    if station is not None:
        from litmus_seq.errors import Location

        ctx.load_station(station, where=Location(f"--station {station}"))  # exists and is valid
    if as_json:
        click.echo(json.dumps(p.to_json(), indent=2, default=str, ensure_ascii=False))
    elif sys.stdout.isatty():
        _render_rich(p, station=station, max_vectors=max_vectors)
    else:
        click.echo(render_text(p, station=station, max_vectors=max_vectors))
    return 0
