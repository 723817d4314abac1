"""The results client: record runs from any Python code, and read them back.

For tests that are not litmus-seq sequences — a LabVIEW or TestStand adapter, a legacy script,
a notebook — :class:`LitmusClient` writes through the same run recorder as ``litmus-seq run``,
into the same stores, so ``litmus-seq runs``, ``show`` and DuckDB cannot tell the difference::

    from litmus_seq.client import LitmusClient

    client = LitmusClient(data_dir="data")
    with client.start_run(dut_serial="SN001", station_id="bench_1", product="power_board") as run:
        with run.step("output_voltage") as step:
            step.vector(vin=5.0).measure("rail_3v3", 3.31, units="V", low=3.1, high=3.5)
            step.vector(vin=12.0).measure("rail_3v3", 3.29, units="V", low=3.1, high=3.5)
        run.step("firmware").measure("fw_version", "1.4.2", equals="1.4.2").finish()
    print(run.outcome, run.result.parquet)

The builders (:class:`RunBuilder`, :class:`StepBuilder`, :class:`VectorBuilder`) are chainable
and are context managers; their ``finish()`` closes that level. Opening a new step closes the
one before; so does a new vector. The read side (:meth:`LitmusClient.list_runs`,
:meth:`~LitmusClient.get_run`, :meth:`~LitmusClient.get_steps`,
:meth:`~LitmusClient.get_measurements`, :meth:`~LitmusClient.events`) answers from the stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict

from litmus_seq.errors import ConfigError, LitmusError

__all__ = ["LIMIT_KEYS", "LitmusClient", "RunBuilder", "RunSummary", "StepBuilder", "VectorBuilder"]

#: The keyword arguments of ``measure()`` that make up its limit (the YAML limit form's keys).
LIMIT_KEYS = ("low", "high", "nominal", "tolerance", "tolerance_pct", "equals", "matches", "comparison",
              "marginal_low", "marginal_high")


class RunSummary(BaseModel):
    """One stored run, as :meth:`LitmusClient.get_run` and :meth:`~LitmusClient.list_runs` return it."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    dut_serial: str | None = None
    outcome: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    station_id: str | None = None
    product_id: str | None = None
    operator_name: str | None = None
    test_phase: str | None = None
    error: str | None = None
    step_count: int = 0
    steps_passed: int = 0
    steps_failed: int = 0
    steps_errored: int = 0
    steps_skipped: int = 0
    steps_never_ran: int = 0
    file_path: str | None = None


def limit_of(limit: Any, fields: Mapping[str, Any]) -> Any:
    """The limit of a ``measure()`` call: ``limit=`` as given (a Limit, its YAML form as a dict,
    or ``"none"`` for unjudged), else a dict of the limit keyword arguments given, else ``None``
    (the product's spec of that name, if any, judges it)."""
    given = {k: v for k, v in fields.items() if v is not None}
    unknown = sorted(set(given) - set(LIMIT_KEYS) - {"units"})
    if unknown:
        from litmus_seq.suggest import did_you_mean

        raise ConfigError(f"measure(): unknown limit key '{unknown[0]}'" + did_you_mean(unknown[0], LIMIT_KEYS))
    given.pop("units", None)
    if limit is not None:
        if given:
            raise ConfigError(f"measure(): give limit= or {', '.join(sorted(given))}, not both")
        return limit
    return given or None


class _Level:
    """What every builder level has: measure, record, configure, observe, fail, error, finish."""

    _run: RunBuilder

    def _enter(self) -> None:
        """Make this level the open one before recording into it."""

    def measure(self, name: str, value: Any, units: str | None = None, *, limit: Any = None,
                outcome: str | None = None, dut_pin: str | None = None, instrument: str | None = None,
                **limit_fields: Any) -> Any:
        """Record a measurement judged against ``limit=`` or the limit keywords (``low``, ``high``,
        ``nominal``, ``tolerance``, ``tolerance_pct``, ``equals``, ``matches``, ``comparison``,
        ``marginal_low``, ``marginal_high``), else the product's spec of that name; ``limit="none"``
        records it unjudged. ``outcome=`` records the verdict your tool already made (the limit, if
        given, is recorded beside it). Returns this builder (chainable); the measurement's outcome
        is :attr:`last_outcome`."""
        self._enter()
        resolved = limit_of(limit, limit_fields)
        self._run.last_outcome = self._run.recorder.measure(
            name, value, units=units, limit=resolved, dut_pin=dut_pin, instrument=instrument, verdict=outcome)
        return self

    def record(self, key: str, value: Any) -> Any:
        """Free-form data (``test.record``) on this level."""
        self._enter()
        self._run.recorder.record(key, value)
        return self

    def configure(self, key: str, value: Any) -> Any:
        """A stimulus value: the ``in_<key>`` column."""
        self._enter()
        self._run.recorder.configure(key, value)
        return self

    def observe(self, key: str, value: Any) -> Any:
        """An observed value: the ``out_<key>`` column (arrays go to the channel store)."""
        self._enter()
        self._run.recorder.observe(key, value)
        return self

    def fail(self, message: str) -> Any:
        """This level did not meet its test: ``failed``, with ``message`` as the reason."""
        self._enter()
        self._run.recorder.fail(message)
        return self

    def error(self, message: BaseException | str) -> Any:
        """This level could not be tested: ``errored`` (an exception keeps its traceback)."""
        self._enter()
        self._run.recorder.error(message)
        return self

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, Exception):
            self.error(exc)
        self.finish()

    def finish(self) -> Any:
        raise NotImplementedError


