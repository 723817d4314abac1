"""``example.chamber``: a simulated thermal chamber with an options model and calibration it
reports itself (as a real chamber's controller would, from its service menu).

The chamber reaches its setpoint at once (a demo must not wait); ``read_temperature`` adds a
seeded offset within ``uniformity_c``. A setpoint outside ``min_c``..``max_c`` is an instrument
error, as the controller would refuse it.
"""

from __future__ import annotations

import datetime as dt
import random

from pydantic import BaseModel, ConfigDict, Field

from litmus_seq import InstrumentError
from litmus_seq.drivers import Driver


class ChamberOptions(BaseModel):
    """The station's ``settings:`` of an ``example.chamber`` role."""

    model_config = ConfigDict(extra="forbid")

    serial: str = Field("TC-0001", description="the chamber's serial number")
    ambient_c: float = Field(25.0, description="temperature at power-on, in °C")
    min_c: float = Field(-40.0, description="lowest setpoint, in °C")
    max_c: float = Field(150.0, description="highest setpoint, in °C")
    uniformity_c: float = Field(0.2, ge=0, description="largest deviation of a reading from the setpoint")
    seed: int = 0
    cal_due: dt.date | None = Field(None, description="calibration due date the controller reports")
    cal_certificate: str | None = Field(None, description="calibration certificate the controller reports")


class ThermalChamber(Driver):
    """Set, read and soak; ``connect`` checks that the range is sane."""

    options_model = ChamberOptions

    def __init__(self, resource: str | None = None, settings: dict | None = None) -> None:
        super().__init__(resource, settings)
        self._setpoint_c = self.options.ambient_c
        self._random = random.Random(self.options.seed)
        self.connected = False

    def connect(self) -> None:
        if self.options.min_c >= self.options.max_c:
            raise InstrumentError(f"role {self.role!r}: min_c must be below max_c")
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "Example Thermal", "model": "TC-100", "serial": self.options.serial,
                "firmware": "4.2"}

    def calibration(self) -> dict[str, object]:
        return {"due": self.options.cal_due, "certificate": self.options.cal_certificate}

    def set_temperature(self, celsius: float) -> None:
        target = float(celsius)
        if not self.options.min_c <= target <= self.options.max_c:
            raise InstrumentError(f"role {self.role!r}: setpoint {target} °C is outside "
                                  f"{self.options.min_c}..{self.options.max_c} °C")
        self._setpoint_c = target

    def read_temperature(self) -> float:
        spread = self.options.uniformity_c
        return round(self._setpoint_c + self._random.uniform(-spread, spread), 3)
