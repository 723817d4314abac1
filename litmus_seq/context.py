"""What a ``python:`` step receives: the vector's parameters and a way to record results.

A ``python:`` callable is the one deliberate door to user code. It is called as
``fn(ctx, **args)`` and talks back through the context: :meth:`StepContext.measure` (judged
against the plan's limits like any ``measure:`` action), :meth:`configure` (stimulus values,
``in_*`` columns), :meth:`observe` (environmental readings, ``out_*`` columns; arrays go to the
channel store), :meth:`record` (free-form diagnostics) and :meth:`warn`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from litmus_seq import events as ev

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.engine import RunState


class StepContext:
    """The per-vector context handed to ``python:`` callables (and used by the harness)."""

    __slots__ = ("_run", "params", "step_path", "vector_index", "retry", "_measured", "outcome", "failure")

    def __init__(
        self, run: RunState, params: Mapping[str, Any], step_path: str, vector_index: int, retry: int
    ) -> None:
        self._run = run
        self.params: Mapping[str, Any] = params
        self.step_path = step_path
        self.vector_index = vector_index
        self.retry = retry
        self._measured: set[str] = set()  # names recorded in this attempt
        #: worst measurement outcome of this attempt so far, and the first failure's description
        self.outcome: str = "done"
        self.failure: str | None = None

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
    def instruments(self) -> dict[str, Any]:
        """Connected instrument drivers by role (``ctx.instruments["dmm"]``)."""
        return self._run.session.instruments

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
    ) -> str:
        """Record a measurement; returns its outcome (``passed``, ``failed``, ``done``...).

        Without ``limit`` the plan's limit for ``name`` applies (vector → step → product spec).
        ``limit`` may be a :class:`~litmus_seq.limits.Limit`, a dict of the YAML limit form, or a
        resolved limit.
        """
        return self._run.record_measurement(
            self, name, value, units=units, limit=limit, instrument=instrument, channel=channel
        )

    def configure(self, key: str, value: Any) -> None:
        """A stimulus value for this vector (``in_<key>`` column)."""
        self._run.emit_kv(ev.CONFIGURED, self, key, value)

    def observe(self, key: str, value: Any) -> None:
        """An observed value (``out_<key>`` column). Sequences of numbers go to the channel store."""
        if isinstance(value, (list, tuple)) or hasattr(value, "__array__") or type(value).__name__ == "array":
            value = self._run.write_channel(self, key, value)
        self._run.emit_kv(ev.OBSERVED, self, key, value)

    def record(self, key: str, value: Any) -> None:
        """Free-form diagnostic data (JSON-able): firmware dumps, calibration stamps."""
        self._run.emit_kv(ev.RECORD, self, key, value)

    def warn(self, message: str) -> None:
        self._run.bus.emit(ev.WARNING, message=message, step_path=self.step_path)
