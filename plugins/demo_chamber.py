"""Local plugin: ``demo.chamber``, a pure-Python simulated thermal chamber.

pyvisa-sim answers SCPI but has no timing and no physics; a chamber that takes time to reach its
setpoint is what temperature-dependent sequences (bands chosen by ``temperature``, soak steps)
need for a believable demo. This is the simplest useful model, first order::

    T(t) = setpoint + (T0 - setpoint) * exp(-t / time_constant_s)

Station settings (all optional): ``time_constant_s`` (60), ``ambient_c`` (25), ``min_c`` (-40),
``max_c`` (150), ``time_scale`` (simulated seconds per real second, 1; use e.g. 600 so a
10-minute soak takes one second of a demo).

Any ``*.py`` directly in a project's ``plugins/`` folder is loaded as a local plugin, like this one.
"""

from __future__ import annotations

import math
import time
from typing import Any

from litmus_seq import InstrumentError, hookimpl
from litmus_seq.drivers.base import Driver


class DemoChamber(Driver):
    """A thermal chamber that approaches its setpoint exponentially."""

    #: Replaceable in tests (a fake clock); real time by default.
    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    def __init__(self, resource: str | None = None, settings: dict[str, Any] | None = None) -> None:
        super().__init__(resource, settings)
        s = self.settings
        self.time_constant_s = float(s.get("time_constant_s", 60.0))
        self.ambient_c = float(s.get("ambient_c", 25.0))
        self.min_c = float(s.get("min_c", -40.0))
        self.max_c = float(s.get("max_c", 150.0))
        self.time_scale = float(s.get("time_scale", 1.0))
        if self.time_constant_s <= 0 or self.time_scale <= 0:
            raise InstrumentError(
                f"role {self.role!r}: time_constant_s and time_scale must be positive, got "
                f"{self.time_constant_s} and {self.time_scale}"
            )
        self._start_c = self.ambient_c
        self._setpoint_c = self.ambient_c
        self._t0 = self.clock()

    def connect(self) -> None:
        self._t0 = self.clock()

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "litmus-seq demo", "model": "first-order chamber", "serial": self.role, "firmware": "1"}

    def _elapsed_s(self) -> float:
        return (self.clock() - self._t0) * self.time_scale

    def read_temperature(self) -> float:
        """The chamber air temperature now, in °C (rounded to a millikelvin like a real sensor)."""
        decay = math.exp(-self._elapsed_s() / self.time_constant_s)
        return round(self._setpoint_c + (self._start_c - self._setpoint_c) * decay, 3)

    def set_temperature(self, celsius: float) -> None:
        """Change the setpoint; the chamber starts moving from where it is now."""
        target = float(celsius)
        if not self.min_c <= target <= self.max_c:
            raise InstrumentError(
                f"role {self.role!r}: setpoint {target} °C is outside the chamber range "
                f"{self.min_c}..{self.max_c} °C"
            )
        self._start_c = self.read_temperature()
        self._t0 = self.clock()
        self._setpoint_c = target

    def setpoint(self) -> float:
        return self._setpoint_c

    def wait_until_stable(self, tolerance_c: float = 0.5, timeout_s: float = 3600.0) -> float:
        """Wait until within ``tolerance_c`` of the setpoint; returns the temperature then.

        The model is analytic, so the wait is computed, not polled. A wait longer than
        ``timeout_s`` (real seconds) is an InstrumentError, as a stuck chamber would be.
        """
        error = abs(self.read_temperature() - self._setpoint_c)
        if error > tolerance_c:
            needed_sim_s = self.time_constant_s * math.log(error / tolerance_c)
            needed_s = needed_sim_s / self.time_scale
            if needed_s > timeout_s:
                raise InstrumentError(
                    f"role {self.role!r}: chamber needs {needed_s:.1f} s to settle within "
                    f"{tolerance_c} °C of {self._setpoint_c} °C, more than timeout_s={timeout_s}"
                )
            self.sleep(needed_s)
        return self.read_temperature()


@hookimpl
def litmus_seq_register_drivers(registry: Any) -> None:
    registry.register("demo.chamber", DemoChamber)
