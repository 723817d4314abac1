"""An installable litmus-seq plugin: drivers ``example.chamber`` and ``example.noisy_dmm``, and a
result listener.

A template for plugins shipped as their own distribution: one module implementing hooks,
declared in ``pyproject.toml`` under ``[project.entry-points.litmus_seq]`` with the entry point
named after the distribution. ``docs/plugins.md`` walks through it.
"""

from __future__ import annotations

from typing import Any

from litmus_seq import hookimpl
from litmus_seq_example_plugin.chamber import ChamberOptions, ThermalChamber
from litmus_seq_example_plugin.dmm import NoisyDmm
from litmus_seq_example_plugin.listener import RESULTS_ENV, ResultListener

__all__ = ["ChamberOptions", "NoisyDmm", "RESULTS_ENV", "ResultListener", "ThermalChamber"]
__version__ = "0.2.0"

_listener = ResultListener()


@hookimpl
def litmus_seq_register_drivers(registry: Any) -> None:
    registry.register("example.chamber", ThermalChamber)
    registry.register("example.noisy_dmm", NoisyDmm)


@hookimpl
def litmus_seq_events(events: list[dict[str, Any]]) -> None:
    _listener.events(events)
