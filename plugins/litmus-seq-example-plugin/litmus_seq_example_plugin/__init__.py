"""An installable litmus-seq plugin: the ``example.noisy_dmm`` driver.

A template for instrument plugins shipped as their own distribution: a module implementing
``litmus_seq_register_drivers``, declared in ``pyproject.toml`` under
``[project.entry-points.litmus_seq]`` with the entry point named after the distribution.

``example.noisy_dmm`` returns a value with seeded Gaussian noise, which makes a demo produce the
occasional marginal or failed measurement reproducibly. Station settings: ``value`` (3.3),
``noise`` (standard deviation, 0.002), ``seed`` (0).
"""

from __future__ import annotations

import random
from typing import Any

from litmus_seq import hookimpl
from litmus_seq.drivers.base import Driver

__version__ = "0.1.0"


class NoisyDmm(Driver):
    """A DMM reading ``value`` plus Gaussian noise; ``set_value`` changes what it reads."""

    def __init__(self, resource: str | None = None, settings: dict[str, Any] | None = None) -> None:
        super().__init__(resource, settings)
        self.value = float(self.settings.get("value", 3.3))
        self.noise = float(self.settings.get("noise", 0.002))
        self._random = random.Random(self.settings.get("seed", 0))

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "litmus-seq example", "model": "noisy-dmm", "serial": self.role, "firmware": __version__}

    def set_value(self, value: float) -> None:
        self.value = float(value)

    def measure_dc_voltage(self) -> float:
        return self.value + self._random.gauss(0.0, self.noise)


@hookimpl
def litmus_seq_register_drivers(registry: Any) -> None:
    registry.register("example.noisy_dmm", NoisyDmm)
