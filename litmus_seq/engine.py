"""The engine: runs a :class:`~litmus_seq.plan.Plan` on a station and emits the event stream.

A :class:`Session` owns one station (its connected instruments), one plugin manager and one event
stream; it runs one or more plans (runs). Everything downstream — the event store, the run
materializer, the console — is a plugin subscribed to the events, so the CLI, the Robot library
and the harness all get the same stores by driving this one class.

Failure semantics (PARQUET.md outcomes):

* a failing limit → ``failed``; an exception in an action or user code, an instrument fault or
  timeout, an unjudgeable value or a declared measurement that was never recorded → ``errored``
  (message and traceback in a ``diagnostic.error`` event), never a crash of the sequencer;
* ``KeyboardInterrupt`` / SIGTERM / a prompt answered "abort" → the step in flight is
  ``terminated``, the rest never runs, cleanup runs, the run is sealed ``terminated``; a second
  interrupt during cleanup stops the cleanup but the run is still sealed;
* cleanup always runs once setup has started: after failures, errors and interrupts.
"""

from __future__ import annotations

import gc
import importlib
import platform
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litmus_seq import events as ev
from litmus_seq import outcomes as oc
from litmus_seq.context import StepContext
from litmus_seq.drivers.admit import admit
from litmus_seq.drivers.calibration import gate as calibration_gate
from litmus_seq.errors import ConfigError, DriverError, InstrumentError, LitmusError, Location, Problem
from litmus_seq.plan import Plan, PlannedAction, PlannedStep
from litmus_seq.prompts import ABORT, TIMED_OUT
from litmus_seq.suggest import did_you_mean

__all__ = ["RunResult", "Session", "Terminated"]

_SEVERITY = oc.SEVERITY
_PASSED, _FAILED, _ERRORED, _DONE, _SKIPPED, _TERMINATED = (
    oc.PASSED, oc.FAILED, oc.ERRORED, oc.DONE, oc.SKIPPED, oc.TERMINATED,
)
_GOOD = frozenset((_PASSED, _DONE, _SKIPPED))
_STEP_STARTED, _STEP_ENDED, _VECTOR_STARTED, _VECTOR_ENDED, _MEASUREMENT = (
    ev.STEP_STARTED, ev.STEP_ENDED, ev.VECTOR_STARTED, ev.VECTOR_ENDED, ev.MEASUREMENT,
)
time_ns = time.time_ns
#: Allocations between young garbage collections while a run executes (CPython's default: 700).
RUN_GC_THRESHOLD = 50_000


class Terminated(BaseException):
    """The operator stopped the run (SIGTERM, a prompt answered "abort").

    A ``BaseException`` like ``KeyboardInterrupt`` so that user code catching ``Exception`` cannot
    swallow the operator's stop.
    """


