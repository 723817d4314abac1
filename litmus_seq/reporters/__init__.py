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
from litmus_seq.reporters.render import failure_text, measurement_failure

__all__ = [
    "RESULT_WORDS",
    "RunRecord",
    "StepReporter",
    "StepResult",
    "dumps_document",
    "failure_lines",
    "json_number",
    "result_word",
    "run_document",
    "step_document",
    "step_message",
]


#: pytest-publish's ``result`` words for our outcomes (seed 003: "pass", "skip", "fail")
RESULT_WORDS: dict[str, str] = {
    "passed": "pass", "done": "pass", "skipped": "skip",
    "failed": "fail", "errored": "fail", "terminated": "fail", "aborted": "fail",
}
#: outcomes that are faults of the test system rather than of the unit (JUnit ``<error>``)
ERROR_OUTCOMES = ("errored", "terminated", "aborted")
#: the outcome reported for a run that started but never ended (the process stopped first)
NEVER_ENDED = "aborted"


def result_word(outcome: str | None) -> str:
    """``pass`` / ``skip`` / ``fail`` for an outcome; anything unknown or missing is ``fail``."""
    return RESULT_WORDS.get(outcome or "", "fail")


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
    #: every attempt that ended: {"index", "retry", "outcome", "error"}, in order
    attempts: list[dict[str, Any]] = field(default_factory=list)
    #: every ``test.measurement`` of the step, retries included, in order
    measurements: list[dict[str, Any]] = field(default_factory=list)
    #: ``diagnostic.error`` / ``diagnostic.warning`` events naming this step
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        if self.stop_us is None:
            return 0.0
        return max(self.stop_us - self.start_us, 0) / 1e6

    @property
    def retries(self) -> int:
        """Attempts run again after the first one, over all vectors."""
        return sum(v.get("retries") or 0 for v in self.vectors.values())

    def retried_attempts(self) -> list[dict[str, Any]]:
        """Attempts that did not pass and were run again (the evidence of a flaky step)."""
        last = {v["index"]: v.get("retries") or 0 for v in self.vectors.values()}
        return [a for a in self.attempts
                if a["outcome"] in ("failed", "errored") and a["retry"] < last.get(a["index"], 0)]

    def bad_measurements(self, *, final_only: bool = False) -> list[dict[str, Any]]:
        """Measurements that failed or errored; ``final_only`` leaves out retried attempts."""
        last = {v["index"]: v.get("retries") or 0 for v in self.vectors.values()}
        return [m for m in self.measurements if m.get("outcome") in ("failed", "errored")
                and (not final_only or (m.get("retry") or 0) >= last.get(m.get("vector_index"), 0))]

    def errors(self) -> list[dict[str, Any]]:
        return [d for d in self.diagnostics if d.get("event_type") == ev.ERROR]


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
    #: ``diagnostic.*`` events of the run that name no step (a connect failure, an internal error)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    stop_us: int | None = None
    outcome: str | None = None  # None while the run has not ended
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    @property
    def verdict(self) -> str:
        """The outcome to report: the sealed one, or :data:`NEVER_ENDED` if there is none."""
        return self.outcome if self.outcome is not None else NEVER_ENDED

    @property
    def duration_s(self) -> float:
        stop = self.stop_us if self.stop_us is not None else self.start_us
        return max(stop - self.start_us, 0) / 1e6

    @property
    def retries(self) -> int:
        return sum(s.retries for s in [*self.steps, *self.open_steps.values()])

    def never_ran(self) -> list[dict[str, Any]]:
        """Planned steps that never started (the seeds' "never ran" receipt)."""
        seen = {s.step_path for s in self.steps} | set(self.open_steps)
        return [item for item in self.discovered if item.get("step_path") not in seen]

    def cause(self) -> str | None:
        """Why the run did not pass, when the run itself (not one of its steps) says so."""
        if self.error:
            return self.error
        if not self.ended:
            return "the run did not end (the process stopped before run.ended)"
        return None


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


def failure_lines(step: StepResult) -> list[str]:
    """One line per failed or errored measurement of ``step`` (``[0] retry 1 vin=5: rail = ...``)."""
    lines = []
    for m in step.bad_measurements():
        vector = step.vectors.get(m.get("vector_index", 0)) or {}
        params = vector.get("params") or {}
        where = f"[{m.get('vector_index')}]"
        if m.get("retry"):
            where += f" retry {m['retry']}"
        if params:
            where += " " + ", ".join(f"{k}={v}" for k, v in params.items())
        lines.append(f"{where}: {measurement_failure(m)}")
    return lines


def step_message(step: StepResult) -> str:
    """One line saying why ``step`` did not pass: its final bad measurement, else its error."""
    bad = step.bad_measurements(final_only=True)
    if bad:
        return measurement_failure(bad[0])
    return step.error or step.outcome or "did not end"


def _excinfo(kind: str, value: str, lines: list[str]) -> dict[str, Any]:
    return {"type": kind, "value": value, "traceback": lines}


def step_excinfo(step: StepResult) -> dict[str, Any] | None:
    """pytest-publish's ``excinfo`` for a step that did not pass (``None`` for a pass)."""
    if result_word(step.outcome) == "pass":
        return None
    errors = step.errors()
    kind = (errors[0].get("exception_type") if errors else None) or step.outcome or "errored"
    lines = failure_lines(step)
    for d in errors:
        lines.extend((d.get("traceback") or d.get("message") or "").rstrip().splitlines())
    return _excinfo(kind, step_message(step) if step.outcome != "skipped" else (step.error or "skipped"), lines)


