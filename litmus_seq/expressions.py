"""Safe expressions: ``when:`` conditions and ``${...}`` templates in action arguments.

Expressions are parsed once at plan time (:func:`compile_expr`) and evaluated many times by the
engine; parsing costs ~5x an evaluation (NOTES.md "Expressions"). Evaluation goes through
simpleeval with a curated function table (no random, no imports), bounded powers and string
sizes, no ``_``-prefixed attribute access and only read-only methods of plain data types. Free
names are collected from the AST at compile time so the plan can report a typo at its
file:line:col before any hardware is touched.
"""

from __future__ import annotations

import ast
import math
import re
import time
import types
from collections.abc import Mapping
from typing import Any

from simpleeval import (
    DEFAULT_OPERATORS,
    EvalWithCompoundTypes,
    InvalidExpression,
    NumberTooHigh,
)

from litmus_seq.errors import EXIT_ERRORED, ExpressionError
from litmus_seq.suggest import did_you_mean

__all__ = [
    "FUNCTIONS",
    "Args",
    "Compiled",
    "EvaluationError",
    "Expr",
    "compile_args",
    "compile_expr",
    "compile_value",
    "is_compiled",
]


class EvaluationError(ExpressionError):
    """An expression that parsed but failed while evaluating (unknown name at run time, division
    by zero, a type mismatch). Raised at run time, so it counts as ``errored`` (exit 3)."""

    exit_code = EXIT_ERRORED


def _sqrt(x: Any) -> float:
    return math.sqrt(x)


def _log10(x: Any) -> float:
    return math.log10(x)


# The only callables an expression can reach. Deliberately small: no random, no str.format
# tricks on objects, no type() or getattr().
FUNCTIONS: dict[str, Any] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,  # (replaced by _safe_round below, once defined)
    "sqrt": _sqrt,
    "log10": _log10,
    "int": int,
    "float": float,
    "str": str,
    "len": len,
    "bool": bool,
}

# Read-only methods of plain data; anything else (mutating list.append, dict.update) is refused
# so an expression cannot change the run's variables.
_ALLOWED_ATTRS: dict[Any, set[str]] = {
    str: {
        "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "split",
        "replace", "find", "count", "isdigit", "isalpha", "isalnum", "zfill", "title",
        "casefold", "removeprefix", "removesuffix", "partition", "rpartition",
    },
    int: {"real", "imag", "bit_length"},
    float: {"real", "imag", "is_integer"},
    bool: set(),
    type(None): set(),
    dict: {"get", "keys", "values", "items"},
    list: {"index", "count"},
    tuple: {"index", "count"},
}

_MAX_POWER_BITS = 4096  # 2**4096 is already far beyond any physical quantity


def _safe_power(a: Any, b: Any) -> Any:
    """``a ** b`` refusing integer results over 4096 bits (``9**9**9`` would hang the run)."""
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * math.log2(abs(a)) > _MAX_POWER_BITS:
            raise NumberTooHigh(f"{a} ** {b} is too large")
    return a**b


# ---- the evaluation budget: every value an expression builds is bounded *before* it is built
# where Python would allocate it at once ('1'.zfill(10**9), '%01000000000d' % 1, 'a' * 10**9),
# and measured (a bounded walk) after each step otherwise. simpleeval's own check of produced
# containers walks every element (a list of 99,999 references to a 99,999-item list: 10**10
# steps), so the size check runs first and stops counting at the budget.

#: Items (list, tuple, dict and set entries, nested ones counted) or characters one value of
#: an expression may hold.
MAX_VALUE_SIZE = 100_000
#: CPU seconds one evaluation may take (a safety net: the size budget already bounds the work).
#: The evaluating thread's CPU time, not the clock: a loaded station must not fail a unit.
MAX_EVAL_S = 0.5
#: Nesting of an expression's syntax tree (5,000 nested minus signs would overflow the stack).
MAX_EXPR_DEPTH = 100
#: Characters of one expression.
MAX_EXPR_LENGTH = 10_000


class BudgetExceeded(InvalidExpression):
    """An expression that would build too large a value or take too long."""


_PLAIN = frozenset({int, float, bool, type(None), complex, str})


