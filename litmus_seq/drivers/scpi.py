"""SCPI instruments over pyvisa: the base class and the generic ``scpi.*`` drivers.

Importing this module is cheap: pyvisa is imported (through :mod:`litmus_seq.drivers.visa`) only
when an instrument connects. Every pyvisa error or timeout is re-raised as an
:class:`~litmus_seq.errors.InstrumentError` naming the role, the resource, the command and the
cause, so a hung or faulty instrument ends the run ``errored`` with a one-line explanation.

Command strings are class attributes: a vendor plugin adapts a generic driver to an instrument with
a different dialect by subclassing and overriding them, without rewriting the methods.

Settings (the station's ``settings:``, :class:`ScpiOptions`; a misspelt key is an error):

- ``timeout_ms`` (2000): I/O timeout of every read;
- ``read_termination`` / ``write_termination`` (``"\\n"``): message terminators;
- ``check_errors`` (true): query the error queue after every write, so a rejected setting
  (out of range, unknown command) fails at the step that sent it, not three steps later;
- ``error_query`` (``SYST:ERR?``): the error-queue query; a first field of 0 means "no error";
- ``reset`` (false): send ``*RST`` when connecting.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from litmus_seq.drivers.base import Driver
from litmus_seq.errors import ConfigError, InstrumentError

__all__ = ["ScpiDmm", "ScpiEload", "ScpiInstrument", "ScpiOptions", "ScpiPsu", "ScpiPsuMulti", "ScpiScope"]


class ScpiOptions(BaseModel):
    """``settings:`` of every ``scpi.*`` role."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    timeout_ms: int = Field(2000, gt=0, strict=True, description="I/O timeout of every read, in ms")
    read_termination: str | None = Field("\n", description="reply terminator")
    write_termination: str | None = Field("\n", description="command terminator")
    check_errors: bool = Field(True, description="query the error queue after every write")
    error_query: str = Field("SYST:ERR?", description="the error-queue query (first field 0: no error)")
    reset: bool = Field(False, description="send *RST when connecting")