class VectorBuilder(_Level):
    """One set of parameters of a step; made by :meth:`StepBuilder.vector`."""

    def __init__(self, step: StepBuilder, params: Mapping[str, Any], index: int) -> None:
        self._run = step._run
        self.step = step
        self.params = dict(params)
        self.index = index
        self.outcome: str | None = None
        self._open = True

    def _enter(self) -> None:
        if not self._open:
            raise LitmusError(f"vector {self.index} of step '{self.step.name}' is finished")
        self.step._enter()
        rec = self._run.recorder
        if rec.open_vector != (self.step.path, self.index):
            raise LitmusError(f"vector {self.index} of step '{self.step.name}' is no longer open: "
                              "a later vector or step was opened after it")

    def finish(self) -> VectorBuilder:
        """Close the vector; :attr:`outcome` is its outcome."""
        if self._open:
            self._enter()
            self.outcome = self._run.recorder.end_vector()
            self._open = False
            self.step._vector = None
        return self


class StepBuilder(_Level):
    """One step of a run; made by :meth:`RunBuilder.step`."""

    def __init__(self, run: RunBuilder, name: str, description: str | None) -> None:
        self._run = run
        self.name = name
        self.path = f"main/{name}"
        self.description = description
        self.outcome: str | None = None
        self._open = True
        self._vector: VectorBuilder | None = None
        self._vectors = 0

    def _enter(self) -> None:
        if not self._open:
            raise LitmusError(f"step '{self.name}' is finished")
        if self._run._step is not self:
            raise LitmusError(f"step '{self.name}' is no longer open: a later step was opened after it")

    def vector(self, **params: Any) -> VectorBuilder:
        """Open the next vector of this step with ``params`` (the ``in_<param>`` columns); closes
        the vector before it."""
        self._enter()
        if self._vector is not None:
            self._vector.finish()
        self._vector = VectorBuilder(self, params, self._vectors)
        self._run.recorder.begin_vector(params, index=self._vectors)
        self._vectors += 1
        return self._vector

    def finish(self) -> StepBuilder:
        """Close the step (and its open vector); :attr:`outcome` is its outcome."""
        if self._open:
            self._enter()
            rec = self._run.recorder
            if self._vector is not None:
                self._vector.finish()
            elif self._vectors == 0 and rec.open_vector is None:
                rec.begin_vector()  # a step is tested in at least one vector
            self.outcome = rec.end_step()
            self._open = False
            self._run._step = None
        return self


class RunBuilder(_Level):
    """One run of one DUT; made by :meth:`LitmusClient.start_run`. :meth:`finish` (or the end of
    its ``with`` block) seals it with the verdict rules; :attr:`result` is then the
    :class:`~litmus_seq.run.RunResult` (``outcome``, ``parquet``)."""

    def __init__(self, recording: Any) -> None:
        self._run = self
        self._recording = recording
        self.recorder: Any = recording.run
        self.run_id: str = self.recorder.run_id
        self.result: Any = None
        #: the outcome of the last measurement recorded through any level of this run
        self.last_outcome: str | None = None
        self._step: StepBuilder | None = None
        self._names: set[str] = set()

    @property
    def outcome(self) -> str | None:
        """The sealed outcome (``None`` until :meth:`finish`)."""
        return None if self.result is None else self.result.outcome

    def step(self, name: str, description: str | None = None) -> StepBuilder:
        """Open a step named ``name`` (closing the step before it)."""
        if self.result is not None:
            raise LitmusError(f"run {self.run_id} is finished")
        if self._step is not None:
            self._step.finish()
        if name in self._names:
            raise ConfigError(f"step '{name}' was already recorded in this run; step names are unique")
        self._names.add(name)
        self._step = StepBuilder(self, name, description)
        self.recorder.begin_step(self._step.path, name=name, kind="test")
        return self._step

    def _enter(self) -> None:
        if self.result is not None:
            raise LitmusError(f"run {self.run_id} is finished")

    def measure(self, name: str, value: Any, units: str | None = None, **kwargs: Any) -> RunBuilder:
        """A measurement outside any step gets a step of its own, named after it."""
        self._enter()
        if self._step is not None:
            self._step.measure(name, value, units, **kwargs)
        else:
            self.step(name).measure(name, value, units, **kwargs).finish()
        return self

    def fail(self, message: str) -> RunBuilder:
        """The run (or its open step) did not meet its test: ``failed``."""
        self._enter()
        self.recorder.fail(message)
        return self

    def error(self, message: BaseException | str) -> RunBuilder:
        """The run (or its open step) could not be tested: ``errored``."""
        self._enter()
        self.recorder.error(message)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and not isinstance(exc, Exception):
            self.recorder.abort(exc)
        elif exc is not None:
            self.error(exc)
        self.finish()

    def finish(self) -> RunBuilder:
        """Close the open step and seal the run (idempotent)."""
        if self.result is None:
            try:
                if self._step is not None and self._step._open:
                    self._step.finish()
            finally:
                self.result = self._recording.close()
        return self


