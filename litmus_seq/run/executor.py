"""The YAML executor: walks a :class:`~litmus_seq.plan.Plan` and drives the run recorder.

:func:`run_plan` is what ``litmus-seq run`` does once the plan is built and checked
(:func:`~litmus_seq.run.preflight.preflight`): start a run, connect the roles the plan calls,
declare the planned steps, run setup, then main (only if setup passed), then cleanup — always,
once setup started, also after failures, errors and stops — and seal. Outcomes, events and the
verdict are the recorder's; this module only decides what runs next:

* a failing limit → ``failed``; an exception in an action or user code, an instrument fault, an
  unjudgeable value or a declared measurement that was never recorded → ``errored`` (message
  and traceback in a ``diagnostic.error`` event), and the next step runs;
* ``on_fail: stop`` → no main step after the first failed or errored one;
* Ctrl-C, SIGTERM, a prompt answered "abort" → the step in flight is ``terminated``, no further
  main step runs, cleanup runs, the run is sealed ``terminated``; any other ``BaseException``
  (``SystemExit`` from a driver) likewise, sealed ``errored``.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from litmus_seq import outcomes as oc
from litmus_seq.drivers.base import instrument_channel, is_waveform
from litmus_seq.errors import ConfigError, InstrumentError, InstrumentTimeout, LitmusError, StepAborted, Terminated
from litmus_seq.plan import Plan, PlannedAction, PlannedStep
from litmus_seq.run.context import StepContext
from litmus_seq.run.recorder import Run, RunResult
from litmus_seq.run.selection import Selection

__all__ = ["git_info", "import_callable", "plan_roles", "run_plan", "run_steps"]

_SEVERITY = oc.SEVERITY
_PASSED, _FAILED, _ERRORED, _DONE, _SKIPPED, _TERMINATED = (
    oc.PASSED, oc.FAILED, oc.ERRORED, oc.DONE, oc.SKIPPED, oc.TERMINATED,
)
_GOOD = frozenset((_PASSED, _DONE, _SKIPPED))
_STOPS = (KeyboardInterrupt, Terminated)


def run_plan(session: Any, plan: Plan, *, dut_serial: str | None = None, test_phase: str | None = None,
             operator: str | None = None, custom: Mapping[str, Any] | None = None,
             dut: Mapping[str, Any] | None = None, project_name: str | None = None,
             selection: Selection | None = None) -> RunResult:
    """Run ``plan`` once (one DUT) on an open session; never raises for what happens in the run
    (the outcome says it); returns the sealed result. ``project_name`` defaults to the name of
    the plan's project folder; ``selection`` leaves main steps out (``-k``, ``--maxfail``...)."""
    selection = selection or Selection()
    deselected = selection.deselected(plan)  # a bad selection: ConfigError before the run starts
    commit, branch = git_info(plan.root)
    sequence = {
        "name": plan.sequence_name, "version": plan.sequence_version, "file": plan.sequence_file,
        "project_name": project_name or plan.root.name, "git_commit": commit, "git_branch": branch,
        "plan": plan.json_text(),
    }
    paths = {s.step_path: s for s in plan.steps}

    def limits(step_path: str, params: Mapping[str, Any], name: str) -> Any:
        return plan.resolve_limit(paths[step_path], params, name)  # type: ignore[arg-type]

    run = session.start_run(dut_serial=dut_serial, product=plan.product, guardband_pct=plan.guardband_pct,
                            operator=operator, phase=test_phase, custom=custom, dut=dut, sequence=sequence,
                            names=plan.variables, limits=limits,
                            selection=selection.describe() if deselected else None)
    try:
        _Executor(run, plan, deselected, selection.maxfail).execute()
    except BaseException as exc:  # noqa: BLE001 - recorded as the run's cause, never a silent pass
        run.abort(exc)
    return run.finish()


def run_steps(run: Run, plan: Plan) -> str:
    """Run ``plan``'s steps inside ``run``, a run another front door opened (Robot's ``Run
    Sequence``): setup, main (only if setup passed) and cleanup become steps of ``run`` below its
    open step (``<step>/main/x``; at the run's top level when no step is open), judged with the
    plan's limits. ``run`` is neither discovered again nor sealed: its own planned steps and
    verdict stand. Returns the worst outcome of the plan's steps (``done`` for none). A stop
    (Ctrl-C, an operator's abort) is raised on after cleanup."""
    return _Executor(run, plan, under=run.step_path).execute_inside()


def plan_roles(plan: Plan) -> list[str]:
    """The roles the plan's actions call, in order of first use."""
    return list(dict.fromkeys(a.role for s in plan.steps for a in s.actions if a.role is not None))