class ScpiInstrument(Driver):
    """A message-based SCPI instrument: connect, ``*IDN?``, write/query with error checking."""

    options_model = ScpiOptions

    def __init__(self, resource: str | None = None, settings: dict[str, Any] | None = None) -> None:
        super().__init__(resource, settings)
        o: ScpiOptions = self.options
        self.timeout_ms = o.timeout_ms
        self.read_termination: str | None = o.read_termination
        self.write_termination: str | None = o.write_termination
        self.check_errors = o.check_errors
        self.error_query: str = o.error_query
        self.reset_on_connect = o.reset
        #: the raw ``*IDN?`` reply once connected (``expect_idn`` patterns match it)
        self.idn: str | None = None
        self._inst: Any = None
        self._identity: dict[str, str] | None = None
        self._visa_errors: tuple[type[BaseException], ...] = ()

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """Open the resource, optionally ``*RST``, clear the error queue and read ``*IDN?``."""
        if self._inst is not None:
            return
        self._open()
        if self.reset_on_connect:
            self.write("*RST")
        if self.check_errors:
            self.clear_errors()
        idn = self.query("*IDN?")
        if not idn:
            # pyvisa-sim opens any resource name and answers it with nothing; some real
            # backends do the same for a wrong address on a shared bus
            self.close()
            raise InstrumentError(
                f"role {self.role!r}: {self.resource!r} answered nothing to '*IDN?'; check the "
                f"resource string (is this the right instrument?)"
            )
        self.idn = idn
        self._identity = parse_idn(idn)

    def _open(self) -> None:
        """Open the VISA resource with the configured timeout and terminators."""
        if not self.resource:
            raise ConfigError(
                f"role {self.role!r}: driver {type(self).__name__} needs a VISA resource; add "
                f"resource: \"TCPIP::host::INSTR\" (or similar) to the role in the station file"
            )
        from litmus_seq.drivers import visa  # imports pyvisa: only when connecting

        self._visa_errors = visa.VISA_ERRORS
        library = self.settings.get("visa_library")
        rm = visa.resource_manager(library)
        kwargs: dict[str, Any] = {"timeout": self.timeout_ms}
        if self.read_termination is not None:
            kwargs["read_termination"] = self.read_termination
        if self.write_termination is not None:
            kwargs["write_termination"] = self.write_termination
        try:
            self._inst = rm.open_resource(self.resource, **kwargs)
        except self._visa_errors as exc:
            raise InstrumentError(
                f"role {self.role!r}: cannot open {self.resource!r} with VISA library "
                f"{library or '(default)'!r}: {type(exc).__name__}: {exc}; check the resource "
                f"string, the cabling and that the instrument is on"
            ) from exc

    def close(self) -> None:
        inst, self._inst = self._inst, None
        if inst is not None:
            try:
                inst.close()
            except Exception:  # noqa: BLE001 - close must not raise (it runs in cleanup)
                pass

    def identity(self) -> dict[str, str]:
        if self._identity is not None:
            return dict(self._identity)
        return {"manufacturer": "", "model": type(self).__name__, "serial": "", "firmware": ""}

    # ------------------------------------------------------------------ I/O

    def write(self, command: str) -> None:
        """Send ``command``; with ``check_errors`` the error queue must then be empty."""
        inst = self._require()
        try:
            inst.write(command)
        except self._visa_errors as exc:
            raise self._fault(command, exc) from exc
        if self.check_errors:
            self._check_error_queue(command)

    def query(self, command: str) -> str:
        """Send ``command`` and return the answer, stripped."""
        inst = self._require()
        try:
            return inst.query(command).strip()
        except self._visa_errors as exc:
            raise self._fault(command, exc) from exc

    def query_float(self, command: str) -> float:
        """Query a number; a non-numeric answer is an :class:`InstrumentError`."""
        text = self.query(command)
        try:
            return float(text)
        except ValueError:
            raise InstrumentError(
                f"role {self.role!r} ({self.resource}): {command!r} answered {text!r}, expected a "
                f"number; check the command dialect of this instrument"
            ) from None

    def clear_errors(self, limit: int = 32) -> list[str]:
        """Read the error queue until it reports no error; returns what was queued."""
        found: list[str] = []
        for _ in range(limit):
            reply = self.query(self.error_query)
            if not reply or _error_code(reply) == 0:
                break
            found.append(reply)
        return found

    # ------------------------------------------------------------------ helpers

    def _require(self) -> Any:
        inst = self._inst
        if inst is None:
            raise InstrumentError(
                f"role {self.role!r} ({self.resource}): instrument is not connected; call "
                f"connect() first (the engine does this before the first step)"
            )
        return inst

    def _check_error_queue(self, command: str) -> None:
        reply = self.query(self.error_query)
        if _error_code(reply) != 0:
            raise InstrumentError(
                f"role {self.role!r} ({self.resource}): instrument reported {reply!r} after "
                f"{command!r}; check the value range and the command for this instrument"
            )

    def _fault(self, command: str, exc: BaseException) -> InstrumentError:
        text = f"{type(exc).__name__}: {exc}"
        if "TMO" in text or "timeout" in text.lower():
            text += (
                f" (no answer within {self.timeout_ms} ms: the instrument is hung, off, or does "
                f"not know this command; raise settings.timeout_ms if it is only slow)"
            )
        return InstrumentError(f"role {self.role!r} ({self.resource}): {command!r} failed: {text}")

    @staticmethod
    def number(value: Any) -> str:
        """Format a numeric argument for a command (``5``, ``"5e-3"`` and ``0.005`` all work)."""
        if isinstance(value, bool):
            raise InstrumentError(f"expected a number, got the boolean {value!r}")
        try:
            return repr(float(value))
        except (TypeError, ValueError):
            raise InstrumentError(f"expected a number, got {value!r}") from None


def parse_idn(reply: str) -> dict[str, str]:
    """``"Maker,Model,Serial,Firmware"`` -> identity dict (missing fields are empty strings)."""
    parts = [p.strip() for p in reply.split(",")]
    parts += [""] * (4 - len(parts))
    return {
        "manufacturer": parts[0],
        "model": parts[1],
        "serial": parts[2],
        "firmware": ",".join(parts[3:]).strip(","),
    }


def _error_code(reply: str) -> int:
    head = reply.split(",", 1)[0].strip().strip('"')
    try:
        return int(float(head))
    except ValueError:
        return 0 if "no error" in reply.lower() else -1


