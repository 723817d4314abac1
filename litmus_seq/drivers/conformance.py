"""The driver conformance suite behind ``litmus-seq plugins check DRIVER`` and the pytest kit.

Each rule is what the engine relies on, tried on a real instance (connected to ``resource``,
e.g. a pyvisa-sim device): the constructor signature, the contract methods, the options model,
``connect()``, the identity fields, ``calibration()`` if present, that an unanswered query is a
timeout *error* (not a hang, not a raw backend exception), that ``close()`` can be called twice,
and that a call on a closed driver is an :class:`~litmus_seq.errors.LitmusError` (error mapping).
Every call runs under a watchdog, so a hanging driver fails its rule instead of hanging the check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litmus_seq.drivers.base import IDENTITY_KEYS
from litmus_seq.drivers.contract import REQUIRED_METHODS, contract_violations
from litmus_seq.errors import InstrumentError, LitmusError

__all__ = ["PASS", "FAIL", "SKIP", "RuleResult", "check_driver"]

PASS, FAIL, SKIP = "pass", "FAIL", "skip"

#: A query no instrument answers: the driver must turn the silence into a timeout error.
NO_REPLY_QUERY = "LITMUS:CHECK:NOREPLY?"
#: Methods not tried by the error-mapping rule (the contract's own, and I/O primitives).
_NOT_INSTRUMENT_METHODS = frozenset((*REQUIRED_METHODS, "calibration", "write", "query", "query_float",
                                     "clear_errors", "number", "mocked_methods"))


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    result: str  # pass | FAIL | skip
    detail: str = ""


def _call(fn: Callable[[], Any], timeout_s: float) -> tuple[Any, BaseException | None, bool]:
    """``(value, exception, timed_out)`` of ``fn()`` run on a daemon thread under a watchdog."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported as the rule's result
            box["exc"] = exc

    worker = threading.Thread(target=target, daemon=True, name="litmus-seq-check")
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return None, None, True
    return box.get("value"), box.get("exc"), False


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def check_driver(cls: Any, *, resource: str | None = None, settings: dict[str, Any] | None = None,
                 timeout_s: float = 10.0) -> list[RuleResult]:
    """Run every rule on ``cls``; one :class:`RuleResult` per rule, in order."""
    results: list[RuleResult] = []
    violations = contract_violations(cls)
    ctor = [v for v in violations if v.startswith("its constructor") or "is not a class" in v]
    methods = [v for v in violations if v not in ctor]
    results.append(RuleResult("constructor (resource, settings)", FAIL if ctor else PASS, "; ".join(ctor)))
    results.append(RuleResult("connect, close, identity", FAIL if methods else PASS, "; ".join(methods)))
    if violations:
        return results + [RuleResult(r, SKIP, "the contract is broken") for r in _LIVE_RULES]
    full = {**(settings or {}), "role": "check", "mock": None}
    driver, exc, hung = _call(lambda: cls(resource=resource, settings=full), timeout_s)
    if hung or exc is not None:
        detail = f"constructing it did not return within {timeout_s:g} s" if hung else _text(exc)  # type: ignore[arg-type]
        return results + [RuleResult("options and construction", FAIL, detail)] + [
            RuleResult(r, SKIP, "not constructed") for r in _LIVE_RULES[1:]]
    model = getattr(cls, "options_model", None)
    results.append(RuleResult("options and construction", PASS,
                              f"options model {model.__name__}" if model is not None else "no options model"))
    _, exc, hung = _call(driver.connect, timeout_s)
    if hung or exc is not None:
        detail = f"connect() did not return within {timeout_s:g} s" if hung else _text(exc)  # type: ignore[arg-type]
        results.append(RuleResult("connect", FAIL, detail))
        _call(driver.close, timeout_s)
        return results + [RuleResult(r, SKIP, "not connected") for r in _LIVE_RULES[2:]]
    results.append(RuleResult("connect", PASS, f"resource {resource!r}" if resource else ""))
    results.append(_identity_rule(driver, timeout_s))
    results.append(_calibration_rule(driver, timeout_s))
    results.append(_timeout_rule(driver, timeout_s))
    results.append(_close_rule(driver, timeout_s))
    results.append(_error_mapping_rule(driver, timeout_s))
    return results


_LIVE_RULES = ("options and construction", "connect", "identity fields", "calibration()",
               "timeout is an error", "close twice", "error mapping")


