"""The calibration gate: only calibrated instruments take production measurements.

Before anything is touched (``run``'s preflight, exit 4), every role whose ``calibration.due``
in the station file is past blocks the run, one line per role with its due date and
certificate. ``--allow-expired-cal`` (or ``allow_expired_cal: true`` on the role, for engineering
benches) lets it run; the exception is then recorded on the run row
(``step_instruments_cal_exception``) and on every measurement the role takes
(``instrument_cal_exception``). A due date within ``calibration_warn_days`` (station file,
default :data:`DEFAULT_WARN_DAYS`) is a warning.

A driver may also report calibration (``calibration() -> {"due": date|str, "certificate": str}``,
e.g. read from the instrument), which can only be known once it is connected. The station file
wins where both exist (a disagreement is a warning); an expired date that only the instrument
reports ends the run ``errored`` before any step, unless allowed. Mocked roles are not gated:
they take no real measurement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from litmus_seq.errors import InstrumentError, Location, Problem

__all__ = ["DEFAULT_WARN_DAYS", "CalStatus", "driver_calibration", "gate", "status"]

#: Days before ``calibration.due`` from which a run warns.
DEFAULT_WARN_DAYS = 30

_FIX = ("recalibrate the instrument and update calibration in the station file, or run with "
        "--allow-expired-cal (engineering benches: allow_expired_cal: true on the role)")


@dataclass(frozen=True, slots=True)
class CalStatus:
    """A role's calibration as judged today."""

    due: dt.date | None
    certificate: str | None
    source: str | None  # station | instrument
    expired: bool
    days_left: int | None

    def describe(self) -> str:
        cert = f"certificate {self.certificate}" if self.certificate else "no certificate"
        by = " (reported by the instrument)" if self.source == "instrument" else ""
        return f"{self.due.isoformat() if self.due else '?'} ({cert}){by}"


def status(due: Any, certificate: Any, source: str | None, today: dt.date | None = None) -> CalStatus:
    """Judge one due date (a ``date`` or an ISO string; anything else counts as unknown)."""
    today = today or dt.date.today()
    when = _date(due)
    left = None if when is None else (when - today).days
    cert = None if certificate in (None, "") else str(certificate)
    return CalStatus(when, cert, source if when or cert else None, left is not None and left < 0, left)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def _gated(role: str, inst: Any, mock_roles: Any) -> bool:
    return role not in mock_roles and inst.driver != "mock"


def _allowed_by(inst: Any, allow_all: bool) -> str | None:
    if allow_all:
        return "--allow-expired-cal"
    if getattr(inst, "allow_expired_cal", False):
        return "allow_expired_cal on the role"
    return None


def warn_days(station: Any) -> int:
    value = getattr(station, "calibration_warn_days", None)
    return DEFAULT_WARN_DAYS if value is None else int(value)


def gate(station: Any, doc: Any, *, allow_all: bool = False, mock_roles: Any = (),
         today: dt.date | None = None) -> tuple[list[Problem], list[str]]:
    """Problems (expired, not allowed: the run must not start) and warnings, from the station file."""
    problems: list[Problem] = []
    warnings: list[str] = []
    window = warn_days(station)
    for role, inst in getattr(station, "instruments", {}).items():
        cal = inst.calibration
        if cal is None or not _gated(role, inst, mock_roles):
            continue
        st = status(cal.due, cal.certificate, "station", today)
        if st.expired:
            allowed = _allowed_by(inst, allow_all)
            if allowed is None:
                where = doc.locate(("instruments", role, "calibration", "due")) if doc is not None else Location(
                    f"station {getattr(station, 'id', '?')}")
                problems.append(Problem(where, f"role {role!r}: calibration expired on {st.describe()}; {_FIX}",
                                        f"instruments.{role}.calibration.due"))
            else:
                warnings.append(f"role {role!r}: calibration expired on {st.describe()}; running anyway "
                                f"({allowed}), recorded on the run and its measurements")
        elif st.days_left is not None and st.days_left <= window:
            warnings.append(f"role {role!r}: calibration due on {st.describe()}, in {st.days_left} "
                            f"day{'' if st.days_left == 1 else 's'}")
    return problems, warnings


def driver_calibration(role: str, inst: Any, driver: Any, mocked: bool, *, allow_all: bool,
                       window: int, today: dt.date | None = None) -> tuple[dict[str, Any], list[str]]:
    """The calibration recorded for a connected role, and warnings; raises if it must not run.

    The station file wins over the driver's ``calibration()``; a disagreement is a warning.
    """
    warnings: list[str] = []
    cal = inst.calibration
    station = status(cal.due, cal.certificate, "station", today) if cal is not None else None
    reported = None
    fn = getattr(driver, "calibration", None)
    if callable(fn) and not mocked:
        try:
            data = fn() or {}
        except Exception as exc:  # noqa: BLE001 - the station file may still say enough
            data = {}
            warnings.append(f"role {role!r}: reading calibration from the driver failed: "
                            f"{type(exc).__name__}: {exc}")
        if isinstance(data, dict) and (data.get("due") or data.get("certificate")):
            reported = status(data.get("due"), data.get("certificate"), "instrument", today)
    chosen = station if station is not None and station.source else reported
    if station is not None and station.source and reported is not None and (
            (station.due, station.certificate) != (reported.due, reported.certificate)):
        warnings.append(f"role {role!r}: the station file says calibration due {station.describe()}, the "
                        f"instrument says {reported.describe()}; using the station file's")
    exception = None
    if chosen is not None and chosen.expired and not mocked:
        allowed = _allowed_by(inst, allow_all)
        if allowed is None:
            raise InstrumentError(f"role {role!r}: calibration expired on {chosen.describe()}; {_FIX}")
        exception = f"calibration expired on {chosen.describe()}; allowed by {allowed}"
    elif chosen is not None and chosen.source == "instrument" and chosen.days_left is not None \
            and chosen.days_left <= window and not mocked:
        warnings.append(f"role {role!r}: calibration due on {chosen.describe()}, in {chosen.days_left} days")
    record = {
        "due": chosen.due.isoformat() if chosen and chosen.due else None,
        "certificate": chosen.certificate if chosen else None,
        "source": chosen.source if chosen else None,
        "exception": exception,
    }
    return record, warnings