def _log_text(diagnostics: list[dict[str, Any]]) -> str:
    """A step's log: what its code logged (``test.log``) and its diagnostics, in order."""
    from litmus_seq.logging import format_record

    levels = {ev.ERROR: "ERROR", ev.WARNING: "WARNING"}
    return "".join((format_record(d) if d.get("event_type") == ev.LOG
                    else f"{levels.get(d.get('event_type'), 'INFO')} {d.get('message')}") + "\n" for d in diagnostics)


def _measurement_doc(m: dict[str, Any]) -> dict[str, Any]:
    lim = m.get("limit") or {}
    value, text = m.get("value"), m.get("text")
    if isinstance(value, float) and not math.isfinite(value):
        value, text = None, str(value)
    doc = {
        "name": m.get("name"),
        "vector_index": m.get("vector_index"),
        "retry": m.get("retry"),
        "value": value,
        "text": text,
        "units": m.get("units"),
        "outcome": m.get("outcome"),
        "marginal": m.get("marginal"),
        "limit": {k: json_number(v) for k, v in lim.items()} if lim else None,
        "instrument": m.get("instrument"),
    }
    if m.get("outcome") in ("failed", "errored"):
        doc["failure"] = failure_text(m)
    return doc


def _seed_fields(result: str, nodeid: str, start_us: int, stop_us: int | None, log: str,
                 excinfo: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of pytest-publish's ``TestResult``, in its order (seed 003)."""
    stop = stop_us if stop_us is not None else start_us
    return {
        "result": result,
        "nodeid": nodeid,
        "start_time": start_us / 1e6,
        "stop_time": stop / 1e6,
        "duration": max(stop - start_us, 0) / 1e6,
        "stdout": "",
        "stderr": "",
        "log": log,
        "xdist_dist": None,
        "xdist_worker": None,
        "xdist_scope": None,
        "excinfo": excinfo,
    }


def _run_fields(run: RunRecord) -> dict[str, Any]:
    ctx = run.context
    return {
        "run_id": run.run_id,
        "session_id": run.session_id,
        "dut_serial": ctx.get("dut_serial"),
        "station_id": ctx.get("station_id"),
        "sequence_name": ctx.get("sequence_name"),
        "sequence_file": ctx.get("sequence_file"),
    }


def step_document(step: StepResult, run: RunRecord) -> dict[str, Any]:
    """The JSON document of one finished step: the ``--publish`` body and ``result.json``.

    pytest-publish's ``TestResult`` fields first (``type``, ``result`` as pass/skip/fail,
    ``nodeid``, times in seconds, ``stdout``/``stderr``/``log``, ``excinfo``), then ours: the full
    ``outcome``, the step's identity, retries, its vectors (last attempt of each) and every
    measurement with its limit.
    """
    return {
        "type": "step",
        **_seed_fields(result_word(step.outcome), step.node_id or step.step_path, step.start_us, step.stop_us,
                       _log_text(step.diagnostics), step_excinfo(step)),
        "outcome": step.outcome,
        "step_path": step.step_path,
        "name": step.name,
        "kind": step.kind,
        "step_index": step.step_index,
        **_run_fields(run),
        "retries": step.retries,
        "vectors": [
            {"index": v["index"], "outcome": v["outcome"], "params": v["params"], "retries": v["retries"]}
            for _, v in sorted(step.vectors.items())
        ],
        "measurements": [_measurement_doc(m) for m in step.measurements],
        "error": step.error,
    }


def run_excinfo(run: RunRecord) -> dict[str, Any] | None:
    """``excinfo`` of a run that did not pass: its cause, else its first bad step."""
    if result_word(run.verdict) == "pass":
        return None
    errors = [d for d in run.diagnostics if d.get("event_type") == ev.ERROR]
    cause = run.cause()
    if cause is None:
        bad = next((s for s in [*run.steps, *run.open_steps.values()] if result_word(s.outcome) == "fail"), None)
        cause = f"{bad.step_path}: {step_message(bad)}" if bad is not None else run.verdict
    kind = (errors[0].get("exception_type") if errors else None) or run.verdict
    lines: list[str] = []
    for d in errors:
        lines.extend((d.get("traceback") or d.get("message") or "").rstrip().splitlines())
    return _excinfo(kind, cause, lines)


def run_document(run: RunRecord) -> dict[str, Any]:
    """The JSON document of a run's end (``type: "run"``), shaped like a step's."""
    counts: dict[str, int] = {}
    for s in [*run.steps, *run.open_steps.values()]:
        key = s.outcome or "in flight"
        counts[key] = counts.get(key, 0) + 1
    never = len(run.never_ran())
    if never:
        counts["never ran"] = never
    ctx = run.context
    return {
        "type": "run",
        **_seed_fields(result_word(run.verdict), ctx.get("sequence_file") or run.run_id, run.start_us,
                       run.stop_us, _log_text(run.diagnostics), run_excinfo(run)),
        "outcome": run.verdict,
        **_run_fields(run),
        "test_phase": ctx.get("test_phase"),
        "operator_name": ctx.get("operator_name"),
        "retries": run.retries,
        "steps": counts,
        "error": run.cause(),
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
                        step.attempts.append({"index": e["vector_index"], "retry": e.get("retry", 0),
                                              "outcome": e["outcome"], "error": e.get("error")})
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
            elif t == ev.ERROR or t == ev.WARNING or t == ev.LOG:
                if run is not None:
                    step = run.open_steps.get(e.get("step_path") or "")
                    (step.diagnostics if step is not None else run.diagnostics).append(e)
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
