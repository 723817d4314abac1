"""The imperative harness: litmus-seq's limits, traceability and stores from your own Python loop.

For test code that is not a YAML sequence -- unittest, a custom runner, a notebook, the Robot
Framework library -- :class:`Harness` opens a run on the run recorder (the same layer under
``litmus-seq run``) and keeps the sibling platform's ``TestHarness`` vocabulary::

    from litmus_seq import Harness

    with Harness(station="sim_bench", product="power_board", dut_serial="SN001",
                 config={"vectors": {"vin": [5.0, 12.0]}, "retry": {"max_retries": 1}}) as h:
        dmm, psu = h.instruments["dmm"], h.instruments["psu"]
        with h.step("output_voltage"):
            for vector in h.vectors:
                with h.run_vector(vector):
                    psu.set_voltage(vector["vin"])
                    h.measure("rail_3v3", dmm.measure_dc_voltage())   # spec limit, guardbanded

The run is open from construction to :meth:`Harness.close` (or the end of the ``with`` block),
which always seals it with the CLI's verdict rules -- also after an exception or Ctrl-C, and at
interpreter exit for a harness that was never closed.
"""

from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from pydantic import Field

from litmus_seq.errors import ConfigError, Location, Problem
from litmus_seq.limits import Limit
from litmus_seq.models import ExplicitVector, Retry, Strict, SweepRange

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.limits import ResolvedLimit

__all__ = ["Harness", "HarnessConfig", "Vector", "load_config"]


# --------------------------------------------------------------------------- the sidecar config


class HarnessConfig(Strict):
    """The sidecar shape: ``vectors:`` (and ``sweep:``), ``limits:`` and ``retry:``.

    The same forms as a sequence step's keys of those names (DESIGN §2.3).
    """

    vectors: Union[dict[str, Any], list[ExplicitVector], None] = Field(
        None, description="{expand: product|zip, param: [values], ...} or a list of vectors"
    )
    sweep: dict[str, SweepRange] | None = None
    limits: dict[str, Limit] = Field(default_factory=dict, description="measurement -> limit")
    retry: Retry | None = None


def load_config(config: Mapping[str, Any] | str | Path | HarnessConfig | None) -> HarnessConfig:
    """A :class:`HarnessConfig` from a mapping, a YAML sidecar file or ``None``.

    Mistakes are one :class:`ConfigError` with a line per problem (``file:line:col`` for a file).
    """
    from litmus_seq import loader

    if config is None:
        return HarnessConfig()
    if isinstance(config, HarnessConfig):
        return config
    if isinstance(config, (str, Path)):
        doc = loader.load_document(Path(config))
        return loader.validate_document(doc, HarnessConfig)  # type: ignore[no-any-return]
    return _validate(HarnessConfig, config, "config", "a mapping with vectors:, limits:, retry: (or a YAML file)")


def _validate(model: type[Any], data: Any, where: str, expected: str) -> Any:
    """``data`` (a mapping given in Python) validated as ``model``: one line per mistake, each
    starting with ``where`` (a mapping has no file lines to point at)."""
    from litmus_seq import loader

    if isinstance(data, model):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected {expected}, got {type(data).__name__}")
    doc = loader.Document(path=Path(where), display=where, data=dict(data))
    try:
        return loader.validate_document(doc, model)
    except ConfigError as exc:
        raise type(exc)(problems=[Problem(Location(where), p.message, p.path) for p in exc.problems]) from None


def _as_limit(name: str, limit: Any) -> Limit:
    return _validate(Limit, limit, f"limits.{name}", "a limit mapping such as {low: 3.1, high: 3.5}")  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- vectors


