"""Safe expressions: evaluation, free names, refused constructs and templates."""

from __future__ import annotations

import re

import math

import pytest

from litmus_seq.errors import EXIT_ERRORED, ExpressionError
from litmus_seq.expressions import (
    Args,
    EvaluationError,
    compile_args,
    compile_expr,
    compile_value,
    is_compiled,
)


@pytest.mark.parametrize(
    "src, names, expected",
    [
        ("vin * 1.1 > 5 and load < 0.5", {"vin": 5.0, "load": 0.1}, True),
        ("vin * 1.1 > 5 and load < 0.5", {"vin": 4.0, "load": 0.1}, False),
        ("temperature > 50", {"temperature": 85}, True),
        ("not (a or b)", {"a": False, "b": False}, True),
        ("x if x > 0 else -x", {"x": -3}, 3),
        ("abs(x) + max(1, 2) - min(3, 4)", {"x": -2}, 1),
        ("round(sqrt(x), 3)", {"x": 2}, 1.414),
        ("log10(1000)", {}, 3.0),
        ("int('7') + float('0.5')", {}, 7.5),
        ("str(v) + '-' + fw", {"v": 3, "fw": "1.4.2"}, "3-1.4.2"),
        ("len(serial) == 8", {"serial": "PB000123"}, True),
        ("temperature in [25, 85]", {"temperature": 85}, True),
        ("mode == 'eco'", {"mode": "eco"}, True),
        ("fw.startswith('1.4')", {"fw": "1.4.2"}, True),
        ("cfg['vin'] * 2", {"cfg": {"vin": 2.5}}, 5.0),
        ("2 ** 10", {}, 1024),
        ("x == None", {"x": None}, True),
        ("0 < x <= 5", {"x": 5}, True),
    ],
)
def test_evaluate(src: str, names: dict, expected: object) -> None:
    assert compile_expr(src).evaluate(names) == expected


def test_free_names_exclude_functions() -> None:
    e = compile_expr("abs(vin - nominal) < tol and sqrt(load) > 0")
    assert e.names == frozenset({"vin", "nominal", "tol", "load"})
    assert compile_expr("1 + 2").names == frozenset()
    assert compile_expr("d.get('x')").names == frozenset({"d"})


def test_parsed_once_evaluated_many() -> None:
    e = compile_expr("x * 2")
    assert [e.evaluate({"x": i}) for i in range(3)] == [0, 2, 4]


