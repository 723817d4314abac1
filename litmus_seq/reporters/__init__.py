"""Reporters: the ``--junit``, ``--pubdir`` and ``--publish`` options of ``litmus-seq run``.

Each reporter is a built-in plugin on ``litmus_seq_events``, like the console and the stores: it
sees exactly the events the event store records, so a report can never disagree with the
parquet file. They share one piece of bookkeeping, :class:`StepReporter`, which folds the event
stream into one :class:`StepResult` per finished step (the grain of pytest-publish's "per test"
result, here "per step") and one :class:`RunRecord` per run, and calls :meth:`on_step` /
:meth:`on_run_ended` at those boundaries. The JSON document of a step (:func:`step_document`) is
the same for ``--publish`` (the HTTP body) and ``--pubdir`` (``result.json``).

Reporters must never break a run: pluggy calls subscribers one after the other, so an exception
raised here would keep the batch from subscribers called later (the event store, the
materializer). :class:`StepReporter` therefore catches what its subclasses raise, remembers it,
and :meth:`StepReporter.close` prints one warning line on stderr.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from litmus_seq import events as ev
from litmus_seq.hookspecs import hookimpl

__all__ = [
    "RunRecord",
    "StepReporter",
    "StepResult",
    "describe_measurement",
    "dumps_document",
    "json_number",
    "run_document",
    "step_document",
]


@dataclass(slots=True)
class StepResult:
    """One finished step as reporters see it (last attempt of every vector, all measurements)."""

    step_path: str
    node_id: str | None
    name: str | None
    kind: str | None
    step_index: int | None
    start_us: int
    stop_us: int | None = None
    outcome: str | None = None
    error: str | None = None
    #: vector_index -> {"index", "outcome", "params", "retries", "error"} (last attempt wins)
    vectors: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: every ``test.measurement`` of the step, retries included, in order
    measurements: list[dict[str, Any]] = field(default_factory=list)
    #: ``diagnostic.error`` events naming this step (message, exception_type, traceback)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        if self.stop_us is None:
            return 0.0
        return max(self.stop_us - self.start_us, 0) / 1e6

    def bad_measurements(self) -> list[dict[str, Any]]:
        """Measurements that failed or errored (retries included: the evidence of a flaky step)."""
        return [m for m in self.measurements if m.get("outcome") in ("failed", "errored")]


@dataclass(slots=True)
class RunRecord:
    """One run: its context from ``run.started``, its plan, its steps and how it ended."""

    run_id: str
    session_id: str
    start_us: int
    context: dict[str, Any]
    #: the ``test.steps_discovered`` items (planned steps), in plan order
    discovered: list[dict[str, Any]] = field(default_factory=list)
    #: finished steps in the order they ended
    steps: list[StepResult] = field(default_factory=list)
    #: steps started but not ended (in flight when the run was cut short)
    open_steps: dict[str, StepResult] = field(default_factory=dict)
    stop_us: int | None = None
    outcome: str | None = None  # None while the run has not ended
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    @property
    def duration_s(self) -> float:
        stop = self.stop_us if self.stop_us is not None else self.start_us
        return max(stop - self.start_us, 0) / 1e6

    def never_ran(self) -> list[dict[str, Any]]:
        """Planned steps that never started (the seeds' "never ran" receipt)."""
        seen = {s.step_path for s in self.steps} | set(self.open_steps)
        return [item for item in self.discovered if item.get("step_path") not in seen]


def json_number(value: Any) -> Any:
    """``value`` if JSON can carry it; NaN and infinities become ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return json_number(obj)
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps_document(doc: dict[str, Any], *, indent: int | None = None) -> str:
    """Strict JSON for a report document: non-finite floats become ``null`` (a server's JSON
    parser rejects ``NaN``), anything JSON cannot carry (a date in a vector parameter) its ``str``.
    """
    import json

    try:
        return json.dumps(doc, indent=indent, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(doc), indent=indent, default=str, allow_nan=False)


def describe_measurement(m: dict[str, Any]) -> str:
    """``rail = 2.0 V, limits low=3.1 high=3.5 (GELE): failed`` -- one line for reports."""
    value = m.get("value")
    shown = m.get("text") if value is None else value
    units = f" {m['units']}" if m.get("units") else ""
    line = f"{m.get('name')} = {shown}{units}"
    lim = m.get("limit") or {}
    bounds = " ".join(f"{k}={lim[k]!r}" if isinstance(lim[k], str) else f"{k}={lim[k]}"
                      for k in ("low", "high", "equals", "pattern") if lim.get(k) is not None)
    if bounds:
        line += f", limits {bounds}"
        if lim.get("comparator"):
            line += f" ({lim['comparator']})"
    return f"{line}: {m.get('outcome')}"


def step_document(step: StepResult, run: RunRecord) -> dict[str, Any]:
    """The JSON document of one finished step: the ``--publish`` body and ``result.json``.

    Modeled on pytest-publish's ``TestResult`` (``type``, ``result``, ``start_time``,
    ``stop_time``, ``duration`` in seconds as floats), with the step's identity, its vectors (the
    last attempt of each) and every measurement with its limit.
    """
    measurements = []
    for m in step.measurements:
        lim = m.get("limit") or {}
        value = m.get("value")
        text = m.get("text")
        if isinstance(value, float) and not math.isfinite(value):
            value, text = None, str(value)
        measurements.append({
            "name": m.get("name"),
            "vector_index": m.get("vector_index"),
            "retry": m.get("retry"),
            "value": value,
            "text": text,
            "units": m.get("units"),
            "outcome": m.get("outcome"),
            "marginal": m.get("marginal"),
            "low": json_number(lim.get("low")),
            "high": json_number(lim.get("high")),
            "equals": lim.get("equals"),
            "pattern": lim.get("pattern"),
            "comparator": lim.get("comparator"),
            "instrument": m.get("instrument"),
        })
    ctx = run.context
    return {
        "type": "step",
        "result": step.outcome,
        "node_id": step.node_id,
        "step_path": step.step_path,
        "name": step.name,
        "kind": step.kind,
        "step_index": step.step_index,
        "run_id": run.run_id,
        "session_id": run.session_id,
        "dut_serial": ctx.get("dut_serial"),
        "station_id": ctx.get("station_id"),
        "sequence_name": ctx.get("sequence_name"),
        "start_time": step.start_us / 1e6,
        "stop_time": (step.stop_us if step.stop_us is not None else step.start_us) / 1e6,
        "duration": step.duration_s,
        "vectors": [
            {"index": v["index"], "outcome": v["outcome"], "params": v["params"], "retries": v["retries"]}
            for _, v in sorted(step.vectors.items())
        ],
        "measurements": measurements,
        "error": step.error,
    }


def run_document(run: RunRecord) -> dict[str, Any]:
    """The JSON document posted once a run has ended (``type: "run"``)."""
    counts: dict[str, int] = {}
    for s in run.steps:
        key = s.outcome or "never ran"
        counts[key] = counts.get(key, 0) + 1
    never = len(run.never_ran())
    if never:
        counts["never ran"] = counts.get("never ran", 0) + never
    ctx = run.context
    return {
        "type": "run",
        "result": run.outcome,
        "run_id": run.run_id,
        "session_id": run.session_id,
        "dut_serial": ctx.get("dut_serial"),
        "station_id": ctx.get("station_id"),
        "sequence_name": ctx.get("sequence_name"),
        "sequence_file": ctx.get("sequence_file"),
        "test_phase": ctx.get("test_phase"),
        "operator_name": ctx.get("operator_name"),
        "start_time": run.start_us / 1e6,
        "stop_time": (run.stop_us if run.stop_us is not None else run.start_us) / 1e6,
        "duration": run.duration_s,
        "steps": counts,
        "error": run.error,
    }


class StepReporter:
    """Folds the event stream into :class:`StepResult` / :class:`RunRecord` for a subclass.

    Subclasses override :meth:`on_step` (a step ended), :meth:`on_run_ended` and
    :meth:`on_close`; they never see raw events. An exception in any of them is caught and
    remembered (see the module docstring); :meth:`close` reports them once on ``stderr``.
    """

    #: the prefix of this reporter's warning line, e.g. ``"junit"``
    label = "report"

    def __init__(self, *, stderr: TextIO | None = None) -> None:
        self.runs: list[RunRecord] = []
        self._run: RunRecord | None = None
        self._stderr = stderr
        self.problems: list[str] = []
        self._closed = False

    # -- subclass interface --------------------------------------------------------------------

    def on_step(self, step: StepResult, run: RunRecord) -> None:
        """A step ended (called once per step, at the step boundary)."""

    def on_run_ended(self, run: RunRecord) -> None:
        """A run ended (``run.ended``); ``run.outcome`` is set."""

    def on_close(self) -> None:
        """The session is closing; finish what is pending. Problems are reported after this."""

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def current_run(self) -> RunRecord | None:
        """The run that started last, ended or not."""
        return self._run

    def problem(self, message: str) -> None:
        """Remember a problem to report on stderr at close (a reporter never stops a run)."""
        self.problems.append(message)

    def warning_lines(self) -> list[str]:
        """The lines :meth:`close` prints; subclasses may summarise differently."""
        if not self.problems:
            return []
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        return [f"{self.label}: warning: {first}{more}"]

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        try:
            self._consume(events)
        except Exception as exc:  # noqa: BLE001 - a report must never cost the run its record
            self.problem(f"{type(exc).__name__}: {exc}")

    def _consume(self, events: list[dict[str, Any]]) -> None:
        run = self._run
        for e in events:
            t = e["event_type"]
            if t == ev.MEASUREMENT:
                if run is not None:
                    step = run.open_steps.get(e["step_path"])
                    if step is not None:
                        step.measurements.append(e)
            elif t == ev.VECTOR_STARTED:
                if run is not None:
                    step = run.open_steps.get(e["step_path"])
                    if step is not None:
                        step.vectors[e["vector_index"]] = {
                            "index": e["vector_index"], "outcome": None, "params": e.get("params") or {},
                            "retries": e.get("retry", 0), "error": None,
                        }
            elif t == ev.VECTOR_ENDED:
                if run is not None:
                    step = run.open_steps.get(e["step_path"])
                    if step is not None:
                        v = step.vectors.setdefault(e["vector_index"], {
                            "index": e["vector_index"], "params": {}, "retries": 0})
                        v["outcome"] = e["outcome"]
                        v["error"] = e.get("error")
                        v["retries"] = e.get("retry", 0)
            elif t == ev.STEP_STARTED:
                if run is not None:
                    run.open_steps[e["step_path"]] = StepResult(
                        step_path=e["step_path"], node_id=e.get("node_id"), name=e.get("name"),
                        kind=e.get("kind"), step_index=e.get("step_index"), start_us=e["timestamp"])
            elif t == ev.STEP_ENDED:
                if run is not None:
                    step = run.open_steps.pop(e["step_path"], None)
                    if step is None:  # ended without a start we saw: keep it, timing unknown
                        step = StepResult(step_path=e["step_path"], node_id=None, name=None, kind=None,
                                          step_index=None, start_us=e["timestamp"])
                    step.stop_us = e["timestamp"]
                    step.outcome = e["outcome"]
                    step.error = e.get("error")
                    run.steps.append(step)
                    self._guarded(self.on_step, step, run)
            elif t == ev.ERROR:
                if run is not None and e.get("step_path"):
                    step = run.open_steps.get(e["step_path"])
                    if step is not None:
                        step.diagnostics.append(e)
            elif t == ev.STEPS_DISCOVERED:
                if run is not None:
                    run.discovered = list(e.get("items") or [])
            elif t == ev.RUN_STARTED:
                context = {k: v for k, v in e.items() if k != "plan"}
                run = self._run = RunRecord(run_id=e["run_id"], session_id=e["session_id"],
                                            start_us=e["timestamp"], context=context)
                self.runs.append(run)
            elif t == ev.RUN_ENDED:
                if run is not None:
                    run.stop_us = e["timestamp"]
                    run.outcome = e["outcome"]
                    run.error = e.get("error")
                    self._guarded(self.on_run_ended, run)

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            self.problem(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Finish pending work (:meth:`on_close`) and print problems once on stderr."""
        if self._closed:
            return
        self._closed = True
        self._guarded(self.on_close)
        stream = self._stderr if self._stderr is not None else sys.stderr
        for line in self.warning_lines():
            print(line, file=stream, flush=True)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: a reader never sees half."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
