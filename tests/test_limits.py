"""Limit math: forms, comparators at and around every boundary, guardband, spec bands."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from litmus_seq.errors import LimitError
from litmus_seq.limits import Limit, ResolvedLimit, resolve_limit, spec_band
from litmus_seq.models import Spec
from litmus_seq.outcomes import ERRORED, FAILED, PASSED

P, F, E = PASSED, FAILED, ERRORED


def R(source: str = "step", gb: float = 0, **kw: object) -> ResolvedLimit:
    return resolve_limit(Limit(**kw), source=source, guardband_pct=gb)


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


# --------------------------------------------------------------------------- comparators

LO, HI = 3.1, 3.5

# comparator -> outcome at (below low, low, just above low, mid, just below high, high, above high)
TWO_SIDED = {
    "GELE": (F, P, P, P, P, P, F),
    "GTLT": (F, F, P, P, P, F, F),
    "GELT": (F, P, P, P, P, F, F),
    "GTLE": (F, F, P, P, P, P, F),
    "LTGT": (P, F, F, F, F, F, P),
    "LEGE": (P, P, F, F, F, P, P),
    "LEGT": (P, P, F, F, F, F, P),
    "LTGE": (P, F, F, F, F, P, P),
}


@pytest.mark.parametrize("comparator", sorted(TWO_SIDED))
def test_two_sided_comparators_at_and_around_both_boundaries(comparator: str) -> None:
    lim = R(low=LO, high=HI, comparison=comparator)
    assert lim.comparator == comparator
    values = (below(LO), LO, above(LO), 3.3, below(HI), HI, above(HI))
    got = tuple(lim.check(v)[0] for v in values)
    assert got == TWO_SIDED[comparator]


@pytest.mark.parametrize(
    "comparator, kw, cases",
    [
        ("GT", {"low": 0.85}, [(below(0.85), F), (0.85, F), (above(0.85), P), (1e9, P)]),
        ("GE", {"low": 0.85}, [(below(0.85), F), (0.85, P), (above(0.85), P)]),
        ("LT", {"high": 0.05}, [(below(0.05), P), (0.05, F), (above(0.05), F), (-1e9, P)]),
        ("LE", {"high": 0.05}, [(below(0.05), P), (0.05, P), (above(0.05), F)]),
        ("GE", {"low": -2.0}, [(-2.0, P), (below(-2.0), F), (0, P)]),
        ("LE", {"high": -2.0}, [(-2.0, P), (above(-2.0), F), (-3, P)]),
    ],
)
def test_one_sided_comparators(comparator: str, kw: dict, cases: list) -> None:
    lim = R(comparison=comparator, **kw)
    for value, expected in cases:
        assert lim.check(value) == (expected, False), (comparator, value)


def test_default_comparators() -> None:
    assert R(low=1, high=2).comparator == "GELE"
    assert R(low=1).comparator == "GE"
    assert R(high=2).comparator == "LE"
    assert R(equals="1.4.2").comparator == "EQ"
    assert R(matches="^1").comparator == "MATCH"
    assert R(comparison="LOG").comparator == "LOG"


def test_negative_range() -> None:
    lim = R(low=-5.0, high=-4.5)
    assert lim.check(-4.75) == (P, False)
    assert lim.check(-5.0) == (P, False)
    assert lim.check(-4.5) == (P, False)
    assert lim.check(below(-5.0))[0] == F
    assert lim.check(above(-4.5))[0] == F
    assert lim.check(4.75)[0] == F


def test_zero_width_band() -> None:
    lim = R(low=5.0, high=5.0)
    assert lim.check(5.0) == (P, False)
    assert lim.check(5)[0] == P
    assert lim.check(below(5.0))[0] == F
    assert lim.check(above(5.0))[0] == F
    assert R(low=5.0, high=5.0, comparison="GTLT").check(5.0)[0] == F
    assert R(low=5.0, high=5.0, comparison="LTGT").check(5.0)[0] == F
    assert R(low=5.0, high=5.0, comparison="LEGE").check(5.0)[0] == P


def test_infinities_are_judged() -> None:
    lim = R(low=0, high=1)
    assert lim.check(math.inf)[0] == F
    assert R(low=0).check(math.inf)[0] == P


# --------------------------------------------------------------------------- values that cannot be judged


@pytest.mark.parametrize("value", [None, "abc", "", float("nan"), True, False, [1], object()])
def test_unjudgeable_values_against_numeric_limits_are_errored(value: object) -> None:
    for c in ("GELE", "LTGT", "GE"):
        kw = {"low": 1.0, "high": 2.0} if c != "GE" else {"low": 1.0}
        assert R(comparison=c, **kw).check(value) == (E, False), (c, value)


def test_numeric_strings_and_other_number_types_are_converted() -> None:
    from decimal import Decimal
    from fractions import Fraction

    lim = R(low=3.1, high=3.5)
    assert lim.check("3.30") == (P, False)
    assert lim.check(" 3.6 ") == (F, False)
    assert lim.check(Decimal("3.3")) == (P, False)
    assert lim.check(Fraction(33, 10)) == (P, False)
    assert lim.check(3)[0] == F
    assert lim.check("nan") == (E, False)


# --------------------------------------------------------------------------- equality, pattern, log


@pytest.mark.parametrize(
    "equals, value, expected",
    [
        ("1.4.2", "1.4.2", P),
        ("1.4.2", "1.4.3", F),
        ("1.4.2", " 1.4.2", F),
        ("1.4", 1.4, P),  # a number read against a text limit compares as text
        (True, True, P),
        (True, False, F),
        (False, False, P),
        (True, "true", P),
        (True, "FALSE", F),
        (True, 1, P),
        (True, 0, F),
        (True, 2, E),
        (True, "maybe", E),
        (True, None, E),
        (5, 5, P),
        (5, 5.0, P),
        (5, "5", P),
        (5, 6, F),
        (5, "five", E),
        (5, True, E),
        (0.1, 0.1, P),
    ],
)
def test_equals(equals: object, value: object, expected: str) -> None:
    assert R(equals=equals).check(value) == (expected, False)


def test_not_equal() -> None:
    lim = R(equals="0000", comparison="NE")
    assert lim.comparator == "NE"
    assert lim.check("1234") == (P, False)
    assert lim.check("0000") == (F, False)
    assert lim.check(None) == (E, False)
    assert R(equals=True, comparison="NE").check("maybe") == (E, False)


def test_matches() -> None:
    lim = R(matches=r"^1\.4\.[0-9]+$")
    assert lim.check("1.4.2") == (P, False)
    assert lim.check("1.4.12") == (P, False)
    assert lim.check("1.5.2") == (F, False)
    assert lim.check("v1.4.2") == (F, False)
    assert lim.check(None) == (E, False)
    assert R(matches="true").check(True) == (P, False)  # booleans as their text form
    assert R(matches="^SN").check("xSN") == (F, False)  # search honours the anchor


def test_log_records_anything_but_none() -> None:
    lim = R(comparison="LOG", low=1, high=2)
    assert lim.check(100) == (P, False)
    assert lim.check("text") == (P, False)
    assert lim.check(None) == (E, False)
    assert R(comparison="LOG").comparator == "LOG"


# --------------------------------------------------------------------------- tolerance forms


def test_tolerance_absolute() -> None:
    lim = R(nominal=3.3, tolerance=0.1)
    assert (lim.low, lim.high, lim.nominal) == (pytest.approx(3.2), pytest.approx(3.4), 3.3)
    assert lim.comparator == "GELE"


def test_tolerance_pct() -> None:
    lim = R(nominal=3.3, tolerance_pct=5)
    assert lim.low == pytest.approx(3.135)
    assert lim.high == pytest.approx(3.465)


def test_tolerance_pct_negative_nominal() -> None:
    lim = R(nominal=-12.0, tolerance_pct=10)
    assert lim.low == pytest.approx(-13.2)
    assert lim.high == pytest.approx(-10.8)
    assert lim.check(-12.0)[0] == P


def test_zero_tolerance_is_a_zero_width_band() -> None:
    lim = R(nominal=1.0, tolerance=0)
    assert (lim.low, lim.high) == (1.0, 1.0)


def test_nominal_is_kept_with_explicit_bounds() -> None:
    lim = R(nominal=3.3, low=3.1, high=3.5)
    assert (lim.low, lim.high, lim.nominal) == (3.1, 3.5, 3.3)


# --------------------------------------------------------------------------- marginal


def test_marginal() -> None:
    lim = R(low=3.1, high=3.5, marginal_low=3.15, marginal_high=3.45)
    assert lim.check(3.3) == (P, False)
    assert lim.check(3.15) == (P, False)
    assert lim.check(3.45) == (P, False)
    assert lim.check(below(3.15)) == (P, True)
    assert lim.check(above(3.45)) == (P, True)
    assert lim.check(3.1) == (P, True)
    assert lim.check(3.5) == (P, True)
    assert lim.check(3.6) == (F, False)  # a failure is never "marginal"
    one = R(low=0.85, marginal_low=0.9)
    assert one.check(0.87) == (P, True)
    assert one.check(0.95) == (P, False)


# --------------------------------------------------------------------------- guardband


def test_guardband_two_sided_design_example() -> None:
    lim = R("spec", gb=10, low=3.135, high=3.465)
    assert lim.low == pytest.approx(3.1515)
    assert lim.high == pytest.approx(3.4485)
    assert (lim.spec_low, lim.spec_high, lim.guardband_pct) == (3.135, 3.465, 10.0)
    assert lim.check(3.15)[0] == F  # inside the spec, outside the guardbanded band
    assert lim.check(3.152)[0] == P


def test_guardband_one_sided_design_examples() -> None:
    hi = R("spec", gb=10, high=0.05)
    assert hi.high == pytest.approx(0.045)
    assert hi.spec_high == 0.05 and hi.spec_low is None
    lo = R("spec", gb=10, low=-2.0)
    assert lo.low == pytest.approx(-1.8)
    assert R("spec", gb=10, low=2.0).low == pytest.approx(2.2)
    assert R("spec", gb=10, high=-2.0).high == pytest.approx(-2.2)
    assert R("spec", gb=10, low=0.0).low == 0.0


def test_guardband_applies_to_tolerance_forms() -> None:
    lim = R("spec", gb=10, nominal=3.3, tolerance_pct=5)
    assert lim.low == pytest.approx(3.1515)
    assert lim.spec_low == pytest.approx(3.135)


def test_guardband_outside_band_widens_the_excluded_band() -> None:
    lim = R("spec", gb=10, low=1.0, high=2.0, comparison="LTGT")
    assert (lim.low, lim.high) == (pytest.approx(0.95), pytest.approx(2.05))


@pytest.mark.parametrize(
    "kw",
    [{"equals": "1.4.2"}, {"equals": True}, {"equals": 5}, {"matches": "^x"}, {"comparison": "LOG"}],
)
def test_equality_pattern_boolean_never_guardbanded(kw: dict) -> None:
    lim = R("spec", gb=10, **kw)
    assert lim.guardband_pct is None
    assert lim.spec_low is None and lim.spec_high is None


@pytest.mark.parametrize("source", ["step", "vector"])
def test_guardband_only_for_spec_limits(source: str) -> None:
    lim = R(source, gb=10, low=3.135, high=3.465)
    assert (lim.low, lim.high) == (3.135, 3.465)
    assert lim.guardband_pct is None and lim.spec_low is None
    assert lim.source == source


def test_spec_without_guardband_records_zero() -> None:
    lim = R("spec", low=1, high=2)
    assert (lim.low, lim.high, lim.guardband_pct, lim.spec_low) == (1, 2, 0.0, 1)


def test_guardband_100_pct_collapses_and_more_inverts() -> None:
    lim = R("spec", gb=100, low=1.0, high=3.0)
    assert lim.low == lim.high == 2.0
    with pytest.raises(LimitError, match="inverts the band"):
        R("spec", gb=150, low=1.0, high=3.0)
    with pytest.raises(LimitError, match="negative"):
        R("spec", gb=-1, low=1.0, high=3.0)


# --------------------------------------------------------------------------- inconsistent limits


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"low": 2, "high": 1}, "low 2 is above high 1"),
        ({"equals": 1, "low": 0}, "'equals' cannot be combined with 'low'"),
        ({"matches": "x", "high": 1}, "'matches' cannot be combined with 'high'"),
        ({"tolerance": 0.1}, "needs a 'nominal'"),
        ({"tolerance_pct": 5}, "needs a 'nominal'"),
        ({"nominal": 1, "tolerance": 0.1, "tolerance_pct": 5}, "not both"),
        ({"nominal": 1, "tolerance": 0.1, "low": 0}, "not both"),
        ({"nominal": 1}, "'nominal' alone is not a limit"),
        ({}, "judges nothing"),
        ({"units": "V"}, "judges nothing"),
        ({"low": 1, "comparison": "GELE"}, "needs both 'low' and 'high'"),
        ({"high": 1, "comparison": "LTGT"}, "needs both 'low' and 'high'"),
        ({"high": 1, "comparison": "GT"}, "give 'low' only"),
        ({"low": 1, "high": 2, "comparison": "GE"}, "give 'low' only"),
        ({"low": 1, "comparison": "LE"}, "give 'high' only"),
        ({"low": 1, "comparison": "EQ"}, "needs 'equals"),
        ({"equals": 1, "comparison": "GELE"}, "does not apply to 'equals'"),
        ({"matches": "x", "comparison": "EQ"}, "does not apply to 'matches'"),
        ({"matches": "(unclosed"}, "not a valid regular expression"),
        ({"equals": "x", "marginal_low": 1}, "cannot be combined"),
        ({"low": 1, "high": 2, "marginal_low": 1.8, "marginal_high": 1.2}, "marginal_low 1.8 is above"),
        ({"low": float("nan")}, "finite"),
    ],
)
def test_inconsistent_limits_are_refused_by_the_model_and_by_resolution(kw: dict, message: str) -> None:
    import pydantic

    pattern = message.replace("(", r"\(")
    with pytest.raises(pydantic.ValidationError, match=pattern):
        Limit(**kw)  # what validating a file does: `validate products/x.yaml` finds it alone
    with pytest.raises(LimitError, match=pattern):  # a limit built without validation
        resolve_limit(Limit.model_construct(**kw), source="step")


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_limits_must_be_finite(bad: float) -> None:
    import pydantic

    for key in ("low", "high", "nominal", "marginal_low"):
        with pytest.raises(pydantic.ValidationError, match="finite"):
            Limit(**{key: bad})
    with pytest.raises(pydantic.ValidationError, match="finite"):
        Limit(equals=bad)


def test_limit_error_is_a_config_error() -> None:
    from litmus_seq.errors import ConfigError, EXIT_USAGE

    with pytest.raises(ConfigError) as info:
        resolve_limit(Limit.model_construct(low=2, high=1), source="step")
    assert info.value.exit_code == EXIT_USAGE


# --------------------------------------------------------------------------- dict forms


def test_as_dict_is_cached_and_complete() -> None:
    lim = resolve_limit(Limit(low=3.135, high=3.465, units="V"), source="spec", guardband_pct=10,
                        spec_ref="products.pb.rail_3v3", characteristic_id="rail_3v3")
    d = lim.as_dict()
    assert d is lim.as_dict()
    assert d["comparator"] == "GELE" and d["units"] == "V" and d["source"] == "spec"
    assert d["characteristic_id"] == "rail_3v3" and d["spec_ref"] == "products.pb.rail_3v3"
    assert set(d) >= {"low", "high", "nominal", "equals", "pattern", "marginal_low", "spec_low",
                      "spec_high", "guardband_pct"}
    j = lim.to_json()
    assert set(j) == {"low", "high", "units", "spec_low", "spec_high", "guardband_pct", "source"}


def test_units_fallback() -> None:
    assert resolve_limit(Limit(low=1), source="step", units="A").units == "A"
    assert resolve_limit(Limit(low=1, units="mA"), source="step", units="A").units == "mA"


def test_equal_limits_compare_equal_and_hash() -> None:
    a, b = R(low=1, high=2), R(low=1, high=2)
    assert a == b and hash(a) == hash(b)
    assert a != R(low=1, high=3)


def test_describe() -> None:
    lim = resolve_limit(Limit(low=3.135, high=3.465, units="V"), source="spec", guardband_pct=10)
    assert lim.describe() == "3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10%)"
    assert R(high=0.05, units="A", comparison="LT").describe() == "x < 0.05 A"
    assert R(equals="1.4.2").describe() == "x == '1.4.2'"


def test_check_is_cheap() -> None:
    import timeit

    lim = R("spec", gb=10, low=3.135, high=3.465)
    check = lim.check
    n = 20000
    per_call = min(timeit.repeat("check(3.3)", globals={"check": check}, number=n, repeat=3)) / n
    assert per_call < 5e-6  # target < 1 µs; generous bound for slow CI machines


# --------------------------------------------------------------------------- spec bands


def _spec(**kw: object) -> Spec:
    return Spec.model_validate(kw)


RAIL = _spec(
    units="V", nominal=3.3, low=3.135, high=3.465,
    bands=[
        {"when": {"temperature": [-40, 0]}, "low": 3.1, "high": 3.5},
        {"when": {"temperature": [0, 50], "vin": 12}, "low": 3.2, "high": 3.4},
        {"when": {"mode": "eco"}, "low": 3.0, "high": 3.6},
    ],
)


@pytest.mark.parametrize(
    "params, band, low",
    [
        ({"temperature": -40}, 0, 3.1),
        ({"temperature": 0}, 0, 3.1),  # first match wins on the shared boundary
        ({"temperature": -40.0001}, -1, 3.135),
        ({"temperature": 25, "vin": 12}, 1, 3.2),
        ({"temperature": 25, "vin": 12.0}, 1, 3.2),
        ({"temperature": 25, "vin": 5}, -1, 3.135),
        ({"temperature": 25}, -1, 3.135),  # a missing parameter never matches
        ({"mode": "eco"}, 2, 3.0),
        ({"mode": "ECO"}, -1, 3.135),
        ({}, -1, 3.135),
    ],
)
def test_spec_band_selection(params: dict, band: int, low: float) -> None:
    choice = spec_band(RAIL, params)
    assert choice.band == band
    assert choice.limit.low == low


def test_spec_ref_names_condition_parameters() -> None:
    choice = spec_band(RAIL, {"temperature": 85.0, "vin": 5, "load": 0.1})
    assert choice.ref("products.power_board.rail_3v3") == \
        "products.power_board.rail_3v3 @ temperature=85, vin=5"
    plain = _spec(low=1, high=2)
    assert spec_band(plain, {"x": 1}).ref("products.p.a") == "products.p.a"


def test_bool_band_condition_matches_only_bools() -> None:
    spec = _spec(low=0, high=1, bands=[{"when": {"hot": True}, "low": 0, "high": 2}])
    assert spec_band(spec, {"hot": True}).band == 0
    assert spec_band(spec, {"hot": 1}).band == -1
    assert spec_band(spec, {"hot": False}).band == -1


def test_bands_only_spec_without_match_is_a_limit_error() -> None:
    spec = _spec(bands=[{"when": {"temperature": [50, 100]}, "low": 1, "high": 2}])
    assert spec_band(spec, {"temperature": 85}).band == 0
    with pytest.raises(LimitError, match="no band matches \\(temperature=25\\)"):
        spec_band(spec, {"temperature": 25}, name="products.p.x")


def test_inverted_band_range_is_reported() -> None:
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="inverted"):
        _spec(low=0, high=1, bands=[{"when": {"t": [50, 0]}, "low": 0, "high": 2}])
    with pytest.raises(pydantic.ValidationError, match="a range is \\[min, max\\]"):
        _spec(low=0, high=1, bands=[{"when": {"t": [1, 2, 3]}, "low": 0, "high": 2}])


# --------------------------------------------------------------------------- properties

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(a=finite, b=finite, pct=st.floats(min_value=0, max_value=99.9))
def test_guardbanded_band_lies_inside_spec_band(a: float, b: float, pct: float) -> None:
    low, high = min(a, b), max(a, b)
    lim = R("spec", gb=pct, low=low, high=high)
    assert low <= lim.low <= lim.high <= high


@given(bound=finite, pct=st.floats(min_value=0, max_value=99.9), is_low=st.booleans())
def test_one_sided_guardband_moves_inward(bound: float, pct: float, is_low: bool) -> None:
    if is_low:
        lim = R("spec", gb=pct, low=bound)
        assert lim.low >= bound
        assert lim.low == pytest.approx(bound + abs(bound) * pct / 100)
    else:
        lim = R("spec", gb=pct, high=bound)
        assert lim.high <= bound


@given(low=finite, width=st.floats(min_value=0, max_value=1e6), value=finite)
def test_inside_and_outside_complement(low: float, width: float, value: float) -> None:
    high = low + width
    assume(high >= low)
    pairs = [("GELE", "LTGT"), ("GTLT", "LEGE"), ("GELT", "LTGE"), ("GTLE", "LEGT")]
    for inside, outside in pairs:
        i = R(low=low, high=high, comparison=inside).check(value)[0]
        o = R(low=low, high=high, comparison=outside).check(value)[0]
        assert {i, o} == {P, F}, (inside, outside, low, high, value)


def test_guardbanded_bounds_are_the_decimals_the_engineer_computed() -> None:
    # 3.465 - 0.0165 is 3.4484999999999997 in binary: a reading of exactly 3.4485 must pass
    lim = resolve_limit(Limit(low=3.135, high=3.465), source="spec", guardband_pct=10)
    assert (lim.low, lim.high) == (3.1515, 3.4485)
    assert lim.check(3.4485) == ("passed", False)
    assert lim.check(3.1515) == ("passed", False)
    assert lim.check(3.44851)[0] == "failed"
    one = resolve_limit(Limit(low=0.72), source="spec", guardband_pct=10)
    assert one.low == 0.792 and one.check(0.792)[0] == "passed"


def test_tidied_guardband_never_leaves_the_spec_band() -> None:
    # a 17-digit spec bound: rounding to 12 digits must not push the bound outside the spec
    low, high = 0.12345678901234567, 0.98765432109876543
    lim = resolve_limit(Limit(low=low, high=high), source="spec", guardband_pct=1e-13)
    assert low <= lim.low <= lim.high <= high