@pytest.mark.parametrize(
    "src, message",
    [
        ("x +", "not a valid expression"),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("eval('1')", "unknown function 'eval'"),
        ("x.__class__", "attribute '__class__' is not accessible"),
        ("x._private", "attribute '_private' is not accessible"),
        ("__builtins__", "name '__builtins__' is not accessible"),
        ("[c for c in x]", "ListComp is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("(y := 1)", "NamedExpr is not allowed"),
        ("randint(1, 9)", "unknown function 'randint'"),
        ("x = 1", "not a valid expression"),
        ("f(x)(y)", "only named functions can be called"),
        ("absx(1)", "did you mean 'abs'"),
    ],
)
def test_refused_at_compile_time(src: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_expr(src)


@pytest.mark.parametrize(
    "src, names, message",
    [
        ("9 ** 9 ** x", {"x": 9}, "too large"),
        ("'a' * 10 ** x", {"x": 9}, "would hold more than 100,000"),
        ("1 / x", {"x": 0}, "ZeroDivisionError"),
        ("sqrt(x)", {"x": -1}, "ValueError"),
        ("x + 1", {}, "unknown name 'x'"),
        ("x + 'a'", {"x": 1}, "TypeError"),
        ("items.append(1)", {"items": [1]}, "append"),
        ("d.update({})", {"d": {}}, "update"),
        ("s.format(1)", {"s": "{}"}, "format"),
        ("d['missing']", {"d": {}}, "KeyError"),
    ],
)
def test_refused_or_failing_at_evaluation(src: str, names: dict, message: str) -> None:
    with pytest.raises(EvaluationError, match=message) as info:
        compile_expr(src).evaluate(names)
    assert info.value.exit_code == EXIT_ERRORED
    assert isinstance(info.value, ExpressionError)


def test_expression_cannot_mutate_names() -> None:
    names = {"items": [1, 2]}
    with pytest.raises(EvaluationError):
        compile_expr("items.clear()").evaluate(names)
    assert names == {"items": [1, 2]}


def test_functions_table_is_not_polluted_between_expressions() -> None:
    compile_expr("1").evaluate({})
    with pytest.raises(ExpressionError):
        compile_expr("list(x)")


def test_evaluation_cost_is_bounded() -> None:
    import timeit

    e = compile_expr("vin * 1.1 > 5 and load < 0.5")
    names = {"vin": 5.0, "load": 0.1}
    per = min(timeit.repeat(lambda: e.evaluate(names), number=2000, repeat=3)) / 2000
    assert per < 100e-6


# --------------------------------------------------------------------------- templates


def test_whole_string_template_keeps_the_type() -> None:
    v = compile_value("${vin * 2}")
    assert is_compiled(v)
    assert v.render({"vin": 2.5}) == 5.0
    assert isinstance(v.render({"vin": 2}), int)
    assert v.names == frozenset({"vin"})


def test_embedded_template_interpolates_text() -> None:
    v = compile_value("VOLT ${vin} at ${load * 1000} mA, ok=${ok}")
    assert v.render({"vin": 5.0, "load": 0.25, "ok": True}) == "VOLT 5.0 at 250.0 mA, ok=true"
    assert v.names == frozenset({"vin", "load", "ok"})


def test_braces_and_quotes_inside_an_expression() -> None:
    assert compile_value("${ {'a': 1}['a'] }").render({}) == 1
    assert compile_value("x${'}'}y").render({}) == "x}y"


def test_escaped_dollar_is_literal() -> None:
    assert compile_value("cost $${not_an_expr}") == "cost ${not_an_expr}"
    assert compile_value("$5 and ${x}").render({"x": 1}) == "$5 and 1"


def test_constants_pass_through_unchanged() -> None:
    data = {"a": 1, "b": [1, "two", {"c": None}], "d": "plain", "e": True}
    assert compile_value(data) == data
    assert not is_compiled(compile_value(data))
    assert compile_value(5) == 5


def test_nested_structures() -> None:
    v = compile_value({"a": [1, "${x}"], "b": {"c": "${x + 1}", "d": 3}})
    assert v.render({"x": 1}) == {"a": [1, 1], "b": {"c": 2, "d": 3}}
    assert v.names == frozenset({"x"})


@pytest.mark.parametrize("bad", ["${x", "a ${ b", "${}", "${x +}"])
def test_bad_templates(bad: str) -> None:
    with pytest.raises(ExpressionError):
        compile_value(bad)


def test_compile_args() -> None:
    assert compile_args(None) is None
    assert compile_args({}) is None
    const = {"volts": 5.0}
    a = compile_args(const)
    assert isinstance(a, Args) and a.constant and a.names == frozenset()
    first = a.render({})
    assert first == const and a.render({"x": 1}) is first  # the same dict, no copy per call
    t = compile_args({"volts": "${vin}", "range": "AUTO"})
    assert t is not None and not t.constant
    assert t.render({"vin": 12.0}) == {"volts": 12.0, "range": "AUTO"}
    assert t.names == frozenset({"vin"})
    with pytest.raises(ExpressionError):
        compile_args({"volts": "${vin"})


def test_nan_and_inf_flow_through() -> None:
    assert math.isnan(compile_expr("x").evaluate({"x": float("nan")}))


@pytest.mark.parametrize(
    "src, message",
    [
        ("9 ** 9 ** 9", "too large"),
        ("1 / 0", "ZeroDivisionError"),
        ("[[1]*99999]*99999", "a repetition (x * n) would hold more than 100,000"),
        ("'1'.zfill(10**9)", "zfill() would hold more than 100,000"),
        ("'%01000000000d' % 1", "a %-format with this width"),
        ("'%*d' % (10**9, 1)", "a %-format with this width"),
        ("f'{1:01000000000d}'", "a format with this width"),
        ("'ab'.replace('a', 'a' * 5000).replace('a', 'a' * 5000)", "replace() would hold"),
        ("round(5, -10**9)", "round() keeps at most 1,000 digits"),
        ("['a' * 50000, 'b' * 50001]", "a value would hold more than 100,000"),
        ("-" * 5000 + "1", "nested more than 100 levels deep"),
        ("-" * 150 + "1", "nested more than 100 levels deep"),
        ("1 + " * 2000 + "1", "nested more than 100 levels deep"),
    ],
)
def test_a_constant_over_budget_is_refused_when_compiled(src: str, message: str) -> None:
    """No name to wait for: the plan (validate) reports it at its file:line, with no large
    allocation (each check runs before the value is built)."""
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(ExpressionError, match=re.escape(message)) as info:
            compile_expr(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not isinstance(info.value, EvaluationError)  # a usage error (exit 4), not a run fault
    assert peak < 20_000_000, peak


def test_budget_at_run_time_errors_the_evaluation() -> None:
    expr = compile_expr("[[x] * 99999] * 99999")
    with pytest.raises(EvaluationError, match="would hold more than 100,000"):
        expr.evaluate({"x": 1})
    assert compile_expr("[x] * 99999").evaluate({"x": 1}) == [1] * 99999  # within the budget


def test_budget_leaves_ordinary_expressions_alone() -> None:
    assert compile_expr("'%05.2f' % x").evaluate({"x": 3.14159}) == "03.14"
    assert compile_expr("f'{x:>8}'").evaluate({"x": "ab"}) == "      ab"
    assert compile_expr("s.zfill(8).replace('0', '-')").evaluate({"s": "42"}) == "------42"
    assert compile_expr("round(x, 2)").evaluate({"x": 2.567}) == 2.57
