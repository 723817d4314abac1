"""Running tests: the session, the run recorder, the YAML executor, and process settings.

* :class:`Session` (:mod:`.session`) — one station, one plugin manager, one event stream;
* :class:`Run` (:mod:`.recorder`) — the run recorder every front door drives: steps, vectors,
  measurements judged against limits, prompts, the verdict and the seal; :class:`RunResult`;
* :func:`run_plan` (:mod:`.executor`) — walks a YAML plan and drives a :class:`Run`;
  :func:`preflight` (:mod:`.preflight`) checks a plan against the station first;
* :func:`station_process` (:mod:`.process`) — the process-wide settings a test station wants
  (signal handlers, GC tuning, Arrow memory pool), applied only when asked for.

Names are imported lazily: ``import litmus_seq.run`` costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.run.context import StepContext
    from litmus_seq.run.executor import run_plan
    from litmus_seq.run.preflight import preflight
    from litmus_seq.run.process import station_process
    from litmus_seq.run.recorder import Run, RunResult
    from litmus_seq.run.session import Session

_LAZY = {
    "Session": "litmus_seq.run.session",
    "Run": "litmus_seq.run.recorder",
    "RunResult": "litmus_seq.run.recorder",
    "StepContext": "litmus_seq.run.context",
    "run_plan": "litmus_seq.run.executor",
    "preflight": "litmus_seq.run.preflight",
    "station_process": "litmus_seq.run.process",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litmus_seq.run' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
