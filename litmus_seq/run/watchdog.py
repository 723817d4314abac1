"""Hangs are faults, not waits: every instrument call, ``connect()`` and ``close()`` has a timeout.

* ``connect()`` (with the driver's construction and ``identity()``) and ``close()`` run on a
  daemon thread the session waits for at most the role's timeout (:func:`within`): a hanging
  ``close()`` never keeps the process alive after the seal, and a stop (Ctrl-C, SIGTERM) still
  reaches the main thread while it waits.
* Calls are made on the main thread (drivers keep their thread) and timed by one
  :class:`Watchdog` thread per session, which costs the call two attribute writes. A call that
  overruns is interrupted when the process runs under
  :func:`~litmus_seq.run.process.station_process` (the watchdog sends SIGALRM to the main thread,
  whose handler raises :class:`~litmus_seq.errors.InstrumentTimeout`); without it (a program
  that did not ask for process-wide settings) the call is judged when it returns. Either way the
  step is ``errored`` and cleanup runs.

Timeouts: the call's own ``timeout_s``, else the role's (``instruments.<role>.timeout_s``), else
the station's ``timeout_s``, else :data:`DEFAULT_TIMEOUT_S`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from litmus_seq.errors import InstrumentTimeout

__all__ = ["DEFAULT_TIMEOUT_S", "Watchdog", "within"]

#: Longest an instrument call, connect() or close() may take when nothing says otherwise.
DEFAULT_TIMEOUT_S = 30.0


def within(timeout_s: float, fn: Callable[[], Any], what: str) -> Any:
    """``fn()`` run on a daemon thread; its result, or what it raised, or
    :class:`InstrumentTimeout` after ``timeout_s`` (the thread is abandoned, never joined)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"litmus-seq {what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise InstrumentTimeout(f"{what}: no answer within {timeout_s:g} s (timeout_s)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


class Watchdog:
    """Times the instrument call in progress on the main thread (see the module docstring).

    The caller brackets each call with :meth:`begin` / :meth:`end`; the thread polls a few
    times per shortest timeout and fires when the same call is still in progress after its
    timeout.
    """

    __slots__ = ("seq", "what", "timeout", "fired", "_stop", "_thread", "_poll", "_main")

    def __init__(self, poll_s: float = 0.05) -> None:
        self.seq = 0  # the call in progress (or the last one)
        self.what: str | None = None  # its name, None between calls
        self.timeout = DEFAULT_TIMEOUT_S
        self.fired = -1  # seq of the last call that overran
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll = poll_s
        self._main = threading.main_thread().ident

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="litmus-seq watchdog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def begin(self, what: str, timeout_s: float) -> int:
        """A call starts; returns its sequence number for :meth:`end`."""
        seq = self.seq + 1
        self.timeout = timeout_s
        self.seq = seq
        self.what = what
        return seq

    def end(self, seq: int) -> None:
        """The call ``seq`` returned; raises :class:`InstrumentTimeout` if it overran."""
        if self.fired == seq:
            error = self.error()
            self.what = None
            raise error
        self.what = None

    def error(self) -> InstrumentTimeout:
        return InstrumentTimeout(f"{self.what or 'instrument call'}: no answer within {self.timeout:g} s (timeout_s)")

    def overdue(self) -> bool:
        """A call is in progress and the watchdog fired for it (the SIGALRM handler asks)."""
        return self.what is not None and self.fired == self.seq

    def _loop(self) -> None:
        seen, since = -1, 0.0
        while not self._stop.wait(min(self._poll, self.timeout / 4)):
            seq, what = self.seq, self.what
            if what is None:
                seen = -1
                continue
            now = time.monotonic()
            if seq != seen:
                seen, since = seq, now
                continue
            if now - since >= self.timeout and self.fired != seq:
                self.fired = seq
                if self.seq == seq and self.what is not None and _interrupts():
                    signal.pthread_kill(self._main, signal.SIGALRM)  # type: ignore[arg-type]


def _interrupts() -> bool:
    """Only when station_process() installed its SIGALRM handler (else SIGALRM would kill)."""
    from litmus_seq.run.process import on_alarm

    return signal.getsignal(signal.SIGALRM) is on_alarm