def git_info(root: Path) -> tuple[str | None, str | None]:
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


_callables: dict[tuple[str, str], Callable[..., Any]] = {}


def import_callable(spec: str, root: Path) -> Callable[..., Any]:
    """The callable named ``module:function``, imported with the project root on ``sys.path``
    (a ``python:`` step is the one deliberate door to user code)."""
    key = (spec, str(root))
    fn = _callables.get(key)
    if fn is None:
        module_name, _, attr = spec.partition(":")
        fn = getattr(_import_from(module_name, Path(root)), attr)
        if not callable(fn):
            raise TypeError(f"{spec} is not callable")
        _callables[key] = fn
    return fn


def _import_from(module_name: str, root: Path) -> Any:
    """``module_name`` as the project at ``root`` has it. A process that runs several projects
    (a server, a test suite) may hold another project's module of the same name (``checks``):
    when ``root`` has one of its own, the other is forgotten first, so a sequence never calls
    another project's code."""
    top = module_name.split(".", 1)[0]
    held = sys.modules.get(top)
    if held is not None and ((root / f"{top}.py").is_file() or (root / top).is_dir()):
        where = getattr(held, "__file__", None) or next(iter(getattr(held, "__path__", [])), None)
        if where is None or not Path(where).resolve().is_relative_to(root.resolve()):
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                del sys.modules[name]
    if sys.path[:1] != [str(root)]:
        if str(root) in sys.path:
            sys.path.remove(str(root))
        sys.path.insert(0, str(root))
    return importlib.import_module(module_name)


