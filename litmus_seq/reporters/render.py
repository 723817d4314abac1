"""One rendering of a judged measurement, shared by every place a person reads one.

The console (step lines and the end summary), JUnit, ``show``, ``--publish`` and ``--pubdir`` all
say why a measurement did not pass with :func:`failure_text`, e.g.
``3.52 V > high 3.4485 (spec 3.135–3.465, gb 10 %)``, and name it with :func:`measurement_failure`
(``rail = 3.52 V > high 3.4485 (...)``). A missing part is left out, never shown as ``None``.

The input is a measurement as an event carries it (``value``, ``text``, ``units``, ``outcome``,
``limit`` dict) or as a parquet row carries it (``measurement_*`` and ``limit_*`` columns): see
:func:`from_row`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["failure_text", "from_row", "limit_text", "measurement_failure", "number"]

_INSIDE_STRICT = {  # comparator -> (low bound excluded, high bound excluded)
    "GELE": (False, False), "GTLT": (True, True), "GELT": (False, True), "GTLE": (True, False),
    "GE": (False, False), "GT": (True, False), "LE": (False, False), "LT": (False, True),
}
_OUTSIDE = ("LTGT", "LEGE", "LEGT", "LTGE")
_LIMIT_KEYS = ("comparator", "low", "high", "equals", "pattern", "spec_low", "spec_high", "guardband_pct",
               "marginal_low", "marginal_high", "units")


def number(x: Any) -> str:
    """``3.4485``, ``10``, ``1e-06``: short, without float noise from guardband arithmetic."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return str(x)
        if x == int(x) and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.10g}"
    return str(x)


def _literal(v: Any) -> str:
    return repr(v) if isinstance(v, str) else number(v)


def _reading(x: Any) -> str:
    """A reading as the instrument gave it (``2.0`` stays ``2.0``), float noise hidden."""
    if isinstance(x, float) and math.isfinite(x):
        short = repr(x)
        return short if len(short) <= 12 else f"{x:.10g}"
    return number(x)


def _shown(value: Any, text: Any) -> str:
    if value is not None:
        return _reading(value)
    if text is None:
        return ""
    if text in ("true", "false"):
        return str(text)
    return repr(str(text))


def _extras(lim: Mapping[str, Any]) -> str:
    """``(spec 3.135–3.465, gb 10 %)`` when the judged band is not the spec band itself."""
    lo, hi, gb = lim.get("spec_low"), lim.get("spec_high"), lim.get("guardband_pct")
    if not gb and lo == lim.get("low") and hi == lim.get("high"):
        return ""
    parts = []
    if lo is not None and hi is not None:
        parts.append(f"spec {number(lo)}–{number(hi)}")
    elif lo is not None:
        parts.append(f"spec ≥ {number(lo)}")
    elif hi is not None:
        parts.append(f"spec ≤ {number(hi)}")
    if gb:
        parts.append(f"gb {number(gb)} %")
    return f" ({', '.join(parts)})" if parts else ""


def limit_text(lim: Mapping[str, Any] | None) -> str:
    """The limit itself: ``3.1 ≤ x ≤ 3.5 V``, ``x == '1.4.2'``; ``""`` for no limit."""
    if not lim:
        return ""
    c = lim.get("comparator")
    lo, hi = lim.get("low"), lim.get("high")
    units = f" {lim['units']}" if lim.get("units") else ""
    if c in _INSIDE_STRICT:
        lo_x, hi_x = _INSIDE_STRICT[c]
        left = f"{number(lo)} {'<' if lo_x else '≤'} " if lo is not None else ""
        right = f" {'<' if hi_x else '≤'} {number(hi)}" if hi is not None else ""
        text = f"{left}x{right}{units}"
    elif c in _OUTSIDE:
        text = f"x outside {number(lo)}–{number(hi)}{units}"
    elif c in ("EQ", "NE"):
        eq = lim.get("equals")
        text = f"x {'==' if c == 'EQ' else '!='} {_literal(eq)}" + ("" if isinstance(eq, str) else units)
    elif c == "MATCH":
        text = f"x matches /{lim.get('pattern')}/"
    elif c == "LOG":
        return "log only"
    else:
        return ""
    return text + _extras(lim)


def failure_text(m: Mapping[str, Any]) -> str:
    """Why measurement ``m`` did not pass: ``3.52 V > high 3.4485 (spec 3.135–3.465, gb 10 %)``."""
    value, text = m.get("value"), m.get("text")
    lim: Mapping[str, Any] = m.get("limit") or {}
    units = m.get("units") or lim.get("units")
    shown = _shown(value, text)
    if not shown:
        return "no value" + (f" (limit {limit_text(lim)})" if lim else "")
    with_units = f"{shown} {units}" if units and value is not None else shown
    if m.get("outcome") == "errored":
        return f"{with_units} cannot be judged" + (f" against {limit_text(lim)}" if lim else "")
    c = lim.get("comparator")
    lo, hi = lim.get("low"), lim.get("high")
    v = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if c in _INSIDE_STRICT and v is not None:
        lo_x, hi_x = _INSIDE_STRICT[c]
        if hi is not None and (v > hi or (hi_x and v == hi)):
            return f"{with_units} {'>' if v > hi else '≥'} high {number(hi)}{_extras(lim)}"
        if lo is not None and (v < lo or (lo_x and v == lo)):
            return f"{with_units} {'<' if v < lo else '≤'} low {number(lo)}{_extras(lim)}"
    elif c in _OUTSIDE and v is not None:
        return f"{with_units} inside {number(lo)}–{number(hi)}, must be outside{_extras(lim)}"
    elif c == "EQ":
        eq = lim.get("equals")
        return f"{with_units} != expected {_literal(eq)}"
    elif c == "NE":
        eq = lim.get("equals")
        return f"{with_units} == excluded {_literal(eq)}"
    elif c == "MATCH":
        return f"{with_units} does not match /{lim.get('pattern')}/"
    return f"{with_units} outside {limit_text(lim)}" if lim else with_units


def measurement_failure(m: Mapping[str, Any]) -> str:
    """``rail = 3.52 V > high 3.4485 (spec 3.135–3.465, gb 10 %)`` (name and why)."""
    why = failure_text(m)
    return f"{m.get('name')}: {why}" if why.startswith("no value") else f"{m.get('name')} = {why}"


def from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A parquet measurement row as the mapping :func:`failure_text` reads."""
    limit = {k: row.get(f"limit_{k}") for k in _LIMIT_KEYS if k != "units"}
    if isinstance(limit.get("equals"), str) and limit.get("comparator") in ("EQ", "NE"):
        limit["equals"] = _typed_equals(limit["equals"], row)
    limit["units"] = row.get("measurement_units")
    has_limit = limit.get("comparator") is not None
    return {
        "name": row.get("measurement_name"),
        "value": row.get("measurement_value"),
        "text": row.get("measurement_text"),
        "units": row.get("measurement_units"),
        "outcome": row.get("measurement_outcome"),
        "limit": limit if has_limit else None,
    }


def _typed_equals(equals: str, row: Mapping[str, Any]) -> Any:
    """``limit_equals`` is stored as text; a numeric reading was compared with a number."""
    if row.get("measurement_value") is not None:
        try:
            return float(equals)
        except ValueError:
            return equals
    return equals