class _StepAborted(Exception):
    """A vector outcome decided inside an action (prompt timeout, unknown answer)."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(slots=True)
class RunResult:
    """What a run leaves behind: its id, outcome and the parquet file the materializer wrote."""

    run_id: str
    outcome: str
    parquet: Path | None
    step_outcomes: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return oc.exit_code(self.outcome)


def _now_us() -> int:
    return time.time_ns() // 1000


def _git_info(root: Path) -> tuple[str | None, str | None]:
    """Commit and branch of the project, read from ``.git`` directly (no subprocess)."""
    for folder in (root, *root.parents):
        git = folder / ".git"
        if git.is_dir():
            try:
                head = (git / "HEAD").read_text().strip()
                if head.startswith("ref: "):
                    ref = head[5:]
                    branch = ref.rsplit("/", 1)[-1] if ref.startswith("refs/heads/") else None
                    ref_file = git / ref
                    if ref_file.exists():
                        return ref_file.read_text().strip(), branch
                    packed = git / "packed-refs"
                    if packed.exists():
                        for line in packed.read_text().splitlines():
                            if line.endswith(" " + ref):
                                return line.split(" ", 1)[0], branch
                    return None, branch
                return head, None
            except OSError:
                return None, None
    return None, None


def _import_callable(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    fn = getattr(module, attr)
    if not callable(fn):
        raise TypeError(f"{spec} is not callable")
    return fn


class Session:
    """One station, one plugin manager, one event stream; runs plans.

    Use as a context manager (or call :meth:`open` / :meth:`close`)::

        with Session(project=ctx, station=station, data_dir=Path("data")) as session:
            result = session.run(plan, dut_serial="SN001")
    """

    def __init__(
        self,
        *,
        project: Any,
        station: Any,
        data_dir: Path,
        pm: Any = None,
        plugins: Iterable[str] = (),
        mock_roles: Iterable[str] = (),
        operator: str | None = None,
        auto_confirm: bool = False,
        listeners: Iterable[Any] = (),
        live: bool = False,
        station_doc: Any = None,
        allow_expired_cal: bool = False,
    ) -> None:
        from litmus_seq.plugins import get_plugin_manager

        self.project = project
        self.station = station
        #: the station's loader Document, so preflight can point at its ``driver:`` lines
        self.station_doc = station_doc
        #: run on instruments whose calibration expired (recorded on every row they touch)
        self.allow_expired_cal = allow_expired_cal
        #: calibration due soon (or expired and allowed), found by preflight; the CLI prints them
        self.calibration_warnings: list[str] = []
        self.data_dir = Path(data_dir)
        self.pm = pm if pm is not None else get_plugin_manager(project_root=project.root, extra=tuple(plugins))
        self.mock_roles = set(mock_roles)
        self.operator = operator
        self.auto_confirm = auto_confirm
        self.session_id = uuid.uuid4().hex
        self.instruments: dict[str, Any] = {}
        self.instrument_info: dict[str, dict[str, Any]] = {}
        self.live = live
        self._listeners = list(listeners)
        self._registered: list[Any] = []
        self._registry: Any = None
        self.bus: ev.EventBus | None = None
        self.channels: Any = None
        self.materializer: Any = None
        self.last_outcome: str = oc.PASSED
        self._open = False
        self._callables: dict[str, Callable[..., Any]] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _register(self, plugin: Any, name: str) -> None:
        from litmus_seq.plugins import register_builtin

        register_builtin(self.pm, plugin, name)
        self._registered.append(plugin)

    def open(self) -> None:
        """Open the stores, subscribe them, emit ``session.started``."""
        from litmus_seq.plugins import direct_caller, plugin_info
        from litmus_seq.stores import use_system_allocator
        from litmus_seq.stores.channels import ChannelStore
        from litmus_seq.stores.events import EventStore
        from litmus_seq.stores.materializer import RunMaterializer

        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{self.data_dir}: cannot create the data folder ({exc.strerror or exc}); "
                              "give a writable --data-dir or set LITMUS_DATA_DIR") from exc
        use_system_allocator()
        self.event_store = EventStore(self.data_dir)
        self.materializer = RunMaterializer(self.data_dir)
        self.channels = ChannelStore(self.data_dir)
        self._register(self.event_store, "litmus_seq.event_store")
        self._register(self.materializer, "litmus_seq.materializer")
        if self.auto_confirm:
            from litmus_seq.prompts import AutoConfirm

            self._register(AutoConfirm(), "litmus_seq.auto_confirm")
        for i, listener in enumerate(self._listeners):
            self._register(listener, f"litmus_seq.listener.{i}")
        hook = self.pm.hook
        deliver_one = hook.litmus_seq_event if hook.litmus_seq_event.get_hookimpls() else None
        self.bus = ev.EventBus(self.session_id, direct_caller(hook.litmus_seq_events), deliver_one)
        st = self.station
        hook.litmus_seq_session_start(session=self)
        self.bus.emit(
            ev.SESSION_STARTED,
            station_id=getattr(st, "id", None),
            station_name=getattr(st, "name", None),
            station_hostname=socket.gethostname(),
            operator_name=self.operator,
            litmus_seq_version=_version(),
            python_version=platform.python_version(),
            platform=platform.platform(),
            plugins=[{k: v for k, v in p.items() if k != "hooks"} for p in plugin_info(self.pm)],
        )
        self.bus.flush()
        self._open = True

    def close(self) -> None:
        """Disconnect instruments, emit ``session.ended``, seal and unsubscribe the stores."""
        if not self._open:
            return
        self._open = False
        bus = self.bus
        assert bus is not None
        try:
            bus.run_id = None
            for role in list(self.instruments):
                err = None
                try:
                    self.instruments[role].close()
                except Exception as exc:  # a failing close must not lose the session's events
                    err = f"{type(exc).__name__}: {exc}"
                bus.emit(ev.INSTRUMENT_DISCONNECTED, role=role, error=err)
            self.instruments.clear()
            visa = sys.modules.get("litmus_seq.drivers.visa")
            if visa is not None:  # only if an instrument ever opened one (no pyvisa import otherwise)
                try:
                    visa.close_resource_managers()
                except Exception as exc:
                    bus.emit(ev.WARNING, message=f"closing VISA resource managers: {exc}", step_path=None)
            try:
                self.pm.hook.litmus_seq_session_finish(session=self, outcome=self.last_outcome)
            finally:
                bus.emit(ev.SESSION_ENDED, outcome=self.last_outcome)
                bus.flush()
        finally:
            for plugin in reversed(self._registered):
                close = getattr(plugin, "close", None)
                try:
                    if close is not None:
                        close()
                finally:
                    self.pm.unregister(plugin)
            self._registered.clear()

    # -- instruments ---------------------------------------------------------------------------

    def _driver_registry(self) -> Any:
        if self._registry is None:
            from litmus_seq.drivers.registry import collect_drivers

            self._registry = collect_drivers(self.pm)
        return self._registry

    def _instrument_config(self, role: str) -> Any:
        return self.station.instruments[role]

    def _driver_class(self, role: str) -> tuple[type, bool]:
        cfg = self._instrument_config(role)
        mocked = role in self.mock_roles or cfg.driver == "mock"
        return self._driver_registry().get("mock" if mocked else cfg.driver), mocked

    def preflight(self, plan: Plan) -> None:
        """Check, before touching hardware, that every role, method and callable exists (exit 4)."""
        station = self.station
        problems: list[Problem] = []
        roles = set(station.instruments) if station is not None else set()
        called = [a for s in plan.steps for a in s.actions if a.role is not None]
        if station is None and called:
            names = ", ".join(sorted({a.role for a in called}))  # type: ignore[misc]
            raise DriverError(problems=[Problem(
                Location(plan.sequence_file),
                f"no station: the sequence calls instruments ({names}); give --station ID, or "
                "`station:` in the sequence or in litmus.yaml")])
        for role in sorted(self.mock_roles - roles):
            problems.append(Problem(Location(f"--mock {role}"), f"unknown role '{role}'" + did_you_mean(role, roles)
                                    + f"; the station's roles are: {', '.join(sorted(roles)) or '(none)'}"))
        bad_roles: set[str] = set()
        if station is not None and self.station_doc is not None:
            from litmus_seq.drivers.registry import station_driver_problems

            registry = self._driver_registry()
            driver_problems = station_driver_problems(station, self.station_doc, registry,
                                                      mock_roles=self.mock_roles, registry=registry)
            problems.extend(driver_problems)  # once, at the station's driver: line
            bad_roles = {p.path.split(".")[1] for p in driver_problems if p.path}
        if station is not None:
            cal_problems, self.calibration_warnings = calibration_gate(
                station, self.station_doc, allow_all=self.allow_expired_cal, mock_roles=self.mock_roles)
            problems.extend(cal_problems)
        seen: set[tuple[str | None, str | None, str | None]] = set()
        for step in plan.steps:
            for action in step.actions:
                key = (action.role, action.method, action.python)
                if key in seen:  # one report per distinct call; a 10,000-vector plan stays cheap
                    continue
                seen.add(key)
                where = Location(action.file, action.line, action.column)  # file:line:col (test_cli_run)
                if action.role is not None:
                    if action.role in bad_roles:
                        continue
                    if action.role not in roles:
                        sid = getattr(station, "id", "<none>")
                        problems.append(Problem(where, f"role '{action.role}' is not on station '{sid}'"
                                                + did_you_mean(action.role, roles)))
                        continue
                    try:
                        cls, mocked = self._driver_class(action.role)
                    except LitmusError as exc:
                        problems.append(Problem(where, str(exc)))
                        continue
                    if mocked:
                        mock = self._instrument_config(action.role).mock or {}
                        if action.method not in mock:
                            problems.append(Problem(where, f"{action.role}.{action.method}: the mock for role "
                                                    f"'{action.role}' has no method '{action.method}'"
                                                    + did_you_mean(action.method or "", mock)))
                    elif not callable(getattr(cls, action.method or "", None)):
                        methods = [m for m in dir(cls) if not m.startswith("_")]
                        problems.append(Problem(where, f"{action.role}.{action.method}: driver "
                                                f"'{self._instrument_config(action.role).driver}' has no method "
                                                f"'{action.method}'" + did_you_mean(action.method or "", methods)))
                if action.python is not None:
                    try:
                        self._callable(action.python)
                    except Exception as exc:
                        problems.append(Problem(where, f"python: {action.python}: cannot import "
                                                f"({type(exc).__name__}: {exc})"))
        if problems:
            raise DriverError(problems=problems)

    def _callable(self, spec: str) -> Callable[..., Any]:
        fn = self._callables.get(spec)
        if fn is None:
            root = str(self.project.root)
            if root not in sys.path:
                sys.path.insert(0, root)
            fn = self._callables[spec] = _import_callable(spec)
        return fn

    def _connect(self, bus: ev.EventBus) -> None:
        """Connect every station instrument not yet connected; emit connected events for all."""
        station = self.station
        if station is None:
            return
        visa_library = station.visa_library
        if visa_library and "@" in visa_library and not visa_library.startswith("@"):
            path, _, backend = visa_library.rpartition("@")
            p = Path(path)
            if not p.is_absolute():
                p = self.project.root / p
            visa_library = f"{p}@{backend}"
        for role, cfg in station.instruments.items():
            if role not in self.instruments:
                cls, mocked = self._driver_class(role)
                settings = {**cfg.settings, "role": role, "mock": cfg.mock, "visa_library": visa_library}
                try:
                    driver = cls(resource=cfg.resource, settings=settings)
                    driver.connect()
                    identity = dict(driver.identity() or {})
                except LitmusError:
                    raise
                except Exception as exc:
                    raise InstrumentError(f"{role}: cannot connect to {cfg.resource or cfg.driver}: "
                                          f"{type(exc).__name__}: {exc}") from exc
                self.instruments[role] = driver
                self.instrument_info[role] = admit(self, bus, role, cfg, driver, identity, mocked)
            bus.emit(ev.INSTRUMENT_CONNECTED, **self.instrument_info[role])

    # -- runs ----------------------------------------------------------------------------------

    def run(
        self,
        plan: Plan,
        *,
        dut_serial: str | None = None,
        test_phase: str | None = None,
        operator: str | None = None,
        custom: Mapping[str, Any] | None = None,
        dut: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run ``plan`` once (one DUT). Never raises for test outcomes; returns the sealed result."""
        if not self._open:
            raise LitmusError("session is not open: use 'with Session(...)' or call open()")
        self.preflight(plan)
        state = RunState(self, plan)
        # Everything alive now (the plan, the YAML nodes kept for file:line:col errors, imported
        # modules) lives for the whole run: freeze it so that the collections the run's own
        # allocations trigger do not walk it again and again (measured: 40-50 µs a step at
        # 10,000 steps without this; bench/RESULTS.md).
        gc.freeze()
        # The run's own objects mostly die young or live until the run is sealed (buffered events,
        # per-step state): collecting every 700 allocations re-scans them again and again
        # (~10 µs a step at 10,000 steps). Collect less often; cycles still get collected.
        thresholds = gc.get_threshold()
        gc.set_threshold(RUN_GC_THRESHOLD, 20, 20)
        try:
            with _signals_as_exceptions(self.bus):  # type: ignore[arg-type]
                state.execute(dut_serial=dut_serial, test_phase=test_phase, operator=operator or self.operator,
                              custom=dict(custom or {}), dut=dict(dut or {}))
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        self.last_outcome = state.outcome
        parquet = None
        written = getattr(self.materializer, "written", None)
        if written:
            parquet = written[-1]
        return RunResult(state.run_id, state.outcome, parquet, state.step_outcomes, state.error)


