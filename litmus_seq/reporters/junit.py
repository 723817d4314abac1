"""``--junit FILE``: a JUnit XML report, the format every CI server reads.

The file follows the Jenkins/Surefire ``junit-10.xsd`` (the schema pytest's own tests validate
against; ``tests/data/junit/``): ``<testcase>`` carries only ``name``, ``classname`` and ``time``
(three decimals at most), ``<testsuites>`` no ``skipped`` count.

One ``<testsuite>`` per run (name = sequence name) under a ``<testsuites>`` root, one
``<testcase>`` per executed step (name = step_path, classname = the sequence file as a dotted
name without its ``.yaml``, so CI shows ``sequences.mixed`` rather than a class called ``yaml``)
and one per planned step that never ran (``<skipped message="never ran"/>``). Groups are not
test cases: their outcome is their children's, which would count every failure twice; a group
appears only when it errored on its own (a broken ``when:``).

A run that did not pass always says why as an ``<error>`` (or ``<failure>``): on the step that was
in flight when the run ended, or, when nothing was (an instrument that did not connect, an
internal error between steps), on a run-level test case named ``run``. Retries are visible:
a step that passed after failed attempts carries one ``<flakyFailure>``/``<flakyError>`` per
failed attempt, a step that failed in the end one ``<rerunFailure>``/``<rerunError>`` per earlier
attempt, as Surefire writes its reruns.

The file is rewritten atomically (temporary file + ``os.replace``) at every ``run.ended``, and at
``close()`` if a run never ended, so even a run stopped by an internal error leaves a report.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from litmus_seq.reporters import (
    ERROR_OUTCOMES,
    RunRecord,
    StepReporter,
    StepResult,
    atomic_write,
    failure_lines,
    step_message,
)

__all__ = ["JUnitReport", "build_junit_xml", "classname"]

# characters XML 1.0 cannot carry at all (an instrument answering a control byte would otherwise
# make the whole report unreadable to the CI server)
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SUFFIX = re.compile(r"\.ya?ml$", re.IGNORECASE)
#: the name of the test case that carries a run's own error
RUN_CASE = "run"


def _xml_safe(text: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(s: float) -> str:
    """Surefire's time: at most three decimals."""
    return f"{max(s, 0.0):.3f}"


def classname(sequence_file: str) -> str:
    """``sequences/mixed.yaml`` -> ``sequences.mixed``: CI tools split the class name at its last
    dot, so the file suffix goes and dots inside a path part become ``_``."""
    stem = _SUFFIX.sub("", sequence_file.replace("\\", "/"))
    parts = [p.replace(".", "_") for p in stem.split("/") if p not in ("", ".")]
    return ".".join(parts) or "litmus-seq"


