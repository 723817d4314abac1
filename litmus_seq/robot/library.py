"""The ``LitmusSeq`` Robot Framework keyword library, on :class:`litmus_seq.harness.Harness`.

Every keyword drives the harness, and through it the run recorder: the same limits, guardbands,
traceability, events and stores as ``litmus-seq run``. The library is its own listener (API v3):
a run started in a suite setup makes each test of the suite a step, with the verdict mapping of
:class:`litmus_seq.robot.listener.TestSteps`.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robotlibcore import DynamicCore, keyword

from litmus_seq import outcomes as oc
from litmus_seq.robot.listener import LISTENER_RUNS, TestSteps

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.harness import Harness
    from litmus_seq.limits import ResolvedLimit

__all__ = ["LitmusSeq", "LimitFailure", "OperatorStop", "convert", "scalar"]


class LimitFailure(AssertionError):
    """A measurement outside its limit: fails the keyword (and its test) as ``failed``."""

    ROBOT_SUPPRESS_NAME = True


class OperatorStop(RuntimeError):
    """The operator stopped the run (a prompt answered "abort"): the run is ``terminated`` and
    Robot runs no further test (they stay never-ran rows)."""

    ROBOT_SUPPRESS_NAME = True
    ROBOT_EXIT_ON_FAILURE = True


# --------------------------------------------------------------------------- conversions

_TRUE = frozenset(("true", "yes", "on", "pass", "ok"))
_FALSE = frozenset(("false", "no", "off", "fail"))


def scalar(text: Any) -> Any:
    """A Robot argument as the scalar it spells: ``"12"`` -> 12, ``"3.3"`` -> 3.3, ``"true"`` ->
    True; anything else is returned unchanged (non-strings too)."""
    if not isinstance(text, str):
        return text
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t, 10)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return text
    return f if low not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity") else text


def convert(value: Any, limit: ResolvedLimit | None) -> Any:
    """``value`` (often a Robot string) in the type the limit judges: a number for a band, a
    boolean or an integer for ``equals`` of that type, text for a pattern or a string.

    A string that does not convert is returned as it is: the limit then judges it ``errored``
    ("cannot be judged"), never a silent pass.
    """
    if not isinstance(value, str):
        return value
    if limit is None:
        return scalar(value)
    c = limit.comparator
    if c in ("MATCH",):
        return value
    if c in ("EQ", "NE"):
        expected = limit.equals
        if isinstance(expected, bool):
            low = value.strip().lower()
            return True if low in _TRUE else False if low in _FALSE else value
        if isinstance(expected, (int, float)):
            got = scalar(value)
            return got if isinstance(got, (int, float)) and not isinstance(got, bool) else value
        return value
    if c == "LOG":
        return scalar(value)
    try:
        return float(value.strip())
    except ValueError:
        return value


def _by_annotation(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Robot strings converted to an instrument method's annotated parameter types."""
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError):
        return [scalar(a) for a in args], {k: scalar(v) for k, v in kwargs.items()}
    params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def conv(name: str | None, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        hint = hints.get(name) if name else None
        if hint is str:
            return v
        if hint is bool:
            return v.strip().lower() in _TRUE or v.strip() == "1"
        if hint in (float, int):
            try:
                return hint(v.strip())
            except ValueError:
                raise ValueError(f"argument '{name}': expected {'a number' if hint is float else 'an integer'}, "
                                 f"got {v!r}") from None
        return scalar(v)

    out_args = [conv(params[i].name if i < len(params) else None, a) for i, a in enumerate(args)]
    return out_args, {k: conv(k, v) for k, v in kwargs.items()}


def _number(name: str, text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={text!r}: expected a number") from None


def _limit_from(low: Any, high: Any, equals: Any, matches: Any, units: str | None) -> dict[str, Any] | None:
    """The YAML limit form of ``Measure``'s limit arguments, or None when none is given."""
    form: dict[str, Any] = {}
    if low not in (None, ""):
        form["low"] = _number("low", low)
    if high not in (None, ""):
        form["high"] = _number("high", high)
    if equals is not None:
        form["equals"] = scalar(equals)
    if matches not in (None, ""):
        form["matches"] = matches
    if not form:
        return None
    if units:
        form["units"] = units
    return form


# --------------------------------------------------------------------------- the library


class LitmusSeq(DynamicCore):
    """Test with litmus-seq from Robot Framework: limits from the product spec with a guardband,
    every measurement traceable to its instrument and calibration, results in the same stores
    (events, parquet) as ``litmus-seq run``.

    Import it with an optional station (an id from the project's ``stations/`` or a file) and
    data folder; without them the project's ``litmus.yaml`` decides (``station:``, ``data_dir:``),
    the project being the folder of the suite or above it:

    | ***** Settings *****
    | Library         litmus_seq.robot.LitmusSeq    station=sim_bench
    | Suite Setup     Start Run    dut_serial=${DUT}    product=power_board    guardband_pct=10
    | Suite Teardown  End Run
    |
    | ***** Test Cases *****
    | Output Voltage
    |     Call Instrument    psu    set_voltage    5.0
    |     Measure From    dmm.measure_dc_voltage    rail_3v3

    A run started in a suite setup makes each test a step of the run (named after the test); the
    suite's tests are the run's planned steps, so tests Robot does not run (``--exitonfailure``)
    are recorded as never ran. A test that fails on an assertion (``Measure`` outside its limit,
    ``Fail``, ``Should Be ...``) is a ``failed`` step; one that fails on an error (instrument
    fault, Python exception, missing keyword) is ``errored``. WARN and ERROR messages become
    diagnostic events of the run.

    Robot passes arguments as strings: ``Measure`` converts the value to the type its limit
    judges (a number for a band, a boolean or integer for ``equals``), and ``Call Instrument``
    converts arguments to the instrument method's annotated types.
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_DOC_FORMAT = "ROBOT"
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, station: str | None = None, data_dir: str | None = None) -> None:
        DynamicCore.__init__(self, [])
        self.ROBOT_LIBRARY_LISTENER = self
        self._station = station or None
        self._data_dir = data_dir or None
        self._harness: Harness | None = None
        self._steps: TestSteps | None = None  # set while the tests of a suite are steps
        self._suite_tests: list[list[str]] = []  # test names of the suites being run (a stack)

    # -- where the run is ------------------------------------------------------------------

    def _run(self) -> Harness:
        if LISTENER_RUNS:
            return LISTENER_RUNS[-1][0]
        if self._harness is None:
            raise RuntimeError("no run is open: call 'Start Run    dut_serial=...' first "
                               "(in a Suite Setup, so that each test is a step)")
        return self._harness

    def _mapping(self) -> TestSteps | None:
        if LISTENER_RUNS:
            return None  # the listener maps tests itself
        return self._steps

    @staticmethod
    def _suite_dir() -> Path | None:
        from robot.libraries.BuiltIn import BuiltIn

        try:
            source = BuiltIn().get_variable_value("${SUITE SOURCE}")
        except Exception:  # not running inside Robot (libdoc, a unit test)
            return None
        if not source:
            return None
        path = Path(source)
        return path.parent if path.is_file() else path

    # -- keywords: station and run ---------------------------------------------------------

    @keyword
    def open_station(self, station: str) -> None:
        """Use ``station`` (an id from the project's ``stations/`` folder, or a station file) for
        the next run, when it was not given when importing the library."""
        if self._harness is not None:
            raise RuntimeError("a run is open: 'End Run' before opening another station")
        self._station = station

    @keyword
    def start_run(
        self,
        dut_serial: str | None = None,
        product: str | None = None,
        guardband_pct: float | None = None,
        operator: str | None = None,
        phase: str | None = None,
        config: str | None = None,
    ) -> str:
        """Open a run for the unit ``dut_serial``: connects the station's instruments and returns
        the run id.

        ``product`` (an id from ``products/`` or a file) gives the limits by measurement name,
        tightened by ``guardband_pct`` percent (DESIGN §2.2); ``operator`` and ``phase`` are
        recorded on every row. ``config`` is a sidecar YAML file with ``vectors:``, ``limits:``
        and ``retry:`` (see `Get Vectors`).

        Called in a suite setup, each test of the suite becomes a step of the run.
        """
        if LISTENER_RUNS:
            raise RuntimeError("the litmus_seq.robot.Listener already opened a run for this suite: "
                               "give dut_serial, product and the rest to the listener "
                               "(--listener litmus_seq.robot.Listener:dut_serial=...)")
        if self._harness is not None:
            raise RuntimeError("a run is already open: 'End Run' first")
        from robot.running.context import EXECUTION_CONTEXTS

        from litmus_seq.harness import Harness

        in_setup = EXECUTION_CONTEXTS.current is not None and EXECUTION_CONTEXTS.current.test is None
        tests = self._suite_tests[-1] if in_setup and self._suite_tests else None
        self._harness = Harness(
            station=self._station,
            product=product,
            dut_serial=dut_serial,
            config=config,
            data_dir=self._data_dir,
            operator=operator,
            phase=phase,
            guardband_pct=guardband_pct,
            steps=tests,
            project=self._suite_dir(),
        )
        self._steps = TestSteps(self._harness) if tests else None
        return self._harness.run_id

    @keyword
    def end_run(self) -> str:
        """Seal the run and return its outcome: ``passed``, ``failed``, ``errored`` or
        ``terminated``. The parquet file is written; the instruments are closed."""
        harness = self._harness
        if harness is None:
            raise RuntimeError("no run is open: nothing to end")
        self._harness, self._steps = None, None
        return harness.close()

    @keyword
    def run_sequence(self, path: str, dut_serial: str | None = None) -> str:
        """Run a whole YAML sequence as one keyword and return its outcome; the keyword fails
        unless the sequence passed (``passed``, or only ``done``/``skipped`` steps).

        With a run open, the sequence's steps become steps of that run, below the test's step
        (``main/<test>/main/<step>``), judged with the sequence's limits. Without one, the
        sequence is a run of its own for ``dut_serial``, as ``litmus-seq run`` makes it. ``path``
        is relative to the project root (or absolute); the station is the library's, else the
        sequence's.
        """
        from litmus_seq.harness import run_sequence

        file = Path(path)
        if not file.is_absolute():
            from litmus_seq.project import find_root

            file = find_root(self._suite_dir() or Path.cwd()) / file
        if self._harness is not None or LISTENER_RUNS:
            outcome, detail = self._run().run_sequence(file), ""
        else:
            result = run_sequence(file, station=self._station, dut_serial=dut_serial, data_dir=self._data_dir)
            outcome = result.outcome
            detail = (f": {result.error}" if result.error else "") + f" (run {result.run_id})"
        if outcome == oc.FAILED:
            raise LimitFailure(f"sequence {path} failed{detail}")
        if oc.SEVERITY[outcome] > oc.SEVERITY[oc.PASSED]:
            raise RuntimeError(f"sequence {path} {outcome}{detail}")
        return oc.PASSED

    # -- keywords: steps and vectors ---------------------------------------------------------

    @keyword
    def start_step(self, name: str, description: str | None = None) -> None:
        """Open a step named ``name``; its measurements are grouped under it until `End Step`."""
        self._run().start_step(name, description=description)

    @keyword
    def end_step(self) -> str:
        """Close the step opened by `Start Step` and return its outcome."""
        return self._run().end_step()

    @keyword
    def get_vectors(self, config: str | None = None, expand: str = "product", **axes: Any) -> list[Any]:
        """The vectors to run: from the run's sidecar ``config`` (or the ``config`` file given
        here), or built from the named lists given, all combinations (``expand=product``) or
        side by side (``expand=zip``):

        | ${vectors}=    Get Vectors    vin=${{[5.0, 12.0]}}    load=${{[0.1, 0.5]}}
        | FOR    ${v}    IN    @{vectors}
        |     Start Vector    ${v}
        |     Call Instrument    psu    set_voltage    ${v}[vin]
        |     ...
        |     End Vector
        | END

        A value may also be a comma-separated string (``vin=5.0,12.0``).
        """
        from litmus_seq.harness import load_config, vectors_of

        if axes:
            lists = {k: [scalar(x) for x in (v.split(",") if isinstance(v, str) else v)]
                     for k, v in axes.items()}
            return vectors_of(load_config({"vectors": {"expand": expand, **lists}}))
        if config is not None:
            return vectors_of(load_config(config))
        return self._run().vectors

    @keyword
    def start_vector(self, vector: Any) -> None:
        """Open a vector (one of `Get Vectors`): its parameters are stamped on every measurement
        until `End Vector` and choose the spec band."""
        self._run().start_vector(vector)

    @keyword
    def end_vector(self) -> str:
        """Close the vector opened by `Start Vector` and return its outcome."""
        return self._run().end_vector()

    # -- keywords: measurements and records --------------------------------------------------

    def _judge(self, name: str, value: Any, units: str | None, low: Any, high: Any, equals: Any,
               matches: Any, instrument: str | None = None) -> Any:
        harness = self._run()
        explicit = _limit_from(low, high, equals, matches, units)
        limit = harness.resolve_limit(name, explicit)
        value = convert(value, limit)
        outcome = harness.measure(name, value, units=units, limit=limit, instrument=instrument)
        if outcome in (oc.FAILED, oc.ERRORED):
            raise (LimitFailure if outcome == oc.FAILED else RuntimeError)(
                harness.describe_measurement(name, value, units, limit, outcome))
        return value

    @keyword
    def measure(
        self,
        name: str,
        value: Any,
        units: str | None = None,
        low: str | None = None,
        high: str | None = None,
        equals: str | None = None,
        matches: str | None = None,
    ) -> Any:
        """Record measurement ``name`` and judge it: against ``low``/``high``, ``equals`` or
        ``matches`` when given, else the product spec's limit for ``name`` with the run's
        guardband (the spec band chosen by the open vector's parameters), else unjudged.

        The value is converted to the type the limit judges. A value outside its limit is still
        recorded (a ``failed`` row) and then fails the keyword with the value, the limit and the
        spec: ``rail_3v3 = 3.6 V: outside 3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10%)``.
        Returns the converted value.
        """
        return self._judge(name, value, units, low, high, equals, matches)

    @keyword
    def measure_from(
        self,
        source: str,
        name: str,
        *args: Any,
        units: str | None = None,
        low: str | None = None,
        high: str | None = None,
        equals: str | None = None,
        matches: str | None = None,
    ) -> Any:
        """Call ``ROLE.METHOD`` with ``args`` and record what it returns as measurement ``name``,
        judged as `Measure` does; returns the value. The instrument's identity and calibration
        are stamped on the row.

        | ${v}=    Measure From    dmm.measure_dc_voltage    rail_3v3
        """
        role, sep, method = source.partition(".")
        if not sep or not role or not method:
            raise ValueError(f"{source!r}: expected ROLE.METHOD, e.g. dmm.measure_dc_voltage")
        value = self.call_instrument(role, method, *args)
        return self._judge(name, value, units, low, high, equals, matches, instrument=role)

    @keyword
    def call_instrument(self, role: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` of the station's instrument ``role`` and return its result. String
        arguments are converted to the method's annotated types (``set_voltage    5.0`` passes
        the float 5.0)."""
        return self._run().call(role, method, *args, _convert=_by_annotation, **kwargs)

    @keyword
    def record(self, key: str, value: Any) -> None:
        """Record free-form data (firmware dumps, calibration stamps) on the open step."""
        self._run().record(key, value)

    @keyword
    def configure(self, key: str, value: Any) -> None:
        """A stimulus value (``in_<key>`` column) of the open vector, else step, else run."""
        self._run().context.configure(key, scalar(value))

    @keyword
    def observe(self, key: str, value: Any) -> None:
        """An observed value (``out_<key>`` column) of the open vector, else step, else run;
        lists go to the channel store."""
        self._run().context.observe(key, scalar(value))

    @keyword
    def get_limit(self, name: str) -> dict[str, Any] | None:
        """The limit `Measure` would apply to ``name`` now, as a dictionary (``comparator``,
        ``low``, ``high``, ``equals``, ``units``, ``spec_low``, ``spec_high``,
        ``guardband_pct``, ``source``...), or None when the measurement would be unjudged."""
        limit = self._run().resolve_limit(name)
        return None if limit is None else dict(limit.as_dict())

    @keyword
    def prompt_operator(
        self,
        message: str,
        type: str = "confirm",  # noqa: A002 - the keyword argument users write
        choices: list[str] | None = None,
        timeout: float | None = None,
        answer: str | None = None,
        name: str | None = None,
    ) -> Any:
        """Ask the operator and record the answer (a confirm is judged: "no" fails).

        In an unattended run give the answer from a Robot variable (``answer=${LED_GREEN}``,
        set with ``--variable LED_GREEN:yes``); without an answer the question goes to the
        ``litmus_seq_prompt`` hook (a terminal, a fixture button, an HTTP form). ``type`` is
        ``confirm``, ``choice`` (with ``choices``) or ``input``. Returns the answer.

        No answer (no answerer, a timeout) fails the keyword and makes the step ``errored``; the
        answer ``abort`` ends the run ``terminated`` and stops the Robot execution.
        """
        from litmus_seq.errors import Terminated

        if isinstance(choices, str):
            choices = [c.strip() for c in choices.split(",") if c.strip()]
        harness = self._run()
        try:
            outcome, reply = harness.ask(message, prompt_type=type, choices=choices, timeout_seconds=timeout,
                                         answer=answer or None, name=name)
        except Terminated as exc:
            harness.run.abort(exc)
            raise OperatorStop(f"{message!r}: the operator stopped the run") from None
        if outcome == oc.FAILED:
            raise LimitFailure(f"{message!r}: the operator answered no")
        if outcome == oc.ERRORED:
            raise RuntimeError(f"{message!r}: {reply}")
        return reply

    # -- the library as its own listener ---------------------------------------------------

    def start_suite(self, data: Any, result: Any) -> None:
        self._suite_tests.append([t.name for t in data.tests])

    def end_suite(self, data: Any, result: Any) -> None:
        if self._suite_tests:
            self._suite_tests.pop()

    def start_test(self, data: Any, result: Any) -> None:
        steps = self._mapping()
        if steps is not None:
            steps.start_test(data.name)

    def start_keyword(self, data: Any, result: Any) -> None:
        steps = self._mapping()
        if steps is not None:
            steps.start_keyword()

    def end_keyword(self, data: Any, result: Any) -> None:
        steps = self._mapping()
        if steps is not None:
            steps.end_keyword(result.status)
        if result.status == "FAIL" and result.type in ("SETUP", "TEARDOWN") and self._harness is not None:
            from robot.running.context import EXECUTION_CONTEXTS

            if EXECUTION_CONTEXTS.current is not None and EXECUTION_CONTEXTS.current.test is None:
                # the suite's own setup or teardown: the run could not be done as planned
                self._harness.error(f"suite {result.type.lower()} failed: {result.message}")

    def end_test(self, data: Any, result: Any) -> None:
        steps = self._mapping()
        if steps is not None:
            steps.end_test(result.status, result.message)

    def log_message(self, message: Any) -> None:
        if self._harness is not None and not LISTENER_RUNS:
            TestSteps(self._harness).log_message(message.level, message.message)

    def close(self) -> None:
        """Robot is done with the library: a run never ended (no teardown ran) is sealed."""
        if self._harness is not None:
            harness, self._harness, self._steps = self._harness, None, None
            harness.close()

