"""The strict YAML loader: YAML 1.2 scalars, structural errors, the locator, pydantic mapping."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from litmus_seq import models
from litmus_seq.errors import ConfigError, Location, ValidationError
from litmus_seq.loader import Document, describe_value, load_document, load_model


def write(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


# --------------------------------------------------------------------------- YAML 1.2 scalars


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5e-3", 0.005),  # YAML 1.1 (PyYAML default) gives the string "5e-3"
        ("1E3", 1000.0),
        ("-2.5", -2.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("+12", 12),
        ("010", 10),  # decided: decimal, not octal 8
        ("0o10", 8),
        ("0x1F", 31),
        ("on", "on"),
        ("off", "off"),
        ("yes", "yes"),
        ("NO", "NO"),
        ("y", "y"),
        ("12:30", "12:30"),  # YAML 1.1 gives 750
        ("1_000", "1_000"),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("False", False),
        ("tRue", "tRue"),
        ("~", None),
        ("null", None),
        ("NULL", None),
        ("", None),
        ("2027-03-01", "2027-03-01"),  # no timestamps in YAML 1.2 core; models parse dates
        ('"5e-3"', "5e-3"),
        ("!!str 10", "10"),
        ("!!float 3", 3.0),
        ("'on'", "on"),
    ],
)
def test_scalars_follow_yaml_1_2(tmp_path: Path, text: str, expected: object) -> None:
    doc = load_document(write(tmp_path, f"x: {text}\n"))
    value = doc.data["x"]
    assert value == expected
    assert type(value) is type(expected)


def test_special_floats(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "a: .inf\nb: -.Inf\nc: .NaN\n"))
    assert doc.data["a"] == math.inf
    assert doc.data["b"] == -math.inf
    assert math.isnan(doc.data["c"])


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_python_float_literal_loads_as_that_float(value: float) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        doc = load_document(write(Path(d), f"x: {value!r}\n"))
    assert isinstance(doc.data["x"], float)
    assert doc.data["x"] == value


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30))
def test_any_double_quoted_string_round_trips(value: str) -> None:
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        doc = load_document(write(Path(d), f"x: {json.dumps(value, ensure_ascii=False)}\n"))
    assert doc.data["x"] == value


def test_non_string_scalar_keys_become_their_text(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "1: one\ntrue: t\n3.30: v\nnull: n\n"))
    assert doc.data == {"1": "one", "true": "t", "3.30": "v", "null": "n"}


def test_merge_keys_and_aliases(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nl: *b\n"))
    assert doc.data["m"] == {"x": 1, "y": 3}
    assert doc.data["l"] == {"x": 1, "y": 2}
    # a merged key is located at its definition (the anchored mapping)
    assert doc.locate(("m", "x")) == Location(doc.display, 1, 14)
    assert doc.locate(("m", "y")) == Location(doc.display, 4, 6)


# --------------------------------------------------------------------------- structural errors


def test_duplicate_key_is_an_error_at_the_second_key(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\nb:\n  c: 2\n  c: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_document(path, display="x.yaml")
    assert problems(exc) == [
        "x.yaml:4:3: duplicate key 'c' (first defined on line 3); YAML keeps only one: "
        "remove or rename one of them"
    ]


def test_tab_indentation_points_at_the_tab(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_document(write(tmp_path, "a: 1\nb:\n  \tc: 2\n"), display="t.yaml")
    (line,) = problems(exc)
    assert line.startswith("t.yaml:3:3: tab character used for indentation")
    assert "spaces" in line


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("", "1:1", "the file is empty"),
        ("# just a comment\n", "1:1", "the file is empty"),
        ("- a\n- b\n", "1:1", "top level must be a mapping of keys (`key: value` lines), got a list"),
        ("just text\n", "1:1", "got a single value"),
        ("a: [1, 2\nb: 3\n", "2:2", "started on line 1, column 4"),
        ("a: 1\n b: 2\n", "2:3", "invalid YAML: mapping values are not allowed"),
        ("a: 1\n---\nb: 2\n", "2:1", "more than one YAML document"),
        ("x: *nope\n", "1:4", "undefined alias"),
        ("x: !!python/object:os.system ls\n", "1:4", "unsupported tag"),
        ("x: !!int abc\n", "1:4", "not a valid int"),
        ("? [a, b]\n: 1\n", "1:3", "a key cannot be a list"),
        ("a: &x [1, *x]\n", "1:11", "recursive"),
    ],
)
def test_broken_yaml_is_a_located_config_error(tmp_path: Path, text: str, where: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_document(write(tmp_path, text), display="b.yaml")
    (line,) = problems(exc)
    assert line.startswith(f"b.yaml:{where}: "), line
    assert fragment in line


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_document(tmp_path / "nope.yaml")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(ConfigError) as exc:
        load_document(bad, display="bin.yaml")
    assert problems(exc)[0].startswith("bin.yaml:2: not UTF-8")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfid: x\n")
    assert load_document(path).data == {"id": "x"}


# --------------------------------------------------------------------------- locator

LOCATE = """\
id: b
instruments:
  dmm:
    driver: mock
    mock: {read: [1, 2]}
  psu:
    driver: mock
