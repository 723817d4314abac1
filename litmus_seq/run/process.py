"""Process-wide settings for a program that runs tests: applied by the CLI, or asked for.

Library code never changes process-wide state on its own. ``litmus-seq run`` wraps its runs in
:func:`station_process`; a program that embeds the recorder (a harness, a server) gets the same
settings only by calling it::

    from litmus_seq.run import station_process

    with station_process():
        ... open sessions, run ...

What it sets, and why:

* **signals** — SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`~litmus_seq.errors.Terminated`
  in the main thread, so a stop ends the run ``terminated`` with its cleanup run. While plugins
  handle a batch of events (or a run is being sealed) the signal is held and raised right after:
  an interrupt inside the event store or the materializer would lose or half-apply events.
  SIGALRM is how a session's watchdog interrupts an instrument call that overran its timeout.
  During cleanup a stop is held while an instrument call runs (the call still puts the station
  in a safe state) and cuts waits and prompts short; from the second stop on, stderr says so.
* **garbage collection** — what is alive when the block starts (a loaded plan, imported modules)
  is frozen out of the collector, and young collections happen every 50,000 allocations instead
  of 700: a run's own objects mostly die young or live until the seal, and re-scanning them
  costs several µs a step.
* **Arrow memory** — pyarrow's buffers come from the C library's allocator, unless
  ``ARROW_DEFAULT_MEMORY_POOL`` chose one: mimalloc keeps freed batches, so a long run's
  resident memory would only grow.

Everything is restored when the block ends, except the memory pool (set once per process).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from litmus_seq.errors import Terminated

__all__ = ["RUN_GC_THRESHOLD", "active_buses", "active_watchdogs", "on_alarm", "station_process",
           "use_system_allocator"]

#: Allocations between young garbage collections inside :func:`station_process` (CPython: 700).
RUN_GC_THRESHOLD = 50_000

#: The event buses of open sessions: the signal handlers hold an interrupt while one delivers.
active_buses: list[Any] = []

#: The instrument-call watchdogs of open sessions (:mod:`litmus_seq.run.watchdog`).
active_watchdogs: list[Any] = []


def on_alarm(signum: int, frame: Any) -> None:
    """SIGALRM from a session's watchdog: the instrument call in progress overran its timeout."""
    for watchdog in active_watchdogs:
        if watchdog.overdue():
            raise watchdog.error()

_pool_chosen = False


def use_system_allocator() -> bool:
    """Make the C library's allocator pyarrow's default memory pool, once per process and unless
    the user chose one (``ARROW_DEFAULT_MEMORY_POOL``); returns whether it changed anything."""
    global _pool_chosen
    if _pool_chosen or os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    _pool_chosen = True
    import pyarrow as pa

    pool = pa.system_memory_pool()
    if pa.default_memory_pool().backend_name == pool.backend_name:
        return False
    pa.set_memory_pool(pool)
    return True


#: stop signals received inside the current station_process() block
_stops = 0

AGAIN = ("litmus-seq: stop requested again: cleanup calls still run (waits and prompts are cut "
         "short); only SIGKILL skips them\n")


def _handler(make: Callable[[], BaseException]) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        global _stops
        _stops += 1
        if _stops > 1:  # the operator insists: say what a stop can and cannot cut short now
            sys.stderr.write(AGAIN)
            sys.stderr.flush()
        for bus in active_buses:
            if bus.delivering:
                bus.pending_signal = make
                return
        raise make()

    return handler


@contextmanager
def station_process(*, signals: bool = True, gc_tuning: bool = True, arrow_pool: bool = True) -> Iterator[None]:
    """Apply the settings described in the module docstring for the duration of the block."""
    global _stops
    _stops = 0
    old_signals: list[tuple[int, Any]] = []
    if signals and threading.current_thread() is threading.main_thread():
        for signum, make in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, lambda: Terminated("SIGTERM"))):
            if signum == signal.SIGINT and signal.getsignal(signum) is signal.SIG_IGN:
                continue  # started in the background by a shell: keep ignoring Ctrl-C
            old_signals.append((signum, signal.signal(signum, _handler(make))))
        old_signals.append((signal.SIGALRM, signal.signal(signal.SIGALRM, on_alarm)))
    thresholds = gc.get_threshold()
    if gc_tuning:
        gc.freeze()
        gc.set_threshold(RUN_GC_THRESHOLD, 20, 20)
    if arrow_pool:
        use_system_allocator()
    try:
        yield
    finally:
        if gc_tuning:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        for signum, old in reversed(old_signals):
            signal.signal(signum, old)
