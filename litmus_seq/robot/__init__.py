"""Robot Framework front door: the ``LitmusSeq`` keyword library and the ``Listener``.

``Library    litmus_seq.robot.LitmusSeq`` gives keywords that open a run on a station, measure
against the product spec and record through the run recorder; ``robot --listener
litmus_seq.robot.Listener`` turns any suite into runs (suite = run, test = step) without touching
it. Both need the ``robot`` extra (``pip install 'litmus-seq[robot]'``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.robot.library import LitmusSeq
    from litmus_seq.robot.listener import Listener

__all__ = ["LitmusSeq", "Listener"]

_LAZY = {"LitmusSeq": "litmus_seq.robot.library", "Listener": "litmus_seq.robot.listener"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litmus_seq.robot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
