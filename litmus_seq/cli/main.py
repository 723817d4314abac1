"""Entry point of the ``litmus-seq`` command.

Commands are imported lazily (``COMMANDS`` maps a name to ``module:attribute``) so that
``--help`` and ``validate`` never import pyarrow, duckdb or pyvisa. Every :class:`LitmusError`
a command raises becomes one line per problem on stderr and its exit code; nothing a user can
cause ends in a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from litmus_seq.errors import EXIT_USAGE, LitmusError

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attr, one-line help shown by --help without importing the module)
    "run": ("litmus_seq.cli.run:run", "Run a sequence on a station and record the results."),
    "validate": ("litmus_seq.cli.validate:validate", "Check sequence, product and station files."),
    "plan": ("litmus_seq.cli.plan:plan", "Show the expanded plan with resolved limits."),
    "schema": ("litmus_seq.cli.schema:schema", "Write JSON Schemas for editor completion."),
    "plugins": ("litmus_seq.cli.plugins:plugins", "List plugins, hooks and instrument drivers."),
    "runs": ("litmus_seq.cli.results:runs", "List recorded runs."),
    "show": ("litmus_seq.cli.results:show", "Show one run's steps and measurements."),
    "query": ("litmus_seq.cli.results:query", "Run a DuckDB SQL query over the run files."),
    "recover": ("litmus_seq.cli.recover:recover", "Rebuild run files from the event store after a crash."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr = spec[0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="litmus-seq", prog_name="litmus-seq")
def cli() -> None:
    """litmus-seq: a declarative YAML test sequencer for electronics production and validation."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) the exit code."""
    try:
        rv = cli.main(args=argv, prog_name="litmus-seq", standalone_mode=False)
    except LitmusError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = 2
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    else:
        code = rv if isinstance(rv, int) else 0
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