class ScpiDmm(ScpiInstrument):
    """``scpi.dmm``: a generic SCPI digital multimeter (Keysight/Keithley/R&S dialect)."""

    CMD_DC_VOLTAGE = "MEAS:VOLT:DC?"
    CMD_AC_VOLTAGE = "MEAS:VOLT:AC?"
    CMD_DC_CURRENT = "MEAS:CURR:DC?"
    CMD_AC_CURRENT = "MEAS:CURR:AC?"
    CMD_RESISTANCE = "MEAS:RES?"
    CMD_FREQUENCY = "MEAS:FREQ?"
    CMD_CONFIGURE = "CONF:{function} {range}"
    CMD_NPLC = "SENS:{function}:NPLC {nplc}"
    CMD_READ = "READ?"

    def measure_dc_voltage(self) -> float:
        return self.query_float(self.CMD_DC_VOLTAGE)

    def measure_ac_voltage(self) -> float:
        return self.query_float(self.CMD_AC_VOLTAGE)

    def measure_dc_current(self) -> float:
        return self.query_float(self.CMD_DC_CURRENT)

    def measure_ac_current(self) -> float:
        return self.query_float(self.CMD_AC_CURRENT)

    def measure_resistance(self) -> float:
        return self.query_float(self.CMD_RESISTANCE)

    def measure_frequency(self) -> float:
        return self.query_float(self.CMD_FREQUENCY)

    def configure(self, function: str = "VOLT:DC", range: Any = "AUTO") -> None:  # noqa: A002
        """Select the measurement function and range (``range`` a number or ``AUTO``/``DEF``)."""
        rng = range if isinstance(range, str) else self.number(range)
        self.write(self.CMD_CONFIGURE.format(function=function, range=rng))

    def set_nplc(self, nplc: float, function: str = "VOLT:DC") -> None:
        """Integration time in power-line cycles (speed against noise)."""
        self.write(self.CMD_NPLC.format(function=function, nplc=self.number(nplc)))

    def read(self) -> float:
        """Trigger and read with the configured function (after :meth:`configure`)."""
        return self.query_float(self.CMD_READ)


class ScpiPsu(ScpiInstrument):
    """``scpi.psu``: a generic single-output SCPI power supply."""

    CMD_VOLTAGE = "VOLT {}"
    CMD_CURRENT_LIMIT = "CURR {}"
    CMD_OUTPUT = "OUTP {}"
    CMD_OUTPUT_QUERY = "OUTP?"
    CMD_MEAS_VOLTAGE = "MEAS:VOLT?"
    CMD_MEAS_CURRENT = "MEAS:CURR?"

    def set_voltage(self, volts: float) -> None:
        self.write(self.CMD_VOLTAGE.format(self.number(volts)))

    def set_current_limit(self, amps: float) -> None:
        self.write(self.CMD_CURRENT_LIMIT.format(self.number(amps)))

    def output_on(self) -> None:
        self.write(self.CMD_OUTPUT.format(1))

    def output_off(self) -> None:
        self.write(self.CMD_OUTPUT.format(0))

    def output_state(self) -> bool:
        """Whether the output is enabled (``1``/``ON`` -> True)."""
        return self.query(self.CMD_OUTPUT_QUERY).upper() in ("1", "ON")

    def measure_voltage(self) -> float:
        return self.query_float(self.CMD_MEAS_VOLTAGE)

    def measure_current(self) -> float:
        return self.query_float(self.CMD_MEAS_CURRENT)


class ScpiEload(ScpiInstrument):
    """``scpi.eload``: a generic SCPI DC electronic load in constant-current mode."""

    CMD_MODE = "FUNC {}"
    CMD_CURRENT = "CURR {}"
    CMD_INPUT = "INP {}"
    CMD_INPUT_QUERY = "INP?"
    CMD_MEAS_VOLTAGE = "MEAS:VOLT?"
    CMD_MEAS_CURRENT = "MEAS:CURR?"
    CMD_MEAS_POWER = "MEAS:POW?"

    def set_mode(self, mode: str = "CURR") -> None:
        """``CURR`` (constant current), ``VOLT``, ``RES`` or ``POW``."""
        self.write(self.CMD_MODE.format(mode))

    def set_current(self, amps: float) -> None:
        self.write(self.CMD_CURRENT.format(self.number(amps)))

    def input_on(self) -> None:
        self.write(self.CMD_INPUT.format(1))

    def input_off(self) -> None:
        self.write(self.CMD_INPUT.format(0))

    def input_state(self) -> bool:
        return self.query(self.CMD_INPUT_QUERY).upper() in ("1", "ON")

    def measure_voltage(self) -> float:
        return self.query_float(self.CMD_MEAS_VOLTAGE)

    def measure_current(self) -> float:
        return self.query_float(self.CMD_MEAS_CURRENT)

    def measure_power(self) -> float:
        return self.query_float(self.CMD_MEAS_POWER)


