"""litmus-seq: a declarative YAML test sequencer.

The public API is re-exported here lazily, so ``import litmus_seq`` (and ``litmus-seq --help``)
stays cheap: every name is imported from its module when first used (``from litmus_seq import
hookimpl`` works as usual). Even the exceptions are lazy: ``litmus_seq.errors`` pulls in
:mod:`dataclasses` (and with it :mod:`inspect`), and the hook markers pull in pluggy, neither of
which ``--help`` or a mock-only ``validate`` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from litmus_seq.errors import (
        ConfigError,
        DriverError,
        ExpressionError,
        InstrumentError,
        LimitError,
        LitmusError,
        NothingToRun,
        PluginError,
        StepAborted,
        StoreError,
        SubscriberError,
        Terminated,
        ValidationError,
    )
    from litmus_seq.harness import Harness
    from litmus_seq.hookspecs import hookimpl, hookspec
    from litmus_seq.limits import Limit, ResolvedLimit
    from litmus_seq.plan import Plan, build_plan, load_plan
    from litmus_seq.run import Run, RunResult, Session, StepContext, preflight, run_plan, station_process
    from litmus_seq.client import LitmusClient, RunSummary
    from litmus_seq.stores import register_stores

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "ConfigError": "litmus_seq.errors",
    "DriverError": "litmus_seq.errors",
    "ExpressionError": "litmus_seq.errors",
    "InstrumentError": "litmus_seq.errors",
    "LimitError": "litmus_seq.errors",
    "LitmusError": "litmus_seq.errors",
    "NothingToRun": "litmus_seq.errors",
    "PluginError": "litmus_seq.errors",
    "StepAborted": "litmus_seq.errors",
    "StoreError": "litmus_seq.errors",
    "SubscriberError": "litmus_seq.errors",
    "Terminated": "litmus_seq.errors",
    "ValidationError": "litmus_seq.errors",
    "Harness": "litmus_seq.harness",
    "hookimpl": "litmus_seq.hookspecs",
    "hookspec": "litmus_seq.hookspecs",
    "Limit": "litmus_seq.limits",
    "ResolvedLimit": "litmus_seq.limits",
    "Plan": "litmus_seq.plan",
    "build_plan": "litmus_seq.plan",
    "load_plan": "litmus_seq.plan",
    "Session": "litmus_seq.run.session",
    "Run": "litmus_seq.run.recorder",
    "RunResult": "litmus_seq.run.recorder",
    "StepContext": "litmus_seq.run.context",
    "run_plan": "litmus_seq.run.executor",
    "preflight": "litmus_seq.run.preflight",
    "station_process": "litmus_seq.run.process",
    "register_stores": "litmus_seq.stores",
    "LitmusClient": "litmus_seq.client",
    "RunSummary": "litmus_seq.client",
}

__all__ = [
    "ConfigError",
    "DriverError",
    "ExpressionError",
    "InstrumentError",
    "LimitError",
    "LitmusError",
    "NothingToRun",
    "PluginError",
    "StepAborted",
    "StoreError",
    "SubscriberError",
    "Terminated",
    "ValidationError",
    "Harness",
    "hookimpl",
    "hookspec",
    "__version__",
    "Limit",
    "ResolvedLimit",
    "Plan",
    "build_plan",
    "load_plan",
    "Session",
    "Run",
    "RunResult",
    "StepContext",
    "run_plan",
    "preflight",
    "station_process",
    "register_stores",
    "LitmusClient",
    "RunSummary",
]


#: submodules that ``import litmus_seq`` used to import eagerly: ``litmus_seq.errors`` still
#: works after a bare ``import litmus_seq``
_SUBMODULES = frozenset({"errors", "hookspecs"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"litmus_seq.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litmus_seq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
