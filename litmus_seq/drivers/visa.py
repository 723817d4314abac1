"""pyvisa resource managers, one per library string, shared by all SCPI drivers of a process.

Importing this module imports pyvisa (60-120 ms cold), so only :mod:`litmus_seq.drivers.scpi`
imports it, and only when an instrument connects: ``validate`` and ``--help`` never pay for it.

The library string is what a station's ``visa_library`` says (``"@py"``, ``"@ivi"``, a VISA
shared-library path, ``"/abs/path/sim.yaml@sim"``); the engine resolves relative paths against the
project root before it gets here. pyvisa itself keeps one library object per path, and pyvisa-sim
keeps the simulator's state with it, which is why tests copy the definition file per test.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pyvisa
import pyvisa.errors

from litmus_seq.errors import ConfigError, InstrumentError

if TYPE_CHECKING:  # pragma: no cover
    from pyvisa.highlevel import ResourceManager

__all__ = ["VISA_ERRORS", "close_resource_managers", "resource_manager"]

#: What a pyvisa call can raise for an instrument-side reason; SCPI drivers wrap these.
VISA_ERRORS: tuple[type[BaseException], ...] = (pyvisa.errors.Error, OSError, ValueError)

_lock = threading.Lock()
_managers: dict[str, ResourceManager] = {}


def resource_manager(library: str | None) -> ResourceManager:
    """The cached ``pyvisa.ResourceManager`` for ``library`` (``None``: pyvisa's default lookup).

    A missing pyvisa-sim definition file is a :class:`ConfigError` (the station is wrong); a
    backend that cannot be opened is an :class:`InstrumentError` with the library and the cause.
    """
    key = library or ""
    with _lock:
        rm = _managers.get(key)
        if rm is not None:
            return rm
        if key.endswith("@sim") and key != "@sim":
            sim_file = Path(key[: -len("@sim")])
            if not sim_file.is_file():
                raise ConfigError(
                    f"visa_library {library!r}: pyvisa-sim definition file {str(sim_file)!r} not "
                    f"found; fix the station's visa_library (paths are relative to the project root)"
                )
        try:
            rm = pyvisa.ResourceManager(key)
        except Exception as exc:  # noqa: BLE001 - backends raise anything (OSError, ValueError, ...)
            hint = (
                "set visa_library in the station file ('@py' for pyvisa-py, '@ivi' for an installed "
                "VISA, 'stations/sim.yaml@sim' for the simulator)"
                if not key
                else "check the station's visa_library and that the backend is installed"
            )
            raise InstrumentError(
                f"cannot open VISA library {library or '(default)'!r}: {type(exc).__name__}: {exc}; {hint}"
            ) from exc
        _managers[key] = rm
        return rm


def close_resource_managers() -> None:
    """Close and forget every cached resource manager (end of a session, tests)."""
    with _lock:
        managers = list(_managers.values())
        _managers.clear()
    for rm in managers:
        try:
            rm.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