"""


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ((), False, (1, 1)),
        (("instruments", "dmm", "driver"), False, (4, 13)),
        (("instruments", "dmm", "driver"), True, (4, 5)),
        (("instruments", "dmm", "mock", "read", 1), False, (5, 22)),
        (("instruments", "dmm", "missing"), False, (4, 5)),  # missing key -> its mapping
        (("instruments", "dmm", "mock", "read", 9), False, (5, 18)),  # bad index -> the list
        (("instruments", "psu"), True, (6, 3)),
        (("nope", "deeper"), False, (1, 1)),
    ],
)
def test_locate(tmp_path: Path, path: tuple, key: bool, expected: tuple[int, int]) -> None:
    doc = load_document(write(tmp_path, LOCATE), display="s.yaml")
    assert isinstance(doc, Document)
    assert doc.locate(path, key=key) == Location("s.yaml", *expected)


def test_display_defaults_to_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\n")
    doc = load_document(path)
    assert doc.display == str(path)
    assert doc.path == path


# --------------------------------------------------------------------------- pydantic mapping

SEQ = """\
sequence: x
guardband_pct: -1
steps:
  - name: a
    limit: {hihg: 1}
  - name: b
    do:
      - measure: m
        limit:
          low: abc
      - mesure: 1
      - wait: [1]
      - call: set_voltage
  - group: g
    steps:
      - include: 3
      - name: c
        retry: 3
        vectors: [{limits: {x: {lo: 1}}}]
  - nme: q
