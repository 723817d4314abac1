"""``serial.console``: a DUT's text console on a serial port (pyvisa ``ASRL`` resources).

Send a command, then read lines until one matches a regular expression; no match within the
timeout is an :class:`~litmus_seq.errors.InstrumentError` naming the command, the pattern and the
lines that did arrive. The DUT's identity comes from the settings (``manufacturer``, ``model``)
and, with ``identify_command``, its firmware from the first reply to that command.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import Field

from litmus_seq.drivers.scpi import ScpiInstrument, ScpiOptions
from litmus_seq.errors import InstrumentError

__all__ = ["ConsoleOptions", "SerialConsole"]


class ConsoleOptions(ScpiOptions):
    """``settings:`` of a ``serial.console`` role."""

    timeout_ms: int = Field(1000, gt=0, strict=True, description="how long one line may take, in ms")
    write_termination: str | None = Field("\r\n", description="line ending sent after a command")
    check_errors: bool = Field(False, description="a console has no SCPI error queue")
    baud_rate: int = Field(115200, gt=0, description="serial speed")
    manufacturer: str = Field("", description="the DUT's maker (identity)")
    model: str = Field("DUT console", description="the DUT's model (identity)")
    identify_command: str | None = Field(None, description="a command whose first reply is the firmware version")


class SerialConsole(ScpiInstrument):
    """Line-oriented console: :meth:`send`, :meth:`expect`, :meth:`command`."""

    options_model = ConsoleOptions

    def connect(self) -> None:
        if self._inst is not None:
            return
        self._open()
        try:
            self._inst.baud_rate = self.options.baud_rate
        except (AttributeError, *self._visa_errors):  # not every backend has a serial line
            pass
        firmware = ""
        if self.options.identify_command:
            firmware = self.command(self.options.identify_command, r".+", timeout_s=self.timeout_ms / 1000)
        self._identity = {"manufacturer": self.options.manufacturer, "model": self.options.model,
                          "serial": str(self.resource or ""), "firmware": firmware}

    def send(self, text: str) -> None:
        """Write one line (the terminator is added)."""
        inst = self._require()
        try:
            inst.write(text)
        except self._visa_errors as exc:
            raise self._fault(text, exc) from exc

    def expect(self, pattern: str, timeout_s: float = 5.0, after: str = "") -> str:
        """Read lines until one matches ``pattern`` (``re.search``); returns that line."""
        inst = self._require()
        regex = re.compile(pattern)
        deadline = time.monotonic() + float(timeout_s)
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            inst.timeout = max(1, min(self.timeout_ms, int(left * 1000)))
            try:
                line = inst.read().strip()
            except self._visa_errors as exc:
                if "TMO" in str(exc) or "timeout" in str(exc).lower():
                    continue  # nothing yet: wait until the deadline
                raise self._fault(after or f"expect {pattern!r}", exc) from exc
            finally:
                inst.timeout = self.timeout_ms
            seen.append(line)
            if regex.search(line):
                return line
        got = "; ".join(repr(x) for x in seen[-5:]) or "nothing"
        raise InstrumentError(
            f"role {self.role!r} ({self.resource}): no line matching {pattern!r} within {timeout_s:g} s"
            f"{f' after {after!r}' if after else ''}; got {got}")

    def command(self, text: str, expect: str = r".*", timeout_s: float = 5.0) -> str:
        """Send ``text`` and return the first line matching ``expect``."""
        self.send(text)
        return self.expect(expect, timeout_s, after=text)

    def query(self, command: str) -> str:
        """A command answered by one line (what ``plugins check`` and SCPI helpers use)."""
        return self.command(command, r".*", timeout_s=self.timeout_ms / 1000)

    def identity(self) -> dict[str, Any]:
        if self._identity is not None:
            return dict(self._identity)
        return {"manufacturer": self.options.manufacturer, "model": self.options.model,
                "serial": str(self.resource or ""), "firmware": ""}
