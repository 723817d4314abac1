"""``example.noisy_dmm``: a DMM reading ``value`` plus seeded Gaussian noise.

A demo then produces the occasional marginal or failed measurement, reproducibly.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from litmus_seq.drivers import Driver


class NoisyDmmOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float = Field(3.3, description="the true value read, in volts")
    noise: float = Field(0.002, ge=0, description="standard deviation of the noise, in volts")
    seed: int = Field(0, description="random seed (the same seed gives the same readings)")


class NoisyDmm(Driver):
    """A DMM reading ``value`` plus Gaussian noise; ``set_value`` changes what it reads."""

    options_model = NoisyDmmOptions

    def __init__(self, resource: str | None = None, settings: dict | None = None) -> None:
        super().__init__(resource, settings)
        self.value = self.options.value
        self._random = random.Random(self.options.seed)

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "litmus-seq example", "model": "noisy-dmm", "serial": self.role, "firmware": "0.2.0"}

    def set_value(self, value: float) -> None:
        self.value = float(value)

    def measure_dc_voltage(self) -> float:
        return self.value + self._random.gauss(0.0, self.options.noise)