class LitmusClient:
    """Record and read runs in a data folder.

    ``data_dir`` is resolved as for ``litmus-seq run`` (``LITMUS_DATA_DIR``, then ``data_dir``
    in the project's ``litmus.yaml``, then ``./data``); ``project`` is a folder in the project
    whose ``products/`` and ``stations/`` ids refer to (default: the current directory's).
    """

    def __init__(self, data_dir: str | Path | None = None, *, project: str | Path | None = None,
                 plugins: Iterable[str] = ()) -> None:
        from litmus_seq.project import ProjectContext, find_root

        self.project = ProjectContext(find_root(Path(project) if project is not None else Path.cwd()))
        self.data_dir = self.project.data_dir(None if data_dir is None else str(data_dir))
        self.plugins = tuple(plugins)

    # -- write ---------------------------------------------------------------------------------

    def start_run(self, dut_serial: str | None = None, station_id: str | None = None, product: Any = None,
                  operator: str | None = None, phase: str | None = None, *, run_id: str | None = None,
                  guardband_pct: float | None = None, steps: Iterable[str] | None = None,
                  **custom: Any) -> RunBuilder:
        """Start a run and return its builder. ``product`` is a product id (its spec in the
        project's ``products/`` judges measurements by name, with ``guardband_pct`` or the project's
        default), a file, or a model; ``station_id`` a station id (the project's station file is
        read when there is one); ``steps`` the planned step names when known up front (a planned
        step never recorded makes the run ``errored``); the other keywords are custom metadata
        (``custom_<key>`` columns)."""
        from litmus_seq.run.recording import open_recording

        recording = open_recording(
            self.project, data_dir=self.data_dir, station=station_id, product=product, station_optional=True,
            plugins=self.plugins, dut_serial=dut_serial, operator=operator, phase=phase, custom=custom,
            guardband_pct=guardband_pct, run_id=run_id,
            steps=None if steps is None else [{"step_path": f"main/{s}", "name": s, "kind": "test", "phase": "main",
                                               "step_index": i, "vector_count": 1} for i, s in enumerate(steps)])
        return RunBuilder(recording)

    # -- read ----------------------------------------------------------------------------------

    def _results(self) -> Any:
        from litmus_seq.results import Results

        return Results(self.data_dir)

    def list_runs(self, dut: str | None = None, station: str | None = None, outcome: str | None = None,
                  since: datetime | str | None = None, limit: int | None = None) -> list[RunSummary]:
        """Stored runs, newest first, filtered by DUT serial, station, outcome and start time
        (a datetime, an ISO date, or ``"2h"``/``"7d"`` back from now)."""
        rows = self._results().list_runs(dut=dut, station=station, outcome=outcome, since=since, limit=limit)
        return [RunSummary.model_validate(_summary(r)) for r in rows]

    def get_run(self, run_id: str) -> RunSummary:
        """One stored run by its id (a unique prefix will do)."""
        found = self._results().find_runs(run_id)
        if not found:
            raise LitmusError(f"no run '{run_id}' in {self.data_dir}")
        if len(found) > 1:
            raise LitmusError(f"'{run_id}' matches {len(found)} runs; give more of the run id")
        return RunSummary.model_validate(_summary(found[0]))

    def get_steps(self, run_id: str) -> list[dict[str, Any]]:
        """The step rows of a run (one per step and vector, never-ran steps included), keyed by
        parquet column name."""
        return self._results().get_steps(self.get_run(run_id).run_id)

    def get_measurements(self, run_id: str) -> list[dict[str, Any]]:
        """The measurement rows of a run, keyed by parquet column name."""
        return self._results().get_measurements(self.get_run(run_id).run_id)

    def events(self, event_type: str | None = None, session_id: str | None = None,
               run_id: str | None = None) -> list[dict[str, Any]]:
        """Events from the event store, in order, filtered by type, session and run."""
        from litmus_seq.stores.events import iter_event_files, read_events

        files = [p for p in iter_event_files(self.data_dir) if session_id is None or p.stem == session_id]
        return [e for p in files for e in read_events(p)
                if (event_type is None or e.get("event_type") == event_type)
                and (run_id is None or e.get("run_id") == run_id)]


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A read-side run row in :class:`RunSummary`'s names."""
    out = dict(row)
    out.setdefault("outcome", row.get("run_outcome"))
    out.setdefault("started_at", row.get("run_started_at"))
    out.setdefault("ended_at", row.get("run_ended_at"))
    out.setdefault("error", row.get("run_error"))
    out.setdefault("file_path", row.get("file"))
    return out
