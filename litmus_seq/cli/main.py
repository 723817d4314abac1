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

# (litmus_seq.errors is imported only when a command ends in an exception: it pulls in
# dataclasses and inspect, which ``--help`` does not need; see _exit_code)

#: Set to 1 (or any non-empty value but 0) to get the traceback of an internal error.
DEBUG_ENV = "LITMUS_DEBUG"

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attr, one-line help shown by --help without importing the module)
    "init": ("litmus_seq.cli.init:init", "Create a new project that validates and runs at once."),
    "run": ("litmus_seq.cli.run:run", "Run a sequence on a station and record the results."),
    "validate": ("litmus_seq.cli.validate:validate", "Check sequence, product and station files."),
    "plan": ("litmus_seq.cli.plan:plan", "Show the expanded plan with resolved limits."),
    "schema": ("litmus_seq.cli.schema:schema", "Write JSON Schemas for editor completion."),
    "plugins": ("litmus_seq.cli.plugins:plugins", "List plugins, hooks and instrument drivers."),
    "runs": ("litmus_seq.cli.results:runs", "List recorded runs."),
    "show": ("litmus_seq.cli.results:show", "Show one run's steps and measurements."),
    "query": ("litmus_seq.cli.results:query", "Run a DuckDB SQL query over the run files."),
    "report": ("litmus_seq.cli.report:report", "Write one run as a self-contained HTML report."),
    "serve": ("litmus_seq.cli.serve:serve", "Serve the operator page and the HTTP API of a station."),
    "columns": ("litmus_seq.cli.results:columns", "List the columns of the run files and their types."),
    "submit": ("litmus_seq.cli.submit:submit", "Store a run another tool recorded, sent as one JSON document."),
    "publish": ("litmus_seq.cli.publish:publish", "List or send again the --publish posts kept in the outbox."),
    "recover": ("litmus_seq.cli.recover:recover", "Rebuild run files from the event store after a crash."),
    "compact": ("litmus_seq.cli.compact:compact", "Merge run files into larger files per date and station."),
    "push": ("litmus_seq.cli.push:push", "Upload sealed run files to a lake (folder or S3)."),
    "stats": ("litmus_seq.cli.stats:stats", "Yield, first-pass yield, failing-step Pareto, Cpk."),
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
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - sorted out in _exit_code
        code = _exit_code(exc)
    else:
        code = rv if isinstance(rv, int) else 0
    if argv is None:
        sys.exit(code)
    return code


def _exit_code(exc: BaseException) -> int:
    """Report what ended a command (see the module docstring) and return its exit code.

    Called from :func:`main`'s ``except`` block, so ``traceback.print_exc()`` still shows it.
    """
    from litmus_seq.errors import EXIT_ERRORED, EXIT_TERMINATED, EXIT_USAGE, LitmusError

    if isinstance(exc, LitmusError):
        for line in exc.lines():
            click.echo(line, err=True)
        return exc.exit_code
    if isinstance(exc, (click.exceptions.Abort, KeyboardInterrupt)):
        click.echo("Aborted.", err=True)
        return EXIT_TERMINATED
    if isinstance(exc, click.ClickException):
        exc.show()
        return EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        # the reader of our stdout went away (`| head`): stop quietly, and keep Python's
        # interpreter-exit flush from printing "Exception ignored ... BrokenPipeError"
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
            pass
        return 1
    if isinstance(exc, OSError):
        if _debug():
            import traceback

            traceback.print_exc()
        click.echo(_os_error_line(exc), err=True)
        return EXIT_USAGE
    # anything else: the one place a bug becomes one readable line
    if _debug():
        import traceback

        traceback.print_exc()
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:297] + "..."
    hint = "" if _debug() else f" (set {DEBUG_ENV}=1 for the traceback)"
    click.echo(f"litmus-seq: internal error: {type(exc).__name__}: {message}{hint}", err=True)
    return EXIT_ERRORED


def import_pydantic_without_asyncio() -> None:
    """Import the parts of pydantic the models use without importing :mod:`asyncio`.

    Why asyncio gets imported at all: on Python < 3.13, ``typing_extensions.deprecated``
    applied to a *function* runs ``import asyncio.coroutines`` (to keep coroutine functions
    marked), and pydantic-core and pydantic decorate functions that way at import time.
    Importing that one submodule executes the whole ``asyncio`` package first: event loops,
    sockets, ssl, subprocess, logging, concurrent.futures -- about 30 ms, a tenth of a cold
    ``validate``, for a command that never runs a coroutine.

    While pydantic is imported, ``sys.modules["asyncio"]`` is a bare placeholder of the package
    (its spec and ``__path__``; ``__init__`` not executed), so ``import asyncio.coroutines``
    executes only ``coroutines.py``, which imports nothing from its package. Afterwards the
    placeholder and every ``asyncio.*`` module loaded under it are removed again, so a later
    ``import asyncio`` (a plugin, a driver) loads the real package from scratch as usual.
    Nothing keeps a reference to the placeholder's modules: the decorated functions are not
    coroutine functions.

    Only for the CLI process, before any thread starts (another thread importing asyncio inside
    the window would get the placeholder): a library must not play with ``sys.modules`` like
    this. A no-op if asyncio or pydantic is already imported.
    """
    if "asyncio" in sys.modules or "pydantic.main" in sys.modules:
        return
    import importlib.util

    spec = importlib.util.find_spec("asyncio")
    if spec is None or spec.submodule_search_locations is None:  # pragma: no cover
        return
    before = set(sys.modules)
    placeholder = importlib.util.module_from_spec(spec)
    sys.modules["asyncio"] = placeholder
    failed = False
    try:
        import pydantic.main  # noqa: F401
        from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag  # noqa: F401
    except Exception:  # another pydantic/typing_extensions than the ones this was written for
        failed = True
    finally:
        if sys.modules.get("asyncio") is placeholder:
            del sys.modules["asyncio"]
        for name in [n for n in sys.modules if n.startswith("asyncio.") and n not in before]:
            del sys.modules[name]
    if failed:  # forget everything the window loaded and import the ordinary way
        for name in [n for n in sys.modules if n not in before]:
            del sys.modules[name]
        import pydantic.main  # noqa: F401, F811


if __name__ == "__main__":  # pragma: no cover
    main()
