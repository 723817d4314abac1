"""Preflight: before any hardware is touched, check that what a plan calls exists (exit 4).

Every role the plan calls is on the station, every method exists on its driver (or its mock),
every ``python:`` callable imports; ``--mock`` names real roles; no instrument is past its
calibration date (unless allowed). Problems are collected and
raised together as one :class:`~litmus_seq.errors.DriverError`, each at its file:line:col.
"""

from __future__ import annotations

from typing import Any

from litmus_seq.errors import DriverError, LitmusError, Location, Problem
from litmus_seq.plan import Plan
from litmus_seq.suggest import did_you_mean as _hint

__all__ = ["preflight"]


def preflight(plan: Plan, session: Any, station_doc: Any = None) -> list[str]:
    """Check ``plan`` against ``session``'s station, drivers, mocks and calibration dates;
    ``station_doc`` (the station's loader document) lets problems point at the station's lines.
    Returns the calibration warnings (due soon, or expired and allowed) for the operator."""
    from litmus_seq.run.executor import import_callable

    station = session.station
    problems: list[Problem] = []
    roles = set(station.instruments) if station is not None else set()
    called = [a for s in plan.steps for a in s.actions if a.role is not None]
    if station is None and called:
        names = ", ".join(sorted({a.role for a in called}))  # type: ignore[misc]
        raise DriverError(problems=[Problem(
            Location(plan.sequence_file),
            f"no station: the sequence calls instruments ({names}); give --station ID, or "
            "`station:` in the sequence or in litmus.yaml")])
    for role in sorted(session.mock_roles - roles):
        problems.append(Problem(Location(f"--mock {role}"), f"unknown role '{role}'" + _hint(role, roles)
                                + f"; the station's roles are: {', '.join(sorted(roles)) or '(none)'}"))
    bad_roles: set[str] = set()
    if station is not None and station_doc is not None:
        from litmus_seq.drivers.registry import station_driver_problems

        registry = session.driver_registry()
        driver_problems = station_driver_problems(station, station_doc, registry,
                                                  mock_roles=session.mock_roles, registry=registry)
        problems.extend(driver_problems)  # once, at the station's driver: line
        bad_roles = {p.path.split(".")[1] for p in driver_problems if p.path}
    warnings: list[str] = []
    if station is not None:
        from litmus_seq.drivers.calibration import gate

        cal_problems, warnings = gate(station, station_doc, allow_all=session.allow_expired_cal,
                                      mock_roles=session.mock_roles)
        problems.extend(cal_problems)
    seen: set[tuple[str | None, str | None, str | None]] = set()
    for step in plan.steps:
        for action in step.actions:
            key = (action.role, action.method, action.python)
            if key in seen:  # one report per distinct call; a 10,000-vector plan stays cheap
                continue
            seen.add(key)
            where = Location(action.file, action.line, action.column)
            if action.role is not None and action.role not in bad_roles:
                problem = _role_problem(session, action, roles)
                if problem is not None:
                    problems.append(Problem(where, problem))
            if action.python is not None:
                try:
                    import_callable(action.python, plan.root)
                except Exception as exc:
                    problems.append(Problem(where, f"python: {action.python}: cannot import "
                                            f"({type(exc).__name__}: {exc})"))
    if problems:
        raise DriverError(problems=problems)
    return warnings


def _role_problem(session: Any, action: Any, roles: set[str]) -> str | None:
    """What is wrong with ``role.method`` of ``action`` on the session's station, if anything."""
    role, method = action.role, action.method or ""
    if role not in roles:
        sid = getattr(session.station, "id", "<none>")
        return f"role '{role}' is not on station '{sid}'" + _hint(role, roles)
    if session.station.instruments[role].driver == "auto" and role not in session.mock_roles:
        return None  # its driver is known once it answers *IDN? (drivers/auto.py)
    try:
        cls, mocked = session.driver_class(role)
    except LitmusError as exc:
        return str(exc)
    cfg = session.station.instruments[role]
    if mocked:
        mock = cfg.mock or {}
        if method not in mock:
            return (f"{role}.{method}: the mock for role '{role}' has no method '{method}'"
                    + _hint(method, mock))
        return None
    if not callable(getattr(cls, method, None)):
        methods = [m for m in dir(cls) if not m.startswith("_")]
        return f"{role}.{method}: driver '{cfg.driver}' has no method '{method}'" + _hint(method, methods)
    return None