class ScpiPsuMulti(ScpiInstrument):
    """``scpi.psu_multi``: a multi-output SCPI power supply addressed with channel lists
    (``VOLT 5,(@2)``, ``MEAS:VOLT? (@2)``; Keysight E36300-style).

    Every method takes ``channel`` (1 by default); in a sequence give it in ``args:`` and it is
    recorded in the ``instrument_channel`` column of the measurements it takes.
    """

    CMD_VOLTAGE = "VOLT {value},(@{channel})"
    CMD_CURRENT_LIMIT = "CURR {value},(@{channel})"
    CMD_OUTPUT = "OUTP {value},(@{channel})"
    CMD_OUTPUT_QUERY = "OUTP? (@{channel})"
    CMD_MEAS_VOLTAGE = "MEAS:VOLT? (@{channel})"
    CMD_MEAS_CURRENT = "MEAS:CURR? (@{channel})"

    def _channel(self, channel: Any) -> int:
        if isinstance(channel, bool) or not isinstance(channel, (int, str)) or not str(channel).isdigit():
            raise InstrumentError(f"role {self.role!r}: channel must be a positive whole number, got {channel!r}")
        return int(channel)

    def set_voltage(self, volts: float, channel: int = 1) -> None:
        self.write(self.CMD_VOLTAGE.format(value=self.number(volts), channel=self._channel(channel)))

    def set_current_limit(self, amps: float, channel: int = 1) -> None:
        self.write(self.CMD_CURRENT_LIMIT.format(value=self.number(amps), channel=self._channel(channel)))

    def output_on(self, channel: int = 1) -> None:
        self.write(self.CMD_OUTPUT.format(value=1, channel=self._channel(channel)))

    def output_off(self, channel: int = 1) -> None:
        self.write(self.CMD_OUTPUT.format(value=0, channel=self._channel(channel)))

    def output_state(self, channel: int = 1) -> bool:
        return self.query(self.CMD_OUTPUT_QUERY.format(channel=self._channel(channel))).upper() in ("1", "ON")

    def measure_voltage(self, channel: int = 1) -> float:
        return self.query_float(self.CMD_MEAS_VOLTAGE.format(channel=self._channel(channel)))

    def measure_current(self, channel: int = 1) -> float:
        return self.query_float(self.CMD_MEAS_CURRENT.format(channel=self._channel(channel)))


class ScpiScope(ScpiInstrument):
    """``scpi.scope``: an oscilloscope with ASCII waveform transfer.

    :meth:`fetch_waveform` returns the channel's samples as a list of floats; measured in a
    sequence (``measure: ripple_wave, from: scope.fetch_waveform, args: {channel: 1}``) the array
    goes to the channel store and the measurement row holds its ``channel://`` URI.
    """

    CMD_WAVEFORM = "WAV:DATA? CHAN{channel}"
    CMD_X_INCREMENT = "WAV:XINC? CHAN{channel}"
    CMD_TIMEBASE = "TIM:SCAL {}"
    CMD_VPP = "MEAS:VPP? CHAN{channel}"
    CMD_FREQUENCY = "MEAS:FREQ? CHAN{channel}"

    def set_timebase(self, seconds_per_div: float) -> None:
        self.write(self.CMD_TIMEBASE.format(self.number(seconds_per_div)))

    def fetch_waveform(self, channel: int = 1) -> list[float]:
        """The samples of ``channel``; a reply that is not all numbers is an InstrumentError."""
        command = self.CMD_WAVEFORM.format(channel=int(channel))
        text = self.query(command)
        try:
            values = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            bad = next(x for x in text.split(",") if not _is_number(x))
            raise InstrumentError(
                f"role {self.role!r} ({self.resource}): {command!r} returned {bad.strip()!r} among the samples; "
                f"the channel is overloaded or not a waveform (check its vertical scale)") from None
        if not values:
            raise InstrumentError(f"role {self.role!r} ({self.resource}): {command!r} returned no samples")
        return values

    def sample_interval(self, channel: int = 1) -> float:
        """Seconds between two samples of the last acquisition."""
        return self.query_float(self.CMD_X_INCREMENT.format(channel=int(channel)))

    def measure_vpp(self, channel: int = 1) -> float:
        return self.query_float(self.CMD_VPP.format(channel=int(channel)))

    def measure_frequency(self, channel: int = 1) -> float:
        return self.query_float(self.CMD_FREQUENCY.format(channel=int(channel)))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