def _version() -> str:
    from litmus_seq import __version__

    return __version__


class _signals_as_exceptions:
    """While a run executes: SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated`,
    except while subscribers process a batch of events, when the signal is held until the batch
    is delivered (an interrupt inside the event store or the materializer would lose or half-apply
    events; the step in flight is what an interrupt is meant to stop).
    """

    def __init__(self, bus: ev.EventBus) -> None:
        self.bus = bus
        self._old: list[tuple[int, Any]] = []

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        bus = self.bus

        def make(exc: Callable[[], BaseException]) -> Callable[[int, Any], None]:
            def handler(signum: int, frame: Any) -> None:
                if bus.delivering:
                    bus.pending_signal = exc
                    return
                raise exc()

            return handler

        for signum, exc in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, lambda: Terminated("SIGTERM"))):
            if signal.getsignal(signum) is signal.SIG_IGN and signum == signal.SIGINT:
                continue  # e.g. started in the background by a shell: keep ignoring
            self._old.append((signum, signal.signal(signum, make(exc))))

    def __exit__(self, *exc: object) -> None:
        for signum, old in reversed(self._old):
            signal.signal(signum, old)
        self._old.clear()


class RunState:
    """The state of one executing run: names for expressions, outcomes, the event bus."""

    def __init__(self, session: Session, plan: Plan) -> None:
        self.session = session
        self.plan = plan
        assert session.bus is not None
        self.bus: ev.EventBus = session.bus
        self.run_id = uuid.uuid4().hex
        self.names: dict[str, Any] = dict(plan.variables)
        self.outcome: str = _PASSED
        self.error: str | None = None
        self.step_outcomes: dict[str, str | None] = {}
        self.stop_main = False
        self.pins: dict[str, str] = dict(getattr(plan.product, "pins", None) or {})
        self.fixture_connections: dict[str, str] = dict(getattr(plan.product, "fixture_connections", None) or {})
        self._limit_dicts: dict[int, dict[str, Any]] = {}
        self.live = session.live
        self._in_cleanup = False
        # the hot path stamps its own events (EventBus.push): one dict literal per event
        self._sid = session.session_id
        self._next_seq = self.bus.next_seq
        self._push = self.bus.push
        self._pins_get = self.pins.get
        self._fixture_get = self.fixture_connections.get
        self._bound: dict[tuple[str, str], Callable[..., Any]] = {}

    # -- run ------------------------------------------------------------------------------------

    def _run_context(self, dut_serial: str | None, test_phase: str | None, operator: str | None,
                     custom: dict[str, Any], dut: dict[str, Any]) -> dict[str, Any]:
        plan, session = self.plan, self.session
        product, station = plan.product, session.station
        commit, branch = _git_info(plan.root)
        project_name = getattr(getattr(session.project, "config", None), "name", None) or plan.root.name
        return dict(
            dut_serial=dut_serial,
            dut_part_number=dut.get("part_number") or getattr(product, "part_number", None),
            dut_revision=dut.get("revision") or getattr(product, "revision", None),
            dut_lot_number=dut.get("lot_number"),
            product_id=getattr(product, "id", None),
            product_name=getattr(product, "name", None),
            product_revision=getattr(product, "revision", None),
            station_id=getattr(station, "id", None),
            station_name=getattr(station, "name", None),
            station_hostname=socket.gethostname(),
            fixture_id=getattr(station, "fixture_id", None),
            slot_id=None,
            operator_id=operator,
            operator_name=operator,
            test_phase=test_phase,
            project_name=project_name,
            sequence_name=plan.sequence_name,
            sequence_version=str(plan.sequence_version),
            sequence_file=plan.sequence_file,
            git_commit=commit,
            git_branch=branch,
            python_version=platform.python_version(),
            litmus_seq_version=_version(),
            custom=custom,
            plan=plan.json_text(),
        )

    def execute(self, *, dut_serial: str | None, test_phase: str | None, operator: str | None,
                custom: dict[str, Any], dut: dict[str, Any]) -> None:
        bus = self.bus
        bus.run_id = self.run_id
        bus.emit(ev.RUN_STARTED, **self._run_context(dut_serial, test_phase, operator, custom, dut))
        ran_setup = False
        try:
            try:
                self.session._connect(bus)
            except LitmusError as exc:
                self._diagnose(exc, None)
                self.outcome, self.error = _ERRORED, str(exc)
                bus.emit(ev.STEPS_DISCOVERED, items=self.plan.discovered_items())
                return
            bus.emit(ev.STEPS_DISCOVERED, items=self.plan.discovered_items())
            bus.flush()
            ranges = self._phase_ranges()
            ran_setup = True
            try:
                start, end = ranges["setup"]
                self._run_range(start, end)
                if self._worst_so_far() in (_PASSED, _DONE, _SKIPPED):
                    start, end = ranges["main"]
                    self._run_range(start, end, main=True)
            except (KeyboardInterrupt, Terminated) as exc:
                self.outcome = _TERMINATED
                self.error = "terminated by operator" if isinstance(exc, KeyboardInterrupt) else str(exc) or "terminated"
            finally:
                if ran_setup:
                    self._cleanup(ranges["cleanup"])
        finally:
            self._seal()

    def _phase_ranges(self) -> dict[str, tuple[int, int]]:
        ranges: dict[str, list[int]] = {}
        for s in self.plan.steps:
            r = ranges.setdefault(s.phase, [s.step_index, s.step_index + 1])
            r[1] = s.step_index + 1
        return {p: tuple(ranges.get(p, (0, 0))) for p in ("setup", "main", "cleanup")}  # type: ignore[misc]

    def _cleanup(self, rng: tuple[int, int]) -> None:
        self._in_cleanup = True
        try:
            self._run_range(*rng)
        except (KeyboardInterrupt, Terminated):
            # second interrupt: stop cleaning up, but the run is still sealed below
            self.outcome = _TERMINATED
            self.error = (self.error or "terminated by operator") + "; cleanup interrupted"

    def _worst_so_far(self) -> str:
        return oc.run_outcome(self.step_outcomes.values())

    def _seal(self) -> None:
        """Emit run.ended with the rolled-up outcome; interrupts are held off while sealing."""
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            rolled = oc.run_outcome(self.step_outcomes.values())
            self.outcome = oc.worst(self.outcome, rolled) or _PASSED
            self.bus.emit(ev.RUN_ENDED, outcome=self.outcome, error=self.error)
            try:
                self.bus.flush()
            except (KeyboardInterrupt, Terminated):
                pass  # a stop held off while sealing: the run is sealed, nothing is left to stop
            self.bus.run_id = None
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)

    # -- steps ----------------------------------------------------------------------------------

    def _run_range(self, start: int, end: int, main: bool = False) -> str | None:
        """Run steps[start:end] (siblings and their subtrees); returns the worst outcome."""
        steps = self.plan.steps
        worst: str | None = None
        i = start
        on_fail_stop = main and self.plan.on_fail == "stop"
        while i < end:
            if main and self.stop_main:
                break
            step = steps[i]
            outcome = self._run_step(step)
            if _SEVERITY[outcome] > _SEVERITY[worst]:
                worst = outcome
            if on_fail_stop and outcome in (_FAILED, _ERRORED):
                self.stop_main = True
            i = step.subtree_end if step.kind == "group" else i + 1
        return worst

    def _skip_subtree(self, step: PlannedStep, reason: str) -> None:
        """Mark a skipped group's descendants skipped (they were considered, not left unrun)."""
        bus = self.bus
        for child in self.plan.steps[step.step_index + 1 : step.subtree_end]:
            bus.emit(ev.STEP_STARTED, step_path=child.step_path, step_index=child.step_index,
                     node_id=child.node_id, name=child.name, kind=child.kind,
                     vector_count=len(child.vectors))
            bus.emit(ev.STEP_ENDED, step_path=child.step_path, outcome=_SKIPPED, error=reason)
            self.step_outcomes[child.step_path] = _SKIPPED

    def _run_step(self, step: PlannedStep) -> str:
        bus = self.bus
        path = step.step_path
        push, sid, rid, next_seq = self._push, self._sid, self.run_id, self._next_seq
        # hot path: complete event dicts built directly (EventBus.push), no keyword repacking
        push({"event_type": _STEP_STARTED, "session_id": sid, "run_id": rid, "seq": next_seq(),
              "timestamp": time_ns() // 1000, "step_path": path, "step_index": step.step_index,
              "node_id": step.node_id, "name": step.name, "kind": step.kind, "vector_count": len(step.vectors)})
        if self.live:
            bus.flush()
        step_outcome: str | None = None
        error: str | None = None
        try:
            if step.kind == "group":
                step_outcome, error = self._run_group(step)
            else:
                for vector in step.vectors:
                    vo, verr = self._run_vector(step, vector)
                    if _SEVERITY[vo] > _SEVERITY[step_outcome]:
                        step_outcome, error = vo, verr or error
                    elif verr and error is None:
                        error = verr
        except (KeyboardInterrupt, Terminated):
            bus.emit(ev.STEP_ENDED, step_path=path, outcome=_TERMINATED, error="terminated by operator")
            self.step_outcomes[path] = _TERMINATED
            bus.flush()
            raise
        if step_outcome is None:
            step_outcome = _DONE
        push({"event_type": _STEP_ENDED, "session_id": sid, "run_id": rid, "seq": next_seq(),
              "timestamp": time_ns() // 1000, "step_path": path, "outcome": step_outcome, "error": error})
        self.step_outcomes[path] = step_outcome
        bus.flush()
        return step_outcome

    def _run_group(self, step: PlannedStep) -> tuple[str, str | None]:
        if step.when is not None:
            try:
                if not step.when.evaluate(self.names):
                    self._skip_subtree(step, "when: false")
                    return _SKIPPED, None
            except Exception as exc:
                self._diagnose(exc, step.step_path)
                return _ERRORED, f"when: {type(exc).__name__}: {exc}"
        self.bus.flush()
        worst = self._run_range(step.step_index + 1, step.subtree_end, main=step.phase == "main")
        return (worst or _DONE), None

    def _run_vector(self, step: PlannedStep, vector: Any) -> tuple[str, str | None]:
        """Run one vector with its retries; returns the last attempt's outcome and error."""
        bus = self.bus
        path = step.step_path
        params = vector.params
        if params:
            names = {**self.names, **params}
        else:
            names = self.names
        if step.when is not None:
            try:
                skip = not step.when.evaluate(names)
            except Exception as exc:
                bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=vector.index, retry=0, params=params)
                msg = f"when: {type(exc).__name__}: {exc}"
                self._diagnose(exc, path)
                bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=vector.index, retry=0,
                         outcome=_ERRORED, error=msg)
                return _ERRORED, msg
            if skip:
                bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=vector.index, retry=0, params=params)
                bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=vector.index, retry=0,
                         outcome=_SKIPPED, error=None)
                return _SKIPPED, None
        attempts = step.retry_max + 1
        outcome, error = _DONE, None
        push, sid, rid, next_seq = self._push, self._sid, self.run_id, self._next_seq
        for attempt in range(attempts):
            push({"event_type": _VECTOR_STARTED, "session_id": sid, "run_id": rid, "seq": next_seq(),
                  "timestamp": time_ns() // 1000, "step_path": path, "vector_index": vector.index,
                  "retry": attempt, "params": params})
            ctx = StepContext(self, params, path, vector.index, attempt)
            outcome, error = _DONE, None
            try:
                for action in step.actions:
                    ao = self._run_action(step, vector, action, ctx, names)
                    if _SEVERITY[ao] > _SEVERITY[outcome]:
                        outcome = ao
                if _SEVERITY[ctx.outcome] > _SEVERITY[outcome]:
                    outcome = ctx.outcome
                # measurements declared but never recorded: fail safe
                for m in step.measurements:
                    if m not in ctx._measured:
                        outcome = _ERRORED
                        error = f"measurement '{m}' was declared but never recorded"
                        bus.emit(ev.ERROR, message=error, step_path=path)
            except _StepAborted as exc:
                outcome, error = oc.worst(exc.outcome, ctx.outcome) or exc.outcome, str(exc)
            except (KeyboardInterrupt, Terminated):
                bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=vector.index, retry=attempt,
                         outcome=_TERMINATED, error="terminated by operator")
                raise
            except Exception as exc:
                outcome = _ERRORED
                error = self._diagnose(exc, path)
            if error is None and outcome in (_FAILED, _ERRORED):
                error = ctx.failure
            push({"event_type": _VECTOR_ENDED, "session_id": sid, "run_id": rid, "seq": next_seq(),
                  "timestamp": time_ns() // 1000, "step_path": path, "vector_index": vector.index,
                  "retry": attempt, "outcome": outcome, "error": error})
            if outcome in _GOOD or attempt == attempts - 1:
                break
            if step.retry_delay_s:
                bus.flush()
                time.sleep(step.retry_delay_s)
        return outcome, error

    def _diagnose(self, exc: BaseException, step_path: str | None) -> str:
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LitmusError) else str(exc)
        self.bus.emit(ev.ERROR, message=message, step_path=step_path, exception_type=type(exc).__name__,
                      traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return message

    # -- actions --------------------------------------------------------------------------------

    def _call_instrument(self, action: PlannedAction, args: dict[str, Any]) -> Any:
        key = (action.role, action.method)
        try:
            method = self._bound.get(key)  # type: ignore[arg-type]
            if method is None:
                driver = self.session.instruments[action.role]  # type: ignore[index]
                method = self._bound[key] = getattr(driver, action.method)  # type: ignore[index,arg-type]
            return method(**args)
        except LitmusError:
            raise
        except Exception as exc:
            raise InstrumentError(f"{action.role}.{action.method}: {type(exc).__name__}: {exc}") from exc

    def _run_action(self, step: PlannedStep, vector: Any, action: PlannedAction, ctx: StepContext,
                    names: dict[str, Any]) -> str:
        kind = action.kind
        if kind == "measure":
            args = action.render_args(names) if action.args is not None else {}
            model = action.model
            if action.role is not None:
                value = self._call_instrument(action, args)
            else:
                value = self.session._callable(action.python)(ctx, **args)  # type: ignore[arg-type]
                if value is None or action.measurement in ctx._measured:
                    return _DONE  # the callable recorded it through ctx.measure(), or returned nothing
            name = action.measurement
            # the outcome is folded into the vector through ctx.outcome
            self._judge_and_emit(ctx, name, value, vector.limits.get(name), model.units,  # type: ignore[arg-type]
                                 action.role, model.channel)
            return _DONE
        if kind == "call":
            args = action.render_args(names) if action.args is not None else {}
            result = self._call_instrument(action, args)
            if action.save_as:
                self.names[action.save_as] = result
                if names is not self.names:
                    names[action.save_as] = result
            return _DONE
        if kind == "wait":
            seconds = action.wait_seconds(names)
            self.bus.flush()
            if seconds > 0:
                time.sleep(seconds)
            return _DONE
        if kind == "python":
            args = action.render_args(names) if action.args is not None else {}
            self.session._callable(action.python)(ctx, **args)  # type: ignore[arg-type]
            return _DONE
        if kind == "prompt":
            return self._prompt(step, action, ctx)
        raise ConfigError(f"unknown action kind {kind!r}")

    def _prompt(self, step: PlannedStep, action: PlannedAction, ctx: StepContext) -> str:
        model = action.model
        prompt_id = uuid.uuid4().hex
        prompt = {
            "prompt_id": prompt_id,
            "step_path": step.step_path,
            "message": model.prompt,
            "prompt_type": model.type or "confirm",
            "choices": list(model.choices or []),
            "timeout_s": model.timeout_s,
        }
        self.bus.emit(ev.DIALOG_OPENED, **prompt)
        self.bus.flush()
        answer = self.session.pm.hook.litmus_seq_prompt(prompt=prompt)
        timed_out = answer is TIMED_OUT
        self.bus.emit(ev.DIALOG_RESPONDED, prompt_id=prompt_id,
                      response=None if timed_out or answer is None else answer,
                      responder=None, timed_out=timed_out)
        if answer is None:
            raise _StepAborted(_FAILED, "no answer: no prompt handler (run on a terminal, pass --yes, "
                                        "or install a litmus_seq_prompt plugin)")
        if timed_out:
            # an answerer may time out on its own clock even without timeout_s: no ":g" of None
            # (fix: that raised TypeError and turned the step errored; tests/test_cli_run.py)
            after = f" after {model.timeout_s:g} s" if model.timeout_s else ""
            raise _StepAborted(_FAILED, f"prompt timed out{after}")
        if answer == ABORT:
            raise Terminated("operator answered 'abort'")
        name = model.save_as or step.name
        if (model.type or "confirm") == "confirm":
            ok = bool(answer)
            self._emit_measurement(ctx, name, None, "true" if ok else "false", None,
                                   _PASSED if ok else _FAILED, False, None, None, None)
            ctx._measured.add(name)
            return _PASSED if ok else _FAILED
        self.names[name] = answer
        self._emit_measurement(ctx, name, None, str(answer), None, _DONE, False, None, None, None)
        ctx._measured.add(name)
        return _DONE

    # -- measurements (hot path) ----------------------------------------------------------------

    def _judge_and_emit(self, ctx: StepContext, name: str, value: Any, limit: Any, units: str | None,
                        role: str | None, channel: str | None) -> str:
        """Judge ``value`` against ``limit`` and emit ``test.measurement``; returns the outcome."""
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
            if ldict is None:
                ldict = self._limit_dicts[id(limit)] = limit.as_dict()
            if units is None:
                units = limit.units
        self.names[name] = value
        self._push({  # _emit_measurement, inlined: this is the per-measurement path
            "event_type": _MEASUREMENT, "session_id": self._sid, "run_id": self.run_id,
            "seq": self._next_seq(), "timestamp": time_ns() // 1000, "step_path": ctx.step_path,
            "vector_index": ctx.vector_index, "retry": ctx.retry, "name": name, "value": num, "text": text,
            "units": units, "outcome": outcome, "marginal": marginal, "limit": ldict, "instrument": role,
            "channel": channel, "dut_pin": self._pins_get(name), "fixture_connection": self._fixture_get(name),
        })
        if _SEVERITY[outcome] > _SEVERITY[ctx.outcome]:
            ctx.outcome = outcome
            if ctx.failure is None and (outcome == _FAILED or outcome == _ERRORED):
                ctx.failure = _describe(name, value, units, ldict, outcome)
        return outcome

    def _emit_measurement(self, ctx: StepContext, name: str, num: float | None, text: str | None,
                          units: str | None, outcome: str, marginal: bool, ldict: Any,
                          role: str | None, channel: str | None) -> None:
        self._push({
            "event_type": _MEASUREMENT,
            "session_id": self._sid,
            "run_id": self.run_id,
            "seq": self._next_seq(),
            "timestamp": time_ns() // 1000,
            "step_path": ctx.step_path,
            "vector_index": ctx.vector_index,
            "retry": ctx.retry,
            "name": name,
            "value": num,
            "text": text,
            "units": units,
            "outcome": outcome,
            "marginal": marginal,
            "limit": ldict,
            "instrument": role,
            "channel": channel,
            "dut_pin": self.pins.get(name),
            "fixture_connection": self.fixture_connections.get(name),
        })

    # -- context services -----------------------------------------------------------------------

    def record_measurement(self, ctx: StepContext, name: str, value: Any, *, units: str | None,
                           limit: Any, instrument: str | None, channel: str | None) -> str:
        """``ctx.measure()``: resolve the limit (explicit, else the plan's) and record."""
        if limit is None:
            step = self._step_by_path(ctx.step_path)
            vector = step.vectors[ctx.vector_index]
            resolved = vector.limits.get(name)
            if resolved is None:
                resolved = self.plan.resolve_limit(step, ctx.params, name)
        else:
            resolved = _coerce_limit(limit)
        return self._judge_and_emit(ctx, name, value, resolved, units, instrument, channel)

    def _step_by_path(self, path: str) -> PlannedStep:
        cache = getattr(self, "_paths", None)
        if cache is None:
            cache = self._paths = {s.step_path: s for s in self.plan.steps}
        return cache[path]

    def emit_kv(self, event_type: str, ctx: StepContext, key: str, value: Any) -> None:
        self.bus.emit(event_type, step_path=ctx.step_path, vector_index=ctx.vector_index, key=key, value=value)

    def write_channel(self, ctx: StepContext, key: str, values: Any) -> str:
        store = self.session.channels
        bus = self.bus
        uri = store.write(self.run_id, key, values, step_path=ctx.step_path, vector_index=ctx.vector_index)
        bus.emit(ev.CHANNEL_STARTED, key=key, uri=uri, step_path=ctx.step_path, vector_index=ctx.vector_index)
        path = store.path_for(uri) if hasattr(store, "path_for") else None
        bus.emit(ev.CHANNEL_ENDED, key=key, uri=uri, length=len(values), path=str(path) if path else None)
        return uri


def _describe(name: str, value: Any, units: str | None, ldict: dict[str, Any] | None, outcome: str) -> str:
    """One readable line for a bad measurement: ``rail = 3.6 V > high 3.45`` (the reporters' own)."""
    from litmus_seq.reporters.render import measurement_failure

    num = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    text = None if num is not None or value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return measurement_failure({"name": name, "value": num, "text": text, "units": units, "limit": ldict,
                                "outcome": outcome})


def _coerce_limit(limit: Any) -> Any:
    from litmus_seq.limits import Limit, ResolvedLimit, resolve_limit

    if isinstance(limit, ResolvedLimit):
        return limit
    if isinstance(limit, dict):
        limit = Limit.model_validate(limit)
    return resolve_limit(limit, source="step")