def _size(value: Any, budget: int = MAX_VALUE_SIZE) -> int:
    """Items and characters in ``value``, counted until the count passes ``budget``.

    Also refuses a module inside a value (simpleeval's own walk of every produced element is
    replaced by this one: names hold plain data and the function table is curated).
    """
    count = 0
    stack = [value]
    while stack and count <= budget:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            count += len(item)
        elif kind in (list, tuple, set, frozenset, dict):
            items = list(item.keys()) + list(item.values()) if kind is dict else item
            count += len(item)
            if count > budget:
                break
            kinds = set(map(type, items))
            if str in kinds:
                count += sum(len(x) for x in items if type(x) is str)
            if not kinds <= _PLAIN:
                stack.extend(x for x in items if type(x) not in _PLAIN)
        elif isinstance(item, types.ModuleType):
            raise BudgetExceeded("modules are not values of an expression")
    return count


def _too_big(what: str) -> BudgetExceeded:
    return BudgetExceeded(f"{what} would hold more than {MAX_VALUE_SIZE:,} items or characters")


def _safe_mult(a: Any, b: Any) -> Any:
    """``a * b`` refusing a repeated sequence over the budget before it is built."""
    for seq, times in ((a, b), (b, a)):
        if isinstance(times, int) and hasattr(seq, "__len__") and not isinstance(seq, dict):
            if times > 0 and _size(seq) * times > MAX_VALUE_SIZE:
                raise _too_big("a repetition (x * n)")
    return a * b


_FORMAT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_widths(widths: list[str], what: str) -> None:
    for width in widths:
        if width == "*" or (width and int(width) > MAX_VALUE_SIZE):
            raise _too_big(what)


def _safe_mod(a: Any, b: Any) -> Any:
    """``a % b``: for text, ``%``-formatting with widths within the budget."""
    if isinstance(a, str):
        _check_widths([w for m in _FORMAT_FIELD.finditer(a) for w in m.groups() if w],
                      "a %-format with this width")
    return a % b


def _safe_round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > 1000:
        raise BudgetExceeded("round() keeps at most 1,000 digits")
    return round(number, ndigits)


def _grown_size(method: Any, args: tuple[Any, ...]) -> int:
    """The size a growing ``str`` method's result would have (0 for the others)."""
    name, text = method.__name__, method.__self__
    if name == "zfill" and args and isinstance(args[0], int):
        return args[0]
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        times = text.count(args[0]) if args[0] else len(text) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            times = min(times, args[2])
        return len(text) + times * max(0, len(args[1]) - len(args[0]))
    return 0


