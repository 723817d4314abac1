"""``--junit FILE``: a JUnit XML report, the format every CI server reads.

One ``<testsuite>`` per run (name = sequence name) under a ``<testsuites>`` root, one
``<testcase>`` per executed step (classname = sequence file, name = step_path) and one per planned
step that never ran (``<skipped message="never ran"/>``), so a run cut short shows the whole plan
in CI as it does in the parquet file. Groups are not test cases: their outcome is their
children's, which would count every failure twice; a group appears only when it errored on its
own (a broken ``when:``), because then its children never ran and the error would be lost.

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

from litmus_seq.reporters import RunRecord, StepReporter, StepResult, atomic_write, describe_measurement

__all__ = ["JUnitReport", "build_junit_xml"]

_ERROR_OUTCOMES = ("errored", "terminated", "aborted")
# characters XML 1.0 cannot carry at all (an instrument answering a control byte would otherwise
# make the whole report unreadable to the CI server)
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _suite(run: RunRecord) -> Any:
    import xml.etree.ElementTree as ET

    ctx = run.context
    seq_file = ctx.get("sequence_file") or ""
    suite = ET.Element("testsuite")
    props = ET.SubElement(suite, "properties")
    for name in ("run_id", "dut_serial", "station_id", "session_id", "sequence_version", "test_phase"):
        value = run.run_id if name == "run_id" else run.session_id if name == "session_id" else ctx.get(name)
        if value is not None:
            ET.SubElement(props, "property", name=name, value=_xml_safe(str(value)))
    ET.SubElement(props, "property", name="run_outcome",
                  value=run.outcome if run.outcome is not None else "aborted")
    items = {item.get("step_path"): item for item in run.discovered}
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    cases: list[tuple[int, int, Any]] = []  # (step_index, order, element): plan order in the file

    def case(step_path: str, step_index: int | None, seconds: float) -> Any:
        item = items.get(step_path, {})
        el = ET.Element("testcase", classname=_xml_safe(seq_file), name=_xml_safe(step_path),
                        time=f"{seconds:.6f}")
        if item.get("file"):
            el.set("file", str(item["file"]))
        if item.get("line") is not None:
            el.set("line", str(item["line"]))
        index = step_index if step_index is not None else item.get("step_index", 1 << 30)
        cases.append((index, len(cases), el))
        counts["tests"] += 1
        return el

    open_steps = list(run.open_steps.values()) if not run.ended else []
    for step in [*run.steps, *open_steps]:
        in_flight = step.outcome is None
        if step.kind == "group" and not (step.outcome == "errored" and step.error) and not in_flight:
            continue
        el = case(step.step_path, step.step_index, step.duration_s)
        outcome = "errored" if in_flight else step.outcome
        if outcome == "failed":
            counts["failures"] += 1
            bad = step.bad_measurements()
            message = step.error or (describe_measurement(bad[0]) if bad else "failed")
            failure = ET.SubElement(el, "failure", message=_xml_safe(message), type="failed")
            failure.text = _xml_safe(_failure_text(step, bad))
        elif outcome in _ERROR_OUTCOMES:
            counts["errors"] += 1
            message = "run did not end (step in flight)" if in_flight else (step.error or outcome or "errored")
            error = ET.SubElement(el, "error", message=_xml_safe(message), type=outcome or "errored")
            error.text = _xml_safe(_error_text(step, message))
        elif outcome == "skipped":
            counts["skipped"] += 1
            ET.SubElement(el, "skipped", message=_xml_safe(step.error or "skipped"))
    for item in run.never_ran():
        if item.get("kind") == "group":
            continue
        el = case(item.get("step_path") or "", item.get("step_index"), 0.0)
        ET.SubElement(el, "skipped", message="never ran")
        counts["skipped"] += 1
    suite.set("name", _xml_safe(str(ctx.get("sequence_name") or seq_file or "litmus-seq")))
    for key, n in counts.items():
        suite.set(key, str(n))
    suite.set("time", f"{run.duration_s:.6f}")
    suite.set("timestamp", datetime.fromtimestamp(run.start_us / 1e6, tz=timezone.utc)
              .isoformat(timespec="seconds").replace("+00:00", "Z"))
    suite.set("hostname", str(ctx.get("station_hostname") or socket.gethostname()))
    for _, _, el in sorted(cases, key=lambda c: (c[0], c[1])):
        suite.append(el)
    return suite


def _failure_text(step: StepResult, bad: list[dict[str, Any]]) -> str:
    lines = []
    for m in bad:
        vector = step.vectors.get(m.get("vector_index", 0)) or {}
        params = vector.get("params") or {}
        where = f"[{m.get('vector_index')}]"
        if m.get("retry"):
            where += f" retry {m['retry']}"
        if params:
            where += " " + ", ".join(f"{k}={v}" for k, v in params.items())
        lines.append(f"{where}: {describe_measurement(m)}")
    return "\n".join(lines) or (step.error or "failed")


def _error_text(step: StepResult, message: str) -> str:
    parts = [message]
    for d in step.diagnostics:
        parts.append(d.get("traceback") or d.get("message") or "")
    for m in step.bad_measurements():
        parts.append(describe_measurement(m))
    return "\n".join(p.rstrip() for p in parts if p)


def build_junit_xml(runs: list[RunRecord]) -> bytes:
    """The JUnit XML document (UTF-8 bytes with declaration) for ``runs``."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for run in runs:
        suite = _suite(run)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        seconds += run.duration_s
        root.append(suite)
    for key, n in totals.items():
        root.set(key, str(n))
    root.set("time", f"{seconds:.6f}")
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