def _identity_rule(driver: Any, timeout_s: float) -> RuleResult:
    ident, exc, hung = _call(driver.identity, timeout_s)
    if hung or exc is not None:
        return RuleResult("identity fields", FAIL, "identity() hung" if hung else _text(exc))  # type: ignore[arg-type]
    if not isinstance(ident, dict):
        return RuleResult("identity fields", FAIL, f"identity() returned {type(ident).__name__}, expected a dict")
    wrong = [k for k in IDENTITY_KEYS if not isinstance(ident.get(k), str)]
    if wrong:
        return RuleResult("identity fields", FAIL, f"{', '.join(wrong)} missing or not strings (got {ident!r})")
    if not ident["model"]:
        return RuleResult("identity fields", FAIL, "model is empty: a row must say which instrument took it")
    return RuleResult("identity fields", PASS, ",".join(ident[k] for k in IDENTITY_KEYS))


def _calibration_rule(driver: Any, timeout_s: float) -> RuleResult:
    from litmus_seq.drivers.calibration import status

    fn = getattr(driver, "calibration", None)
    if not callable(fn):
        return RuleResult("calibration()", SKIP, "not provided (the station file's calibration is used)")
    data, exc, hung = _call(fn, timeout_s)
    if hung or exc is not None:
        return RuleResult("calibration()", FAIL, "calibration() hung" if hung else _text(exc))  # type: ignore[arg-type]
    if data is None:
        return RuleResult("calibration()", PASS, "reports nothing")
    if not isinstance(data, dict):
        return RuleResult("calibration()", FAIL, f"returned {type(data).__name__}, expected a dict (due, certificate)")
    if data.get("due") not in (None, "") and status(data.get("due"), None, "instrument").due is None:
        return RuleResult("calibration()", FAIL, f"due {data.get('due')!r} is not a date (YYYY-MM-DD)")
    return RuleResult("calibration()", PASS, f"due {data.get('due')}, certificate {data.get('certificate')}")


def _timeout_rule(driver: Any, timeout_s: float) -> RuleResult:
    query = getattr(driver, "query", None)
    if not callable(query):
        return RuleResult("timeout is an error", SKIP, "no query() to send an unanswered command with")
    _, exc, hung = _call(lambda: query(NO_REPLY_QUERY), timeout_s)
    if hung:
        return RuleResult("timeout is an error", FAIL, f"query({NO_REPLY_QUERY!r}) still waiting after {timeout_s:g} s")
    if exc is None:
        return RuleResult("timeout is an error", PASS, f"{NO_REPLY_QUERY!r} was answered")
    if isinstance(exc, InstrumentError):
        return RuleResult("timeout is an error", PASS, "InstrumentError")
    return RuleResult("timeout is an error", FAIL, f"raised {_text(exc)}, expected InstrumentError")


def _close_rule(driver: Any, timeout_s: float) -> RuleResult:
    for attempt in ("first", "second"):
        _, exc, hung = _call(driver.close, timeout_s)
        if hung or exc is not None:
            what = f"the {attempt} close() " + ("hung" if hung else f"raised {_text(exc)}")  # type: ignore[arg-type]
            return RuleResult("close twice", FAIL, what + "; close must be idempotent and must not raise")
    return RuleResult("close twice", PASS)


def _error_mapping_rule(driver: Any, timeout_s: float) -> RuleResult:
    """A call on the closed driver must be a LitmusError (what the engine records as errored)."""
    import inspect

    candidates = []
    for name in sorted(dir(type(driver))):
        if name.startswith("_") or name in _NOT_INSTRUMENT_METHODS:
            continue
        fn = getattr(driver, name, None)
        if not callable(fn) or inspect.isclass(fn):
            continue
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            continue
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            candidates.append(name)
    if not candidates:
        return RuleResult("error mapping", SKIP, "no instrument method without arguments to try")
    name = next((n for n in candidates if n.startswith(("measure", "read", "get"))), candidates[0])
    _, exc, hung = _call(getattr(driver, name), timeout_s)
    if hung:
        return RuleResult("error mapping", FAIL, f"{name}() on a closed driver hung")
    if exc is None:
        return RuleResult("error mapping", SKIP, f"{name}() works without a connection (nothing to map)")
    if isinstance(exc, LitmusError):
        return RuleResult("error mapping", PASS, f"{name}() on a closed driver: {type(exc).__name__}")
    return RuleResult("error mapping", FAIL, f"{name}() on a closed driver raised {_text(exc)}; raise "
                                             f"litmus_seq.InstrumentError (role, resource, cause) instead")
