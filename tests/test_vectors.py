"""Vector and sweep expansion."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litmus_seq.models import Step
from litmus_seq.vectors import VectorError, expand, expand_vectors


def step(**kw: object) -> Step:
    return Step.model_validate({"name": "s", "measure": "m", "from": "dmm.read", **kw})


def test_no_vectors_is_one_empty_vector() -> None:
    assert expand(step()) == [{}]


def test_product_first_key_slowest() -> None:
    got = expand(step(vectors={"vin": [3.3, 5.0, 12.0], "load": [0.1, 0.5]}))
    assert got == [
        {"vin": 3.3, "load": 0.1}, {"vin": 3.3, "load": 0.5},
        {"vin": 5.0, "load": 0.1}, {"vin": 5.0, "load": 0.5},
        {"vin": 12.0, "load": 0.1}, {"vin": 12.0, "load": 0.5},
    ]
    assert expand(step(vectors={"expand": "product", "a": [1, 2], "b": [3]})) == [
        {"a": 1, "b": 3}, {"a": 2, "b": 3},
    ]


def test_scalar_is_a_one_value_axis() -> None:
    assert expand(step(vectors={"vin": 5, "load": [1, 2]})) == [{"vin": 5, "load": 1}, {"vin": 5, "load": 2}]


def test_zip() -> None:
    got = expand(step(vectors={"expand": "zip", "vin": [3.3, 5.0], "load": [0.1, 0.5]}))
    assert got == [{"vin": 3.3, "load": 0.1}, {"vin": 5.0, "load": 0.5}]


def test_zip_unequal_lengths_is_an_error() -> None:
    with pytest.raises(VectorError, match=r"equal length \(vin: 2, load: 3\)") as info:
        expand(step(vectors={"expand": "zip", "vin": [1, 2], "load": [1, 2, 3]}))
    assert info.value.rel_path == ("vectors", "expand")


@pytest.mark.parametrize(
    "vectors, message, rel",
    [
        ({"expand": "cartesian", "a": [1]}, "expand must be 'product' or 'zip'", ("vectors", "expand")),
        ({"a": []}, "'a' is an empty list", ("vectors", "a")),
        ({"a": {"start": 1}}, "not a mapping", ("vectors", "a")),
        ([], "empty list", ("vectors",)),
    ],
)
def test_bad_vectors(vectors: object, message: str, rel: tuple) -> None:
    with pytest.raises(VectorError, match=message) as info:
        expand(step(vectors=vectors))
    assert info.value.rel_path == rel


def test_explicit_vectors_with_limits() -> None:
    got = expand_vectors(step(vectors=[
        {"vin": 5.0, "load": 0.1, "limits": {"m": {"low": 3.2, "high": 3.4}}},
        {"vin": 12.0, "load": 1.0},
    ]))
    assert [p for p, _ in got] == [{"vin": 5.0, "load": 0.1}, {"vin": 12.0, "load": 1.0}]
    assert got[0][1]["m"].low == 3.2 and got[1][1] == {}


def test_sweep_inclusive_of_stop_and_rounded() -> None:
    assert expand(step(sweep={"vin": {"start": 4.5, "stop": 5.5, "step": 0.25}})) == [
        {"vin": v} for v in (4.5, 4.75, 5.0, 5.25, 5.5)
    ]
    tenths = [p["vin"] for p in expand(step(sweep={"vin": {"start": 4.5, "stop": 5.5, "step": 0.1}}))]
    assert tenths == [4.5, 4.6, 4.7, 4.8, 4.9, 5.0, 5.1, 5.2, 5.3, 5.4, 5.5]  # exact, no 4.6000000000000005
    small = [p["i"] for p in expand(step(sweep={"i": {"start": 0, "stop": 0.0003, "step": 0.0001}}))]
    assert small == [0.0, 0.0001, 0.0002, 0.0003]


def test_sweep_stop_off_grid_stops_before() -> None:
    assert [p["x"] for p in expand(step(sweep={"x": {"start": 0, "stop": 1, "step": 0.3}}))] == [0.0, 0.3, 0.6, 0.9]


def test_descending_sweep_with_negative_step() -> None:
    assert [p["t"] for p in expand(step(sweep={"t": {"start": 85, "stop": -40, "step": -25}}))] == [
        85.0, 60.0, 35.0, 10.0, -15.0, -40.0,
    ]


def test_single_point_sweep() -> None:
    assert expand(step(sweep={"x": {"start": 2, "stop": 2, "step": 1}})) == [{"x": 2.0}]
    assert expand(step(sweep={"x": {"start": 2, "stop": 2, "step": -1}})) == [{"x": 2.0}]


def test_points_sweep() -> None:
    assert expand(step(sweep={"f": {"points": [100, 1000, "dc"]}})) == [{"f": 100}, {"f": 1000}, {"f": "dc"}]


def test_log_sweep() -> None:
    got = [p["f"] for p in expand(step(sweep={"f": {"start": 10, "stop": 1000, "log": 2}}))]
    assert got == pytest.approx([10, 31.6227766017, 100, 316.227766017, 1000])
    assert got[2] == 100.0 and got[-1] == 1000.0  # decades land exactly
    down = [p["f"] for p in expand(step(sweep={"f": {"start": 1000, "stop": 10, "log": 1}}))]
    assert down == [1000.0, 100.0, 10.0]


@pytest.mark.parametrize(
    "sweep, message, rel",
    [
        ({"start": 1, "stop": 2, "step": 0}, "step must not be 0", ("sweep", "x", "step")),
        ({"start": 1, "stop": 2, "step": -0.5}, "wrong direction.*positive step", ("sweep", "x", "step")),
        ({"start": 2, "stop": 1, "step": 0.5}, "wrong direction.*negative step", ("sweep", "x", "step")),
        ({"start": 0, "stop": 10, "log": 3}, "above 0 \\(start is 0\\)", ("sweep", "x", "start")),
        ({"start": 1, "stop": -10, "log": 3}, "above 0 \\(stop is -10\\)", ("sweep", "x", "stop")),
        ({"start": 1, "stop": 10}, "'step' is missing", ("sweep", "x")),
        ({"stop": 10, "step": 1}, "'start' is missing", ("sweep", "x")),
        ({"start": 1, "stop": 10, "step": 1, "log": 2}, "not both", ("sweep", "x", "log")),
        ({"points": [1], "start": 1}, "cannot be combined with start", ("sweep", "x", "start")),
        ({"points": []}, "'points' is empty", ("sweep", "x", "points")),
        ({"start": 0, "stop": 1, "step": 1e-9}, "more than", ("sweep", "x", "step")),
        ({"start": 0, "stop": float("inf"), "step": 1}, "finite", ("sweep", "x", "stop")),
    ],
)
def test_invalid_sweeps(sweep: dict, message: str, rel: tuple) -> None:
    with pytest.raises(VectorError, match=message) as info:
        expand(step(sweep={"x": sweep}))
    assert info.value.rel_path == rel


def test_vectors_and_sweeps_combine_as_product() -> None:
    got = expand(step(vectors={"vin": [5, 12]}, sweep={"load": {"points": [0.1, 1]}, "t": {"points": [25]}}))
    assert got == [
        {"vin": 5, "load": 0.1, "t": 25}, {"vin": 5, "load": 1, "t": 25},
        {"vin": 12, "load": 0.1, "t": 25}, {"vin": 12, "load": 1, "t": 25},
    ]


def test_explicit_vectors_keep_their_limits_across_sweeps() -> None:
    got = expand_vectors(step(vectors=[{"vin": 5, "limits": {"m": {"low": 1}}}],
                              sweep={"load": {"points": [0.1, 1]}}))
    assert [p for p, _ in got] == [{"vin": 5, "load": 0.1}, {"vin": 5, "load": 1}]
    assert all("m" in lim for _, lim in got)


def test_sweep_and_vector_parameter_clash() -> None:
    with pytest.raises(VectorError, match="also a vector parameter"):
        expand(step(vectors={"vin": [5]}, sweep={"vin": {"points": [1]}}))


@given(st.dictionaries(st.sampled_from("abcd"), st.lists(st.integers(), min_size=1, max_size=4), max_size=4))
def test_product_matches_itertools(axes: dict) -> None:
    got = expand(step(vectors=dict(axes)))
    keys = list(axes)
    want = [dict(zip(keys, c)) for c in itertools.product(*axes.values())] if keys else [{}]
    assert got == want


@given(
    start=st.integers(-1000, 1000), n=st.integers(0, 200), step_cents=st.integers(1, 500),
)
def test_linear_sweep_count_and_ends(start: int, n: int, step_cents: int) -> None:
    s = step_cents / 100
    a = start / 10
    stop = a + n * s
    pts = [p["x"] for p in expand(step(sweep={"x": {"start": a, "stop": stop, "step": s}}))]
    assert len(pts) == n + 1
    assert pts[0] == a
    assert pts[-1] == pytest.approx(stop, abs=1e-9)
    assert all(x < y for x, y in zip(pts, pts[1:]))
