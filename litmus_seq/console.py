"""The console: what the operator sees of a run, from the same events the stores record.

One model of the run (:class:`RunView`) feeds two front ends:

* :class:`LiveConsole`, on a terminal (rich): each finished step is printed as a line into the
  terminal's normal scrollback, so nothing is lost; below them a live window follows the running
  step -- its vector, parameters and retry, its latest measurements with value, limit and verdict,
  and the run's progress -- cut to fit the terminal. The window is erased while an operator
  prompt is open (the prompt gets clean lines; nothing is printed twice) and at the end.
* :class:`PlainConsole`, anywhere else (CI, pipes, log files): the same step lines, as plain text.

Both end with one verdict banner (:meth:`Console.banner`), printed by the front door from the
sealed result, so the banner and the exit code cannot disagree; the failures (as the last attempt
of each vector saw them), the vectors that passed only after retries, and where the results went
come with it.

Verbosity: :data:`QUIET` shows the banner only (with its failures); :data:`NORMAL` a line per
step with its failed and marginal measurements and retries; :data:`VERBOSE` every measurement,
instrument connections and diagnostics.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from litmus_seq import events as ev
from litmus_seq import outcomes as oc
from litmus_seq.hookspecs import hookimpl
from litmus_seq.reporters.render import limit_text, measurement_failure

__all__ = ["NORMAL", "QUIET", "VERBOSE", "Console", "LiveConsole", "PlainConsole", "RunView", "ask_serial", "make_console"]

QUIET, NORMAL, VERBOSE = -1, 0, 1

_STYLE = {
    "passed": "green", "done": "green", "skipped": "dim", "failed": "bold red",
    "errored": "bold magenta", "terminated": "bold yellow", "aborted": "bold yellow",
}
_BAD = frozenset((oc.FAILED, oc.ERRORED))
_MEASUREMENT = ev.MEASUREMENT
_GOOD = frozenset((oc.PASSED, oc.DONE, oc.SKIPPED))
#: Failures and retried vectors listed in the banner; the rest are counted.
MAX_LISTED = 20
#: Measurement lines kept per step for -v (a million-vector step must not fill memory).
MAX_STEP_LINES = 200


# --------------------------------------------------------------------------- rendering


def _number(x: float) -> str:
    """A reading as the instrument gave it (``2.0`` stays ``2.0``), float noise hidden."""
    short = repr(x)
    return short if len(short) <= 12 else f"{x:.10g}"


def value_text(m: dict[str, Any]) -> str:
    """A measurement's value with its units: ``3.301 V``, ``'1.0.0'``, ``true``; ``-`` if none."""
    value, text = m.get("value"), m.get("text")
    units = m.get("units") or (m.get("limit") or {}).get("units")
    if value is not None:
        return f"{_number(value)} {units}" if units else _number(value)
    if text is None:
        return "-"
    return text if text in ("true", "false") else repr(text)


def measurement_line(m: dict[str, Any]) -> str:
    """``rail_3v3 = 3.52 V  limit 3.1515 ≤ x ≤ 3.4485 V  FAILED`` (with ``marginal`` flagged)."""
    verdict = m["outcome"].upper()
    if m.get("marginal"):
        verdict += " (marginal)"
    lim = m.get("limit")
    shown = "" if not lim else "  " + limit_text(lim) if lim.get("comparator") == "LOG" else f"  limit {limit_text(lim)}"
    return f"{m['name']} = {value_text(m)}{shown}  {verdict}"


def _params(params: dict[str, Any] | None) -> str:
    text = " ".join(f"{k}={v:.10g}" if isinstance(v, float) else f"{k}={v}" for k, v in (params or {}).items())
    return text if len(text) <= 60 else text[:57] + "..."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _retries(n: int) -> str:
    return f"{n} {'retry' if n == 1 else 'retries'}"


def _where(path: str, index: int, n_vectors: int, params: dict[str, Any] | None) -> str:
    """``main/rails[1] vin=12`` (the index only when the step has several vectors)."""
    where = f"{path}[{index}]" if n_vectors > 1 else path
    shown = _params(params)
    return f"{where} {shown}" if shown else where


# --------------------------------------------------------------------------- the model


