"""The run recorder: the one imperative layer every front door drives.

A :class:`Run` records one DUT's test on a :class:`~litmus_seq.run.session.Session`: it emits the
events (DESIGN §5), judges measurements against limits, stamps traceability, rolls outcomes up and
seals the run with the verdict rules (DESIGN §6). It knows nothing of YAML: the YAML executor
(:mod:`litmus_seq.run.executor`), the harness, the Robot library, the results client and the
HTTP server all call the same methods. See ``docs/recorder.md`` for a guide.

The verdict rules, in code:

* the run's outcome is undecided until :meth:`Run.finish`;
* a run whose every planned step finished (:meth:`Run.discover` declares the plan) is rolled up
  from its steps (``passed`` if nothing worse than ``passed``/``done``/``skipped``);
* any other end is ``errored`` (an exception of any kind escaped, a plugin failed handling
  events, a step was left open, planned steps never ran) or ``terminated`` (Ctrl-C, SIGTERM, an
  operator stop, a prompt answered "abort"), with the cause in ``run_error``;
* a prompt with no answer (no answerer, timeout) is ``errored``; only an operator's "no" fails.
"""

from __future__ import annotations

import platform
import socket
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litmus_seq import events as ev
from litmus_seq import outcomes as oc
from litmus_seq.errors import LitmusError, StepAborted, SubscriberError, Terminated
from litmus_seq.run.context import StepContext

__all__ = ["Run", "RunResult"]

_SEVERITY = oc.SEVERITY
_PASSED, _FAILED, _ERRORED, _DONE, _SKIPPED, _TERMINATED = (
    oc.PASSED, oc.FAILED, oc.ERRORED, oc.DONE, oc.SKIPPED, oc.TERMINATED,
)
_STEP_STARTED, _STEP_ENDED, _VECTOR_STARTED, _VECTOR_ENDED, _MEASUREMENT = (
    ev.STEP_STARTED, ev.STEP_ENDED, ev.VECTOR_STARTED, ev.VECTOR_ENDED, ev.MEASUREMENT,
)


@dataclass(slots=True)
class RunResult:
    """What a sealed run leaves behind.

    ``outcome`` is the sealed outcome (``run.ended``), ``error`` its cause (``run_error``),
    ``files`` what the stores wrote for the run (``litmus_seq_run_sealed``), ``parquet`` the run
    file among them.
    """

    run_id: str
    outcome: str
    parquet: Path | None
    step_outcomes: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The CLI exit code of the sealed outcome (0 passed, 1 failed, 2 terminated, 3 errored)."""
        return oc.exit_code(self.outcome)


# An open step is a list (the cheapest record to make: one per step on the hot path):
# [path, name, worst, error, last_index, last_outcome, last_error, worst_child, outcome, reason].
# ``worst``/``error`` fold the vectors that ended; the attempts of one vector come one after
# another and only its last counts, so the latest vector waits in ``last_*`` until the next
# vector or the step's end. ``worst_child`` folds child steps (groups); ``outcome``/``reason``
# come from fail()/error() outside a vector.
_PATH, _NAME, _WORST, _ERROR, _LAST_INDEX, _LAST_OUTCOME, _LAST_ERROR, _WORST_CHILD, _OUTCOME, _REASON = range(10)


def _fold(st: list[Any]) -> None:
    """Fold the step's last vector into its worst outcome and error."""
    vo, verr = st[_LAST_OUTCOME], st[_LAST_ERROR]
    if _SEVERITY[vo] > _SEVERITY[st[_WORST]]:
        st[_WORST], st[_ERROR] = vo, verr or st[_ERROR]
    elif verr and st[_ERROR] is None:
        st[_ERROR] = verr
    st[_LAST_INDEX] = None


def _end_vector_in(st: list[Any], index: int, outcome: str, error: str | None) -> None:
    if st[_LAST_INDEX] is not None and st[_LAST_INDEX] != index:
        _fold(st)
    st[_LAST_INDEX], st[_LAST_OUTCOME], st[_LAST_ERROR] = index, outcome, error


def classify(exc: BaseException) -> tuple[str, str]:
    """``(outcome, message)`` for an exception that ends a step or a run."""
    if isinstance(exc, KeyboardInterrupt):
        return _TERMINATED, "terminated by operator"
    if isinstance(exc, Terminated):
        return _TERMINATED, str(exc) or "terminated"
    if isinstance(exc, LitmusError):
        return _ERRORED, str(exc)
    return _ERRORED, f"{type(exc).__name__}: {exc}"


