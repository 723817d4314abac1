"""Limits: the YAML limit forms, guardband arithmetic, spec bands and judging a value.

(The pydantic :class:`Limit` is the user-facing form; :class:`ResolvedLimit` is what the plan and
the engine use: a frozen, pre-computed object whose ``check`` is cheap enough for the hot path.)

Resolution happens once, at plan time: every consistency rule (inverted bands, ``equals`` mixed
with bounds, a tolerance without a nominal, a guardband that inverts a band) is checked there so
that a bad limit stops the run before any instrument is touched. ``check`` then only compares.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from litmus_seq.errors import LimitError
from litmus_seq.outcomes import ERRORED, FAILED, PASSED

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.models import Spec

__all__ = [
    "Comparison",
    "Limit",
    "ResolvedLimit",
    "resolve_limit",
    "spec_band",
    "SpecChoice",
    "format_number",
    "INSIDE",
    "OUTSIDE",
    "ONE_SIDED_LOW",
    "ONE_SIDED_HIGH",
]

Comparison = Literal[
    "EQ", "NE", "GT", "GE", "LT", "LE", "GELE", "GTLT", "GELT", "GTLE",
    "LTGT", "LEGE", "LEGT", "LTGE", "LOG",
]


class Limit(BaseModel):
    """A limit as written in YAML (DESIGN §2.3). Same form in specs, steps and vectors."""

    # (the docstring is the JSON Schema description editors show.) defer_build: built on first
    # use, not at import (see litmus_seq.models); the models that contain a limit build its
    # schema into their own validator anyway.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    low: float | None = None
    high: float | None = None
    nominal: float | None = None
    tolerance: float | None = Field(None, ge=0, description="absolute, around nominal")
    tolerance_pct: float | None = Field(None, ge=0, description="percent of nominal")
    equals: Union[bool, int, float, str, None] = None
    matches: str | None = Field(None, description="regular expression (re.search)")
    comparison: Comparison | None = None
    units: str | None = None
    marginal_low: float | None = None
    marginal_high: float | None = None


# Two-sided comparators. The first two letters judge ``low``, the last two ``high``.
# Inside-band: pass when low (<|<=) value (<|<=) high.
INSIDE: dict[str, tuple[bool, bool]] = {  # name -> (low inclusive, high inclusive)
    "GELE": (True, True),
    "GTLT": (False, False),
    "GELT": (True, False),
    "GTLE": (False, True),
}
# Outside-band: pass when value is below low or above high; "LE"/"LT" say whether value == low
# still passes, "GE"/"GT" whether value == high does.
OUTSIDE: dict[str, tuple[bool, bool]] = {  # name -> (passes at low, passes at high)
    "LTGT": (False, False),
    "LEGE": (True, True),
    "LEGT": (True, False),
    "LTGE": (False, True),
}
ONE_SIDED_LOW = ("GT", "GE")  # judge against ``low``
ONE_SIDED_HIGH = ("LT", "LE")  # judge against ``high``
NUMERIC = frozenset((*INSIDE, *OUTSIDE, *ONE_SIDED_LOW, *ONE_SIDED_HIGH))

_PASS = (PASSED, False)
_PASS_MARGINAL = (PASSED, True)
_FAIL = (FAILED, False)
_ERROR = (ERRORED, False)

# The public fields of ResolvedLimit, in the order events and parquet columns list them.
_FIELDS = (
    "comparator", "low", "high", "nominal", "equals", "pattern", "units", "marginal_low",
    "marginal_high", "spec_low", "spec_high", "guardband_pct", "source", "characteristic_id",
    "spec_ref",
)


def _numeric_fn(comparator: str, low: float | None, high: float | None) -> Callable[[float], bool]:
    """A closure doing exactly one comparison chain: the hot path of every numeric check."""
    lo, hi = low, high
    if comparator == "GELE":
        return lambda v: lo <= v <= hi  # type: ignore[operator]
    if comparator == "GTLT":
        return lambda v: lo < v < hi  # type: ignore[operator]
    if comparator == "GELT":
        return lambda v: lo <= v < hi  # type: ignore[operator]
    if comparator == "GTLE":
        return lambda v: lo < v <= hi  # type: ignore[operator]
    if comparator == "LTGT":
        return lambda v: v < lo or v > hi  # type: ignore[operator]
    if comparator == "LEGE":
        return lambda v: v <= lo or v >= hi  # type: ignore[operator]
    if comparator == "LEGT":
        return lambda v: v <= lo or v > hi  # type: ignore[operator]
    if comparator == "LTGE":
        return lambda v: v < lo or v >= hi  # type: ignore[operator]
    if comparator == "GT":
        return lambda v: v > lo  # type: ignore[operator]
    if comparator == "GE":
        return lambda v: v >= lo  # type: ignore[operator]
    if comparator == "LT":
        return lambda v: v < hi  # type: ignore[operator]
    if comparator == "LE":
        return lambda v: v <= hi  # type: ignore[operator]
    raise LimitError(f"not a numeric comparison: {comparator}")  # pragma: no cover


def _as_number(value: object) -> float | None:
    """A reading as a float, or None when it cannot be judged numerically.

    Instruments answer strings ("3.30"), numpy scalars or Decimals; those convert. Booleans do
    not: ``True`` against ``3.1 <= x <= 3.5`` is a mistake in the sequence, not a reading.
    NaN cannot be judged either (every comparison with it is false, which would make an
    outside-band limit *pass*).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        try:
            f = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None
    if f != f:  # NaN
        return None
    return f


