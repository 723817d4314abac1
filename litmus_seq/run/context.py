"""What a ``python:`` step receives: the vector's parameters and a way to record results.

A ``python:`` callable is the one deliberate door to user code. It is called as
``fn(ctx, **args)`` and talks back through the context: :meth:`StepContext.measure` (judged
against the plan's limits like any ``measure:`` action), :meth:`configure` (stimulus values,
``in_*`` columns), :meth:`observe` (environmental readings, ``out_*`` columns; arrays go to the
channel store), :meth:`record` (free-form diagnostics) and :meth:`warn`. It is also what the
recorder's :meth:`~litmus_seq.run.recorder.Run.vector` yields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from litmus_seq import events as ev

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.run.recorder import Run


class Instruments(Mapping[str, Any]):
    """The station's drivers by role; a role is connected the first time it is looked up."""

    __slots__ = ("_run",)

    def __init__(self, run: Run) -> None:
        self._run = run

    def __getitem__(self, role: str) -> Any:
        if role not in self._run.session.roles():
            raise KeyError(role)
        return self._run.instrument(role)

    def __iter__(self) -> Iterator[str]:
        return iter(self._run.session.roles())

    def __len__(self) -> int:
        return len(self._run.session.roles())


class StepContext:
    """The per-vector context handed to ``python:`` callables (and used by the front doors)."""

    __slots__ = ("_run", "params", "step_path", "vector_index", "retry", "_measured", "outcome", "failure",
                 "reason")

    def __init__(self, run: Run, params: Mapping[str, Any], step_path: str, vector_index: int, retry: int) -> None:
        self._run = run
        self.params: Mapping[str, Any] = params
        self.step_path = step_path
        self.vector_index = vector_index
        self.retry = retry
        self._measured: set[str] = set()  # names recorded in this attempt
        #: worst outcome of this attempt so far, and the first bad measurement's description
        self.outcome: str = "done"
        self.failure: str | None = None
        #: why the attempt failed or errored, when set explicitly (fail(), error(), a prompt)
        self.reason: str | None = None

    # -- read access -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        """``ctx["vin"]``: a vector parameter, else a variable, else an earlier result."""
        if name in self.params:
            return self.params[name]
        return self._run.names[name]

    @property
    def variables(self) -> dict[str, Any]:
        return self._run.names

    @property
    def instruments(self) -> Instruments:
        """The station's drivers by role (``ctx.instruments["dmm"]``), connected on first use."""
        return Instruments(self._run)

    # -- results ------------------------------------------------------------------------------

    def measure(
        self,
        name: str,
        value: Any,
        *,
        units: str | None = None,
        limit: Any = None,
        instrument: str | None = None,
        channel: str | None = None,
        dut_pin: str | None = None,
    ) -> str:
        """Record a measurement; returns its outcome (``passed``, ``failed``, ``done``...).

        Without ``limit`` the plan's limit for ``name`` applies (vector → step → product spec).
        ``limit`` may be a :class:`~litmus_seq.limits.Limit`, a dict of the YAML limit form, or a
        resolved limit.
        """
        return self._run.measure_in(self, name, value, units=units, limit=limit, instrument=instrument,
                                    channel=channel, dut_pin=dut_pin)

    def configure(self, key: str, value: Any) -> None:
        """A stimulus value for this vector (``in_<key>`` column)."""
        self._emit(ev.CONFIGURED, key, value)

    def observe(self, key: str, value: Any) -> None:
        """An observed value (``out_<key>`` column). Sequences of numbers go to the channel store."""
        if isinstance(value, (list, tuple)) or hasattr(value, "__array__") or type(value).__name__ == "array":
            value = self._run.write_channel(key, value)
        self._emit(ev.OBSERVED, key, value)

    def record(self, key: str, value: Any) -> None:
        """Free-form diagnostic data (JSON-able): firmware dumps, calibration stamps."""
        self._emit(ev.RECORD, key, value)

    def warn(self, message: str) -> None:
        self._run.bus.emit(ev.WARNING, message=message, step_path=self.step_path)

    def fail(self, reason: str) -> None:
        """Fail this vector with ``reason`` (the DUT did not meet the test)."""
        if self.outcome in ("done", "passed", "skipped"):
            self.outcome = "failed"
        self.reason = reason

    def _emit(self, event_type: str, key: str, value: Any) -> None:
        self._run.bus.emit(event_type, step_path=self.step_path, vector_index=self.vector_index, key=key, value=value)
