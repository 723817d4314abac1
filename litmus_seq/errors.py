"""The one exception tree of litmus-seq.

Every error a *user* can cause (a YAML typo, an unknown driver, a bad plugin) is a
:class:`LitmusError` subclass. The CLI turns these into a single ``file:line:col: message`` line
and an exit code; anything that is not a ``LitmusError`` is a bug in litmus-seq (or in user code
run by a ``python:`` step, which the engine records as ``errored`` rather than raising).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "DriverError",
    "ExpressionError",
    "InstrumentError",
    "InstrumentTimeout",
    "LimitError",
    "LitmusError",
    "Location",
    "NothingToRun",
    "PluginError",
    "Problem",
    "StepAborted",
    "StoreError",
    "SubscriberError",
    "Terminated",
    "ValidationError",
    "EXIT_PASSED",
    "EXIT_FAILED",
    "EXIT_TERMINATED",
    "EXIT_ERRORED",
    "EXIT_USAGE",
    "EXIT_NOTHING",
]

# Exit codes (DESIGN §3): the pytest convention where it fits.
EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_TERMINATED = 2
EXIT_ERRORED = 3
EXIT_USAGE = 4
EXIT_NOTHING = 5


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a source file something is: 1-based line and column, as editors count."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One user-facing problem: a location, the path inside the document, and what to do."""

    location: Location
    message: str
    path: str = ""  # e.g. "steps[1].limit.hihg"

    def __str__(self) -> str:
        where = str(self.location)
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class LitmusError(Exception):
    """Base of every error litmus-seq raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str = "", problems: list[Problem] | None = None) -> None:
        self.problems: list[Problem] = list(problems or [])
        if not message and self.problems:
            message = "\n".join(str(p) for p in self.problems)
        super().__init__(message)

    def lines(self) -> list[str]:
        """The lines the CLI prints: one per problem, or the message."""
        if self.problems:
            return [str(p) for p in self.problems]
        return [str(self)]


class ConfigError(LitmusError):
    """A sequence, product, station or project file is wrong (nothing ran)."""


class ValidationError(ConfigError):
    """YAML that parsed but does not fit the model; carries one :class:`Problem` per mistake."""


class LimitError(ConfigError):
    """A limit that cannot be used: inverted band, guardband that inverts a band, no band matches."""


class ExpressionError(ConfigError):
    """A ``${...}`` or ``when:`` expression that does not parse or names unknown things."""


class PluginError(LitmusError):
    """A plugin failed to load, registered a duplicate driver or implemented an unknown hook."""


class DriverError(ConfigError):
    """A station names a driver no plugin registered, or a role a sequence calls is missing."""


class InstrumentError(LitmusError):
    """An instrument fault at run time (connect failure, timeout, SCPI error). Errored, exit 3."""

    exit_code = EXIT_ERRORED


class InstrumentTimeout(InstrumentError):
    """An instrument call, ``connect()`` or ``close()`` did not return within its timeout."""


class SubscriberError(LitmusError):
    """A plugin raised while handling events (``litmus_seq_events``); the other plugins still got
    the events. The run in progress ends ``errored`` with this as its cause."""

    exit_code = EXIT_ERRORED

    def __init__(self, plugin: str, exc: BaseException) -> None:
        detail = str(exc) if isinstance(exc, LitmusError) else f"{type(exc).__name__}: {exc}"
        super().__init__(f"plugin {plugin!r} failed handling events: {detail}")
        self.plugin = plugin
        self.original = exc


class StepAborted(LitmusError):
    """The step in flight cannot go on (a prompt had no answer). Its outcome and cause are
    already recorded; the recorder's context managers and the executor end the vector quietly."""

    exit_code = EXIT_ERRORED


class Terminated(BaseException):
    """The operator stopped the run (SIGTERM, an operator stop, a prompt answered "abort").

    A ``BaseException`` like ``KeyboardInterrupt`` so that user code catching ``Exception`` cannot
    swallow the operator's stop.
    """


class StoreError(LitmusError):
    """The stores cannot be written or read (disk full, corrupt file)."""

    exit_code = EXIT_ERRORED


class NothingToRun(LitmusError):
    """The plan is empty (exit 5, the pytest convention)."""

    exit_code = EXIT_NOTHING
