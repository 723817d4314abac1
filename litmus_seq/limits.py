"""Limits: the YAML limit forms, guardband arithmetic, spec bands and judging a value.

(The pydantic :class:`Limit` is the user-facing form; :class:`ResolvedLimit` is what the plan and
the engine use: a frozen, pre-computed object whose ``check`` is cheap enough for the hot path.)
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

Comparison = Literal[
    "EQ", "NE", "GT", "GE", "LT", "LE", "GELE", "GTLT", "GELT", "GTLE",
    "LTGT", "LEGE", "LEGT", "LTGE", "LOG",
]


class Limit(BaseModel):
    """A limit as written in YAML (DESIGN §2.3). Same form in specs, steps and vectors."""

    model_config = ConfigDict(extra="forbid")

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


from dataclasses import dataclass  # noqa: E402


@dataclass(frozen=True, slots=True)
class ResolvedLimit:
    """A limit after resolution (vector -> step -> spec) and guardband; what the engine judges.

    ``comparator`` is one of GELE ... LTGE, EQ, NE, GT, GE, LT, LE, MATCH, LOG. ``spec_low`` /
    ``spec_high`` are the spec band before guardband. ``source`` is vector | step | spec.
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

    def check(self, value: object) -> tuple[str, bool]:
        """Judge ``value``: ``(outcome, marginal)`` with outcome ``passed`` | ``failed``."""
        raise NotImplementedError  # implemented with the limit math

    def as_dict(self) -> dict[str, object]:
        """Fields as a dict (cached by callers; shared by every event that uses this limit)."""
        raise NotImplementedError