class _Executor:
    """One plan executing on one run."""

    def __init__(self, run: Run, plan: Plan, deselected: Mapping[str, str] | None = None,
                 maxfail: int | None = None, under: str | None = None) -> None:
        self.run = run
        self.plan = plan
        #: main steps left out by the selection -> why (their rows say it)
        self.deselected = deselected or {}
        self.maxfail = maxfail
        self.failures = 0
        self.maxfail_reached: str | None = None
        self.names = run.names
        self.stop_main = False
        self.in_cleanup = False
        self.noted = False
        self._bound: dict[tuple[str, str], tuple[Callable[..., Any], str, float]] = {}  # (role, method) -> call
        self.watchdog = run.session.watchdog
        #: the open step of another front door the plan runs inside (run_steps), else None
        self.under = under
        self._prefix = "" if under is None else under + "/"

    def execute_inside(self) -> str:
        """:func:`run_steps`: setup, main (if setup passed) and cleanup as steps of the open run;
        the run's planned steps and its verdict rules are the front door's, not the plan's."""
        run = self.run
        for name, value in self.plan.variables.items():
            self.names.setdefault(name, value)
        for role in plan_roles(self.plan):
            run.instrument(role)
        ranges = self._phase_ranges()
        worst: str | None = None
        try:
            worst = self._run_range(*ranges["setup"])
            if worst in (None, *_GOOD) and run.cause is None:
                worst = oc.worst(worst, self._run_range(*ranges["main"], main=True))
        finally:
            worst = oc.worst(worst, self._run_range(*ranges["cleanup"]))
        return worst or _DONE

    def execute(self) -> None:
        run = self.run
        try:
            for role in plan_roles(self.plan):
                run.instrument(role)
        except BaseException as exc:  # noqa: BLE001 - a connect fault or a stop while connecting
            if isinstance(exc, _STOPS):
                run.abort(exc)
            else:
                run.error(exc)
            run.discover(self.plan.discovered_items())
            return
        run.discover(self.plan.discovered_items())
        ranges = self._phase_ranges()
        try:
            self._run_range(*ranges["setup"])
            if run.cause is not None:
                return
            if oc.run_outcome(run.step_outcomes.values()) in _GOOD:
                self._run_range(*ranges["main"], main=True)
            elif ranges["main"][1] > ranges["main"][0]:
                run.stop("setup did not pass")
        except BaseException as exc:  # noqa: BLE001 - stops and escapes end the run; cleanup runs
            run.abort(exc)
        finally:
            self._cleanup(ranges["cleanup"])

    def _phase_ranges(self) -> dict[str, tuple[int, int]]:
        ranges: dict[str, list[int]] = {}
        for s in self.plan.steps:
            r = ranges.setdefault(s.phase, [s.step_index, s.step_index + 1])
            r[1] = s.step_index + 1
        return {p: tuple(ranges.get(p, (0, 0))) for p in ("setup", "main", "cleanup")}  # type: ignore[misc]

    def _cleanup(self, rng: tuple[int, int]) -> None:
        """Every cleanup step, whatever happened before. A stop during cleanup is held while an
        instrument call runs and cuts waits and prompts short; every cleanup call still runs."""
        self.in_cleanup = True
        self._call_instrument = self._call_held  # type: ignore[method-assign]
        steps = self.plan.steps
        i, end = rng
        while i < end:
            step = steps[i]
            try:
                self._run_step(step)
            except BaseException as exc:  # noqa: BLE001 - noted; the next cleanup step still runs
                self.run.abort(exc, note=None if self.noted else "; stopped again during cleanup "
                               "(waits and prompts cut short, cleanup calls ran)")
                self.noted = True
            i = step.subtree_end if step.kind == "group" else i + 1

    def _call_held(self, action: PlannedAction, args: dict[str, Any]) -> Any:
        """A cleanup call: a stop arriving meanwhile waits until it returns (its timeout still
        bounds it)."""
        bus = self.run.bus
        bus.delivering += 1
        try:
            return _Executor._call_instrument(self, action, args)
        finally:
            bus.delivering -= 1

    # -- steps ----------------------------------------------------------------------------------

    def _run_range(self, start: int, end: int, main: bool = False) -> str | None:
        """Run steps[start:end] (siblings and their subtrees); returns the worst outcome."""
        steps = self.plan.steps
        run = self.run
        worst: str | None = None
        i = start
        on_fail_stop = main and self.plan.on_fail == "stop"
        while i < end:
            if main and (self.stop_main or run.cause is not None):
                break
            step = steps[i]
            left_out = (self.deselected.get(step.step_path) or self.maxfail_reached) if main else None
            if left_out is not None:
                outcome = self._skip_step(step, left_out)
            else:
                outcome = self._run_step(step)
                if main and step.kind != "group" and outcome in (_FAILED, _ERRORED):
                    self._count_failure()
            if _SEVERITY[outcome] > _SEVERITY[worst]:
                worst = outcome
            if on_fail_stop and outcome in (_FAILED, _ERRORED) and not self.stop_main:
                self.stop_main = True
                if self.under is None:
                    run.stop(f"on_fail: stop after {step.step_path}")
            i = step.subtree_end if step.kind == "group" else i + 1
        return worst

    def _count_failure(self) -> None:
        self.failures += 1
        if self.maxfail is not None and self.failures >= self.maxfail and self.maxfail_reached is None:
            self.maxfail_reached = f"not run: stopped after {self.failures} failed step(s) (--maxfail {self.maxfail})"

    def _skip_step(self, step: PlannedStep, reason: str) -> str:
        """A step (and, for a group, its subtree) left out by the selection: rows say why."""
        run = self.run
        self._begin(step)
        if step.kind == "group":
            self._skip_subtree(step, reason)
        return run.end_step(_SKIPPED, reason, flush=False)

    def _skip_subtree(self, step: PlannedStep, reason: str) -> None:
        """Mark a skipped group's descendants skipped (they were considered, not left unrun)."""
        run = self.run
        for child in self.plan.steps[step.step_index + 1 : step.subtree_end]:
            self._begin(child)
            run.end_step(_SKIPPED, reason, flush=False)

    def _begin(self, step: PlannedStep) -> None:
        if self.under is None:
            self.run.begin_step(step.step_path, step.step_index, step.node_id, step.name, step.kind, len(step.vectors))
        else:  # inside another front door's step: paths below it, indices the run's own
            self.run.begin_step(self._prefix + step.step_path, None, step.node_id, step.name, step.kind,
                                len(step.vectors))

    def _run_step(self, step: PlannedStep) -> str:
        run = self.run
        self._begin(step)
        if step.kind == "group":  # a stop or an escape inside is closed by Run.abort
            return self._run_group(step)
        for vector in step.vectors:
            self._run_vector(step, vector)
        return run.end_step()

    def _run_group(self, step: PlannedStep) -> str:
        run = self.run
        if step.when is not None:
            try:
                if not step.when.evaluate(self.names):
                    self._skip_subtree(step, "when: false")
                    return run.end_step(_SKIPPED)
            except Exception as exc:
                run.error(exc)
                return run.end_step(_ERRORED, f"when: {type(exc).__name__}: {exc}")
        run.bus.flush()
        self._run_range(step.step_index + 1, step.subtree_end, main=step.phase == "main")
        return run.end_step()

    def _run_vector(self, step: PlannedStep, vector: Any) -> str:
        """Run one vector with its retries; returns the last attempt's outcome."""
        run = self.run
        params = vector.params
        names = {**self.names, **params} if params else self.names
        if step.when is not None:
            try:
                skip = not step.when.evaluate(names)
            except Exception as exc:
                run.begin_vector(params, vector.index, 0)
                run.error(exc)
                return run.end_vector(_ERRORED, f"when: {type(exc).__name__}: {exc}")
            if skip:
                run.skip_vector(params, vector.index)
                return _SKIPPED
        attempts = step.retry_max + 1
        outcome = _DONE
        for attempt in range(attempts):
            ctx = run.begin_vector(params, vector.index, attempt)
            try:
                for action in step.actions:
                    self._run_action(step, vector, action, ctx, names)
                for m in step.measurements:  # declared but never recorded: fail safe
                    if m not in ctx._measured:
                        run.error(f"measurement '{m}' was declared but never recorded")
            except StepAborted:
                pass
            except _STOPS:
                run.end_vector(_TERMINATED, "terminated by operator")
                raise
            except Exception as exc:
                run.error(exc)
            outcome = run.end_vector()
            if outcome in _GOOD or attempt == attempts - 1:
                break
            if step.retry_delay_s:
                run.bus.flush()
                time.sleep(step.retry_delay_s)
        return outcome

    # -- actions --------------------------------------------------------------------------------

    def _call_instrument(self, action: PlannedAction, args: dict[str, Any]) -> Any:
        """``role.method(**args)`` under the call's timeout (the session's watchdog)."""
        entry = self._bound.get((action.role, action.method))  # type: ignore[arg-type]
        if entry is None:
            entry = self._bind(action)
        method, what, timeout = entry
        wd = self.watchdog  # Watchdog.begin/end, inlined: this is the per-call path
        seq = wd.seq + 1
        wd.timeout = timeout
        wd.seq = seq
        wd.what = what
        try:
            return method(**args)
        except LitmusError:
            raise
        except Exception as exc:
            raise InstrumentError(f"{what}: {type(exc).__name__}: {exc}") from exc
        finally:
            wd.what = None
            if wd.fired == seq:
                raise InstrumentTimeout(f"{what}: no answer within {timeout:g} s (timeout_s)")

    def _bind(self, action: PlannedAction) -> tuple[Callable[..., Any], str, float]:
        role, name = action.role, action.method
        driver = self.run.instrument(role)  # type: ignore[arg-type]
        timeout = self.run.session.timeout_for(role)  # type: ignore[arg-type]
        entry = self._bound[(role, name)] = (getattr(driver, name), f"{role}.{name}", timeout)  # type: ignore[index,arg-type]
        return entry

    def _call_user(self, spec: str, ctx: StepContext, args: dict[str, Any]) -> Any:
        """Call a ``python:`` callable; what it logs is kept as the step's ``test.log`` events."""
        from litmus_seq.logging import capture_logs

        fn = import_callable(spec, self.plan.root)
        with capture_logs(self.run):
            return fn(ctx, **args)

    def _run_action(self, step: PlannedStep, vector: Any, action: PlannedAction, ctx: StepContext,
                    names: dict[str, Any]) -> None:
        kind = action.kind
        if kind == "measure":
            args = action.render_args(names) if action.args is not None else {}
            model = action.model
            if action.role is not None:
                value = self._call_instrument(action, args)
                if is_waveform(value):  # to the channel store; the row holds its channel:// URI
                    value = self.run.write_channel(action.measurement, value)  # type: ignore[arg-type]
            else:
                value = self._call_user(action.python, ctx, args)  # type: ignore[arg-type]
                if value is None or action.measurement in ctx._measured:
                    return  # the callable recorded it through ctx.measure(), or returned nothing
            name = action.measurement
            self.run.judge(ctx, name, value, vector.limits.get(name), model.units,  # type: ignore[arg-type]
                           action.role, instrument_channel(model.channel, args))
        elif kind == "call":
            args = action.render_args(names) if action.args is not None else {}
            result = self._call_instrument(action, args)
            if action.save_as:
                self.names[action.save_as] = result
                if names is not self.names:
                    names[action.save_as] = result
        elif kind == "wait":
            seconds = action.wait_seconds(names)
            try:
                self.run.bus.flush()
                if seconds > 0:
                    time.sleep(seconds)
            except _STOPS:
                if not self.in_cleanup:
                    raise
                self.run.warn("wait cut short by a stop during cleanup")
        elif kind == "python":
            args = action.render_args(names) if action.args is not None else {}
            self._call_user(action.python, ctx, args)  # type: ignore[arg-type]
        elif kind == "prompt":
            model = action.model
            try:
                self.run.prompt(model.prompt, type=model.type or "confirm", choices=model.choices or (),
                                timeout_s=model.timeout_s, name=model.save_as or step.name)
            except _STOPS:
                if not self.in_cleanup:
                    raise
                self.run.error("prompt cut short by a stop during cleanup")
        else:
            raise ConfigError(f"unknown action kind {kind!r}")
