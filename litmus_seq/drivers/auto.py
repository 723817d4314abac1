"""``driver: auto``: the driver is chosen from what the instrument answers to ``*IDN?``.

When the role connects, its resource is opened through pyvisa (the station's ``visa_library``),
asked ``*IDN?`` and closed again; the reply goes to the ``litmus_seq_identify_driver(idn,
resource)`` hook (first non-``None`` answer wins). The built-in generic SCPI drivers answer
``trylast`` from keywords in the model field, so a vendor plugin that knows the exact model wins.
The chosen name is recorded as the role's driver on the run. Preflight cannot check an auto
role's methods (its class is not known before it answers); a method its driver lacks ends the
step ``errored`` with the driver named.
"""

from __future__ import annotations

from typing import Any

from litmus_seq.errors import InstrumentError

__all__ = ["AUTO", "generic_driver_for", "identify"]

#: The station's ``driver:`` value asking for identification.
AUTO = "auto"

#: Keywords (upper case) in the model field -> the generic driver for it.
_GENERIC: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("scpi.scope", ("SCOPE", "DSO", "MSO", "OSCILLOSCOPE")),
    ("scpi.psu_multi", ("PSU-M", "MULTI-CHANNEL", "3CH", "E3631", "E36312", "2230")),
    ("scpi.dmm", ("DMM", "MULTIMETER", "34461", "34465", "34470")),
    ("scpi.psu", ("PSU", "POWER SUPPLY", "E36")),
    ("scpi.eload", ("EL-", "LOAD")),
)


def generic_driver_for(idn: str) -> str | None:
    """The generic driver whose keyword appears in the model field of ``idn`` (or None)."""
    parts = [p.strip() for p in idn.split(",")]
    model = (parts[1] if len(parts) > 1 else parts[0]).upper()
    for name, keywords in _GENERIC:
        if any(k in model for k in keywords):
            return name
    return None


def identify(session: Any, role: str) -> str:
    """Open ``role``'s resource, read ``*IDN?``, ask the plugins; the driver name (cached)."""
    names: dict[str, str] = session.__dict__.setdefault("auto_drivers", {})
    if role in names:
        return names[role]
    cfg = session.station.instruments[role]
    from litmus_seq.drivers import visa

    library = session._visa_library()
    timeout = int(cfg.settings.get("timeout_ms", 2000)) if isinstance(cfg.settings, dict) else 2000
    try:
        inst = visa.resource_manager(library).open_resource(cfg.resource, timeout=timeout,
                                                            read_termination="\n", write_termination="\n")
        try:
            idn = str(inst.query("*IDN?")).strip()
        finally:
            inst.close()
    except visa.VISA_ERRORS as exc:
        raise InstrumentError(f"role {role!r} (driver: auto): cannot read *IDN? from {cfg.resource!r}: "
                              f"{type(exc).__name__}: {exc}") from exc
    try:
        name = session.pm.hook.litmus_seq_identify_driver(idn=idn, resource=cfg.resource)
    except Exception as exc:  # noqa: BLE001 - a plugin's fault, reported with the role
        raise InstrumentError(f"role {role!r} (driver: auto): a litmus_seq_identify_driver plugin failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    if not name:
        raise InstrumentError(f"role {role!r} (driver: auto): no plugin knows the instrument answering "
                              f"{idn!r} at {cfg.resource!r}; name its driver in the station file "
                              f"(`litmus-seq plugins` lists them) or install its vendor plugin")
    names[role] = str(name)
    return names[role]
