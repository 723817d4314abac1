"""litmus-seq: a declarative YAML test sequencer.

The public API is re-exported here lazily, so ``import litmus_seq`` (and ``litmus-seq --help``)
stays cheap: heavy modules load only when their names are first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from litmus_seq.errors import (
    ConfigError,
    DriverError,
    ExpressionError,
    InstrumentError,
    LimitError,
    LitmusError,
    NothingToRun,
    PluginError,
    StoreError,
    ValidationError,
)
from litmus_seq.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Limit": "litmus_seq.limits",
    "ResolvedLimit": "litmus_seq.limits",
    "Plan": "litmus_seq.plan",
    "build_plan": "litmus_seq.plan",
    "load_plan": "litmus_seq.plan",
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
    "StoreError",
    "ValidationError",
    "hookimpl",
    "hookspec",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litmus_seq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
