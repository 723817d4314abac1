"""The driver contract (DESIGN §4), checked on the class before any instrument is touched.

The engine constructs ``DriverClass(resource=<str or None>, settings=<dict>)`` and calls
``connect()``, ``identity()`` and ``close()``. A class that cannot take those calls would only
fail once the run has started (as "cannot connect", after the stores were opened); ``validate``,
``plugins`` and ``run`` (also ``--dry-run``) report it instead, at the class's own file and line.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from litmus_seq.errors import Location, Problem

__all__ = ["EXPECTED_INIT", "REQUIRED_METHODS", "class_location", "contract_problems", "contract_violations"]

#: The methods every driver class must have (called by the engine, not by sequences).
REQUIRED_METHODS: tuple[str, ...] = ("connect", "close", "identity")

#: How the constructor must look, quoted in every message about it.
EXPECTED_INIT = "def __init__(self, resource: str | None = None, settings: dict | None = None)"


def contract_violations(cls: Any) -> list[str]:
    """What ``cls`` lacks to be a driver, one sentence per broken rule (empty: it conforms)."""
    if not inspect.isclass(cls):
        return [f"{cls!r} is not a class; register the driver class itself ({EXPECTED_INIT})"]
    found: list[str] = []
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # classes implemented in C without a signature: cannot tell
        signature = None
    if signature is not None:
        try:
            signature.bind(resource=None, settings={})
        except TypeError as exc:
            found.append(
                f"its constructor {cls.__name__}({_params(signature)}) cannot be called as "
                f"{cls.__name__}(resource=..., settings=...) ({exc}); expected {EXPECTED_INIT}"
            )
    missing = [name for name in REQUIRED_METHODS if not callable(getattr(cls, name, None))]
    if missing:
        listed = ", ".join(f"{name}()" for name in missing)
        found.append(
            f"it has no {listed} method{'s' if len(missing) > 1 else ''}; a driver needs connect(), "
            f"close() and identity() -> dict (subclass litmus_seq.drivers.Driver for harmless defaults)"
        )
    return found


def _params(signature: inspect.Signature) -> str:
    """``port, *args, **kw``: the parameter names as written, without annotations."""
    marks = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return ", ".join(marks.get(p.kind, "") + p.name for p in signature.parameters.values())


def class_location(cls: Any, root: Path | None = None) -> Location:
    """``file:line`` of the class statement (relative to ``root`` when inside it)."""
    try:
        file = inspect.getsourcefile(cls) or inspect.getfile(cls)
    except (TypeError, OSError):
        return Location(f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)!s}")
    try:
        line: int | None = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        line = None
    shown = str(file)
    if root is not None:
        try:
            shown = Path(file).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return Location(shown, line)


def contract_problems(
    drivers: Iterable[tuple[str, Any]], root: Path | None = None, used_by: dict[str, list[str]] | None = None
) -> list[Problem]:
    """One problem per broken rule of each ``(driver name, class)``, located at the class.

    ``used_by`` (driver name -> station roles) adds which roles would have used it.
    """
    problems: list[Problem] = []
    for name, cls in drivers:
        violations = contract_violations(cls)
        if not violations:
            continue
        where = class_location(cls, root)
        roles = (used_by or {}).get(name)
        users = f" (station role{'s' if len(roles) > 1 else ''} {', '.join(roles)})" if roles else ""
        label = getattr(cls, "__qualname__", repr(cls))
        for violation in violations:
            problems.append(Problem(where, f"driver {name!r} class {label}{users}: {violation}"))
    return problems
