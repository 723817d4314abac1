"""``lab.meter``: a driver with an options model, an *IDN?-like identity and calibration it reads
from "the instrument" (its settings, so each test can say what the instrument reports)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from litmus_seq import hookimpl
from litmus_seq.drivers import Driver


class MeterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reading: float = Field(1.0, description="what read() returns")
    model: str = "LM-100"
    serial: str = "LM-0001"
    reported_due: str | None = Field(None, description="calibration due date the instrument reports")
    reported_certificate: str | None = None


class Meter(Driver):
    options_model = MeterOptions

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "Lab", "model": self.options.model, "serial": self.options.serial, "firmware": "2.1"}

    def calibration(self) -> dict[str, Any]:
        return {"due": self.options.reported_due, "certificate": self.options.reported_certificate}

    def read(self) -> float:
        return self.options.reading


@hookimpl
def litmus_seq_register_drivers(registry: Any) -> None:
    registry.register("lab.meter", Meter)
