"""The optional base class of instrument drivers.

The driver contract is duck-typed (DESIGN §4): the engine only needs ``cls(resource=..., settings=...)``,
``connect()``, ``close()``, ``identity()`` and the methods sequences call. Subclassing :class:`Driver`
is a convenience for plugin authors: it stores the constructor arguments, gives a harmless
``connect``/``close`` and an ``identity`` that at least names the role, so a new driver only has to
add its instrument methods.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Driver", "IDENTITY_KEYS", "instrument_channel", "is_waveform"]

#: The keys of :meth:`Driver.identity`; they become traceability columns on every measurement.
IDENTITY_KEYS: tuple[str, ...] = ("manufacturer", "model", "serial", "firmware")


class Driver:
    """Base class for instrument drivers (optional; any class with the same methods works).

    ``settings`` is the station's ``settings:`` mapping plus what the engine adds: ``role`` (the
    station role name, for error messages), ``mock`` (the role's ``mock:`` mapping or ``None``) and
    ``visa_library`` (absolute, resolved). Drivers must ignore keys they do not know, because the
    engine and later versions may add more.
    """

    #: A pydantic model of the station's ``settings:`` (see :mod:`litmus_seq.drivers.options`):
    #: checked by ``validate``, described in the station schema, parsed into :attr:`options`.
    options_model: ClassVar[Any] = None

    def __init__(self, resource: str | None = None, settings: dict[str, Any] | None = None) -> None:
        from litmus_seq.drivers.options import parse_options

        self.resource = resource
        self.settings: dict[str, Any] = dict(settings or {})
        self.role: str = str(self.settings.get("role") or type(self).__name__)
        #: the validated settings (an ``options_model`` instance), or None without a model
        self.options: Any = parse_options(type(self), self.settings, self.role)

    def connect(self) -> None:
        """Open the connection. Called once, before any step; raise InstrumentError on failure."""

    def close(self) -> None:
        """Release the instrument. Called once at the end, also after failures; must not raise."""

    def identity(self) -> dict[str, str]:
        """Manufacturer, model, serial and firmware, stamped on every measurement taken."""
        return {"manufacturer": "", "model": type(self).__name__, "serial": "", "firmware": ""}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} role={self.role!r} resource={self.resource!r}>"


def instrument_channel(declared: str | None, args: dict[str, Any]) -> str | None:
    """The ``instrument_channel`` of a measurement: the step's ``channel:``, else the ``channel``
    argument the driver method was called with (a multi-channel instrument)."""
    if declared is not None:
        return declared
    channel = args.get("channel") if args else None
    return None if channel is None else str(channel)


def is_waveform(value: Any) -> bool:
    """A driver's reading that is an array of numbers (a waveform), kept in the channel store."""
    return (isinstance(value, (list, tuple)) and len(value) > 1
            and all(type(v) is float or type(v) is int for v in value))