@dataclass(slots=True)
class StepView:
    """One planned step as the console follows it."""

    path: str
    kind: str
    n_vectors: int
    depth: int = 0
    start: int | None = None
    end: int | None = None
    outcome: str | None = None
    error: str | None = None
    vectors_done: int = 0
    retries: int = 0
    vector: int | None = None
    attempt: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    #: the latest measurements (for the live window)
    latest: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=64))
    #: measurement lines to print under the step line (bad and marginal; all with -v)
    lines: list[str] = field(default_factory=list)
    hidden_lines: int = 0
    #: vector index -> (outcome, error, bad measurements, params) of a failed or errored attempt
    bad: dict[int, tuple[str, str | None, list[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    #: vector index -> (attempts, what the first attempt failed on) for vectors that were retried
    retried: dict[int, tuple[int, str]] = field(default_factory=dict)
    _bad_now: list[dict[str, Any]] = field(default_factory=list)


class RunView:
    """The state of one run, built from its events one at a time (see :meth:`feed`)."""

    #: keep each step's latest measurements (for a live window)
    keep_latest = False

    def __init__(self, verbosity: int = NORMAL) -> None:
        self.verbosity = verbosity
        # bound once: feed() runs for every event of the run (a few per measurement)
        self._handlers = {t: getattr(self, name) for t, name in _HANDLERS.items()}
        self.reset()

    def reset(self) -> None:
        self.run_id: str | None = None
        self.selection: str | None = None
        self.sequence: str | None = None
        self.dut: str | None = None
        self.station: str | None = None
        self.started: int | None = None
        self.ended: int | None = None
        self.outcome: str | None = None
        self.error: str | None = None
        self.steps: dict[str, StepView] = {}
        self.running: list[StepView] = []
        self.failures: list[str] = []
        self.retried: list[str] = []
        self.marginal = 0
        self.prompt_open = False
        self._told_stop = False

    # -- what a front end prints as it happens (overridden) --------------------------------

    def step_finished(self, step: StepView) -> None:
        """A step ended: print its line (and measurement lines)."""

    def note(self, text: str, style: str = "") -> None:
        """A line outside the step lines: a warning, a run-level error, an instrument."""

    # -- events -------------------------------------------------------------------------------

    def feed(self, e: dict[str, Any]) -> None:
        handler = self._handlers.get(e["event_type"])
        if handler is not None:
            handler(e)

    def _run_started(self, e: dict[str, Any]) -> None:
        self.reset()
        self.run_id, self.started = e.get("run_id"), e["timestamp"]
        self.sequence, self.dut, self.station = e.get("sequence_name"), e.get("dut_serial"), e.get("station_id")
        self.selection = e.get("run_selection")

    def _discovered(self, e: dict[str, Any]) -> None:
        for item in e["items"]:
            path = item["step_path"]
            self.steps[path] = StepView(path, item["kind"], item.get("vector_count") or 0,
                                        depth=max(path.count("/") - 1, 0))

    def _step_started(self, e: dict[str, Any]) -> None:
        path = e["step_path"]
        step = self.steps.get(path)
        if step is None:  # a step nobody declared (a harness adding steps as it goes)
            step = self.steps[path] = StepView(path, e.get("kind") or "step", e.get("vector_count") or 0,
                                               depth=max(path.count("/") - 1, 0))
        step.start = e["timestamp"]
        self.running.append(step)

    def _current(self, path: str | None) -> StepView | None:
        if self.running and self.running[-1].path == path:
            return self.running[-1]
        return self.steps.get(path) if path is not None else None

    def _vector_started(self, e: dict[str, Any]) -> None:
        running, path = self.running, e["step_path"]
        step = running[-1] if running and running[-1].path == path else self._current(path)
        if step is None:
            return
        index, attempt = e["vector_index"], e["retry"]
        step.vector, step.attempt, step.params = index, attempt, e.get("params") or {}
        if step._bad_now:
            step._bad_now = []
        if attempt > 0:
            step.retries += 1
            failed = step.bad.pop(index, None)
            first = step.retried.get(index, (0, ""))[1]
            if not first and failed is not None:
                first = _first_failure(failed)
            step.retried[index] = (attempt, first)

    def _measurement(self, e: dict[str, Any]) -> None:
        running, path = self.running, e["step_path"]
        step = running[-1] if running and running[-1].path == path else self._current(path)
        if step is None:
            return
        if self.keep_latest:
            step.latest.append(e)
        outcome = e["outcome"]
        if outcome in _BAD:
            step._bad_now.append(e)
            show = True
        elif e.get("marginal"):
            self.marginal += 1
            show = True
        else:
            show = self.verbosity >= VERBOSE
        if show and self.verbosity >= NORMAL:
            if len(step.lines) < MAX_STEP_LINES:
                prefix = f"[{e['vector_index']}] " if step.n_vectors > 1 else ""
                retry = f" (retry {e['retry']})" if e["retry"] else ""
                step.lines.append(f"{prefix}{measurement_line(e)}{retry}")
            else:
                step.hidden_lines += 1

    def _vector_ended(self, e: dict[str, Any]) -> None:
        running, path = self.running, e["step_path"]
        step = running[-1] if running and running[-1].path == path else self._current(path)
        if step is None:
            return
        index = e["vector_index"]
        if e["retry"] == 0:
            step.vectors_done += 1
        if e["outcome"] in _BAD:
            step.bad[index] = (e["outcome"], e.get("error"), step._bad_now, step.params)
            step._bad_now = []

    def _step_ended(self, e: dict[str, Any]) -> None:
        path = e["step_path"]
        step = self.steps.get(path)
        if step is None:
            return
        step.end, step.outcome, step.error = e["timestamp"], e["outcome"], e.get("error")
        if step in self.running:
            self.running.remove(step)
        for index, (outcome, error, bad, params) in sorted(step.bad.items()):
            where = _where(path, index, step.n_vectors, params)
            if bad:
                self.failures += [f"{where}: {measurement_failure(m)}" for m in bad]
            else:
                self.failures.append(f"{where}: {error or outcome}")
        if not step.bad and step.outcome in _BAD | {oc.TERMINATED} and (step.kind != "group" or step.error):
            self.failures.append(f"{path}: {step.error or step.outcome}")  # (a group's failed children are listed)
        for index, (attempts, first) in sorted(step.retried.items()):
            if index not in step.bad:
                why = f" (first: {first})" if first else ""
                self.retried.append(f"{_where(path, index, step.n_vectors, {})}: passed after {_retries(attempts)}{why}")
        left_out = step.outcome == oc.SKIPPED and (step.error or "").startswith(("deselected", "not run:"))
        if not left_out or self.verbosity >= VERBOSE:  # (counted in the banner)
            self.step_finished(step)
        elif (step.error or "").startswith("not run:") and not self._told_stop and self.verbosity >= NORMAL:
            self._told_stop = True
            self.note((step.error or "").removeprefix("not run: "), "yellow")
        step.latest.clear()
        step.bad.clear()

    def _run_ended(self, e: dict[str, Any]) -> None:
        self.ended, self.outcome, self.error = e["timestamp"], e["outcome"], e.get("error")
        self.running.clear()

    def _error(self, e: dict[str, Any]) -> None:
        if e.get("step_path") is None or self.verbosity >= VERBOSE:
            where = f"{e['step_path']}: " if e.get("step_path") else ""
            self.note(f"error: {where}{e['message']}", "bold magenta")

    def _warning(self, e: dict[str, Any]) -> None:
        if self.verbosity >= NORMAL:
            where = f"{e['step_path']}: " if e.get("step_path") else ""
            self.note(f"warning: {where}{e['message']}", "yellow")

    def _connected(self, e: dict[str, Any]) -> None:
        if self.verbosity >= VERBOSE:
            ident = e.get("identity") or {}
            what = " ".join(str(ident[k]) for k in ("manufacturer", "model", "serial") if ident.get(k))
            mocked = " (mocked)" if e.get("mocked") else ""
            self.note(f"instrument {e['role']}: {e.get('driver')} {what}{mocked}".rstrip(), "dim")

    def _dialog(self, e: dict[str, Any]) -> None:
        self.prompt_open = e["event_type"] == ev.DIALOG_OPENED

    # -- summaries ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Steps (groups aside) by outcome; planned steps that never ended are ``not run``."""
        counts: dict[str, int] = {}
        for step in self.steps.values():
            if step.kind == "group":
                continue
            key = step.outcome or "not run"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def step_line(self, step: StepView) -> str:
        """``  PASSED     main/rails     2 vectors     0.020 s  (passed after 1 retry)``."""
        dt = ((step.end or step.start or 0) - (step.start or step.end or 0)) / 1e6
        extra = "group" if step.kind == "group" else _plural(step.vectors_done, "vector")
        line = f"  {(step.outcome or '').upper():<10} {step.path:<40} {extra:<12} {dt:8.3f} s"
        if step.retries:
            line += f"  {step.outcome} after {_retries(step.retries)}"
        if step.error and step.outcome not in _GOOD:
            line += f"  ({step.error})"
        return line

    def sub_lines(self, step: StepView) -> list[str]:
        lines = [f"{' ' * 13}{text}" for text in step.lines]
        if step.hidden_lines:
            lines.append(f"{' ' * 13}... {step.hidden_lines} more measurement lines (all are in the run file)")
        step.lines, step.hidden_lines = [], 0
        return lines


def _first_failure(failed: tuple[str, str | None, list[dict[str, Any]], dict[str, Any]]) -> str:
    outcome, error, bad, _ = failed
    return measurement_failure(bad[0]) if bad else (error or outcome)


#: event type -> the RunView method (by name: front ends extend some) that handles it
_HANDLERS = {
    ev.RUN_STARTED: "_run_started",
    ev.STEPS_DISCOVERED: "_discovered",
    ev.STEP_STARTED: "_step_started",
    ev.VECTOR_STARTED: "_vector_started",
    ev.MEASUREMENT: "_measurement",
    ev.VECTOR_ENDED: "_vector_ended",
    ev.STEP_ENDED: "_step_ended",
    ev.RUN_ENDED: "_run_ended",
    ev.ERROR: "_error",
    ev.WARNING: "_warning",
    ev.INSTRUMENT_CONNECTED: "_connected",
    ev.DIALOG_OPENED: "_dialog",
    ev.DIALOG_RESPONDED: "_dialog",
}


# --------------------------------------------------------------------------- front ends


class Console(RunView):
    """What both front ends share: the banner."""

    def banner_lines(self, outcome: str, error: str | None, parquet: Path | str | None) -> tuple[list[str], str, str]:
        """(lines before the verdict, the verdict line, the results line)."""
        before: list[str] = []
        for title, items in (("failures", self.failures), ("retried", self.retried)):
            if items:
                before.append(f"{title} ({len(items)}):")
                before += [f"  {line}" for line in items[:MAX_LISTED]]
                if len(items) > MAX_LISTED:
                    before.append(f"  ... and {len(items) - MAX_LISTED} more")
        counts = self.counts()
        order = [o for o in (*oc.ALL, "not run") if counts.get(o)]
        total = sum(counts.values())
        summary = f"{_plural(total, 'step')}: " + ", ".join(f"{counts[o]} {o}" for o in order) if total else "no steps"
        if self.marginal:
            summary += f", {self.marginal} marginal"
        parts = [p for p in (self.sequence, f"dut {self.dut}" if self.dut else None, summary) if p]
        if self.selection:
            parts.append(f"partial: {self.selection}")
        if self.started is not None and self.ended is not None:
            parts.append(f"{(self.ended - self.started) / 1e6:.2f} s")
        verdict = outcome.upper() + (f": {error}" if error else "")
        line = f"{verdict}  ({', '.join(parts)})"
        results = f"results: {parquet}" if parquet else "results: no run file was written"
        if self.run_id:
            results += f" (run {self.run_id})"
        return before, line, results

    def banner(self, outcome: str, error: str | None = None, parquet: Path | str | None = None) -> None:
        """Print the end of the run: failures, retried vectors, the verdict, where results went."""
        raise NotImplementedError


class PlainConsole(Console):
    """Plain lines, for anything that is not a terminal (CI logs, pipes)."""

    def __init__(self, stream: TextIO | None = None, verbosity: int = NORMAL) -> None:
        super().__init__(verbosity)
        self.stream = stream or sys.stdout

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        handlers = self._handlers
        quiet_passes = self.verbosity < VERBOSE  # a plain pass shows nowhere: skip it at once
        for e in events:
            t = e["event_type"]
            if t == _MEASUREMENT and quiet_passes and e["outcome"] in _GOOD and not e.get("marginal"):
                continue
            handler = handlers.get(t)
            if handler is not None:
                handler(e)

    def _run_started(self, e: dict[str, Any]) -> None:
        super()._run_started(e)
        if self.verbosity >= NORMAL:
            self._write(f"run {(e.get('run_id') or '')[:12]}  {e.get('sequence_name')}  dut={e.get('dut_serial') or '-'}"
                        f"  station={e.get('station_id') or '-'}")

    def step_finished(self, step: StepView) -> None:
        if self.verbosity >= NORMAL:
            self._write(self.step_line(step))
            for line in self.sub_lines(step):
                self._write(line)

    def note(self, text: str, style: str = "") -> None:
        self._write(f"  {text}")

    def banner(self, outcome: str, error: str | None = None, parquet: Path | str | None = None) -> None:
        before, line, results = self.banner_lines(outcome, error, parquet)
        for text in (*before, line, results):
            self._write(text)


class LiveConsole(Console):
    """Step lines into the scrollback and a live window on the running step (a terminal)."""

    keep_latest = True

    def __init__(self, console: Any = None, verbosity: int = NORMAL) -> None:
        super().__init__(verbosity)
        if console is None:
            from rich.console import Console as RichConsole

            console = RichConsole(highlight=False)
        self.console = console
        self._live: Any = None
        # The window is drawn by rich's refresh thread while the engine feeds events: the state is
        # changed and read under this lock, and lines are printed only after it is released
        # (rich's own lock is taken by printing and by the refresh thread, in the other order).
        self._lock = threading.RLock()
        self._pending: list[Any] = []

    # events arrive one by one, as emitted, so the window shows values while a step runs
    @hookimpl
    def litmus_seq_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.feed(event)
            pending, self._pending = self._pending, []
        if pending:
            # rich's refresh thread redraws the window under the Live's lock; a print from this
            # thread in between would erase the window by its old height and leave a line behind
            live = self._live
            with live._lock if live is not None else contextlib.nullcontext():
                for renderable in pending:
                    self.console.print(renderable, highlight=False, soft_wrap=True)
        t = event["event_type"]
        if t == ev.DIALOG_OPENED or t == ev.RUN_ENDED:
            self._stop()
        elif t == ev.DIALOG_RESPONDED or t == ev.STEPS_DISCOVERED or t == ev.STEP_STARTED:
            self._start()

    def _start(self) -> None:
        if self._live is None and not self.prompt_open and self.outcome is None:
            from rich.live import Live

            self._live = Live(get_renderable=self._window, console=self.console, transient=True,
                              refresh_per_second=8, vertical_overflow="crop", redirect_stdout=False,
                              redirect_stderr=False)
            self._live.start()

    def _stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()  # transient: the window is erased; the step lines stay

    def close(self) -> None:
        self._stop()

    def _print(self, renderable: Any) -> None:
        self._pending.append(renderable)  # printed once the event is handled (see __init__)

    def step_finished(self, step: StepView) -> None:
        if self.verbosity < NORMAL:
            return
        from rich.text import Text

        line = Text(self.step_line(step))
        outcome = (step.outcome or "").upper()
        line.stylize(_STYLE.get(step.outcome or "", ""), 2, 2 + len(outcome))
        self._print(line)
        for sub in self.sub_lines(step):
            text = Text(sub, style="dim")
            for word, style in (("FAILED", "red"), ("ERRORED", "magenta"), ("(marginal)", "yellow")):
                start = sub.find(word)
                if start >= 0:
                    text.stylize(style, start, start + len(word))
            self._print(text)

    def note(self, text: str, style: str = "") -> None:
        from rich.text import Text

        self._print(Text(f"  {text}", style=style))

    def _run_started(self, e: dict[str, Any]) -> None:
        super()._run_started(e)
        if self.verbosity >= NORMAL:
            from rich.text import Text

            self._print(Text(f"run {(e.get('run_id') or '')[:12]}  {e.get('sequence_name')}  "
                             f"dut={e.get('dut_serial') or '-'}  station={e.get('station_id') or '-'}", style="bold"))

    # -- the live window --------------------------------------------------------------------

    def _window(self) -> Any:
        """The running step, its latest measurements and the progress, in at most height-1 lines."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            height = max(self.console.size.height - 1, 3)
            now = time.time_ns() // 1000
            rows: list[Any] = []
            step = self.running[-1] if self.running else None
            if step is not None:
                crumbs = " › ".join(s.path.rsplit("/", 1)[-1] for s in self.running[:-1])
                head = Text("▶ ", style="bold cyan")
                head.append(step.path, style="bold")
                if crumbs:
                    head.append(f"  (in {crumbs})", style="dim")
                if step.n_vectors > 1 and step.vector is not None:
                    head.append(f"  vector {step.vector + 1}/{step.n_vectors}")
                if step.params:
                    head.append(f"  {_params(step.params)}", style="cyan")
                if step.attempt:
                    head.append(f"  retry {step.attempt}", style="yellow")
                if step.start is not None:
                    head.append(f"  {(now - step.start) / 1e6:.1f} s", style="dim")
                head.no_wrap, head.overflow = True, "ellipsis"
                rows.append(head)
                room = height - 2
                shown = list(step.latest)[-room:] if room > 0 else []
                if shown:
                    grid = Table.grid(padding=(0, 2))
                    grid.add_column(no_wrap=True)
                    grid.add_column(no_wrap=True, justify="right")
                    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
                    grid.add_column(no_wrap=True)
                    for m in shown:
                        verdict = m["outcome"]
                        style = _STYLE.get(verdict, "")
                        if m.get("marginal"):
                            verdict, style = f"{verdict} marginal", "yellow"
                        prefix = f"[{m['vector_index']}] " if step.n_vectors > 1 else ""
                        grid.add_row(f"  {prefix}{m['name']}", value_text(m), limit_text(m.get("limit")),
                                     Text(verdict, style=style))
                    rows.append(grid)
            rows.append(self._progress(now))
        return Group(*rows)

    def _progress(self, now: int) -> Any:
        from rich.text import Text

        counts = self.counts()
        total = sum(counts.values())
        finished = total - counts.get("not run", 0)
        text = Text(f"  {finished}/{total} steps", style="bold")
        for outcome in (oc.PASSED, oc.FAILED, oc.ERRORED):
            if counts.get(outcome):
                text.append(f"  {counts[outcome]} {outcome}", style=_STYLE[outcome])
        if self.marginal:
            text.append(f"  {self.marginal} marginal", style="yellow")
        if self.started is not None:
            text.append(f"  {(now - self.started) / 1e6:.1f} s", style="dim")
        text.append(f"  {self.sequence or ''} dut={self.dut or '-'}", style="dim")
        text.no_wrap, text.overflow = True, "ellipsis"
        return text

    def banner(self, outcome: str, error: str | None = None, parquet: Path | str | None = None) -> None:
        from rich.rule import Rule
        from rich.text import Text

        self._stop()
        before, line, results = self.banner_lines(outcome, error, parquet)
        out = self.console
        for text in before:
            out.print(Text(text, style="" if text.startswith(" ") else "bold"), highlight=False, soft_wrap=True)
        style = _STYLE.get(outcome, "bold")
        if len(line) + 8 <= out.size.width:
            out.print(Rule(Text(f" {line} ", style=style), characters="═", style=style))
        else:  # a rule would cut the verdict line: print it whole
            out.print(Text(line, style=style), highlight=False, soft_wrap=True)
        out.print(Text(results), highlight=False, soft_wrap=True)


def ask_serial(pattern: str | None, where: str, *, stdin: TextIO | None = None, out: TextIO | None = None,
               tty: bool | None = None) -> str | None:
    """The next DUT serial: asked on a terminal (again until it matches ``pattern``), else the
    next line of ``stdin`` (a scanner, a pipe); None at the end of input or for an empty answer.

    A serial off a terminal that does not match is reported on ``out`` and the next line read:
    nobody is there to type it again, and that unit is not tested.
    """
    import re

    stdin = stdin or sys.stdin
    out = out or sys.stderr
    tty = stdin.isatty() if tty is None else tty
    while True:
        if tty:
            print("DUT serial (scan or type; empty line to stop): ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            return None
        serial = line.strip()
        if not serial:
            if tty:
                return None
            continue  # blank lines between scans
        if pattern is None or re.search(pattern, serial):
            return serial
        again = "; scan or type it again" if tty else "; that unit is not tested"
        print(f"serial {serial!r} does not match serial_pattern {pattern!r} ({where}){again}", file=out, flush=True)


def make_console(tty: bool, verbosity: int = NORMAL) -> Console:
    """The console for a run: live on a terminal, plain lines elsewhere."""
    return LiveConsole(verbosity=verbosity) if tty else PlainConsole(verbosity=verbosity)