class Run:
    """One run (one DUT) being recorded. Made by :meth:`Session.start_run`, which emits
    ``run.started`` with the run context:

    ``dut_serial``; ``product`` (a :class:`~litmus_seq.models.Product`, whose specs judge
    measurements by name, or a product id); ``guardband_pct`` (applied to spec limits);
    ``operator``; ``phase``; ``custom`` (``custom_<key>`` columns); ``dut`` (``part_number``,
    ``revision``, ``lot_number``); ``sequence`` (``name``, ``version``, ``file``,
    ``project_name``, ``git_commit``, ``git_branch``, ``plan`` — the plan's JSON text);
    ``names`` (values ``StepContext["x"]`` reads: variables); ``limits`` (a callable
    ``(step_path, params, name) -> ResolvedLimit | None`` consulted before the product's specs).

    The step and vector methods come in two forms: context managers (:meth:`step`,
    :meth:`vector`) that always close what they opened, and the ``begin_*``/``end_*`` pairs the
    YAML executor uses on its hot path. Use the run itself as a context manager, or call
    :meth:`finish`: either way the run is sealed exactly once.
    """

    def __init__(
        self,
        session: Any,
        *,
        dut_serial: str | None = None,
        product: Any = None,
        guardband_pct: float = 0.0,
        operator: str | None = None,
        phase: str | None = None,
        custom: Mapping[str, Any] | None = None,
        dut: Mapping[str, Any] | None = None,
        sequence: Mapping[str, Any] | None = None,
        names: Mapping[str, Any] | None = None,
        limits: Callable[[str, Mapping[str, Any], str], Any] | None = None,
        run_id: str | None = None,
        selection: str | None = None,
    ) -> None:
        self.session = session
        self.bus: ev.EventBus = session.bus
        self.run_id = run_id or uuid.uuid4().hex
        self.product = product if not isinstance(product, str) else None
        self.guardband_pct = float(guardband_pct or 0.0)
        #: what expressions and ``StepContext["x"]`` read: variables, then earlier results
        self.names: dict[str, Any] = dict(names or {})
        self.step_outcomes: dict[str, str | None] = {}
        self.outcome: str | None = None  # undecided until finish()
        #: the cause of an errored or terminated end (``run_error``), set when sealed
        self.run_error: str | None = None
        self.result: RunResult | None = None
        self.pins: dict[str, str] = dict(getattr(self.product, "pins", None) or {})
        self.fixture_connections: dict[str, str] = dict(getattr(self.product, "fixture_connections", None) or {})
        self._limits = limits
        self._planned: list[str] | None = None
        self._stack: list[list[Any]] = []  # open steps, innermost last (see _PATH...)
        self._ctx: StepContext | None = None
        #: ``(outcome, message)`` of what ended the run early, or ``None``: executors stop
        #: starting steps (cleanup aside) once it is set
        self.cause: tuple[str, str] | None = None
        self._stopped: str | None = None
        self._failed: str | None = None  # fail() outside any step: the run failed, this is why
        self._announced: set[str] = set()
        self._limit_dicts: dict[int, dict[str, Any]] = {}
        self._held: list[Any] = []
        self._explicit: dict[Any, Any] = {}
        self._spec_cache: dict[Any, Any] = {}
        self._index = 0
        self.live = session.live
        # the hot path stamps its own events (EventBus.push): one dict literal per event
        self._sid = session.session_id
        self._next_seq = self.bus.next_seq
        self._clock_ns = self.bus.clock_ns
        self._push = self.bus.push
        self._pins_get = self.pins.get
        self._fixture_get = self.fixture_connections.get
        self.bus.run_id = self.run_id
        self.bus.emit(ev.RUN_STARTED, **self._context(dut_serial, product, operator or session.operator, phase,
                                                      dict(custom or {}), dict(dut or {}), dict(sequence or {})),
                      run_selection=selection)

    def _context(self, dut_serial: str | None, product: Any, operator: str | None, phase: str | None,
                 custom: dict[str, Any], dut: dict[str, Any], seq: dict[str, Any]) -> dict[str, Any]:
        from litmus_seq import __version__

        station = self.session.station
        model = self.product
        return dict(
            dut_serial=dut_serial,
            dut_part_number=dut.get("part_number") or getattr(model, "part_number", None),
            dut_revision=dut.get("revision") or getattr(model, "revision", None),
            dut_lot_number=dut.get("lot_number"),
            product_id=product if isinstance(product, str) else getattr(model, "id", None),
            product_name=getattr(model, "name", None),
            product_revision=getattr(model, "revision", None),
            station_id=getattr(station, "id", None),
            station_name=getattr(station, "name", None),
            station_hostname=socket.gethostname(),
            fixture_id=getattr(station, "fixture_id", None),
            slot_id=None,
            operator_id=operator,
            operator_name=operator,
            test_phase=phase,
            project_name=seq.get("project_name"),
            sequence_name=seq.get("name"),
            sequence_version=None if seq.get("version") is None else str(seq["version"]),
            sequence_file=seq.get("file"),
            git_commit=seq.get("git_commit"),
            git_branch=seq.get("git_branch"),
            python_version=platform.python_version(),
            litmus_seq_version=__version__,
            custom=custom,
            plan=seq.get("plan"),
        )

    # -- the run as a whole --------------------------------------------------------------------

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.abort(exc)
        self.finish()

    def discover(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Declare the planned steps (``test.steps_discovered``): one mapping per step with
        ``step_path`` and, as known, ``node_id``, ``parent_path``, ``step_index``, ``name``,
        ``kind``, ``phase``, ``file``, ``line``, ``vector_count``. A run passes only if every
        planned step finished."""
        items = items if isinstance(items, list) else list(items)
        self._planned = [i["step_path"] for i in items]
        self.bus.emit(ev.STEPS_DISCOVERED, items=items)
        self.bus.flush()

    @property
    def depth(self) -> int:
        """How many steps are open (0 outside any step; groups nest)."""
        return len(self._stack)

    def instrument(self, role: str) -> Any:
        """The driver of ``role``: connected on first use and announced in this run
        (``fixture.instrument_connected``: identity and calibration for the traceability columns).
        A role the run never uses is never connected."""
        driver = self.session.instruments.get(role)
        if driver is None or role not in self._announced:
            driver = self.session.connect(role)
            self._announced.add(role)
            self.bus.emit(ev.INSTRUMENT_CONNECTED, **self.session.instrument_info[role])
        return driver

    def call(self, role: str, method: str, /, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """``role.method(*args, **kwargs)`` under a timeout: ``timeout_s``, else the role's, else
        the station's (:mod:`litmus_seq.run.watchdog`); an overrun raises
        :class:`~litmus_seq.errors.InstrumentTimeout`, which errors the open vector."""
        fn = getattr(self.instrument(role), method)
        watchdog = self.session.watchdog
        seq = watchdog.begin(f"{role}.{method}", timeout_s or self.session.timeout_for(role))
        try:
            return fn(*args, **kwargs)
        finally:
            watchdog.end(seq)

    def stop(self, reason: str) -> None:
        """No further steps will run, on purpose (``on_fail: stop``, a failed setup): the steps
        left stay unrun (NULL) and the run is judged on the steps that ran — and errored if
        those would have passed."""
        self._stopped = reason

    def abort(self, exc: BaseException, note: str | None = None) -> None:
        """Record what ended the run early (the first cause wins; ``note`` is added to it) and
        close the vector and the steps still open with the matching outcome (``terminated`` or
        ``errored``)."""
        outcome, message = classify(exc)
        if self.cause is None and not isinstance(exc, (KeyboardInterrupt, Terminated, SubscriberError)):
            self._diagnose(exc, self._stack[-1][_PATH] if self._stack else None)
        if self.cause is None:
            self.cause = (outcome, message)
        if note:
            self.cause = (self.cause[0], self.cause[1] + note)
        self._close_open(outcome, message)

    def _close_open(self, outcome: str, message: str) -> None:
        if self._ctx is not None:
            self.end_vector(outcome, message, flush=False)
        while self._stack:
            self.end_step(outcome, message, flush=False)

    def finish(self) -> RunResult:
        """Seal the run: decide the outcome (module docstring), emit ``run.ended``, deliver it
        and ask the stores what they wrote (``litmus_seq_run_sealed``). Idempotent; interrupts
        are held while sealing."""
        if self.result is not None:
            return self.result
        bus = self.bus
        bus.delivering += 1  # hold signals: the seal must not be cut in half
        late: SubscriberError | None = None
        try:
            if self._stack or self._ctx is not None:
                self._close_open(_ERRORED, "the run ended while a step was still running")
                if self.cause is None:
                    self.cause = (_ERRORED, "the run ended while a step was still running")
            try:
                bus.flush()
                self.session.pm.hook.litmus_seq_run_ending(run_id=self.run_id)
            except BaseException as exc:  # noqa: BLE001 - a store or plugin failing on the last steps
                if self.cause is None:
                    self.cause = classify(exc)
            self.outcome, self.run_error = self._decide()
            bus.emit(ev.RUN_ENDED, outcome=self.outcome, error=self.run_error)
            try:
                bus.flush()
            except SubscriberError as exc:  # sealed already: the verdict stands, the fault is told
                late = exc
            except (KeyboardInterrupt, Terminated):
                pass
            bus.run_id = None
        finally:
            bus.delivering -= 1
            bus.pending_signal = None  # a stop during the seal: the run is sealed, nothing to stop
        self.session.last_outcome = self.outcome
        if late is not None:
            bus.emit(ev.WARNING, message=f"after the run was sealed: {late}", step_path=None)
        files: list[Path] = []
        for got in self.session.pm.hook.litmus_seq_run_sealed(run_id=self.run_id, outcome=self.outcome):
            files.extend([got] if isinstance(got, (str, Path)) else got)
        files = [Path(f) for f in files]
        parquet = next((f for f in files if f.suffix == ".parquet"), None)
        self.result = RunResult(self.run_id, self.outcome, parquet, self.step_outcomes, self.run_error, files)
        return self.result

    def _decide(self) -> tuple[str, str | None]:
        rolled = oc.run_outcome(self.step_outcomes.values())
        if self._failed is not None and _SEVERITY[rolled] < _SEVERITY[_FAILED]:
            rolled = _FAILED
        cause = self.cause
        if cause is None and self.bus.failures:
            cause = classify(SubscriberError(*self.bus.failures[0]))
        if cause is not None:
            return oc.worst(cause[0], rolled) or cause[0], cause[1]
        planned = self._planned if self._planned is not None else list(self.step_outcomes)
        unrun = [p for p in planned if p not in self.step_outcomes]
        if unrun and (self._stopped is None or rolled == _PASSED):
            shown = ", ".join(unrun[:3]) + (f" and {len(unrun) - 3} more" if len(unrun) > 3 else "")
            why = f" ({self._stopped})" if self._stopped else ""
            return _ERRORED, f"the run ended before {len(unrun)} planned step(s) ran{why}: {shown}"
        return rolled, (self._failed if rolled == _FAILED else None)

    # -- steps ---------------------------------------------------------------------------------

    def begin_step(self, step_path: str, step_index: int | None = None, node_id: str | None = None,
                   name: str | None = None, kind: str = "test", vector_count: int = 1) -> None:
        """Open a step (``test.step_started``); steps nest (a group's children inside it)."""
        if name is None:
            name = step_path.rsplit("/", 1)[-1]
        if step_index is None:
            planned = self._planned
            step_index = planned.index(step_path) if planned and step_path in planned else self._index
        self._index = step_index + 1
        self._push({"event_type": _STEP_STARTED, "session_id": self._sid, "run_id": self.run_id,
                    "seq": self._next_seq(), "timestamp": self._clock_ns() // 1000, "step_path": step_path,
                    "step_index": step_index, "node_id": node_id or step_path, "name": name, "kind": kind,
                    "vector_count": vector_count})
        self._stack.append([step_path, name, None, None, None, None, None, None, None, None])
        if self.live:
            self.bus.flush()

    def end_step(self, outcome: str | None = None, error: str | None = None, *, flush: bool = True) -> str:
        """Close the innermost step (``test.step_ended``) and return its outcome: the worst of
        its vectors (each by its last attempt) and child steps, ``done`` if it had neither, and
        at least ``outcome`` when given; ``error`` overrides the error of the worst vector."""
        if self._ctx is not None:
            self.end_vector(flush=False)
        st = self._stack.pop()
        if st[_LAST_INDEX] is not None:
            if st[_WORST] is None:  # the usual step: one vector, nothing folded yet
                worst, err = st[_LAST_OUTCOME], st[_LAST_ERROR]
            else:
                _fold(st)
                worst, err = st[_WORST], st[_ERROR]
        else:
            worst, err = st[_WORST], st[_ERROR]
        child = st[_WORST_CHILD]
        if child is not None and _SEVERITY[child] > _SEVERITY[worst]:
            worst, err = child, None
        if st[_OUTCOME] is not None and _SEVERITY[st[_OUTCOME]] > _SEVERITY[worst]:
            worst, err = st[_OUTCOME], st[_REASON]
        if outcome is not None and _SEVERITY[outcome] >= _SEVERITY[worst]:
            worst = outcome
        if error is not None:
            err = error
        if worst is None:
            worst = _DONE
        path = st[_PATH]
        self._push({"event_type": _STEP_ENDED, "session_id": self._sid, "run_id": self.run_id,
                    "seq": self._next_seq(), "timestamp": self._clock_ns() // 1000, "step_path": path,
                    "outcome": worst, "error": err})
        self.step_outcomes[path] = worst
        if self._stack:
            parent = self._stack[-1]
            if _SEVERITY[worst] > _SEVERITY[parent[_WORST_CHILD]]:
                parent[_WORST_CHILD] = worst
        if flush:
            self.bus.flush()
        return worst

    @contextmanager
    def step(self, name: str, *, path: str | None = None, node_id: str | None = None,
             kind: str = "test", index: int | None = None, vector_count: int = 1) -> Iterator[Run]:
        """``with run.step("output_voltage"):`` — a step that always ends, with at least one
        vector (index 0, opened by the first measurement or at the end). An ``Exception``
        inside makes the step ``errored`` (recorded with its traceback) and is not raised
        further: the next step runs. Anything else (Ctrl-C, ``SystemExit``) ends the step and
        the run, and is raised on."""
        if path is None:
            parent = self._stack[-1][_PATH] if self._stack else "main"
            path = f"{parent}/{name}"
        self.begin_step(path, index, node_id, name, kind, vector_count)
        try:
            yield self
        except StepAborted:
            pass
        except Exception as exc:
            self.error(exc)
        except BaseException as exc:
            self.abort(exc)
            raise
        if self._stack and self._stack[-1][_PATH] == path:
            st = self._stack[-1]
            if st[_LAST_INDEX] is None and st[_WORST] is None and st[_WORST_CHILD] is None and self._ctx is None:
                self.begin_vector()  # a step is tested in at least one vector (index 0)
            self.end_step()

    # -- vectors -------------------------------------------------------------------------------

    def begin_vector(self, params: Mapping[str, Any] | None = None, index: int = 0, retry: int = 0) -> StepContext:
        """Open a vector (one set of parameters; ``retry`` counts attempts from 0) of the innermost
        step; returns the :class:`StepContext` user code receives."""
        if self._ctx is not None:
            self.end_vector(flush=False)
        path = self._stack[-1][_PATH]
        params = params if params is not None else {}
        self._push({"event_type": _VECTOR_STARTED, "session_id": self._sid, "run_id": self.run_id,
                    "seq": self._next_seq(), "timestamp": self._clock_ns() // 1000, "step_path": path,
                    "vector_index": index, "retry": retry, "params": params})
        ctx = self._ctx = StepContext(self, params, path, index, retry)
        return ctx

    def end_vector(self, outcome: str | None = None, error: str | None = None, *, flush: bool = False) -> str:
        """Close the open vector (``test.vector_ended``); returns its outcome: the worst of its
        measurements, ``fail``/``error`` calls and ``outcome``."""
        ctx = self._ctx
        assert ctx is not None, "end_vector() without begin_vector()"
        self._ctx = None
        o = ctx.outcome
        if outcome is not None and _SEVERITY[outcome] > _SEVERITY[o]:
            o = outcome
        if error is None:
            error = ctx.reason
            if error is None and (o == _FAILED or o == _ERRORED):
                error = ctx.failure
        self._push({"event_type": _VECTOR_ENDED, "session_id": self._sid, "run_id": self.run_id,
                    "seq": self._next_seq(), "timestamp": self._clock_ns() // 1000, "step_path": ctx.step_path,
                    "vector_index": ctx.vector_index, "retry": ctx.retry, "outcome": o, "error": error})
        _end_vector_in(self._stack[-1], ctx.vector_index, o, error)
        if flush:
            self.bus.flush()
        return o

    def skip_vector(self, params: Mapping[str, Any] | None = None, index: int = 0, reason: str | None = None) -> None:
        """Record a vector considered and not run (a ``when:`` that is false): ``skipped``."""
        path = self._stack[-1][_PATH]
        self.bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=index, retry=0, params=params or {})
        self.bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=index, retry=0, outcome=_SKIPPED, error=reason)
        _end_vector_in(self._stack[-1], index, _SKIPPED, reason)

    @contextmanager
    def vector(self, params: Mapping[str, Any] | None = None, *, index: int = 0,
               retry: int = 0) -> Iterator[StepContext]:
        """``with run.vector({"vin": 5.0}, index=0) as ctx:`` — a vector that always ends.
        Exceptions are handled as in :meth:`step` (an ``Exception`` makes the vector errored)."""
        ctx = self.begin_vector(params, index, retry)
        try:
            yield ctx
        except StepAborted:
            pass
        except Exception as exc:
            self.error(exc)
        except BaseException as exc:
            self.abort(exc)
            raise
        if self._ctx is ctx:
            self.end_vector()

    @property
    def open_vector(self) -> tuple[str, int] | None:
        """``(step_path, vector_index)`` of the open vector, or ``None``."""
        ctx = self._ctx
        return None if ctx is None else (ctx.step_path, ctx.vector_index)

    def _current(self) -> StepContext:
        ctx = self._ctx
        if ctx is None:
            if not self._stack:
                raise LitmusError("nothing to record into: open a step first (run.step(...) or begin_step())")
            ctx = self.begin_vector()
        return ctx

    # -- results -------------------------------------------------------------------------------

    def measure(self, name: str, value: Any, *, units: str | None = None, limit: Any = None,
                dut_pin: str | None = None, instrument: str | None = None, channel: str | None = None,
                verdict: str | None = None) -> str:
        """Record and judge a measurement in the open vector (opened with index 0 if the step has
        none); returns its outcome. The limit is ``limit`` if given (a :class:`~litmus_seq.limits.Limit`,
        its YAML form as a dict, or a resolved limit), else the run's ``limits`` callable, else
        the product's spec of that name with the run's guardband (band chosen by the vector's
        parameters), else none: recorded unjudged, ``done``."""
        return self.measure_in(self._current(), name, value, units=units, limit=limit, dut_pin=dut_pin,
                               instrument=instrument, channel=channel, verdict=verdict)

    def measure_in(self, ctx: StepContext, name: str, value: Any, *, units: str | None = None, limit: Any = None,
                   dut_pin: str | None = None, instrument: str | None = None, channel: str | None = None,
                   verdict: str | None = None) -> str:
        """:meth:`measure` into a given vector context (``StepContext.measure``)."""
        if limit is None:
            resolved = self._limits(ctx.step_path, ctx.params, name) if self._limits is not None else None
            if resolved is None:
                resolved = self.spec_limit(name, ctx.params, units)
        else:
            resolved = self._explicit_limit(limit)
        return self.judge(ctx, name, value, resolved, units, instrument, channel, dut_pin, verdict)

    def _explicit_limit(self, limit: Any) -> Any:
        """A limit given to :meth:`measure`, resolved once per distinct value."""
        try:
            key: Any = ("dict", repr(sorted(limit.items()))) if isinstance(limit, dict) else ("obj", id(limit))
        except TypeError:
            return _coerce_limit(limit)
        hit = self._explicit.get(key)
        if hit is None:
            hit = self._explicit[key] = _coerce_limit(limit)
            self._held.append(limit)
        return hit

    def spec_limit(self, name: str, params: Mapping[str, Any], units: str | None = None) -> Any:
        """The product's limit for ``name`` under ``params`` (guardbanded), or ``None``."""
        product = self.product
        spec = product.specs.get(name) if product is not None and getattr(product, "specs", None) else None
        if spec is None:
            return None
        from litmus_seq.limits import resolve_limit, spec_band

        base = f"products.{product.id}.{name}"
        choice = spec_band(spec, params, name=base)
        u = choice.limit.units or spec.units or units
        try:
            key: Any = (name, choice.band, choice.conditions, u)
            hit = self._spec_cache.get(key)
        except TypeError:  # unhashable parameter values: no sharing
            key, hit = None, None
        if hit is None:
            hit = resolve_limit(choice.limit, source="spec", guardband_pct=self.guardband_pct,
                                spec_ref=choice.ref(base), characteristic_id=name, units=u)
            if key is not None:
                self._spec_cache[key] = hit
        return hit

    def judge(self, ctx: StepContext, name: str, value: Any, limit: Any, units: str | None,
              role: str | None, channel: str | None, dut_pin: str | None = None, verdict: str | None = None) -> str:
        """Judge ``value`` against a resolved ``limit`` (or none) and emit ``test.measurement``;
        the per-measurement hot path under :meth:`measure`. ``verdict`` is an outcome judged
        elsewhere (a tool submitting its results), recorded instead of judging. Returns the
        outcome."""
        ctx._measured.add(name)
        text = None
        if value.__class__ is float:
            num = value
        elif isinstance(value, bool):
            num, text = None, "true" if value else "false"
        elif isinstance(value, (int, float)):
            num = float(value)
        elif isinstance(value, str):
            num, text = None, value
        elif value is None:
            num = None
        else:
            try:
                num = float(value)
            except (TypeError, ValueError):
                num, text = None, str(value)
        if limit is None:
            outcome, marginal = (_DONE, False) if (num is not None or text is not None) else (_ERRORED, False)
            ldict = None
        else:
            outcome, marginal = limit.check(value)
            ldict = self._limit_dicts.get(id(limit))
            if ldict is None:  # once per limit object; holding it keeps its id from being reused
                ldict = self._limit_dicts[id(limit)] = limit.as_dict()
                self._held.append(limit)
            if units is None:
                units = limit.units
        if verdict is not None:
            outcome = verdict
        self.names[name] = value
        self._push({
            "event_type": _MEASUREMENT, "session_id": self._sid, "run_id": self.run_id,
            "seq": self._next_seq(), "timestamp": self._clock_ns() // 1000, "step_path": ctx.step_path,
            "vector_index": ctx.vector_index, "retry": ctx.retry, "name": name, "value": num, "text": text,
            "units": units, "outcome": outcome, "marginal": marginal, "limit": ldict, "instrument": role,
            "channel": channel, "dut_pin": dut_pin if dut_pin is not None else self._pins_get(name),
            "fixture_connection": self._fixture_get(name),
        })
        if _SEVERITY[outcome] > _SEVERITY[ctx.outcome]:
            ctx.outcome = outcome
            if ctx.failure is None and (outcome == _FAILED or outcome == _ERRORED):
                ctx.failure = _describe(name, value, units, ldict, outcome)
        return outcome

    def _emit_answer(self, ctx: StepContext, name: str, text: str, outcome: str) -> None:
        self._push({
            "event_type": _MEASUREMENT, "session_id": self._sid, "run_id": self.run_id,
            "seq": self._next_seq(), "timestamp": self._clock_ns() // 1000, "step_path": ctx.step_path,
            "vector_index": ctx.vector_index, "retry": ctx.retry, "name": name, "value": None, "text": text,
            "units": None, "outcome": outcome, "marginal": False, "limit": None, "instrument": None,
            "channel": None, "dut_pin": self.pins.get(name), "fixture_connection": self.fixture_connections.get(name),
        })
        ctx._measured.add(name)
        if _SEVERITY[outcome] > _SEVERITY[ctx.outcome]:
            ctx.outcome = outcome

    @property
    def step_path(self) -> str | None:
        """The path of the innermost open step, or ``None`` outside any step."""
        return self._stack[-1][_PATH] if self._stack else None

    @property
    def step_name(self) -> str | None:
        """The name of the innermost open step, or ``None`` outside any step."""
        return self._stack[-1][_NAME] if self._stack else None

    @property
    def vector_context(self) -> StepContext | None:
        """The open vector's :class:`StepContext`, or ``None`` between vectors."""
        return self._ctx

    def _where(self, scope: str | None) -> tuple[str | None, int | None]:
        """``(step_path, vector_index)`` of ``scope``: ``run``, ``step``, ``vector``, or ``None``
        for the innermost one open."""
        ctx = self._ctx
        if scope is None:
            scope = "vector" if ctx is not None else "step" if self._stack else "run"
        if scope == "vector" and ctx is not None:
            return ctx.step_path, ctx.vector_index
        if scope == "step" and self._stack:
            return self._stack[-1][_PATH], None
        if scope == "run":
            return None, None
        if scope in ("step", "vector"):
            raise LitmusError(f"no {scope} is open: open one first, or give scope='run'")
        raise LitmusError(f"scope {scope!r}: use 'run', 'step' or 'vector'")

    def _kv(self, event_type: str, key: str, value: Any, scope: str | None = None) -> None:
        path, index = self._where(scope)
        self.bus.emit(event_type, step_path=path, vector_index=index, key=key, value=value)

    def record(self, key: str, value: Any, *, scope: str | None = None) -> None:
        """Free-form diagnostic data (JSON-able) on the open vector, step, or the run (or on
        ``scope``: ``run``, ``step``, ``vector``)."""
        self._kv(ev.RECORD, key, value, scope)

    def configure(self, key: str, value: Any, *, scope: str | None = None) -> None:
        """A stimulus value (``in_<key>`` column) of the open vector, step, or the run (or of
        ``scope``); a run's value lands on every row, a step's on that step's rows."""
        self._kv(ev.CONFIGURED, key, value, scope)

    def observe(self, key: str, value: Any, *, scope: str | None = None, channel: bool = True) -> None:
        """An observed value (``out_<key>`` column) of the open vector, step, or the run (or of
        ``scope``); a sequence of numbers goes to the channel store and the column holds its
        ``channel://`` URI, unless ``channel`` is false (the value is written as given)."""
        if channel and (isinstance(value, (list, tuple)) or hasattr(value, "__array__")
                        or type(value).__name__ == "array"):
            value = self.write_channel(key, value, scope=scope)
        self._kv(ev.OBSERVED, key, value, scope)

    def write_channel(self, key: str, values: Any, *, scope: str | None = None) -> str:
        """Store an array through the channel store plugin (``litmus_seq_write_channel``) and
        emit ``channel.started``/``channel.ended``; returns its URI."""
        path, index = self._where(scope)
        got = self.session.pm.hook.litmus_seq_write_channel(run_id=self.run_id, key=key, values=values,
                                                            step_path=path, vector_index=index)
        if got is None:
            raise LitmusError(f"observe({key!r}): no channel store is registered to keep arrays "
                              "(register one with litmus_seq.stores.register_stores)")
        uri, file = got
        self.bus.emit(ev.CHANNEL_STARTED, key=key, uri=uri, step_path=path, vector_index=index)
        self.bus.emit(ev.CHANNEL_ENDED, key=key, uri=uri, length=len(values), path=None if file is None else str(file))
        return uri

    def log(self, *, level: str, logger: str, message: str, file: str | None = None,
            line: int | None = None) -> None:
        """A record of Python's logging (``test.log``) on the open vector, step, or the run
        (:func:`litmus_seq.logging.capture_logs` calls this)."""
        ctx = self._ctx
        if ctx is not None:
            path, index = ctx.step_path, ctx.vector_index
        else:
            path, index = (self._stack[-1][_PATH] if self._stack else None), None
        self.bus.emit(ev.LOG, step_path=path, vector_index=index, level=level, logger=logger, message=message,
                      file=file, line=line)

    def warn(self, message: str) -> None:
        """A ``diagnostic.warning`` on the open step."""
        self.diagnostic(message)

    def diagnostic(self, message: str, *, level: str = "warning") -> None:
        """A ``diagnostic.warning`` (``level="error"``: ``diagnostic.error``) on the open step;
        it changes no outcome (to make the step errored, use :meth:`error`)."""
        if level not in ("warning", "error"):
            raise LitmusError(f"diagnostic level {level!r}: use 'warning' or 'error'")
        self.bus.emit(ev.WARNING if level == "warning" else ev.ERROR, message=message,
                      step_path=self._stack[-1][_PATH] if self._stack else None)

    def fail(self, reason: str) -> None:
        """Fail the open vector (or step; outside any step, the run) with ``reason``: the DUT did
        not meet its test."""
        if self._ctx is None and not self._stack:
            if self._failed is None:
                self._failed = reason
            return
        self._mark(_FAILED, reason)

    def error(self, exc: BaseException | str) -> str:
        """The open vector (or step; outside any step, the run) could not be tested: ``errored``.
        An exception is recorded with its traceback (``diagnostic.error``). Returns the message."""
        path = self._ctx.step_path if self._ctx is not None else (self._stack[-1][_PATH] if self._stack else None)
        if isinstance(exc, SubscriberError):  # the record itself is at stake: the run ends
            message = str(exc)
            if self.cause is None:
                self.cause = (_ERRORED, message)
        elif isinstance(exc, BaseException):
            message = self._diagnose(exc, path)
        else:
            message = exc
            self.bus.emit(ev.ERROR, message=message, step_path=path)
        if self._ctx is None and not self._stack:
            if self.cause is None:
                self.cause = (_ERRORED, message)
        else:
            self._mark(_ERRORED, message)
        return message

    def _mark(self, outcome: str, reason: str) -> None:
        target: Any = self._ctx
        if target is None:
            if not self._stack:
                raise LitmusError(f"{outcome}: nothing to mark; open a step first")
            st = self._stack[-1]
            if _SEVERITY[outcome] >= _SEVERITY[st[_OUTCOME]]:
                st[_OUTCOME], st[_REASON] = outcome, reason
            return
        if _SEVERITY[outcome] > _SEVERITY[target.outcome]:
            target.outcome = outcome
        target.reason = reason

    def _diagnose(self, exc: BaseException, step_path: str | None) -> str:
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LitmusError) else str(exc)
        self.bus.emit(ev.ERROR, message=message, step_path=step_path, exception_type=type(exc).__name__,
                      traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return message

    # -- prompts -------------------------------------------------------------------------------

    def prompt(self, message: str, *, type: str = "confirm", choices: Iterable[str] = (),
               timeout_s: float | None = None, name: str | None = None) -> Any:
        """Ask the operator through the ``litmus_seq_prompt`` answerers and record the answer as
        a measurement ``name`` (default: the step's name): a confirm is ``passed``/``failed``
        by the answer, choice and input answers are ``done``. No answer (no answerer, a timeout)
        makes the vector ``errored`` and raises :class:`~litmus_seq.errors.StepAborted`; the
        answer "abort" raises :class:`~litmus_seq.errors.Terminated`. Returns the answer."""
        from litmus_seq.prompts import ABORT, TIMED_OUT

        ctx = self._current()
        prompt = {
            "prompt_id": uuid.uuid4().hex,
            "step_path": ctx.step_path,
            "message": message,
            "prompt_type": type,
            "choices": list(choices),
            "timeout_s": timeout_s,
        }
        self.bus.emit(ev.DIALOG_OPENED, **prompt)
        self.bus.flush()
        answer = self.session.pm.hook.litmus_seq_prompt(prompt=prompt)
        timed_out = answer is TIMED_OUT
        self.bus.emit(ev.DIALOG_RESPONDED, prompt_id=prompt["prompt_id"],
                      response=None if timed_out or answer is None else answer, responder=None, timed_out=timed_out)
        if answer is None or timed_out:
            if answer is None:
                why = ("no answer: no prompt handler (run on a terminal, pass --yes, or install a "
                       "litmus_seq_prompt plugin)")
            else:  # an answerer may time out on its own clock, without timeout_s
                why = "prompt timed out" + (f" after {timeout_s:g} s" if timeout_s else "")
            self._mark(_ERRORED, why)
            raise StepAborted(why)
        if answer == ABORT:
            raise Terminated("operator answered 'abort'")
        name = name or self._stack[-1][_NAME]
        if type == "confirm":
            ok = bool(answer)
            self._emit_answer(ctx, name, "true" if ok else "false", _PASSED if ok else _FAILED)
        else:
            self.names[name] = answer
            self._emit_answer(ctx, name, str(answer), _DONE)
        return answer


def _describe(name: str, value: Any, units: str | None, ldict: dict[str, Any] | None, outcome: str) -> str:
    """One readable line for a bad measurement: ``rail = 3.6 V > high 3.45`` (the reporters' own)."""
    from litmus_seq.reporters.render import measurement_failure

    num = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    text = None if num is not None or value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return measurement_failure({"name": name, "value": num, "text": text, "units": units, "limit": ldict,
                                "outcome": outcome})


def _coerce_limit(limit: Any) -> Any:
    from litmus_seq.limits import coerce_limit

    return coerce_limit(limit)  # (a Limit, a dict of the YAML form, a resolved limit, or "none")