_TRUE_WORDS = frozenset(("true", "yes", "on", "1", "pass", "ok"))
_FALSE_WORDS = frozenset(("false", "no", "off", "0", "fail"))


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def _text(value: object) -> str:
    """Text form of a reading, the same one written to ``measurement_text``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class ResolvedLimit:
    """A limit after resolution (vector -> step -> spec) and guardband; what the engine judges.

    ``comparator`` is one of GELE ... LTGE, EQ, NE, GT, GE, LT, LE, MATCH, LOG. ``spec_low`` /
    ``spec_high`` are the spec band before guardband. ``source`` is vector | step | spec.

    Build it with :func:`resolve_limit` (which validates); constructing it directly is allowed
    for already-consistent values. The comparison closure and the dict form are computed once in
    ``__post_init__`` so ``check`` costs one closure call and ``as_dict`` nothing.
    """

    comparator: str
    low: float | None = None
    high: float | None = None
    nominal: float | None = None
    equals: bool | int | float | str | None = None
    pattern: str | None = None
    units: str | None = None
    marginal_low: float | None = None
    marginal_high: float | None = None
    spec_low: float | None = None
    spec_high: float | None = None
    guardband_pct: float | None = None
    source: str | None = None
    characteristic_id: str | None = None
    spec_ref: str | None = None
    _fn: Any = field(default=None, init=False, repr=False, compare=False)
    _regex: Any = field(default=None, init=False, repr=False, compare=False)
    _marginal: bool = field(default=False, init=False, repr=False, compare=False)
    _dict: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = self.comparator
        setter = object.__setattr__
        if c in NUMERIC:
            setter(self, "_fn", _numeric_fn(c, self.low, self.high))
            if self.marginal_low is not None or self.marginal_high is not None:
                setter(self, "_marginal", True)
        elif c == "MATCH":
            try:
                setter(self, "_regex", re.compile(self.pattern or ""))
            except re.error as exc:
                raise LimitError(f"matches: {self.pattern!r} is not a valid regular expression: {exc}") from None
        elif c not in ("EQ", "NE", "LOG"):
            raise LimitError(
                f"unknown comparison {c!r}: use one of GELE GTLT GELT GTLE LTGT LEGE LEGT LTGE "
                "EQ NE GT GE LT LE MATCH LOG"
            )
        setter(self, "_dict", {name: getattr(self, name) for name in _FIELDS})

    def check(self, value: object) -> tuple[str, bool]:
        """Judge ``value``: ``(outcome, marginal)`` with outcome ``passed`` | ``failed``.

        A value that cannot be judged against this limit (None, NaN, a non-numeric string
        against a numeric band, a non-boolean against a boolean ``equals``) is ``errored``:
        fail safe, never a silent pass.
        """
        fn = self._fn
        if fn is not None:
            t = type(value)
            if t is float or t is int:
                if value != value:  # NaN
                    return _ERROR
                v = value
            else:
                v = _as_number(value)
                if v is None:
                    return _ERROR
            if fn(v):
                if self._marginal:
                    mlo, mhi = self.marginal_low, self.marginal_high
                    if (mlo is not None and v < mlo) or (mhi is not None and v > mhi):  # type: ignore[operator]
                        return _PASS_MARGINAL
                return _PASS
            return _FAIL
        c = self.comparator
        if value is None:
            return _ERROR
        if c == "LOG":
            return _PASS
        if c == "MATCH":
            return _PASS if self._regex.search(_text(value)) is not None else _FAIL
        same = self._equal(value)
        if same is None:
            return _ERROR
        if c == "NE":
            same = not same
        return _PASS if same else _FAIL

    def _equal(self, value: object) -> bool | None:
        """``value == equals`` with the type of ``equals`` deciding; None = cannot compare."""
        expected = self.equals
        if isinstance(expected, bool):
            got = _as_bool(value)
            return None if got is None else got is expected
        if isinstance(expected, str):
            return _text(value) == expected
        if isinstance(expected, (int, float)):
            v = _as_number(value)
            return None if v is None else v == expected
        return None

    def as_dict(self) -> dict[str, object]:
        """Fields as a dict, computed once (shared by every event that uses this limit).

        Callers must not mutate it: it is the same object on every call.
        """
        return self._dict  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, object]:
        """The plan JSON form (DESIGN §3): low, high, equals, units, spec_low, spec_high,
        guardband_pct, source, with absent keys omitted."""
        d = self._dict
        return {
            k: d[k]
            for k in ("low", "high", "equals", "units", "spec_low", "spec_high", "guardband_pct", "source")
            if d[k] is not None
        }

    def describe(self) -> str:
        """One readable line: ``3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10%)``."""
        c = self.comparator
        units = f" {self.units}" if self.units else ""
        lo = format_number(self.low) if self.low is not None else None
        hi = format_number(self.high) if self.high is not None else None
        if c in INSIDE:
            li, hi_inc = INSIDE[c]
            text = f"{lo} {'≤' if li else '<'} x {'≤' if hi_inc else '<'} {hi}{units}"
        elif c in OUTSIDE:
            pl, ph = OUTSIDE[c]
            text = f"x {'≤' if pl else '<'} {lo} or x {'≥' if ph else '>'} {hi}{units}"
        elif c == "GT":
            text = f"x > {lo}{units}"
        elif c == "GE":
            text = f"x ≥ {lo}{units}"
        elif c == "LT":
            text = f"x < {hi}{units}"
        elif c == "LE":
            text = f"x ≤ {hi}{units}"
        elif c == "EQ":
            text = f"x == {_literal(self.equals)}{units}"
        elif c == "NE":
            text = f"x != {_literal(self.equals)}{units}"
        elif c == "MATCH":
            text = f"x matches /{self.pattern}/"
        else:
            text = f"log only{units}"
        extra = []
        if self.spec_low is not None and self.spec_high is not None:
            extra.append(f"spec {format_number(self.spec_low)}–{format_number(self.spec_high)}")
        elif self.spec_low is not None:
            extra.append(f"spec ≥ {format_number(self.spec_low)}")
        elif self.spec_high is not None:
            extra.append(f"spec ≤ {format_number(self.spec_high)}")
        if self.guardband_pct:
            extra.append(f"gb {format_number(self.guardband_pct)}%")
        if self.marginal_low is not None or self.marginal_high is not None:
            mlo = format_number(self.marginal_low) if self.marginal_low is not None else "-∞"
            mhi = format_number(self.marginal_high) if self.marginal_high is not None else "+∞"
            extra.append(f"marginal outside {mlo}–{mhi}")
        return f"{text} ({', '.join(extra)})" if extra else text


def _literal(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    return format_number(v)  # type: ignore[arg-type]


def format_number(x: float | int | None) -> str:
    """Short, exact-looking form of a limit value: float noise from guardband arithmetic hidden."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if math.isinf(x) or x != x:
        return str(x)
    text = f"{x:.10g}"
    return text