"""


def test_every_pydantic_error_is_located_and_human(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as exc:
        load_model(write(tmp_path, SEQ), models.Sequence, display="s.yaml")
    assert problems(exc) == [
        "s.yaml:2:16: guardband_pct: must be >= 0, got -1",
        "s.yaml:5:13: steps[0].limit.hihg: unknown key (did you mean 'high'?)",
        "s.yaml:10:16: steps[1].do[0].limit.low: expected a number, got 'abc'",
        "s.yaml:11:9: steps[1].do[1]: unknown action key 'mesure' (did you mean 'measure'?)",
        "s.yaml:12:15: steps[1].do[2].wait: expected a number or a string, got a list",
        "s.yaml:13:15: steps[1].do[3].call: expected role.method (a station role and one of "
        "its methods, e.g. psu.set_voltage), got 'set_voltage'",
        "s.yaml:16:18: steps[2].steps[0].include: expected a string, got 3",
        "s.yaml:18:16: steps[2].steps[1].retry: expected a mapping (keys: max_retries, "
        "delay_s), got 3",
        "s.yaml:19:33: steps[2].steps[1].vectors[0].limits.x.lo: unknown key (did you mean 'low'?)",
        "s.yaml:20:5: steps[3].nme: unknown key (did you mean 'name'?)",
    ]


def test_missing_key_points_at_its_mapping(tmp_path: Path) -> None:
    text = "id: s\ninstruments:\n  dmm:\n    resource: X\n"
    with pytest.raises(ValidationError) as exc:
        load_model(write(tmp_path, text), models.Station, display="st.yaml")
    assert problems(exc) == [
        "st.yaml:4:5: instruments.dmm: missing required key 'driver'; add `driver: ...`"
    ]


def test_a_typo_of_a_required_key_is_one_problem_not_two(tmp_path: Path) -> None:
    text = "id: s\ninstruments:\n  dmm:\n    drivr: mock\n"
    with pytest.raises(ValidationError) as exc:
        load_model(write(tmp_path, text), models.Station, display="st.yaml")
    assert problems(exc) == ["st.yaml:4:5: instruments.dmm.drivr: unknown key (did you mean 'driver'?)"]


def test_unknown_key_without_close_match_lists_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as exc:
        load_model(write(tmp_path, "id: s\nzzzzzz: 1\n"), models.Station, display="st.yaml")
    (line,) = problems(exc)
    assert line.startswith("st.yaml:2:1: zzzzzz: unknown key; allowed keys: id, name,")


def test_from_alias_and_date_and_literal(tmp_path: Path) -> None:
    text = (
        "sequence: s\nsteps:\n  - name: a\n    do:\n      - measure: m\n        form: dmm.v\n"
        "  - prompt: ok?\n    type: choise\n"
    )
    with pytest.raises(ValidationError) as exc:
        load_model(write(tmp_path, text), models.Sequence, display="s.yaml")
    assert problems(exc) == [
        "s.yaml:6:9: steps[0].do[0].form: unknown key (did you mean 'from'?)",
        "s.yaml:8:11: steps[1].type: expected one of confirm, choice, input; got 'choise' "
        "(did you mean 'choice'?)",
    ]
    station = "id: s\ninstruments:\n  d:\n    driver: mock\n    calibration: {due: 2027-02-30}\n"
    with pytest.raises(ValidationError) as exc2:
        load_model(write(tmp_path, station, "st.yaml"), models.Station, display="st.yaml")
    assert problems(exc2) == [
        "st.yaml:5:24: instruments.d.calibration.due: expected a date (YYYY-MM-DD), got '2027-02-30'"
    ]


def test_union_member_noise_is_dropped(tmp_path: Path) -> None:
    text = "id: p\nspecs:\n  r:\n    bands:\n      - when: {t: [cold, 0]}\n        low: 1\n"
    with pytest.raises(ValidationError) as exc:
        load_model(write(tmp_path, text), models.Product, display="p.yaml")
    assert problems(exc) == ["p.yaml:5:20: specs.r.bands[0].when.t[0]: expected a number, got 'cold'"]


def test_valid_file_gives_model_and_document(tmp_path: Path) -> None:
    text = "id: s\ninstruments:\n  d:\n    driver: mock\n    calibration: {due: 2027-03-01}\n"
    station, doc = load_model(write(tmp_path, text), models.Station)
    assert isinstance(station, models.Station)
    assert str(station.instruments["d"].calibration.due) == "2027-03-01"
    assert doc.data["instruments"]["d"]["driver"] == "mock"


@pytest.mark.parametrize(
    ("value", "text"),
    [({}, "an empty mapping"), ({"a": 1}, "a mapping"), ([], "an empty list"), ([1], "a list"),
     (None, "nothing (an empty value)"), (True, "true"), ("x" * 100, repr("x" * 57 + "...")), (3, "3")],
)
def test_describe_value(value: object, text: str) -> None:
    assert describe_value(value) == text


def test_two_thousand_steps_load_and_validate_fast(tmp_path: Path) -> None:
    lines = ["sequence: big", "version: 1", "steps:"]
    for i in range(2000):
        lines += [
            f"  - name: output_voltage_{i}",
            f"    measure: rail_{i}",
            "    from: dmm.measure_dc_voltage",
            "    limit: {low: 3.135, high: 3.465, units: V}",
        ]
    text = "\n".join(lines) + "\n"
    path = write(tmp_path, text)

    def best_of(fn: object, n: int = 5) -> float:
        best = math.inf
        for _ in range(n):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            best = min(best, time.perf_counter() - t0)
        return best

    # The budget is 200 ms on an idle 2-core machine, where PyYAML's C compose alone takes
    # ~65 ms; on a busy shared machine it scales with that baseline, measured alongside.
    baseline = best_of(lambda: yaml.compose(text, Loader=yaml.CSafeLoader))
    ours = best_of(lambda: load_model(path, models.Sequence))
    seq, _doc = load_model(path, models.Sequence)
    assert len(seq.steps) == 2000
    assert seq.steps[1999].limit.high == 3.465
    budget = max(0.2, 3.0 * baseline)
    assert ours < budget, f"load+validate of 2,000 steps took {ours * 1000:.0f} ms (compose {baseline * 1000:.0f} ms)"
