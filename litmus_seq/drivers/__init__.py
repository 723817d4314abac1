"""Built-in instrument drivers, and the built-in plugin that registers them.

This package *is* a plugin (registered by :func:`litmus_seq.plugins.get_plugin_manager` under the
name ``litmus_seq.drivers``): it implements ``litmus_seq_register_drivers`` exactly as a third-party
plugin would, so the built-ins get no special path through the registry. Importing it does not
import pyvisa; that happens when an SCPI instrument connects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litmus_seq.drivers.base import Driver
from litmus_seq.drivers.mock import MockDriver
from litmus_seq.drivers.console import SerialConsole
from litmus_seq.drivers.scpi import ScpiDmm, ScpiEload, ScpiInstrument, ScpiPsu, ScpiPsuMulti, ScpiScope
from litmus_seq.hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.drivers.registry import DriverRegistry

__all__ = [
    "BUILTIN_DRIVERS", "Driver", "MockDriver", "ScpiDmm", "ScpiEload", "ScpiInstrument", "ScpiPsu", "ScpiPsuMulti",
    "ScpiScope", "SerialConsole",
]

#: name -> class of the drivers litmus-seq ships.
BUILTIN_DRIVERS: dict[str, type] = {
    "mock": MockDriver,
    "scpi.dmm": ScpiDmm,
    "scpi.psu": ScpiPsu,
    "scpi.eload": ScpiEload,
    "scpi.psu_multi": ScpiPsuMulti,
    "scpi.scope": ScpiScope,
    "serial.console": SerialConsole,
}


@hookimpl
def litmus_seq_register_drivers(registry: DriverRegistry) -> None:
    for name, cls in BUILTIN_DRIVERS.items():
        registry.register(name, cls)


@hookimpl(trylast=True)
def litmus_seq_identify_driver(idn: str, resource: str | None) -> str | None:
    """The generic driver for ``driver: auto`` (vendor plugins are asked first)."""
    from litmus_seq.drivers.auto import generic_driver_for

    name = generic_driver_for(idn)
    return name if name in BUILTIN_DRIVERS else None