def _is_empty(limit: Limit) -> bool:
    """True for a limit that judges nothing (a spec that only has bands, or units only)."""
    return (
        limit.low is None
        and limit.high is None
        and limit.nominal is None
        and limit.equals is None
        and limit.matches is None
        and limit.comparison is None
    )


def resolve_limit(
    limit: Limit,
    *,
    source: str,
    guardband_pct: float = 0,
    spec_ref: str | None = None,
    characteristic_id: str | None = None,
    units: str | None = None,
) -> ResolvedLimit:
    """Validate ``limit``, derive its band, apply the guardband (spec limits only) and freeze it.

    ``units`` is a fallback used when the limit names none (e.g. the spec's or the action's).
    Raises :class:`LimitError` with a message saying what is wrong and how to fix it; callers
    add the file location.
    """
    low, high = limit.low, limit.high
    nominal = limit.nominal
    equals, pattern = limit.equals, limit.matches
    comparison = limit.comparison
    tol, tol_pct = limit.tolerance, limit.tolerance_pct

    # ---- form consistency -------------------------------------------------------------------
    if equals is not None:
        mixed = [k for k in ("low", "high", "nominal", "tolerance", "tolerance_pct", "matches",
                             "marginal_low", "marginal_high") if getattr(limit, k) is not None]
        if mixed:
            raise LimitError(
                f"'equals' cannot be combined with {', '.join(repr(m) for m in mixed)}: "
                "an equality limit has no band; remove them or drop 'equals'"
            )
        if comparison not in (None, "EQ", "NE", "LOG"):
            raise LimitError(
                f"comparison {comparison} does not apply to 'equals': use EQ (default) or NE"
            )
    if pattern is not None:
        mixed = [k for k in ("low", "high", "nominal", "tolerance", "tolerance_pct",
                             "marginal_low", "marginal_high") if getattr(limit, k) is not None]
        if mixed:
            raise LimitError(
                f"'matches' cannot be combined with {', '.join(repr(m) for m in mixed)}: "
                "a pattern limit has no band; remove them or drop 'matches'"
            )
        if comparison not in (None, "LOG"):
            raise LimitError(
                f"comparison {comparison} does not apply to 'matches' (a regular expression is "
                "always searched); remove 'comparison'"
            )
    if tol is not None and tol_pct is not None:
        raise LimitError("give either 'tolerance' (absolute) or 'tolerance_pct', not both")
    if (tol is not None or tol_pct is not None) and nominal is None:
        which = "tolerance" if tol is not None else "tolerance_pct"
        raise LimitError(f"'{which}' needs a 'nominal' to be a tolerance around; add 'nominal:'")
    if tol is not None or tol_pct is not None:
        if low is not None or high is not None:
            raise LimitError(
                "give either 'low'/'high' or 'nominal' with a tolerance, not both"
            )
        assert nominal is not None
        delta = tol if tol is not None else abs(nominal) * tol_pct / 100.0  # type: ignore[operator]
        low, high = nominal - delta, nominal + delta
    elif nominal is not None and low is None and high is None and comparison != "LOG":
        raise LimitError(
            "'nominal' alone is not a limit: add 'tolerance' or 'tolerance_pct', or 'low'/'high', "
            "or use 'equals' for an exact value"
        )
    for name, v in (("low", low), ("high", high), ("nominal", nominal),
                    ("marginal_low", limit.marginal_low), ("marginal_high", limit.marginal_high)):
        if v is not None and v != v:
            raise LimitError(f"'{name}' is NaN: give a number")

    # ---- comparator ---------------------------------------------------------------------------
    if comparison is None:
        if equals is not None:
            comparator = "EQ"
        elif pattern is not None:
            comparator = "MATCH"
        elif low is not None and high is not None:
            comparator = "GELE"
        elif low is not None:
            comparator = "GE"
        elif high is not None:
            comparator = "LE"
        else:
            raise LimitError(
                "the limit judges nothing: give 'low' and/or 'high', 'nominal' with a tolerance, "
                "'equals', 'matches', or 'comparison: LOG' to record without judging"
            )
    else:
        comparator = comparison
    if comparator in ("EQ", "NE") and equals is None:
        raise LimitError(f"comparison {comparator} needs 'equals: <value>'")
    if comparator in INSIDE or comparator in OUTSIDE:
        if low is None or high is None:
            missing = "low" if low is None else "high"
            raise LimitError(
                f"comparison {comparator} needs both 'low' and 'high' ('{missing}' is missing); "
                f"for a one-sided limit use {'LE or LT' if low is None else 'GE or GT'}"
            )
    elif comparator in ONE_SIDED_LOW:
        if low is None or high is not None:
            raise LimitError(
                f"comparison {comparator} judges value {'>' if comparator == 'GT' else '>='} low: "
                "give 'low' only (for a band use GELE/GTLT/GELT/GTLE)"
            )
    elif comparator in ONE_SIDED_HIGH:
        if high is None or low is not None:
            raise LimitError(
                f"comparison {comparator} judges value {'<' if comparator == 'LT' else '<='} high: "
                "give 'high' only (for a band use GELE/GTLT/GELT/GTLE)"
            )
    if low is not None and high is not None and low > high:
        raise LimitError(
            f"low {format_number(low)} is above high {format_number(high)}: swap them"
            + (" (an outside-band comparison still takes low < high)" if comparator in OUTSIDE else "")
        )
    mlo, mhi = limit.marginal_low, limit.marginal_high
    if (mlo is not None or mhi is not None) and comparator not in NUMERIC:
        raise LimitError(f"marginal_low/marginal_high apply to numeric limits, not to {comparator}")
    if mlo is not None and mhi is not None and mlo > mhi:
        raise LimitError(
            f"marginal_low {format_number(mlo)} is above marginal_high {format_number(mhi)}: swap them"
        )

    # ---- guardband (spec limits, numeric bands only) -------------------------------------------
    spec_low = spec_high = None
    gb: float | None = None
    if source == "spec":
        if comparator in NUMERIC:
            spec_low, spec_high = low, high
            gb = float(guardband_pct or 0)
            if gb < 0:
                raise LimitError(f"guardband_pct {format_number(gb)} is negative: use 0 or more")
            if gb:
                low, high = _guardband(comparator, low, high, gb)
    elif guardband_pct and source not in ("spec",):
        pass  # guardband applies only to spec limits; step and vector limits are taken as written

    return ResolvedLimit(
        comparator=comparator,
        low=low,
        high=high,
        nominal=nominal,
        equals=equals,
        pattern=pattern,
        units=limit.units if limit.units is not None else units,
        marginal_low=mlo,
        marginal_high=mhi,
        spec_low=spec_low,
        spec_high=spec_high,
        guardband_pct=gb,
        source=source,
        characteristic_id=characteristic_id,
        spec_ref=spec_ref,
    )


