"""Identity checks: ``expect_idn:`` on a station role, matched against what the instrument says.

Two forms (station file, per role)::

    expect_idn: "KEYSIGHT,34465A,.*"          # a regular expression on the whole *IDN? reply
    expect_idn: {model: "3446[05]A", serial: "MY5\\d+"}   # one regular expression per field

Every pattern must match the whole text (``re.fullmatch``): ``34465A`` does not accept
``34465AX``. A driver that is not SCPI has no ``*IDN?`` reply of its own; its identity fields
joined by commas (``manufacturer,model,serial,firmware``) stand in for it. A mocked role is not
checked (its identity is the mock's). The decision is recorded on the run (the
``fixture.instrument_connected`` event's ``identity_check`` and the ``step_instruments_idn_check``
column); a mismatch ends the run ``errored`` before any step, naming the role, the expected and
the actual identity.
"""

from __future__ import annotations

import re
from typing import Any

from litmus_seq.drivers.base import IDENTITY_KEYS
from litmus_seq.errors import InstrumentError, Problem

__all__ = ["MATCHED", "NOT_CHECKED_MOCK", "check_identity", "expect_idn_problems", "idn_text"]

MATCHED = "matched"
NOT_CHECKED_MOCK = "not checked (mocked)"


def idn_text(driver: Any, identity: dict[str, Any]) -> str:
    """The instrument's ``*IDN?`` reply, or the identity fields joined as one."""
    raw = getattr(driver, "idn", None)
    if isinstance(raw, str) and raw:
        return raw
    return ",".join(str(identity.get(k) or "") for k in IDENTITY_KEYS)


def check_identity(role: str, expect: Any, driver: Any, identity: dict[str, Any], mocked: bool) -> str | None:
    """The decision to record (``None``: nothing expected); raises on a mismatch."""
    if expect is None:
        return None
    if mocked:
        return NOT_CHECKED_MOCK
    if isinstance(expect, str):
        actual = idn_text(driver, identity)
        if re.fullmatch(expect, actual):
            return MATCHED
        raise InstrumentError(
            f"role {role!r}: identity mismatch: expected *IDN? matching {expect!r}, the instrument "
            f"says {actual!r}; connect the right instrument or fix expect_idn in the station file"
        )
    wrong = [
        f"{field} {pattern!r} (is {str(identity.get(field) or '')!r})"
        for field, pattern in expect.items()
        if not re.fullmatch(pattern, str(identity.get(field) or ""))
    ]
    if not wrong:
        return MATCHED
    actual = ", ".join(f"{k}={identity.get(k) or ''!s}" for k in IDENTITY_KEYS)
    raise InstrumentError(
        f"role {role!r}: identity mismatch: expected {'; '.join(wrong)}; the instrument says "
        f"{actual}; connect the right instrument or fix expect_idn in the station file"
    )


def expect_idn_problems(station: Any, doc: Any) -> list[Problem]:
    """Unknown identity fields and patterns that are not regular expressions, at their line."""
    from litmus_seq.suggest import did_you_mean

    problems: list[Problem] = []
    for role, inst in getattr(station, "instruments", {}).items():
        expect = getattr(inst, "expect_idn", None)
        if expect is None:
            continue
        items = [((), expect)] if isinstance(expect, str) else [((k,), v) for k, v in expect.items()]
        for sub, pattern in items:
            path = ("instruments", role, "expect_idn", *sub)
            shown = ".".join(str(p) for p in path)
            if sub and sub[0] not in IDENTITY_KEYS:
                problems.append(Problem(doc.locate(path, key=True), (
                    f"unknown identity field {sub[0]!r}{did_you_mean(sub[0], IDENTITY_KEYS)}; "
                    f"fields: {', '.join(IDENTITY_KEYS)}"), shown))
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(Problem(doc.locate(path), (
                    f"{pattern!r} is not a regular expression ({exc}); escape special characters "
                    f"with a backslash, e.g. 'MY\\\\d+'"), shown))
    return problems