class _Suite:
    """Builds one ``<testsuite>`` with its counts."""

    def __init__(self, run: RunRecord) -> None:
        import xml.etree.ElementTree as ET

        self.ET = ET
        self.run = run
        ctx = run.context
        self.seq_file = str(ctx.get("sequence_file") or "")
        self.classname = _xml_safe(classname(self.seq_file))
        self.items = {item.get("step_path"): item for item in run.discovered}
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        self.cases: list[tuple[int, int, Any]] = []  # (step_index, order, element): plan order
        self.cause_shown = False  # the run's cause went on the step in flight
        self.messages: set[str] = set()  # of the failure/error elements so far

    def case(self, name: str, index: int, seconds: float) -> Any:
        el = self.ET.Element("testcase", name=_xml_safe(name), classname=self.classname, time=_seconds(seconds))
        self.cases.append((index, len(self.cases), el))
        self.counts["tests"] += 1
        return el

    def verdict(self, el: Any, tag: str, message: str, kind: str, text: str) -> None:
        """``failure`` / ``error`` / ``skipped`` on a case, counted."""
        child = self.ET.SubElement(el, tag, message=_xml_safe(message), type=kind)
        self.messages.add(message)
        if text:
            child.text = _xml_safe(text)
        self.counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1

    def where(self, step_path: str) -> str:
        item = self.items.get(step_path) or {}
        file, line = item.get("file") or self.seq_file, item.get("line")
        return f"{file}:{line}" if line is not None else str(file)

    def step(self, step: StepResult, in_flight: bool) -> None:
        run = self.run
        item = self.items.get(step.step_path, {})
        index = step.step_index if step.step_index is not None else item.get("step_index", 1 << 30)
        el = self.case(step.step_path, index, step.duration_s)
        outcome = "errored" if in_flight else step.outcome
        where = self.where(step.step_path)
        if in_flight:
            self.cause_shown = run.cause() is not None
            message = run.cause() or "the run ended while this step was running"
            self.verdict(el, "error", message, run.verdict, "\n".join([where, message, *_tracebacks(step)]))
        elif outcome == "failed":
            self.verdict(el, "failure", step_message(step), "failed",
                         "\n".join([where, *(failure_lines(step) or [step.error or "failed"])]))
        elif outcome in ERROR_OUTCOMES:
            message = step_message(step)
            self.verdict(el, "error", message, outcome or "errored",
                         "\n".join([where, message, *_tracebacks(step), *failure_lines(step)]))
        elif outcome == "skipped":
            self.verdict(el, "skipped", step.error or "skipped", "skipped", "")
        self.reruns(el, step, final_passed=outcome not in ("failed", *ERROR_OUTCOMES))

    def reruns(self, el: Any, step: StepResult, final_passed: bool) -> None:
        """Surefire's rerun elements for every attempt that was run again."""
        for a in step.retried_attempts():
            if final_passed:
                tag = "flakyFailure" if a["outcome"] == "failed" else "flakyError"
            else:
                tag = "rerunFailure" if a["outcome"] == "failed" else "rerunError"
            failures = _attempt_failures(step, a)
            lines = [f"[{a['index']}] retry {m.get('retry')}: {line}" for m, line in failures]
            message = failures[0][1] if failures else (a.get("error") or a["outcome"])
            child = self.ET.SubElement(el, tag, message=_xml_safe(message), type=a["outcome"])
            trace = self.ET.SubElement(child, "stackTrace")
            trace.text = _xml_safe("\n".join(lines) or (a.get("error") or a["outcome"]))

    def run_case(self) -> None:
        """The run-level test case: the run's own cause when no step case carries it."""
        run = self.run
        verdict = run.verdict
        cause = run.cause()
        if verdict not in ("failed", *ERROR_OUTCOMES) or self.cause_shown:
            return
        if cause is None and self.counts["errors"]:
            return
        if cause is not None and cause in self.messages:  # a step already says it: one cause, one error
            return
        if cause is None and verdict == "failed" and self.counts["failures"]:
            return
        el = self.case(RUN_CASE, -1, run.duration_s)
        message = cause or f"run {verdict}"
        trace = [_diag_text(d) for d in run.diagnostics if d.get("traceback")]
        self.verdict(el, "failure" if verdict == "failed" else "error", message, verdict,
                     "\n".join([self.seq_file, message, *trace]))

    def build(self) -> Any:
        ET, run, ctx = self.ET, self.run, self.run.context
        suite = ET.Element("testsuite")
        props = ET.SubElement(suite, "properties")
        for name in ("run_id", "dut_serial", "station_id", "session_id", "sequence_file", "sequence_version",
                     "test_phase"):
            value = run.run_id if name == "run_id" else run.session_id if name == "session_id" else ctx.get(name)
            if value is not None:
                ET.SubElement(props, "property", name=name, value=_xml_safe(str(value)))
        ET.SubElement(props, "property", name="run_outcome", value=run.verdict)
        ET.SubElement(props, "property", name="run_retry_count", value=str(run.retries))
        in_flight = set(run.open_steps)
        for step in [*run.steps, *run.open_steps.values()]:
            flying = step.step_path in in_flight
            if step.kind == "group" and not flying and not (step.outcome == "errored" and step.error):
                continue
            self.step(step, flying)
        for item in run.never_ran():
            if item.get("kind") == "group":
                continue
            el = self.case(item.get("step_path") or "", item.get("step_index", 1 << 30), 0.0)
            self.verdict(el, "skipped", "never ran", "never ran", "")
        self.run_case()
        suite.set("name", _xml_safe(str(ctx.get("sequence_name") or self.seq_file or "litmus-seq")))
        for key, n in self.counts.items():
            suite.set(key, str(n))
        suite.set("time", _seconds(run.duration_s))
        suite.set("timestamp", datetime.fromtimestamp(run.start_us / 1e6, tz=timezone.utc)
                  .isoformat(timespec="seconds").replace("+00:00", "Z"))
        suite.set("hostname", str(ctx.get("station_hostname") or socket.gethostname()))
        for _, _, el in sorted(self.cases, key=lambda c: (c[0], c[1])):
            suite.append(el)
        return suite


def _diag_text(d: dict[str, Any]) -> str:
    return (d.get("traceback") or d.get("message") or "").rstrip()


def _tracebacks(step: StepResult) -> list[str]:
    return [_diag_text(d) for d in step.errors() if _diag_text(d)]


def _attempt_failures(step: StepResult, attempt: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    from litmus_seq.reporters.render import measurement_failure

    return [(m, measurement_failure(m)) for m in step.bad_measurements()
            if m.get("vector_index") == attempt["index"] and (m.get("retry") or 0) == attempt["retry"]]


def build_junit_xml(runs: list[RunRecord]) -> bytes:
    """The JUnit XML document (UTF-8 bytes with declaration) for ``runs``."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    seconds = 0.0
    for run in runs:
        suite = _Suite(run).build()
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        seconds += run.duration_s
        root.append(suite)
    for key, n in totals.items():
        root.set(key, str(n))
    root.set("time", _seconds(seconds))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class JUnitReport(StepReporter):
    """Writes ``path`` as JUnit XML at every run end (and at close if a run never ended)."""

    label = "junit"

    def __init__(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.writes = 0
        self._dirty = False

    def on_step(self, step: StepResult, run: RunRecord) -> None:
        self._dirty = True

    def on_run_ended(self, run: RunRecord) -> None:
        self.write()

    def on_close(self) -> None:
        # a run that started but never ended (or steps reported after the last write)
        if self._dirty or any(not r.ended for r in self.runs):
            self.write()

    def write(self) -> None:
        """Write the report atomically; a reader never sees half a file."""
        data = build_junit_xml(self.runs)
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, data)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.problem(f"cannot write {self.path}: {reason}; check the --junit path")
            return
        self.writes += 1
        self._dirty = False