def _tidy(x: float, toward: float, inward_up: bool) -> float:
    """Round a guardbanded bound to 12 significant digits, never past ``toward`` (the spec bound).

    3.465 - 0.0165 is 3.4484999999999997 in binary floating point: a reading of exactly 3.4485,
    the limit the engineer computed and the plan shows, would fail. Rounding to 12 significant
    digits gives back the decimal the arithmetic meant; the clamp keeps the band inside the spec.
    """
    r = float(f"{x:.12g}")
    return max(r, toward) if inward_up else min(r, toward)


def _guardband(comparator: str, low: float | None, high: float | None, pct: float) -> tuple[float | None, float | None]:
    """DESIGN §2.2: two-sided width shrinks by pct (half each side); one-sided bound moves
    inward by pct of its own magnitude. For an outside-band limit the excluded band grows
    instead, which is what keeps the production pass region inside the spec's. Results are
    tidied to 12 significant digits (see :func:`_tidy`)."""
    return _guardband_raw(comparator, low, high, pct)


def _guardband_raw(comparator: str, low: float | None, high: float | None, pct: float) -> tuple[float | None, float | None]:
    frac = pct / 100.0
    if low is not None and high is not None:
        half = (high - low) * frac / 2.0
        if comparator in OUTSIDE:
            return _tidy(low - half, low, False), _tidy(high + half, high, True)
        new_low, new_high = low + half, high - half
        if new_low <= new_high:
            tidy_low, tidy_high = _tidy(new_low, low, True), _tidy(new_high, high, False)
            if tidy_low <= tidy_high:  # rounding must not invert a (near) zero-width band
                new_low, new_high = tidy_low, tidy_high
        if new_low > new_high:
            raise LimitError(
                f"guardband {format_number(pct)}% inverts the band {format_number(low)}–"
                f"{format_number(high)} (gives {format_number(new_low)}–{format_number(new_high)}): "
                "lower guardband_pct below 100"
            )
        return new_low, new_high
    if low is not None:
        return _tidy(low + abs(low) * frac, low, True), None
    if high is not None:
        return None, _tidy(high - abs(high) * frac, high, False)
    return low, high  # pragma: no cover


