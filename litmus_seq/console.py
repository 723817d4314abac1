"""The console: a subscriber that shows the run to the operator.

On a terminal it draws a live step table (rich); elsewhere (CI, pipes, log files) rich would print
only the final frame, so it prints one plain line per finished step instead. It is a plugin on
``litmus_seq_events`` like the stores: it sees exactly what they record.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from litmus_seq import events as ev
from litmus_seq.hookspecs import hookimpl

_STYLE = {
    "passed": "green", "done": "green", "skipped": "dim", "failed": "bold red",
    "errored": "bold magenta", "terminated": "bold yellow", "aborted": "bold yellow",
}


class PlainConsole:
    """One line per finished step, and the reason for anything that did not pass."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self._started: dict[str, int] = {}
        self._vectors: dict[str, int] = {}
        self._kinds: dict[str, str] = {}
        self._retries: dict[str, int] = {}
        self.failures: list[str] = []

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            t = e["event_type"]
            if t == ev.STEP_STARTED:
                self._started[e["step_path"]] = e["timestamp"]
                self._kinds[e["step_path"]] = e["kind"]
            elif t == ev.VECTOR_ENDED:
                if e["retry"] == 0:  # a retried vector is still one vector (tests/test_console.py)
                    self._vectors[e["step_path"]] = self._vectors.get(e["step_path"], 0) + 1
                else:
                    self._retries[e["step_path"]] = self._retries.get(e["step_path"], 0) + 1
            elif t == ev.MEASUREMENT and e["outcome"] in ("failed", "errored"):
                from litmus_seq.reporters.render import measurement_failure

                retry = f" (attempt {e['retry'] + 1})" if e.get("retry") else ""
                self.failures.append(f"{e['step_path']}[{e['vector_index']}] {measurement_failure(e)}{retry}")
            elif t == ev.STEP_ENDED:
                self._step_ended(e)
            elif t == ev.RUN_STARTED:
                self._write(f"run {e['run_id'][:12]}  {e.get('sequence_name')}  dut={e.get('dut_serial') or '-'}  "
                            f"station={e.get('station_id') or '-'}")
            elif t == ev.ERROR:
                self._write(f"  ! {e.get('step_path') or ''} {e['message']}")
            elif t == ev.RUN_ENDED:
                self._write(f"run {e['outcome'].upper()}" + (f": {e['error']}" if e.get("error") else ""))

    def _step_ended(self, e: dict[str, Any]) -> None:
        path = e["step_path"]
        start = self._started.get(path, e["timestamp"])
        dt = (e["timestamp"] - start) / 1e6
        n = self._vectors.pop(path, 0)
        if self._kinds.get(path) == "group":
            extra = "group"
        else:
            extra = f"{n} vector{'s' if n != 1 else ''}"
        line = f"  {e['outcome'].upper():<10} {path:<40} {extra:<12} {dt:8.3f} s"
        retries = self._retries.pop(path, 0)
        if retries:
            line += f"  {e['outcome']} after {retries} retr{'y' if retries == 1 else 'ies'}"
        if e.get("error") and e["outcome"] not in ("passed", "done"):
            line += f"  ({e['error']})"
        self._write(line)


class LiveConsole:
    """A live step table on a terminal (rich), paused while an operator prompt is open."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=False)
        self._rows: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._live: Any = None
        self._title = ""
        self.failures: list[str] = []
        self._plain = PlainConsole(stream=open("/dev/null", "w"))  # reuse failure formatting

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=self._title, expand=False)
        table.add_column("step")
        table.add_column("kind", style="dim")
        table.add_column("vectors", justify="right")
        table.add_column("outcome")
        table.add_column("time", justify="right")
        now = time.time_ns() // 1000
        for path in self._order:
            r = self._rows[path]
            outcome = r.get("outcome")
            if outcome is None and r.get("start") is not None:
                shown, style = "running", "cyan"
            else:
                shown, style = outcome or "", _STYLE.get(outcome or "", "dim")
            dt = ""
            if r.get("start") is not None:
                dt = f"{((r.get('end') or now) - r['start']) / 1e6:.2f} s"
            indent = "  " * r["depth"]
            progress = "" if r["kind"] == "group" else f"{r['done']}/{r['n']}"  # a group has no vectors
            table.add_row(indent + r["name"], r["kind"], progress, f"[{style}]{shown}[/]", dt)
        return table

    def _start(self) -> None:
        if self._live is None:
            from rich.live import Live

            self._live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
            self._live.start()

    def _stop(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        self._plain.litmus_seq_events(events)
        self.failures = self._plain.failures
        for e in events:
            t = e["event_type"]
            if t == ev.RUN_STARTED:
                self._title = f"{e.get('sequence_name')}  dut={e.get('dut_serial') or '-'}"
            elif t == ev.STEPS_DISCOVERED:
                self._rows.clear()
                self._order.clear()
                for item in e["items"]:
                    depth = item["step_path"].count("/") - 1
                    self._rows[item["step_path"]] = {
                        "name": item["step_path"], "kind": item["kind"], "n": item["vector_count"],
                        "done": 0, "depth": max(depth, 0), "start": None, "end": None, "outcome": None,
                    }
                    self._order.append(item["step_path"])
                self._start()
            elif t == ev.STEP_STARTED:
                r = self._rows.get(e["step_path"])
                if r is not None:
                    r["start"] = e["timestamp"]
                self._start()
            elif t == ev.VECTOR_ENDED:
                r = self._rows.get(e["step_path"])
                if r is not None:
                    r["done"] = min(r["done"] + 1, r["n"]) if e["retry"] == 0 else r["done"]
            elif t == ev.STEP_ENDED:
                r = self._rows.get(e["step_path"])
                if r is not None:
                    r["end"], r["outcome"] = e["timestamp"], e["outcome"]
            elif t == ev.DIALOG_OPENED:
                self._stop()
            elif t == ev.DIALOG_RESPONDED:
                # resume at once: a prompt as the last step used to leave no final table
                # (tests/test_console.py)
                self._start()
            elif t == ev.RUN_ENDED:
                self._stop()
        if self._live is not None:
            self._live.update(self._table())

    def close(self) -> None:
        self._stop()
        self._plain.stream.close()
