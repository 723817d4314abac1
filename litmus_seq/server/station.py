"""The station behind ``litmus-seq serve``: one run at a time, its live events, its prompts.

A run executes in a worker thread through the same path as ``litmus-seq run``
(:func:`litmus_seq.harness.run_sequence`: plan, preflight, stores, recorder, verdict). Two
plugins connect it to the web:

* :class:`EventFeed` — every event, as JSON, to every browser listening (Server-Sent Events),
  with the current run's events kept so a page opened mid-run catches up;
* :class:`WebPrompts` — answers ``litmus_seq_prompt`` with what an operator clicks in the page;
  no answer within the prompt's ``timeout_s`` is a timeout (``errored``), never a pass.

A stop from the page ends the run ``terminated`` at its next step boundary (cleanup still runs);
an open prompt is answered "abort" at once.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litmus_seq import events as ev
from litmus_seq.errors import ConfigError, LitmusError, Terminated
from litmus_seq.hookspecs import hookimpl

__all__ = ["Busy", "EventFeed", "Station", "WebPrompts"]

#: Events a page replays when it connects mid-run, at most (a run's head and its newest events).
REPLAY = 5000


class Busy(LitmusError):
    """The station is running a unit already (HTTP 409)."""


def to_json(event: dict[str, Any]) -> str:
    """An event as one line of JSON; the plan (kept in the stores) is left out."""
    return json.dumps({k: v for k, v in event.items() if k != "plan"}, default=str, separators=(",", ":"))


class EventFeed:
    """Broadcasts events to subscribers (one bounded queue each; a slow page loses the oldest
    events, never holds the run up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.Queue[str]] = []
        self._replay: list[str] = []
        self.session: Any = None

    def subscribe(self) -> queue.Queue[str]:
        q: queue.Queue[str] = queue.Queue(maxsize=10_000)
        with self._lock:
            for line in self._replay:
                q.put_nowait(line)
            self._queues.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[str]) -> None:
        with self._lock:
            if q in self._queues:
                self._queues.remove(q)

    def publish(self, line: str) -> None:
        with self._lock:
            self._replay.append(line)
            if len(self._replay) > REPLAY:
                del self._replay[REPLAY // 2 : REPLAY // 2 + 1000]
            for q in self._queues:
                try:
                    q.put_nowait(line)
                except queue.Full:
                    try:
                        q.get_nowait()
                        q.put_nowait(line)
                    except (queue.Empty, queue.Full):
                        pass

    def new_run(self) -> None:
        with self._lock:
            self._replay = []

    @hookimpl
    def litmus_seq_session_start(self, session: Any) -> None:
        self.session = session

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            if e["event_type"] == ev.RUN_STARTED:
                self.new_run()
            self.publish(to_json(e))


@dataclass
class _Open:
    prompt: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    answer: Any = None


class WebPrompts:
    """Answers operator prompts from the page (``POST /api/prompts/{id}``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        #: set while a stop is under way: every prompt is answered "abort" at once
        self.stopping = threading.Event()

    def current(self) -> dict[str, Any] | None:
        with self._lock:
            return next((o.prompt for o in self._open.values()), None)

    def answer(self, prompt_id: str, answer: Any) -> bool:
        """Answer an open prompt; ``False`` if there is no such prompt (any more)."""
        with self._lock:
            waiting = self._open.get(prompt_id)
        if waiting is None:
            return False
        waiting.answer = answer
        waiting.done.set()
        return True

    def abort_all(self) -> bool:
        """Stop: answer every open prompt, and every prompt to come, "abort"; whether one was open."""
        from litmus_seq.prompts import ABORT

        with self._lock:
            self.stopping.set()
            waiting = list(self._open.values())
        for w in waiting:
            w.answer = ABORT
            w.done.set()
        return bool(waiting)

    @hookimpl(trylast=True)
    def litmus_seq_prompt(self, prompt: dict[str, Any]) -> Any:
        from litmus_seq.prompts import ABORT, TIMED_OUT

        waiting = _Open(dict(prompt))
        with self._lock:
            if self.stopping.is_set():
                return ABORT
            self._open[prompt["prompt_id"]] = waiting
        try:
            if not waiting.done.wait(prompt.get("timeout_s")):
                return TIMED_OUT
            return waiting.answer
        finally:
            with self._lock:
                self._open.pop(prompt["prompt_id"], None)


class Station:
    """Runs sequences of one project for DUT serials, one at a time."""

    def __init__(self, project: Any, data_dir: Path, *, station: str | None = None,
                 serial_pattern: str | None = None) -> None:
        self.project = project
        self.data_dir = Path(data_dir)
        self.station = station
        self.serial_pattern = serial_pattern or getattr(project.config, "serial_pattern", None) or r"^\S{1,64}$"
        self.feed = EventFeed()
        self.prompts = WebPrompts()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.current: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None

    def sequences(self) -> list[str]:
        """The project's sequence files, relative to its root."""
        folder = self.project.root / "sequences"
        if not folder.is_dir():
            return []
        return sorted(p.relative_to(self.project.root).as_posix() for p in folder.rglob("*.yaml")
                      if "common" not in p.relative_to(folder).parts[:-1])

    def state(self) -> dict[str, Any]:
        return {"station": self.station or getattr(self.project.config, "station", None),
                "serial_pattern": self.serial_pattern, "sequences": self.sequences(),
                "running": self.current, "last": self.last, "prompt": self.prompts.current()}

    def _sequence_path(self, sequence: str) -> Path:
        if sequence not in self.sequences():
            from litmus_seq.suggest import did_you_mean

            raise ConfigError(f"sequence {sequence!r} is not one of this project's sequences"
                              + did_you_mean(sequence, self.sequences()))
        return self.project.root / sequence

    def start(self, sequence: str, serial: str, operator: str | None = None) -> dict[str, Any]:
        """Start a run in the background; :class:`Busy` while one runs, :class:`ConfigError`
        for a serial that does not match the pattern or an unknown sequence."""
        if not re.fullmatch(self.serial_pattern, serial or ""):
            raise ConfigError(f"serial {serial!r} does not match the pattern {self.serial_pattern!r}; scan again")
        path = self._sequence_path(sequence)
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                raise Busy(f"the station is testing {self.current and self.current['serial']}; wait for its "
                           "verdict or stop it")
            self.current = {"id": uuid.uuid4().hex, "sequence": sequence, "serial": serial, "operator": operator}
            self.feed.new_run()
            self.prompts.stopping.clear()
            self._worker = threading.Thread(target=self._run, args=(path, serial, operator, self.current),
                                            name="litmus-seq station run", daemon=True)
            self._worker.start()
        return dict(self.current)

    def _run(self, path: Path, serial: str, operator: str | None, current: dict[str, Any]) -> None:
        from litmus_seq.harness import run_sequence

        outcome: dict[str, Any] = {**current}
        try:
            result = run_sequence(path, station=self.station, dut_serial=serial, data_dir=self.data_dir,
                                  operator=operator, listeners=(self.feed, self.prompts))
            outcome.update(run_id=result.run_id, outcome=result.outcome, error=result.error)
        except BaseException as exc:  # noqa: BLE001 - the server outlives any run; the page is told
            message = "; ".join(exc.lines()) if isinstance(exc, LitmusError) else f"{type(exc).__name__}: {exc}"
            outcome.update(run_id=None, outcome="errored", error=message)
            self.feed.publish(json.dumps({"event_type": "station.error", "message": message}))
        finally:
            with self._lock:
                self.last, self.current = outcome, None
            self.feed.publish(json.dumps({"event_type": "station.idle", "last": outcome}, default=str))

    def stop(self) -> bool:
        """Stop the running unit: ``terminated`` at its next step boundary, cleanup still runs.
        ``False`` when nothing runs."""
        with self._lock:
            worker = self._worker
        if worker is None or not worker.is_alive():
            return False
        if self.prompts.abort_all():
            return True  # the open prompt's "abort" stops the run; a second stop would cut cleanup short
        session = self.feed.session
        if session is not None and session.bus is not None:
            session.bus.pending_signal = lambda: Terminated("stopped by the operator (station page)")
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running unit to end (tests, shutdown)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