# --------------------------------------------------------------------------- spec bands


@dataclass(frozen=True, slots=True)
class SpecChoice:
    """The part of a spec that applies to a vector: the limit, which band, and the readable ref.

    ``band`` is the index in ``spec.bands`` or -1 for the spec's own band; ``key`` identifies
    the choice for sharing resolved limits between vectors (band + the values of the condition
    parameters, which appear in ``spec_ref``).
    """

    limit: Limit
    band: int
    conditions: tuple[tuple[str, Any], ...]

    def ref(self, base: str) -> str:
        if not self.conditions:
            return base
        return base + " @ " + ", ".join(f"{k}={_fmt_param(v)}" for k, v in self.conditions)


def _fmt_param(v: Any) -> str:
    if isinstance(v, float):
        return format_number(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _condition_holds(cond: Any, value: Any) -> bool:
    if value is None:
        return False
    if isinstance(cond, list):
        lo, hi = cond
        v = _as_number(value)
        return v is not None and lo <= v <= hi
    if isinstance(cond, bool) or isinstance(value, bool):
        # a boolean condition matches only a boolean parameter (True is not 1 here)
        return isinstance(value, bool) and isinstance(cond, bool) and value is cond
    if isinstance(cond, (int, float)):
        v = _as_number(value)
        return v is not None and v == cond
    return str(value) == cond


def spec_band(spec: Spec, params: Mapping[str, Any], *, name: str = "") -> SpecChoice:
    """Choose the limit of ``spec`` for a vector's ``params``: the first band whose every
    ``when`` condition holds (``[min, max]`` inclusive range, scalar equality), else the spec's
    own band. A spec made only of bands with none matching raises :class:`LimitError`.
    """
    cond_names: list[str] = []
    for band in spec.bands:
        for key in band.when:
            if key not in cond_names:
                cond_names.append(key)
    conditions = tuple((k, params[k]) for k in cond_names if k in params)
    for i, band in enumerate(spec.bands):
        for key, cond in band.when.items():
            if isinstance(cond, list) and len(cond) != 2:
                raise LimitError(
                    f"{name or 'spec'}: bands[{i}].when.{key}: a range is [min, max], got {cond!r}"
                )
            if not _condition_holds(cond, params.get(key)):
                break
        else:
            return SpecChoice(band, i, conditions)
    if _is_empty(spec):
        shown = ", ".join(f"{k}={_fmt_param(v)}" for k, v in conditions) or "no condition parameters"
        raise LimitError(
            f"{name or 'spec'}: no band matches ({shown}) and the spec has no default band: "
            "add low/high to the spec itself, or a band covering these conditions"
        )
    return SpecChoice(spec, -1, conditions)


def validate_bands(spec: Spec, name: str = "") -> None:
    """Plan-time check of a spec's bands: each range is [min, max] with min <= max."""
    for i, band in enumerate(spec.bands):
        for key, cond in band.when.items():
            if isinstance(cond, list):
                if len(cond) != 2:
                    raise LimitError(f"{name}: bands[{i}].when.{key}: a range is [min, max], got {cond!r}")
                if cond[0] > cond[1]:
                    raise LimitError(
                        f"{name}: bands[{i}].when.{key}: range [{format_number(cond[0])}, "
                        f"{format_number(cond[1])}] is inverted: write [min, max]"
                    )
