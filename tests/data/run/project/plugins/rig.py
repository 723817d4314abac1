"""Local plugin of the test project: ``rig.psu``, a supply that logs every call to a file.

Tests run litmus-seq in a subprocess, so the only way to prove that a cleanup call reached the
instrument is for the instrument to leave a trace outside the process: ``<project>/calls.log``.
``trip`` raises like a real instrument fault; ``slow_off`` takes ``seconds``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from litmus_seq import hookimpl
from litmus_seq.drivers.base import Driver

LOG = Path(__file__).resolve().parent.parent / "calls.log"


class RigPsu(Driver):
    def __init__(self, resource: str | None = None, settings: dict[str, Any] | None = None) -> None:
        super().__init__(resource, settings)
        self.volts = 0.0

    def _log(self, text: str) -> None:
        with LOG.open("a") as f:
            f.write(text + "\n")

    def connect(self) -> None:
        self._log("connect")

    def close(self) -> None:
        self._log("close")

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "Rig Co", "model": "PSU-R1", "serial": "R-0001", "firmware": "2.3"}

    def set_voltage(self, volts: float) -> None:
        self.volts = float(volts)
        self._log(f"set_voltage {self.volts:g}")

    def measure_voltage(self) -> float:
        self._log("measure_voltage")
        return self.volts

    def output_on(self) -> None:
        self._log("output_on")

    def output_off(self) -> None:
        self._log("output_off")

    def slow_off(self, seconds: float = 0.0) -> None:
        self._log("slow_off started")
        time.sleep(float(seconds))
        self._log("slow_off done")

    def trip(self) -> None:
        self._log("trip")
        raise RuntimeError("overcurrent protection tripped at 2.5 A")


@hookimpl
def litmus_seq_register_drivers(registry: Any) -> None:
    registry.register("rig.psu", RigPsu)
