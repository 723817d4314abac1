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
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from litmus_seq.errors import LimitError
from litmus_seq.outcomes import ERRORED, FAILED, PASSED

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.models import Spec

__all__ = [
    "Comparison",
    "Limit",
    "LimitOrNone",
    "UNJUDGED",
    "coerce_limit",
    "form_problem",
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


_FINITE = {"allow_inf_nan": False}  # 1e400 reads as infinity, .nan as NaN: neither is a bound


class Limit(BaseModel):
    """A limit as written in YAML (DESIGN §2.3). Same form in specs, steps and vectors."""

    # (the docstring is the JSON Schema description editors show.) defer_build: built on first
    # use, not at import (see litmus_seq.models); the models that contain a limit build its
    # schema into their own validator anyway. The form is checked here, when the file is
    # validated (``validate products/x.yaml`` finds an inverted band on its own); deriving the
    # band and the guardband is :func:`resolve_limit`'s job.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    low: float | None = Field(None, **_FINITE)
    high: float | None = Field(None, **_FINITE)
    nominal: float | None = Field(None, **_FINITE)
    tolerance: float | None = Field(None, ge=0, description="absolute, around nominal", **_FINITE)
    tolerance_pct: float | None = Field(None, ge=0, description="percent of nominal", **_FINITE)
    equals: Union[bool, int, float, str, None] = None
    matches: str | None = Field(None, description="regular expression (re.search)")
    comparison: Comparison | None = None
    units: str | None = None
    marginal_low: float | None = Field(None, **_FINITE)
    marginal_high: float | None = Field(None, **_FINITE)

    @model_validator(mode="after")
    def _form(self) -> Limit:
        problem = form_problem(self, empty_ok=True)
        if problem is None and _is_empty(self):
            problem = self._empty_problem()
        if problem is not None:
            raise ValueError(problem)
        return self

    def _empty_problem(self) -> str | None:
        """What to say about a limit with no bound at all (a spec of bands only is complete)."""
        return _JUDGES_NOTHING


#: ``limit: none``: a measurement recorded deliberately without a limit (outcome ``done``).
UNJUDGED = "none"


def _limit_tag(value: Any) -> str:
    return "none" if value == UNJUDGED else "limit"


#: The type of every ``limit:`` an author writes on a step, an action or a vector: a limit, or
#: ``none`` to record the value unjudged. (A product spec has no ``none``: a spec is a limit.)
LimitOrNone = Annotated[
    Union[Annotated[Limit, Tag("limit")], Annotated[Literal["none"], Tag("none")]],
    Discriminator(_limit_tag),
]


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


# --------------------------------------------------------------------------- form

_JUDGES_NOTHING = (
    "the limit judges nothing: give 'low' and/or 'high', 'nominal' with a tolerance, 'equals', "
    "'matches', 'comparison: LOG', or write `limit: none` to record the value unjudged")


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _exclusive_problem(limit: Limit) -> str | None:
    """``equals`` and ``matches`` stand alone: they have no band."""
    comparison = limit.comparison
    if limit.equals is not None:
        if isinstance(limit.equals, float) and not math.isfinite(limit.equals):
            return "'equals' must be a finite number, a string or true/false"
        mixed = [k for k in ("low", "high", "nominal", "tolerance", "tolerance_pct", "matches",
                             "marginal_low", "marginal_high") if getattr(limit, k) is not None]
        if mixed:
            return (f"'equals' cannot be combined with {_quoted(mixed)}: an equality limit has "
                    "no band; remove them or drop 'equals'")
        if comparison not in (None, "EQ", "NE", "LOG"):
            return f"comparison {comparison} does not apply to 'equals': use EQ (default) or NE"
    if limit.matches is not None:
        mixed = [k for k in ("low", "high", "nominal", "tolerance", "tolerance_pct",
                             "marginal_low", "marginal_high") if getattr(limit, k) is not None]
        if mixed:
            return (f"'matches' cannot be combined with {_quoted(mixed)}: a pattern limit has "
                    "no band; remove them or drop 'matches'")
        if comparison not in (None, "LOG"):
            return (f"comparison {comparison} does not apply to 'matches' (a regular expression "
                    "is always searched); remove 'comparison'")
        try:
            re.compile(limit.matches)
        except re.error as exc:
            return f"matches: {limit.matches!r} is not a valid regular expression: {exc}"
    return None


def _tolerance_problem(limit: Limit) -> str | None:
    tol, tol_pct, nominal = limit.tolerance, limit.tolerance_pct, limit.nominal
    if tol is not None and tol_pct is not None:
        return "give either 'tolerance' (absolute) or 'tolerance_pct', not both"
    if tol is None and tol_pct is None:
        if nominal is not None and limit.low is None and limit.high is None and limit.comparison != "LOG":
            return ("'nominal' alone is not a limit: add 'tolerance' or 'tolerance_pct', or "
                    "'low'/'high', or use 'equals' for an exact value")
        return None
    if nominal is None:
        which = "tolerance" if tol is not None else "tolerance_pct"
        return f"'{which}' needs a 'nominal' to be a tolerance around; add 'nominal:'"
    if limit.low is not None or limit.high is not None:
        return "give either 'low'/'high' or 'nominal' with a tolerance, not both"
    return None


def _comparator_problem(comparator: str, low: float | None, high: float | None) -> str | None:
    """Whether ``comparator`` has the bounds it judges against."""
    if comparator in INSIDE or comparator in OUTSIDE:
        if low is None or high is None:
            missing = "low" if low is None else "high"
            return (f"comparison {comparator} needs both 'low' and 'high' ('{missing}' is "
                    f"missing); for a one-sided limit use {'LE or LT' if low is None else 'GE or GT'}")
    elif comparator in ONE_SIDED_LOW:
        if low is None or high is not None:
            return (f"comparison {comparator} judges value {'>' if comparator == 'GT' else '>='} "
                    "low: give 'low' only (for a band use GELE/GTLT/GELT/GTLE)")
    elif comparator in ONE_SIDED_HIGH:
        if high is None or low is not None:
            return (f"comparison {comparator} judges value {'<' if comparator == 'LT' else '<='} "
                    "high: give 'high' only (for a band use GELE/GTLT/GELT/GTLE)")
    return None


def form_problem(limit: Limit, *, empty_ok: bool = False) -> str | None:
    """What is wrong with the *form* of ``limit`` (a message with the fix), or None.

    Everything that can be decided from the limit alone: exclusive keys, tolerances, the
    comparison and its bounds, low above high, marginal bands. ``empty_ok`` accepts a limit
    with no bound (a spec that is only a list of bands).
    """
    for name in ("low", "high", "nominal", "tolerance", "tolerance_pct", "marginal_low", "marginal_high"):
        v = getattr(limit, name)
        if v is not None and not math.isfinite(v):
            return f"'{name}' must be a finite number, got {v}"
    problem = _exclusive_problem(limit) or _tolerance_problem(limit)
    if problem is not None:
        return problem
    if _is_empty(limit):
        return None if empty_ok else _JUDGES_NOTHING
    low, high = _bounds(limit)
    comparator = _comparator(limit, low, high)
    if comparator in ("EQ", "NE") and limit.equals is None:
        return f"comparison {comparator} needs 'equals: <value>'"
    problem = _comparator_problem(comparator, low, high)
    if problem is not None:
        return problem
    if low is not None and high is not None and low > high:
        return (f"low {format_number(low)} is above high {format_number(high)}: swap them"
                + (" (an outside-band comparison still takes low < high)" if comparator in OUTSIDE else ""))
    mlo, mhi = limit.marginal_low, limit.marginal_high
    if (mlo is not None or mhi is not None) and comparator not in NUMERIC:
        return f"marginal_low/marginal_high apply to numeric limits, not to {comparator}"
    if mlo is not None and mhi is not None and mlo > mhi:
        return f"marginal_low {format_number(mlo)} is above marginal_high {format_number(mhi)}: swap them"
    return None


# --------------------------------------------------------------------------- band derivation


def _bounds(limit: Limit) -> tuple[float | None, float | None]:
    """``(low, high)``: as written, or nominal ± tolerance."""
    nominal, tol, tol_pct = limit.nominal, limit.tolerance, limit.tolerance_pct
    if nominal is not None and (tol is not None or tol_pct is not None):
        delta = tol if tol is not None else abs(nominal) * tol_pct / 100.0  # type: ignore[operator]
        return nominal - delta, nominal + delta
    return limit.low, limit.high


def _comparator(limit: Limit, low: float | None, high: float | None) -> str:
    """The comparison written, else the one the keys imply (``MATCH`` for ``matches``)."""
    if limit.comparison is not None:
        return limit.comparison
    if limit.equals is not None:
        return "EQ"
    if limit.matches is not None:
        return "MATCH"
    if low is not None and high is not None:
        return "GELE"
    return "GE" if low is not None else "LE"


def resolve_limit(
    limit: Limit,
    *,
    source: str,
    guardband_pct: float = 0,
    spec_ref: str | None = None,
    characteristic_id: str | None = None,
    units: str | None = None,
) -> ResolvedLimit:
    """Derive the band of a (form-checked) ``limit``, apply the guardband (spec limits only) and
    freeze it.

    ``units`` is a fallback used when the limit names none (e.g. the spec's or the action's).
    Raises :class:`LimitError` for what only the resolution can tell (a negative guardband, a
    guardband that inverts a band, a limit built without validation); callers add the location.
    """
    problem = form_problem(limit)  # (a Limit built by model_construct() was never checked)
    if problem is not None:
        raise LimitError(problem)
    low, high = _bounds(limit)
    comparator = _comparator(limit, low, high)
    spec_low = spec_high = None
    gb: float | None = None
    if source == "spec" and comparator in NUMERIC:  # step and vector limits are taken as written
        spec_low, spec_high = low, high
        gb = float(guardband_pct or 0)
        if gb < 0:
            raise LimitError(f"guardband_pct {format_number(gb)} is negative: use 0 or more")
        if gb:
            low, high = _guardband(comparator, low, high, gb)
    return ResolvedLimit(
        comparator=comparator,
        low=low,
        high=high,
        nominal=limit.nominal,
        equals=limit.equals,
        pattern=limit.matches,
        units=limit.units if limit.units is not None else units,
        marginal_low=limit.marginal_low,
        marginal_high=limit.marginal_high,
        spec_low=spec_low,
        spec_high=spec_high,
        guardband_pct=gb,
        source=source,
        characteristic_id=characteristic_id,
        spec_ref=spec_ref,
    )


def coerce_limit(limit: Any) -> ResolvedLimit | None:
    """A limit as a program passes it (``ctx.measure(limit=...)``): a :class:`ResolvedLimit`, a
    :class:`Limit`, a dict of the YAML form, or ``"none"`` (recorded unjudged: None)."""
    if limit is None or limit == UNJUDGED:
        return None
    if isinstance(limit, ResolvedLimit):
        return limit
    if isinstance(limit, dict):
        limit = Limit.model_validate(limit)
    return resolve_limit(limit, source="step")


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


def condition_problem(key: str, cond: Any) -> str | None:
    """What is wrong with one ``when:`` condition of a spec band (a range must be [min, max])."""
    if isinstance(cond, list):
        if len(cond) != 2:
            return f"when.{key}: a range is [min, max], got {len(cond)} values"
        if cond[0] > cond[1]:
            return (f"when.{key}: range [{format_number(cond[0])}, {format_number(cond[1])}] is "
                    "inverted: write [min, max]")
    return None
