"""``robot --listener litmus_seq.robot.Listener``: every suite a run, every test a step.

The listener (Robot's listener API v3) needs nothing in the suite: each suite that holds tests
becomes one run on the station, its collected tests are the run's planned steps
(``test.steps_discovered``), and each test that runs is a step whose outcome follows the test:

* PASS -> ``passed`` (or worse, if a measurement recorded in it failed), SKIP -> ``skipped``;
* FAIL from an assertion (``Fail``, ``Should Be Equal``, a limit failure of ``Measure``, any
  ``AssertionError``) -> ``failed``; FAIL from any other exception (an instrument fault, a
  missing keyword, a timeout, a Python error) -> ``errored``;
* a test Robot never ran (``--exitonfailure``, a fatal error, Ctrl-C) is left a never-ran row;
* WARN and ERROR log messages become ``diagnostic.warning`` / ``diagnostic.error`` events.

Options are listener arguments, ``name=value`` separated by colons::

    robot --listener litmus_seq.robot.Listener:station=sim_bench:dut_serial=SN001 tests/

``station``, ``product``, ``dut_serial``, ``data_dir``, ``operator``, ``phase`` and
``guardband_pct``; any of them may also come from a Robot variable of the same name in upper
case (``--variable DUT_SERIAL:SN001``). The :class:`~litmus_seq.robot.LitmusSeq` library records
into the listener's run when both are used.

:class:`TestSteps` is the mapping itself; the library uses it too for runs started in a suite
setup.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq import outcomes as oc

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.harness import Harness

__all__ = ["Listener", "TestSteps", "failure_outcome"]

#: The runs the listener has open (innermost last): the library records into the last one.
LISTENER_RUNS: list[tuple[Harness, TestSteps]] = []

#: Listener arguments, also read from Robot variables named in upper case.
OPTIONS = ("station", "product", "dut_serial", "data_dir", "operator", "phase", "guardband_pct")


def failure_outcome(exc: BaseException | None) -> str:
    """``failed`` for an assertion (a verdict), ``errored`` for anything else (a fault)."""
    return oc.FAILED if isinstance(exc, AssertionError) else oc.ERRORED


class TestSteps:
    """Maps the tests of one suite onto steps of one harness run.

    A step is opened at the test's first keyword, not at ``start_test``: a test Robot skips
    without running anything (``--exitonfailure``) must stay a never-ran row.
    """

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self._test: str | None = None
        self._open = False
        self._failure: BaseException | None = None

    def start_test(self, name: str) -> None:
        self._test, self._open, self._failure = name, False, None

    def start_keyword(self) -> None:
        if self._test is not None and not self._open and not self.harness.in_step:
            self.harness.start_step(self._test)
            self._open = True

    def end_keyword(self, status: str) -> None:
        """Remember the exception behind a failing keyword (innermost first, the last one wins)."""
        if status != "FAIL" or self._test is None:
            return
        exc = sys.exc_info()[1]
        from robot.errors import ExecutionStatus

        if exc is not None and not isinstance(exc, ExecutionStatus):
            self._failure = exc
        elif exc is not None and self._failure is None:
            self._failure = exc  # a Robot-level error (missing keyword, syntax): a fault

    def end_test(self, status: str, message: str) -> None:
        test, self._test = self._test, None
        if not self._open:
            if status != "FAIL" or test is None:
                # a test with nothing to run that passed or was skipped still ran
                if test is not None and status in ("PASS", "SKIP"):
                    self.harness.start_step(test)
                    self.harness.end_step(oc.PASSED if status == "PASS" else oc.SKIPPED)
            return  # FAIL with no keyword run: Robot never ran it (never-ran row)
        self._open = False
        if not self.harness.in_step:  # the test closed its own step (End Step)
            return
        if status == "PASS":
            self.harness.end_step(oc.PASSED)
        elif status == "SKIP":
            self.harness.end_step(oc.SKIPPED, message or None)
        else:
            self.harness.end_step(failure_outcome(self._failure), message or "failed")

    def log_message(self, level: str, message: str) -> None:
        if level in ("WARN", "ERROR"):
            self.harness.diagnostic(message, error=level == "ERROR")


class Listener:
    """Robot Framework listener (API v3): each suite with tests is a run, each test a step."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, *args: str, **options: str) -> None:
        for arg in args:  # "key=value" given positionally (Robot splits on colons)
            key, sep, value = arg.partition("=")
            if not sep:
                raise ValueError(f"litmus_seq.robot.Listener: argument {arg!r}: expected name=value "
                                 f"with name one of {', '.join(OPTIONS)}")
            options[key] = value
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            from litmus_seq.suggest import did_you_mean

            raise ValueError(f"litmus_seq.robot.Listener: unknown option {unknown[0]!r}"
                             + did_you_mean(unknown[0], OPTIONS) + f"; options: {', '.join(OPTIONS)}")
        self.options = options
        self._runs: list[tuple[Harness, TestSteps]] = []

    # -- suites are runs -------------------------------------------------------------------

    def _option(self, name: str) -> Any:
        if self.options.get(name):
            return self.options[name]
        from robot.libraries.BuiltIn import BuiltIn

        return BuiltIn().get_variable_value("${%s}" % name.upper())

    def start_suite(self, data: Any, result: Any) -> None:
        if not data.tests:
            return
        from litmus_seq.harness import Harness

        gb = self._option("guardband_pct")
        source = Path(data.source) if data.source else None
        harness = Harness(
            station=self._option("station"),
            product=self._option("product"),
            dut_serial=self._option("dut_serial"),
            data_dir=self._option("data_dir"),
            operator=self._option("operator"),
            phase=self._option("phase"),
            guardband_pct=float(gb) if gb not in (None, "") else None,
            steps=[t.name for t in data.tests],
            project=source.parent if source is not None and source.is_file() else source,
            run_name=data.full_name,
        )
        steps = TestSteps(harness)
        self._runs.append((harness, steps))
        LISTENER_RUNS.append((harness, steps))

    def end_suite(self, data: Any, result: Any) -> None:
        if not data.tests or not self._runs:
            return
        self._end_run()

    # -- tests are steps -------------------------------------------------------------------

    def _steps(self) -> TestSteps | None:
        return self._runs[-1][1] if self._runs else None

    def start_test(self, data: Any, result: Any) -> None:
        steps = self._steps()
        if steps is not None:
            steps.start_test(data.name)

    def start_keyword(self, data: Any, result: Any) -> None:
        steps = self._steps()
        if steps is not None:
            steps.start_keyword()

    def end_keyword(self, data: Any, result: Any) -> None:
        steps = self._steps()
        if steps is not None:
            steps.end_keyword(result.status)

    def end_test(self, data: Any, result: Any) -> None:
        steps = self._steps()
        if steps is not None:
            steps.end_test(result.status, result.message)

    def log_message(self, message: Any) -> None:
        steps = self._steps()
        if steps is not None:
            steps.log_message(message.level, message.message)

    def close(self) -> None:
        """Robot is exiting: seal whatever is still open (an interrupted execution)."""
        while self._runs:
            self._end_run()

    def _end_run(self) -> None:
        entry = self._runs.pop()
        if entry in LISTENER_RUNS:
            LISTENER_RUNS.remove(entry)
        entry[0].close()