class _BudgetEval(EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with the budget: sizes checked before its own walk of produced values, a
    deadline per evaluation, and growing methods and format widths bounded before they run."""

    deadline = 0.0
    ticks = 0

    def _eval(self, node: ast.AST) -> Any:
        self.ticks += 1
        if not self.ticks & 63 and time.thread_time() > self.deadline:  # (the clock costs ~1 µs)
            raise BudgetExceeded(f"the expression took more than {MAX_EVAL_S:g} s of CPU time")
        result = self.nodes[type(node)](node)
        if type(result) not in _SCALARS and _size(result) > MAX_VALUE_SIZE:
            raise _too_big("a value")
        return result

    def _eval_call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Attribute):
            method = self._eval(node.func)
            args = tuple(self._eval(a) for a in node.args)
            kwargs = dict(self._eval(k) for k in node.keywords)
            if isinstance(getattr(method, "__self__", None), str) and _grown_size(method, args) > MAX_VALUE_SIZE:
                raise _too_big(f"{method.__name__}()")
            return method(*args, **kwargs)
        return super()._eval_call(node)

    def _eval_formattedvalue(self, node: ast.FormattedValue) -> Any:
        if node.format_spec:
            spec = self._eval(node.format_spec)
            _check_widths(re.findall(r"\d+", str(spec)), "a format with this width")
        return super()._eval_formattedvalue(node)


_SCALARS = frozenset({int, float, bool, type(None), complex})
FUNCTIONS["round"] = _safe_round

_OPERATORS = dict(DEFAULT_OPERATORS)
_OPERATORS[ast.Pow] = _safe_power
_OPERATORS[ast.Mult] = _safe_mult
_OPERATORS[ast.Mod] = _safe_mod

# AST nodes an expression may contain; anything else (lambda, comprehensions, walrus, await,
# starred, f-strings with nested calls are fine) is refused at compile time.
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.Expr, ast.Name, ast.Load, ast.Constant, ast.UnaryOp, ast.BinOp,
    ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.Subscript, ast.Attribute,
    ast.Slice, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.JoinedStr, ast.FormattedValue,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)


class Expr:
    """One compiled expression: parsed once, evaluated many times over plain-data names.

    Not thread-safe (the evaluator's name table is swapped per call); the engine evaluates from
    one thread.
    """

    __slots__ = ("source", "names", "_node", "_ev")

    def __init__(self, source: str, node: ast.AST, names: frozenset[str]) -> None:
        self.source = source
        self.names = names
        self._node = node
        ev = _BudgetEval(operators=_OPERATORS, functions=dict(FUNCTIONS), names={},
                         allowed_attrs=_ALLOWED_ATTRS)
        ev.expr = source
        self._ev = ev

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The value of the expression over ``names``; :class:`EvaluationError` on failure."""
        ev = self._ev
        ev.names = names
        ev.deadline = time.thread_time() + MAX_EVAL_S
        try:
            return ev._eval(self._node)
        except RecursionError:
            raise EvaluationError(f"{self.source!r}: nested too deeply") from None
        except InvalidExpression as exc:
            raise EvaluationError(f"{self.source!r}: {_explain(exc)}") from None
        except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
            raise EvaluationError(f"{self.source!r}: {type(exc).__name__}: {exc}") from None
        finally:
            ev.names = {}

    def __repr__(self) -> str:
        return f"Expr({self.source!r})"


def _explain(exc: InvalidExpression) -> str:
    name = getattr(exc, "name", None)
    if type(exc).__name__ == "NameNotDefined" and name:
        return f"unknown name '{name}'"
    return str(exc)


def compile_expr(src: str) -> Expr:
    """Parse ``src`` once; :class:`ExpressionError` if it does not parse or uses what is refused."""
    if not isinstance(src, str):
        raise ExpressionError(f"expected an expression string, got {type(src).__name__} {src!r}")
    text = src.strip()
    if not text:
        raise ExpressionError("empty expression")
    if len(text) > MAX_EXPR_LENGTH:
        raise ExpressionError(f"{text[:40]!r}...: an expression is at most {MAX_EXPR_LENGTH:,} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"{_short(src)} is not a valid expression{col}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise _too_deep(src) from None
    if _depth(tree) > MAX_EXPR_DEPTH:
        raise _too_deep(src)
    free: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(
                f"{src!r}: {type(node).__name__} is not allowed in an expression "
                "(only arithmetic, comparisons, and/or/not, x if c else y, and the functions "
                f"{', '.join(sorted(FUNCTIONS))})"
            )
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"{src!r}: attribute '{node.attr}' is not accessible")
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                if node.func.id not in FUNCTIONS:
                    raise ExpressionError(
                        f"{src!r}: unknown function '{node.func.id}'{did_you_mean(node.func.id, FUNCTIONS)}; "
                        f"available: {', '.join(sorted(FUNCTIONS))}"
                    )
            elif not isinstance(node.func, ast.Attribute):
                raise ExpressionError(f"{src!r}: only named functions can be called")
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ExpressionError(f"{src!r}: name '{node.id}' is not accessible")
            if node.id not in FUNCTIONS:
                free.add(node.id)
    expr = Expr(src, tree.body, frozenset(free))
    if not free:  # a constant: its value (or its error) is known now, before anything runs
        try:
            expr.evaluate({})
        except EvaluationError as exc:
            raise ExpressionError(str(exc)) from None
    return expr


def _short(src: str) -> str:
    return repr(src) if len(src) <= 60 else repr(src[:57] + "...")


def _too_deep(src: str) -> ExpressionError:
    return ExpressionError(f"{_short(src)}: nested more than {MAX_EXPR_DEPTH} levels deep; "
                           "simplify the expression")


def _depth(tree: ast.AST) -> int:
    """How deep the syntax tree nests (iteratively: the tree may be deeper than the stack)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_EXPR_DEPTH:
                break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


# --------------------------------------------------------------------------- templates


class Compiled:
    """Base of compiled template values: ``render(names)`` and the free ``names``."""

    __slots__ = ("names",)

    names: frozenset[str]

    def render(self, names: Mapping[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class ExprValue(Compiled):
    """``"${expr}"``: the expression's typed value (a number stays a number)."""

    __slots__ = ("expr",)

    def __init__(self, expr: Expr) -> None:
        self.expr = expr
        self.names = expr.names

    def render(self, names: Mapping[str, Any]) -> Any:
        return self.expr.evaluate(names)

    def __repr__(self) -> str:
        return f"ExprValue({self.expr.source!r})"


class Interpolated(Compiled):
    """``"V=${vin} at ${load}A"``: a string with each ``${...}`` replaced by ``str(value)``."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | Expr]) -> None:
        self.parts = parts
        self.names = frozenset().union(*(p.names for p in parts if isinstance(p, Expr)))

    def render(self, names: Mapping[str, Any]) -> str:
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                v = p.evaluate(names)
                out.append("true" if v is True else "false" if v is False else str(v))
        return "".join(out)


class DictValue(Compiled):
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        self.items = items
        self.names = frozenset().union(*(v.names for _, v in items if isinstance(v, Compiled)))

    def render(self, names: Mapping[str, Any]) -> dict[Any, Any]:
        return {k: (v.render(names) if isinstance(v, Compiled) else v) for k, v in self.items}


class ListValue(Compiled):
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.names = frozenset().union(*(v.names for v in items if isinstance(v, Compiled)))

    def render(self, names: Mapping[str, Any]) -> list[Any]:
        return [(v.render(names) if isinstance(v, Compiled) else v) for v in self.items]


def is_compiled(obj: Any) -> bool:
    """True when ``obj`` came out of :func:`compile_value` with something to evaluate."""
    return isinstance(obj, Compiled)


def _split_template(text: str) -> list[str | Expr] | None:
    """Split a string into literal parts and expressions; None when there is no ``${``.

    ``$${`` is a literal ``${``. Braces inside an expression (a dict literal, a string holding
    ``}``) are matched so ``${ {'a': 1}['a'] }`` works.
    """
    if "${" not in text:
        return None
    parts: list[str | Expr] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("$${", i):
            buf.append("${")
            i += 3
            continue
        if text.startswith("${", i):
            j = i + 2
            depth = 1
            quote: str | None = None
            while j < n:
                ch = text[j]
                if quote:
                    if ch == "\\":
                        j += 2
                        continue
                    if ch == quote:
                        quote = None
                elif ch in "'\"":
                    quote = ch
                elif ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                raise ExpressionError(f"{text!r}: '${{' at position {i + 1} is not closed with '}}'")
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(compile_expr(text[i + 2 : j]))
            i = j + 1
            continue
        buf.append(text[i])
        i += 1
    if buf:
        parts.append("".join(buf))
    return parts


def compile_value(obj: Any) -> Any:
    """Compile a nested dict/list/str value: a :class:`Compiled` when it holds ``${...}``,
    else the constant itself (so callers can use it as is)."""
    if isinstance(obj, str):
        parts = _split_template(obj)
        if parts is None:
            return obj
        if len(parts) == 1 and isinstance(parts[0], Expr):
            return ExprValue(parts[0])
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)  # type: ignore[arg-type]  # only escaped "$${"
        return Interpolated(parts)
    if isinstance(obj, dict):
        items = [(k, compile_value(v)) for k, v in obj.items()]
        if any(isinstance(v, Compiled) for _, v in items):
            return DictValue(items)
        return {k: v for k, v in items}
    if isinstance(obj, list):
        values = [compile_value(v) for v in obj]
        if any(isinstance(v, Compiled) for v in values):
            return ListValue(values)
        return values
    return obj


class Args:
    """Compiled keyword arguments of an action. ``render`` returns the constant dict itself
    when nothing is templated (no per-call copy on the hot path)."""

    __slots__ = ("names", "_const", "_compiled")

    def __init__(self, compiled: Any) -> None:
        if isinstance(compiled, DictValue):
            self._compiled: DictValue | None = compiled
            self._const: dict[str, Any] | None = None
            self.names = compiled.names
        else:
            self._compiled = None
            self._const = compiled
            self.names = frozenset()

    @property
    def constant(self) -> bool:
        return self._compiled is None

    def render(self, names: Mapping[str, Any]) -> dict[str, Any]:
        if self._compiled is None:
            return self._const  # type: ignore[return-value]
        return self._compiled.render(names)

    def __repr__(self) -> str:
        return f"Args({self._const if self._compiled is None else self._compiled.items!r})"


def compile_args(d: dict[str, Any] | None) -> Args | None:
    """Compile an action's ``args:``; None when there are none."""
    if not d:
        return None
    if not isinstance(d, dict):
        raise ExpressionError(f"args must be a mapping of name -> value, got {type(d).__name__}")
    return Args(compile_value(d))