class Vector(Mapping[str, Any]):
    """One vector: its parameters (read like a dict), its index and its own limits.

    ``vector["vin"]`` reads a parameter; :meth:`changed` says whether a parameter differs from
    the previous vector's (to re-settle a chamber only when the temperature moves).
    """

    __slots__ = ("index", "params", "limits", "previous")

    def __init__(self, index: int, params: Mapping[str, Any], limits: Mapping[str, Limit] | None = None,
                 previous: Vector | None = None) -> None:
        self.index = index
        self.params: dict[str, Any] = dict(params)
        self.limits: dict[str, Limit] = dict(limits or {})
        self.previous = previous

    def __getitem__(self, name: str) -> Any:
        try:
            return self.params[name]
        except KeyError:
            from litmus_seq.suggest import did_you_mean

            raise KeyError(f"vector {self.index} has no parameter {name!r}"
                           + did_you_mean(name, self.params)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def changed(self, name: str) -> bool:
        """True for the first vector, and when ``name`` differs from the previous vector's."""
        if self.previous is None:
            return True
        return self.previous.params.get(name) != self.params.get(name)

    def __repr__(self) -> str:
        return f"Vector({self.index}, {self.params!r})"


def vectors_of(config: HarnessConfig) -> list[Vector]:
    """The vectors of a config (one vector without parameters when it has none)."""
    from litmus_seq.vectors import expand_vectors

    out: list[Vector] = []
    previous = None
    for i, (params, limits) in enumerate(expand_vectors(config)):
        previous = Vector(i, params, limits, previous)
        out.append(previous)
    return out


# --------------------------------------------------------------------------- the harness

#: Harnesses still open (held strongly: a harness nobody refers to any more must still be sealed).
_OPEN: set[Harness] = set()


def _seal_at_exit() -> None:
    """Seal every harness the program left open, and say so on stderr."""
    for harness in list(_OPEN):
        try:
            outcome = harness.close()
        except BaseException as exc:  # noqa: BLE001 - tell the user, whatever it was
            if harness.result is None:
                print(f"litmus-seq: WARNING: harness run {harness.run_id} could not be sealed at exit "
                      f"({type(exc).__name__}: {exc}); its events are in {harness.data_dir / 'events'}: "
                      "run `litmus-seq recover` to write its run file", file=sys.stderr)
            else:
                print(f"litmus-seq: WARNING: harness run {harness.run_id} was not closed; sealed at exit: "
                      f"{harness.result.outcome.upper()}, but closing its session failed "
                      f"({type(exc).__name__}: {exc})", file=sys.stderr)
        else:
            print(f"litmus-seq: harness run {harness.run_id} was not closed; sealed at exit: "
                  f"{outcome.upper()} (use `with Harness(...)` or call close())", file=sys.stderr)


atexit.register(_seal_at_exit)


def _project(project: str | Path | None, station: Any) -> Any:
    """The project context: ``project`` (a folder or file in it), else the station file's, else
    the current directory's."""
    from litmus_seq.project import ProjectContext, find_root

    if project is not None:
        return ProjectContext(find_root(Path(project)))
    if isinstance(station, (str, Path)) and ("/" in str(station) or str(station).endswith((".yaml", ".yml"))):
        path = Path(station)
        if path.is_file():
            return ProjectContext(find_root(path.resolve()))
    return ProjectContext(find_root(Path.cwd()))


class Harness:
    """One run of one DUT on a station, driven from Python (seed 002's ``TestHarness``).

    ``station`` and ``product`` are ids (``stations/<id>.yaml``, ``products/<id>.yaml`` of the
    project found from ``project`` or the current directory), files, or loaded models; without a
    station, the project's ``litmus.yaml`` ``station:``. ``config`` is the sidecar shape
    (``vectors:``/``sweep:``, ``limits:``, ``retry:``) as a mapping or a YAML file; ``retry``
    and ``limits`` override its keys of the same name (they are not merged). ``data_dir``
    defaults as for ``litmus-seq run``. ``steps`` names the planned steps when they are known
    up front: a planned step that never runs is recorded as never ran and the run cannot pass.

    The run opens at construction (instruments connect as they are first used) and is sealed by
    :meth:`close` or the end of a ``with`` block, with the CLI's verdict rules.
    """

    def __init__(
        self,
        station: Any = None,
        product: Any = None,
        dut_serial: str | None = None,
        config: Mapping[str, Any] | str | Path | None = None,
        step_name: str = "test",
        retry: Retry | Mapping[str, Any] | None = None,
        limits: Mapping[str, Limit | Mapping[str, Any]] | None = None,
        data_dir: str | Path | None = None,
        operator: str | None = None,
        phase: str | None = None,
        *,
        guardband_pct: float | None = None,
        project: str | Path | None = None,
        steps: list[str] | None = None,
        plugins: tuple[str, ...] = (),
        mock_roles: tuple[str, ...] = (),
        listeners: tuple[Any, ...] = (),
        custom: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> None:
        from litmus_seq.run.recording import open_recording

        self.config = load_config(config)
        self.step_name = step_name
        self.dut_serial = dut_serial
        self._retry: Retry = (_validate(Retry, retry, "retry", "a mapping such as {max_retries: 2, delay_s: 0.1}")
                              if retry is not None else self.config.retry or Retry())
        self.limits: dict[str, Limit] = (
            {name: _as_limit(name, lim) for name, lim in limits.items()} if limits is not None
            else dict(self.config.limits))
        self.vectors: list[Vector] = vectors_of(self.config)
        ctx = _project(project, station)
        self.project = ctx
        if station is None:
            station = ctx.config.station
        self.data_dir = ctx.data_dir(str(data_dir) if data_dir is not None else None)
        self._answers = _Answers()
        self._recording = open_recording(
            ctx, data_dir=self.data_dir, station=station, product=product, plugins=plugins, mock_roles=mock_roles,
            listeners=(self._answers, *listeners), operator=operator, guardband_pct=guardband_pct,
            steps=None if steps is None else [{"step_path": _path(s), "name": s, "step_index": i, "kind": "test",
                                               "phase": "main", "vector_count": 1} for i, s in enumerate(steps)],
            sequence={"name": run_name}, dut_serial=dut_serial, phase=phase, custom=custom, limits=self._limit_for)
        self.session = self._recording.session
        self._run = self._recording.run
        self._limits_seen: dict[Any, ResolvedLimit] = {}
        self._vector: Vector | None = None
        self._last_vector = "done"  # the outcome of the vector closed last
        self._context = _Scopes(self)
        _OPEN.add(self)

    # -- the run as a whole ------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._run.run_id  # type: ignore[no-any-return]

    @property
    def run(self) -> Any:
        """The underlying :class:`litmus_seq.run.recorder.Run` (the recorder)."""
        return self._run

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)

    def close(self, exc: BaseException | None = None) -> str:
        """Seal the run (once) and close the session; returns the outcome. ``exc`` is what ended
        the run early, if anything: the run is then ``errored`` (``terminated`` for Ctrl-C)."""
        if self.result is not None:
            return self.result.outcome  # type: ignore[no-any-return]
        _OPEN.discard(self)
        try:
            if exc is not None:
                self._run.abort(exc)
        finally:
            self._recording.close()
        return self.result.outcome  # type: ignore[no-any-return]

    @property
    def result(self) -> Any:
        """The sealed :class:`~litmus_seq.run.RunResult` (outcome, error, parquet file), ``None``
        while the run is open."""
        return self._recording.result

    @property
    def outcome(self) -> str | None:
        """The sealed outcome, ``None`` while the run is open."""
        return None if self.result is None else self.result.outcome

    # -- instruments ---------------------------------------------------------------------------

    @property
    def instruments(self) -> Mapping[str, Any]:
        """The station's drivers by role, connected (and stamped into the run) on first use."""
        from litmus_seq.run.context import Instruments

        return Instruments(self._run)

    def call(self, role: str, method: str, *args: Any,
             _convert: Callable[..., tuple[list[Any], dict[str, Any]]] | None = None, **kwargs: Any) -> Any:
        """``instruments[role].method(*args, **kwargs)``; a fault is an InstrumentError naming both."""
        from litmus_seq.errors import InstrumentError, LitmusError

        driver = self._run.instrument(role)
        fn = getattr(driver, method, None)
        if not callable(fn):
            from litmus_seq.suggest import did_you_mean

            methods = [m for m in dir(driver) if not m.startswith("_") and callable(getattr(driver, m, None))]
            raise InstrumentError(f"{role}.{method}: the '{role}' instrument has no method '{method}'"
                                  + did_you_mean(method, methods))
        if _convert is not None:
            call_args, kwargs = _convert(fn, args, kwargs)
        else:
            call_args = list(args)
        try:
            return fn(*call_args, **kwargs)
        except LitmusError:
            raise
        except Exception as exc:
            raise InstrumentError(f"{role}.{method}: {type(exc).__name__}: {exc}") from exc

    # -- steps ---------------------------------------------------------------------------------

    @property
    def in_step(self) -> bool:
        return self._run.step_path is not None

    def start_step(self, name: str, description: str | None = None) -> None:
        """Open a step (nested inside the open one, if any); close it with :meth:`end_step`."""
        parent = self._run.step_path
        self._run.begin_step(f"{parent}/{name}" if parent is not None else _path(name), name=name)
        if description:
            self._run.record("description", description)

    def end_step(self, outcome: str | None = None, error: str | None = None) -> str:
        """Close the innermost step; returns its outcome (at least ``outcome`` when given)."""
        if self._run.step_path is None:
            raise RuntimeError("end_step(): no step is open")
        self._vector = None
        return self._run.end_step(outcome, error)  # type: ignore[no-any-return]

    @contextmanager
    def step(self, name: str, description: str | None = None) -> Iterator[Harness]:
        """``with harness.step("warmup"):`` -- a step that always ends. An ``Exception`` inside is
        recorded (step ``errored``, traceback in a ``diagnostic.error`` event) and not raised
        further, so the next step runs, as in a YAML sequence; Ctrl-C ends the run."""
        from litmus_seq.errors import StepAborted

        self.start_step(name, description)
        path = self._run.step_path
        try:
            yield self
        except StepAborted:
            pass
        except Exception as exc:
            self._run.error(exc)
        except BaseException as exc:
            self._run.abort(exc)
            raise
        if self._run.step_path == path:
            self.end_step()

    # -- vectors -------------------------------------------------------------------------------

    @property
    def retry_config(self) -> Retry:
        """The active retry policy: ``retry=``, else the config's ``retry:``, else no retry."""
        return self._retry

    @property
    def current_vector(self) -> Vector | None:
        """The vector open in :meth:`run_vector` (or :meth:`start_vector`), else ``None``."""
        return self._vector

    def start_vector(self, vector: Vector | Mapping[str, Any] | int, retry: int = 0) -> None:
        """Open ``vector`` (a :class:`Vector`, its index in :attr:`vectors`, or a parameter
        mapping) in the open step; close it with :meth:`end_vector`."""
        if isinstance(vector, int):
            vector = self.vectors[vector]
        elif not isinstance(vector, Vector):
            vector = Vector(0, vector)
        if self._run.step_path is None:
            raise RuntimeError("start_vector(): open a step first (harness.step(...) or start_step())")
        self._vector = vector
        self._run.begin_vector(vector.params, vector.index, retry)

    def end_vector(self, outcome: str | None = None, error: str | None = None) -> str:
        """Close the open vector; returns its outcome."""
        if self._run.vector_context is None:
            raise RuntimeError("end_vector(): no vector is open")
        self._vector = None
        self._last_vector = self._run.end_vector(outcome, error)
        return self._last_vector

    @contextmanager
    def run_vector(self, vector: Vector | Mapping[str, Any] | int, retry: int = 0) -> Iterator[Any]:
        """``with harness.run_vector(v):`` -- measurements inside carry the vector's parameters
        and use its limits; an ``Exception`` inside makes the vector ``errored`` (not raised)."""
        from litmus_seq.errors import StepAborted

        self.start_vector(vector, retry)
        ctx = self._run.vector_context
        try:
            yield ctx
        except StepAborted:
            pass
        except Exception as exc:
            self._run.error(exc)
        except BaseException as exc:
            self._run.abort(exc)
            raise
        if self._run.vector_context is ctx:
            self.end_vector()

    def run_with_retry(self, vector: Vector | int, test_fn: Callable[[Vector], Any],
                       name: str | None = None) -> str:
        """Run ``test_fn(vector)`` in :meth:`run_vector`, again up to ``retry_config.max_retries``
        times while it fails or errors; returns the last attempt's outcome. ``test_fn`` returns a
        value (measured as ``name``, default: the one configured limit's name, else the step's
        name) or yields ``(name, value)`` pairs."""
        if isinstance(vector, int):
            vector = self.vectors[vector]
        attempts = self._retry.max_retries + 1
        for attempt in range(attempts):
            self._last_vector = "errored"
            with self.run_vector(vector, retry=attempt):
                self._measure_result(test_fn(vector), name)
            if self._last_vector not in ("failed", "errored") or attempt == attempts - 1:
                break
            if self._retry.delay_s:
                time.sleep(self._retry.delay_s)
        return self._last_vector

    def run_all(self, test_fn: Callable[[Vector], Any], step_name: str | None = None) -> str:
        """One step (``step_name``, default the harness's) running ``test_fn`` over every vector
        with :meth:`run_with_retry`; returns the step's outcome."""
        self.start_step(step_name or self.step_name)
        try:
            for vector in self.vectors:
                self.run_with_retry(vector, test_fn)
        except BaseException as exc:
            self._run.abort(exc)
            raise
        return self.end_step()

    def _measure_result(self, result: Any, name: str | None) -> None:
        if result is None:
            return
        if hasattr(result, "__next__"):  # a generator of (name, value) pairs
            for item in result:
                key, value = item
                self.measure(key, value)
            return
        self.measure(name or self._inferred_name(), result)

    def _inferred_name(self) -> str:
        names = list(self.limits) or list(self._vector.limits if self._vector is not None else ())
        if len(names) == 1:
            return names[0]
        return self._run.step_name or self.step_name

    # -- measurements --------------------------------------------------------------------------

    def _intern(self, limit: ResolvedLimit) -> ResolvedLimit:
        """One object per distinct limit for the whole run: the recorder and the stores key their
        per-limit work by identity, so a limit must stay alive (and equal limits be shared)."""
        # type(equals) keeps `equals: true` and `equals: 1` apart (True == 1 in Python)
        return self._limits_seen.setdefault((limit, type(limit.equals)), limit)

    def _limit_for(self, step_path: str, params: Mapping[str, Any], name: str) -> ResolvedLimit | None:
        """The recorder's ``limits`` callable: the vector's limit, then the harness's (DESIGN
        resolution order steps 1 and 2; the recorder goes on to the product spec)."""
        from litmus_seq.limits import resolve_limit

        vector = self._vector
        if vector is not None and name in vector.limits:
            return self._intern(resolve_limit(vector.limits[name], source="vector"))
        if name in self.limits:
            return self._intern(resolve_limit(self.limits[name], source="step"))
        return None

    def resolve_limit(self, name: str, limit: Limit | Mapping[str, Any] | ResolvedLimit | None = None) -> ResolvedLimit | None:
        """The limit :meth:`measure` applies to ``name`` now: ``limit`` if given, else the open
        vector's, the harness's, the product spec's (guardbanded, band by the vector's
        parameters), else ``None`` (recorded unjudged)."""
        from litmus_seq.limits import ResolvedLimit, resolve_limit

        if isinstance(limit, ResolvedLimit):
            return self._intern(limit)
        if limit is not None:
            return self._intern(resolve_limit(_as_limit(name, limit), source="step"))
        params = self._vector.params if self._vector is not None else {}
        path = self._run.step_path or ""
        found = self._limit_for(path, params, name)
        return found if found is not None else self._run.spec_limit(name, params)

    def measure(self, name: str, value: Any, units: str | None = None, limit: Any = None,
                dut_pin: str | None = None, instrument: str | None = None, channel: str | None = None) -> str:
        """Record measurement ``name`` and judge it (DESIGN order: ``limit``, the vector's, the
        harness's, the product spec's with the guardband, else unjudged ``done``); returns the
        outcome. Outside any step, the measurement gets a step of its own named after it."""
        if limit is not None:
            limit = self.resolve_limit(name, limit)
        if self._run.step_path is not None:
            return self._run.measure(name, value, units=units, limit=limit, dut_pin=dut_pin,  # type: ignore[no-any-return]
                                     instrument=instrument, channel=channel)
        self.start_step(name)
        try:
            self._run.measure(name, value, units=units, limit=limit, dut_pin=dut_pin, instrument=instrument,
                              channel=channel)
        finally:
            outcome = self.end_step()
        return outcome

    def describe_measurement(self, name: str, value: Any, units: str | None, limit: ResolvedLimit | None,
                             outcome: str) -> str:
        """One readable line for a bad measurement: value, limit and spec."""
        shown = f"{name} = {value!r}" + (f" {units or (limit.units if limit else '') or ''}".rstrip())
        if limit is None:
            return f"{shown}: no value to record"
        if outcome == "errored":
            return f"{shown}: cannot be judged against {limit.describe()}"
        spec = f" [{limit.spec_ref}]" if limit.spec_ref else ""
        return f"{shown}: outside {limit.describe()}{spec}"

    def record(self, key: str, value: Any) -> None:
        """Free-form diagnostic data (JSON-able) on the open vector, step, or the run."""
        self._run.record(key, value)

    def fail(self, reason: str) -> None:
        """Fail the open vector (or step): the DUT did not meet the test."""
        self._run.fail(reason)

    def error(self, exc: BaseException | str) -> str:
        """The open vector (or step, or the run) could not be tested: ``errored``."""
        return self._run.error(exc)  # type: ignore[no-any-return]

    def diagnostic(self, message: str, *, error: bool = False) -> None:
        """A ``diagnostic.warning`` (or ``diagnostic.error``) event that changes no outcome."""
        self._run.diagnostic(message, level="error" if error else "warning")

    def run_sequence(self, path: str | Path) -> str:
        """Run a YAML sequence's steps as steps of this run, below the open step if any (setup,
        main if setup passed, cleanup), judged with the sequence's limits; returns the worst
        outcome of its steps. Its roles must be on this harness's station."""
        from litmus_seq.plan import build_plan
        from litmus_seq.project import ProjectContext
        from litmus_seq.run import preflight  # the function (the package re-exports it lazily)
        from litmus_seq.run.executor import run_steps

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such sequence file (give the path of a sequence YAML file)")
        plan = build_plan(path, project=ProjectContext.for_path(path))
        for warning in preflight(plan, self.session) or ():
            self._run.diagnostic(f"{path}: {warning}")
        try:
            return run_steps(self._run, plan)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # a stop: the run ends here
                self._run.abort(exc)
            raise

    # -- prompts -------------------------------------------------------------------------------

    def prompt(self, message: str, prompt_type: str = "confirm", choices: list[str] | None = None,
               timeout_seconds: float | None = None, *, answer: Any = None, name: str | None = None) -> Any:
        """Ask the operator through the ``litmus_seq_prompt`` hook (or take ``answer``, for an
        unattended run) and record the answer as measurement ``name`` (default: the step's
        name); a confirm answered "no" fails it. Returns the answer; no answer (no answerer, a
        timeout) makes the step ``errored`` and returns ``None``; "abort" ends the run
        ``terminated`` (:class:`~litmus_seq.errors.Terminated`)."""
        return self.ask(message, prompt_type, choices, timeout_seconds, answer=answer, name=name)[1]

    def ask(self, message: str, prompt_type: str = "confirm", choices: list[str] | None = None,
            timeout_seconds: float | None = None, *, answer: Any = None, name: str | None = None) -> tuple[str, Any]:
        """:meth:`prompt`, returning ``(outcome, answer)``: ``passed``/``failed`` for a confirm,
        ``done`` for a choice or input, ``errored`` (with the reason as the answer) for none."""
        from litmus_seq.errors import StepAborted

        if prompt_type not in ("confirm", "choice", "input"):
            raise ConfigError(f"prompt_type {prompt_type!r}: use confirm, choice or input")
        implicit = self._run.step_path is None
        if implicit:
            self.start_step(name or "prompt")
        self._answers.pending = _answer(answer, prompt_type)
        try:
            reply = self._run.prompt(message, type=prompt_type, choices=choices or (), timeout_s=timeout_seconds,
                                     name=name)
        except StepAborted as exc:
            return "errored", str(exc)
        finally:
            self._answers.pending = None
            if implicit:
                self.end_step()
        if prompt_type == "confirm":
            return ("passed" if reply else "failed"), reply
        return "done", reply

    # -- context -------------------------------------------------------------------------------

    @property
    def context(self) -> Context:
        """The innermost scope open now: vector, else step, else run (most specific wins)."""
        return self._context.current()

    @property
    def run_context(self) -> Context:
        """The run scope: what is configured here lands on every row of the run."""
        return self._context.run


def _path(name: str) -> str:
    return f"main/{name}"


def _answer(answer: Any, prompt_type: str) -> Any:
    """An answer given up front (a Robot variable) in the form the prompt hook returns."""
    if answer is None or answer == "":
        return None
    if prompt_type == "confirm" and isinstance(answer, str):
        word = answer.strip().lower()
        if word == "abort":
            return "abort"
        return word in ("y", "yes", "true", "ok", "pass", "1")
    return answer


class _Answers:
    """The answer given with :meth:`Harness.prompt` (``answer=``), handed out through the
    ``litmus_seq_prompt`` hook so it is recorded like any operator's."""

    def __init__(self) -> None:
        self.pending: Any = None

    def litmus_seq_prompt(self, prompt: dict[str, Any]) -> Any:
        return self.pending


def _mark_hookimpl() -> None:
    from litmus_seq.hookspecs import hookimpl

    _Answers.litmus_seq_prompt = hookimpl(tryfirst=True)(_Answers.litmus_seq_prompt)  # type: ignore[method-assign]


_mark_hookimpl()


class Context:
    """One scope of the run (the run, a step or a vector): ``configure`` stimulus values
    (``in_<key>`` columns), ``observe`` readings (``out_<key>``; arrays to the channel store),
    and ``measure`` (:meth:`Harness.measure`)."""

    def __init__(self, harness: Harness, scope: str) -> None:
        self._harness = harness
        self.scope = scope  # run | step | vector

    def configure(self, key: str, value: Any) -> None:
        """A stimulus value: an ``in_<key>`` column on this scope's rows."""
        self._harness.run.configure(key, value, scope=self.scope)

    def observe(self, key: str, value: Any) -> None:
        """An observed value: an ``out_<key>`` column; arrays go to the channel store."""
        self._harness.run.observe(key, value, scope=self.scope)

    def set_params(self, params: Mapping[str, Any]) -> None:
        """``configure`` every item."""
        for key, value in params.items():
            self.configure(key, value)

    def set_observations(self, observations: Mapping[str, Any]) -> None:
        """Every item as an observed value, written as given (no channel store routing)."""
        for key, value in observations.items():
            self._harness.run.observe(key, value, scope=self.scope, channel=False)

    def measure(self, name: str, value: Any, **kwargs: Any) -> str:
        """:meth:`Harness.measure` (the same event)."""
        return self._harness.measure(name, value, **kwargs)

    def __repr__(self) -> str:
        return f"<Context {self.scope}>"


class _Scopes:
    def __init__(self, harness: Harness) -> None:
        self._harness = harness
        self.run = Context(harness, "run")

    def current(self) -> Context:
        run = self._harness.run
        if run.vector_context is not None:
            return Context(self._harness, "vector")
        if run.step_path is not None:
            return Context(self._harness, "step")
        return self.run


def run_sequence(path: str | Path, *, station: Any = None, dut_serial: str | None = None,
                 data_dir: str | Path | None = None, operator: str | None = None, phase: str | None = None,
                 listeners: tuple[Any, ...] = ()) -> Any:
    """Run a whole YAML sequence as its own run, as ``litmus-seq run`` does (its project found
    from the file; ``station`` overrides the sequence's); returns the sealed
    :class:`~litmus_seq.run.recorder.RunResult`."""
    from litmus_seq.plan import build_plan
    from litmus_seq.plugins import get_plugin_manager
    from litmus_seq.project import ProjectContext
    from litmus_seq.run import Session, preflight, run_plan
    from litmus_seq.stores import register_stores

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such sequence file (give the path of a sequence YAML file)")
    ctx = ProjectContext.for_path(path)
    plan = build_plan(path, project=ctx)
    ref = station or plan.station_ref or ctx.config.station
    station_model, station_doc = None, None
    if isinstance(ref, (str, Path)):
        station_path = ctx.resolve(str(ref), "stations")
        station_model, station_doc = ctx.load_station(str(ref)), ctx.document(station_path)
    elif ref is not None:
        station_model = ref
    pm = get_plugin_manager(project_root=ctx.root, extra=tuple(ctx.config.plugins))
    data = ctx.data_dir(str(data_dir) if data_dir is not None else None)
    session = Session(station_model, pm=pm, root=ctx.root, operator=operator, listeners=listeners, data_dir=data)
    preflight(plan, session, station_doc)
    with register_stores(pm, data), session:
        return run_plan(session, plan, dut_serial=dut_serial, test_phase=phase,
                        project_name=getattr(ctx.config, "name", None))
