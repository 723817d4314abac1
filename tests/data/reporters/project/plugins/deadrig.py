"""Local plugin of the reporter-test project: instruments that fail the way real ones do.

``dead.psu`` refuses the connection (an instrument switched off); ``slow.dmm`` answers
``measure_slowly`` only after ``<project>/release`` exists, and creates ``<project>/in_step``
first, so a test can stop the run while a step is in flight without guessing at timings; its
``bail_out`` raises ``SystemExit`` as a driver calling ``sys.exit()`` would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from litmus_seq import hookimpl
from litmus_seq.drivers.base import Driver

PROJECT = Path(__file__).resolve().parent.parent


class DeadPsu(Driver):
    def connect(self) -> None:
        raise ConnectionRefusedError(111, f"Connection refused by {self.resource}")

    def close(self) -> None:
        pass

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "Rig Co", "model": "DEAD-1", "serial": "0", "firmware": ""}

    def output_on(self) -> None:
        pass

    def output_off(self) -> None:
        pass


class SlowDmm(Driver):
    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def identity(self) -> dict[str, str]:
        return {"manufacturer": "Rig Co", "model": "SLOW-1", "serial": "1", "firmware": ""}

    def bail_out(self) -> float:
        raise SystemExit(2)  # a driver that calls sys.exit: must end errored, never passed

    def measure_slowly(self) -> float:
        (PROJECT / "in_step").touch()
        while not (PROJECT / "release").exists():
            time.sleep(0.01)
        return 3.3


@hookimpl
def litmus_seq_register_drivers(registry: Any) -> None:
    registry.register("dead.psu", DeadPsu)
    registry.register("slow.dmm", SlowDmm)
