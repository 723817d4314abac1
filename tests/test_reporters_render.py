"""The one rendering of a failed limit (litmus_seq/reporters/render.py), from events and rows."""

from __future__ import annotations

import pytest

from litmus_seq.limits import Limit, resolve_limit
from litmus_seq.reporters.render import failure_text, from_row, limit_text, measurement_failure


def event(value: object, limit: dict[str, object] | None, outcome: str, units: str | None = "V") -> dict[str, object]:
    """A measurement as the engine emits it, judged by the real limit code."""
    num = value if isinstance(value, float) else None
    text = None if num is not None or value is None else str(value)
    return {"name": "rail", "value": num, "text": text, "units": units, "outcome": outcome, "limit": limit}


def spec_limit() -> dict[str, object]:
    limit = Limit(nominal=3.3, low=3.135, high=3.465, units="V")
    return resolve_limit(limit, source="spec", guardband_pct=10).as_dict()


def test_the_issue_example() -> None:
    lim = spec_limit()
    assert failure_text(event(3.52, lim, "failed")) == "3.52 V > high 3.4485 (spec 3.135–3.465, gb 10 %)"
    assert failure_text(event(3.1, lim, "failed")) == "3.1 V < low 3.1515 (spec 3.135–3.465, gb 10 %)"
    assert limit_text(lim) == "3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10 %)"


@pytest.mark.parametrize(("limit", "value", "expected"), [
    ({"low": 3.1, "high": 3.5}, 2.0, "rail = 2.0 V < low 3.1"),
    ({"high": 0.05}, 0.07, "rail = 0.07 V > high 0.05"),
    ({"low": 1.0, "high": 2.0, "comparison": "GTLT"}, 2.0, "rail = 2.0 V ≥ high 2"),
    ({"low": 1.0, "high": 2.0, "comparison": "LTGT"}, 1.5, "rail = 1.5 V inside 1–2, must be outside"),
    ({"equals": "1.4.2"}, "1.4.1", "rail = '1.4.1' != expected '1.4.2'"),
    ({"matches": "^FW-"}, "XX-1", "rail = 'XX-1' does not match /^FW-/"),
])
def test_failures_read_the_same_from_events_and_rows(limit: dict[str, object], value: object, expected: str) -> None:
    resolved = resolve_limit(Limit(**limit), source="step")
    outcome, _ = resolved.check(value)
    assert outcome == "failed"
    m = event(value, resolved.as_dict(), outcome, units="V" if isinstance(value, float) else None)
    assert measurement_failure(m) == expected
    lim = resolved.as_dict()
    row = {"measurement_name": "rail", "measurement_value": m["value"], "measurement_text": m["text"],
           "measurement_units": m["units"], "measurement_outcome": outcome,
           **{f"limit_{k}": (str(v) if k == "equals" and v is not None else v) for k, v in lim.items()}}
    assert measurement_failure(from_row(row)) == expected


def test_nothing_missing_is_ever_shown_as_none() -> None:
    assert measurement_failure(event(None, None, "errored")) == "rail: no value"
    assert measurement_failure(event("garbage", spec_limit(), "errored")) == (
        "rail = 'garbage' cannot be judged against 3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10 %)")
    assert measurement_failure(event(4.2, None, "failed", units=None)) == "rail = 4.2"
    one_sided = resolve_limit(Limit(low=1.0), source="step").as_dict()
    assert "None" not in limit_text(one_sided) and limit_text(one_sided) == "1 ≤ x"
    assert failure_text(event(0.5, one_sided, "failed")) == "0.5 V < low 1"
