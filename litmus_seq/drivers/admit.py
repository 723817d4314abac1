"""What happens between an instrument's ``connect()`` and the first step: the record of the
instrument that goes on the run and on its measurements (``fixture.instrument_connected``), its
identity check (:mod:`.identity`) and its calibration (:mod:`.calibration`).

An instrument that must not take measurements (identity mismatch, calibration expired according
to the instrument) is closed and not kept, but its record is still emitted, so the run shows
what was connected and why it was refused; then the refusal is raised and the run ends
``errored`` before any step.
"""

from __future__ import annotations

from typing import Any

from litmus_seq import events as ev
from litmus_seq.drivers.base import IDENTITY_KEYS
from litmus_seq.errors import LitmusError

__all__ = ["admit"]


def admit(session: Any, bus: Any, role: str, cfg: Any, driver: Any, identity: dict[str, Any],
          mocked: bool) -> dict[str, Any]:
    """The ``fixture.instrument_connected`` fields of a connected role; raises if it is refused."""
    from litmus_seq.drivers.calibration import driver_calibration, warn_days
    from litmus_seq.drivers.identity import check_identity

    info: dict[str, Any] = {
        "role": role,
        "driver": "mock" if mocked else getattr(session, "auto_drivers", {}).get(role, cfg.driver),
        "resource": cfg.resource,
        "identity": {k: identity.get(k) for k in IDENTITY_KEYS},
        "calibration": {"due": None, "certificate": None, "source": None, "exception": None},
        "mocked": mocked,
        "identity_check": None,
    }
    refusal: LitmusError | None = None
    try:
        info["calibration"], warnings = driver_calibration(
            role, cfg, driver, mocked, allow_all=bool(getattr(session, "allow_expired_cal", False)),
            window=warn_days(session.station))
    except LitmusError as exc:
        refusal, warnings = exc, []
        cal = cfg.calibration
        info["calibration"] = {"due": cal.due.isoformat() if cal and cal.due else None,
                               "certificate": cal.certificate if cal else None, "source": None,
                               "exception": str(exc)}
    for message in warnings:
        bus.emit(ev.WARNING, message=message, step_path=None)
    if refusal is None:
        try:
            info["identity_check"] = check_identity(role, getattr(cfg, "expect_idn", None), driver, identity, mocked)
        except LitmusError as exc:
            info["identity_check"] = f"mismatch: {exc}"
            refusal = exc
    if refusal is not None:
        session.instruments.pop(role, None)
        try:
            driver.close()
        except Exception:  # noqa: BLE001 - refusing it is what matters; close is best effort
            pass
        bus.emit(ev.INSTRUMENT_CONNECTED, **info)
        raise refusal
    return info
