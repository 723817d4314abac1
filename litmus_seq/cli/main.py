"""Entry point of the ``litmus-seq`` command.

Commands are imported lazily (``COMMANDS`` maps a name to ``module:attribute``) so that
``--help`` and ``validate`` never import pyarrow, duckdb or pyvisa. Every :class:`LitmusError`
a command raises becomes one line per problem on stderr and its exit code; nothing a user can
cause ends in a traceback.

What reaches :func:`main` and how it ends (decided here, tested in tests/test_cli_errors.py):

* :class:`LitmusError` -- one line per problem (``file:line:col: what; how to fix``), its
  ``exit_code`` (4 for configuration mistakes, 3 store/instrument, 5 nothing to run).
* click usage errors (unknown option, missing argument) -- click's message, exit 4.
* Ctrl-C (``KeyboardInterrupt``/click ``Abort``) -- ``Aborted.``, exit 2 (terminated).
* ``OSError`` -- the operating system refused a path the user gave or configured (a data folder
  under a read-only or missing mount, a file where a folder should be): one line naming the
  path and the reason, exit 4. Nothing a command catches itself gets here.
* a closed pipe (``litmus-seq query ... | head``) -- silent, exit 1, no "Exception ignored" noise.
* anything else is a bug in litmus-seq: ``litmus-seq: internal error: <type>: <message>``, exit 3
  (errored), and the traceback only with ``LITMUS_DEBUG=1`` in the environment, so a bug report
  can include it while operators see one line.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from litmus_seq.errors import EXIT_ERRORED, EXIT_TERMINATED, EXIT_USAGE, LitmusError

#: Set to 1 (or any non-empty value but 0) to get the traceback of an internal error.
DEBUG_ENV = "LITMUS_DEBUG"

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


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _os_error_line(exc: OSError) -> str:
    """``litmus-seq: <path>: <reason>; <what to do>`` for an OSError nobody caught."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    path = exc.filename if exc.filename is not None else None
    where = f"{os.fsdecode(path)}: " if path is not None else ""
    if isinstance(exc, PermissionError):
        hint = "check the permissions, or choose another path (e.g. --data-dir)"
    elif isinstance(exc, FileExistsError):
        hint = "a file stands where a folder is needed: remove it or choose another path"
    elif isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        hint = "check the path (a folder on the way is missing or is a file)"
    else:
        hint = "check the path, the disk and its permissions"
    return f"litmus-seq: {where}{reason}; {hint}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) the exit code."""
    # pydantic scans every installed distribution for pydantic plugins when the first model is
    # built (~20 ms of a ~0.35 s `validate`); the CLI validates YAML, it wants no observability
    # plugins there. setdefault: PYDANTIC_DISABLE_PLUGINS= (empty) in the environment re-enables.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        rv = cli.main(args=argv, prog_name="litmus-seq", standalone_mode=False)
    except LitmusError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        code = EXIT_TERMINATED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except BrokenPipeError:
        # the reader of our stdout went away (`| head`): stop quietly, and keep Python's
        # interpreter-exit flush from printing "Exception ignored ... BrokenPipeError"
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
            pass
        code = 1
    except OSError as exc:
        if _debug():
            import traceback

            traceback.print_exc()
        click.echo(_os_error_line(exc), err=True)
        code = EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes one readable line
        if _debug():
            import traceback

            traceback.print_exc()
        message = " ".join(str(exc).split())
        if len(message) > 300:
            message = message[:297] + "..."
        hint = "" if _debug() else f" (set {DEBUG_ENV}=1 for the traceback)"
        click.echo(f"litmus-seq: internal error: {type(exc).__name__}: {message}{hint}", err=True)
        code = EXIT_ERRORED
    else:
        code = rv if isinstance(rv, int) else 0
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
