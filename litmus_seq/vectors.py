"""Vector and sweep expansion: a step's ``vectors:`` and ``sweep:`` into a list of parameter sets.

Order is deterministic and matches :func:`itertools.product`: the first key varies slowest,
vectors before sweeps. Sweep points are rounded to the decimals the author wrote, so a
``4.5 .. 5.5 step 0.1`` sweep yields ``4.6``, never ``4.6000000000000005`` (which would show up
in ``in_vin`` columns and break equality filters in SQL).
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from litmus_seq.errors import ConfigError
from litmus_seq.limits import Limit

__all__ = ["VectorError", "MAX_POINTS", "expand", "expand_vectors", "sweep_points"]

MAX_POINTS = 1_000_000  # per sweep axis: a typo like step: 1e-9 should not eat the memory
MAX_VECTORS = 1_000_000  # per step, after product/sweep expansion: checked before building lists


def _check_count(count: int, what: str, rel_path: tuple[Any, ...]) -> None:
    """Refuse an expansion that would not fit in memory before building it (fail fast, exit 4)."""
    if count > MAX_VECTORS:
        raise VectorError(
            f"{what} expand to {count:,} vectors, more than {MAX_VECTORS:,} per step: "
            "use fewer values, expand: zip, or split the step",
            rel_path,
        )


class VectorError(ConfigError):
    """A ``vectors:``/``sweep:`` that cannot be expanded. ``rel_path`` is the path inside the
    step (e.g. ``("sweep", "vin", "step")``) so the plan can point at the exact YAML node."""

    def __init__(self, message: str, rel_path: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.rel_path = rel_path


def _decimals(x: float) -> int:
    """Digits after the decimal point in the shortest repr of ``x`` (0.25 -> 2, 1e-05 -> 5)."""
    try:
        exp = Decimal(repr(float(x))).as_tuple().exponent
    except (InvalidOperation, ValueError):  # pragma: no cover - inf/nan rejected earlier
        return 12
    return max(0, -int(exp)) if isinstance(exp, int) else 12


def _sig(x: float, digits: int = 12) -> float:
    return float(f"{x:.{digits}g}")


def sweep_points(name: str, sweep: Any) -> list[Any]:
    """The points of one sweep axis (a :class:`models.SweepRange`)."""
    where = ("sweep", name)
    start, stop, step, points, log = sweep.start, sweep.stop, sweep.step, sweep.points, sweep.log
    if points is not None:
        others = [k for k, v in (("start", start), ("stop", stop), ("step", step), ("log", log)) if v is not None]
        if others:
            raise VectorError(
                f"sweep '{name}': 'points' cannot be combined with {', '.join(others)}: "
                "give either a list of points or start/stop with step or log",
                where + (others[0],),
            )
        if not points:
            raise VectorError(f"sweep '{name}': 'points' is empty: list at least one value", where + ("points",))
        return list(points)
    if start is None or stop is None:
        missing = "start" if start is None else "stop"
        raise VectorError(
            f"sweep '{name}': '{missing}' is missing: a sweep needs start and stop with step "
            "(or log), or a 'points' list",
            where,
        )
    for key, v in (("start", start), ("stop", stop), ("step", step)):
        if v is not None and not math.isfinite(v):
            raise VectorError(f"sweep '{name}': {key} must be a finite number, got {v}", where + (key,))
    if step is not None and log is not None:
        raise VectorError(f"sweep '{name}': give either 'step' or 'log', not both", where + ("log",))
    if log is not None:
        return _log_points(name, start, stop, log)
    if step is None:
        raise VectorError(
            f"sweep '{name}': 'step' is missing: add step (linear) or log (points per decade)", where
        )
    if step == 0:
        raise VectorError(f"sweep '{name}': step must not be 0", where + ("step",))
    span = stop - start
    if span != 0 and (span > 0) != (step > 0):
        if step < 0:
            hint = f"start {start:g} < stop {stop:g} needs a positive step"
        else:
            hint = f"start {start:g} > stop {stop:g} (descending) needs a negative step, e.g. {-step:g}"
        raise VectorError(f"sweep '{name}': step {step:g} goes the wrong direction: {hint}", where + ("step",))
    if step < 0 and span == 0:
        step = -step
    # count within float tolerance so the stop is included when it lies on the grid
    count = math.floor(span / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise VectorError(
            f"sweep '{name}': {count} points is more than {MAX_POINTS}: check step {step:g}",
            where + ("step",),
        )
    digits = min(15, max(_decimals(start), _decimals(step)))
    return [round(start + i * step, digits) for i in range(count)]


def _log_points(name: str, start: float, stop: float, per_decade: int) -> list[float]:
    where = ("sweep", name)
    if start <= 0 or stop <= 0:
        which = "start" if start <= 0 else "stop"
        raise VectorError(
            f"sweep '{name}': a log sweep needs start and stop above 0 ({which} is "
            f"{start if which == 'start' else stop:g})",
            where + (which,),
        )
    decades = math.log10(stop / start)
    count = math.floor(abs(decades) * per_decade + 1e-9) + 1
    if count > MAX_POINTS:
        raise VectorError(f"sweep '{name}': {count} points is more than {MAX_POINTS}", where + ("log",))
    sign = 1 if decades >= 0 else -1
    return [_sig(start * 10 ** (sign * k / per_decade)) for k in range(count)]


def _vector_axes(vectors: dict[str, Any]) -> tuple[list[tuple[str, list[Any]]], str]:
    mode = vectors.get("expand", "product")
    if mode not in ("product", "zip"):
        raise VectorError(f"vectors: expand must be 'product' or 'zip', got {mode!r}", ("vectors", "expand"))
    axes: list[tuple[str, list[Any]]] = []
    for key, values in vectors.items():
        if key == "expand":
            continue
        if isinstance(values, dict):
            raise VectorError(
                f"vectors: '{key}' must be a list of values (or one value), not a mapping; "
                "for start/stop/step use 'sweep:'",
                ("vectors", key),
            )
        vals = list(values) if isinstance(values, (list, tuple)) else [values]
        if not vals:
            raise VectorError(f"vectors: '{key}' is an empty list: give at least one value", ("vectors", key))
        axes.append((str(key), vals))
    return axes, mode


def expand_vectors(step: Any) -> list[tuple[dict[str, Any], dict[str, Limit]]]:
    """``[(params, per-vector limits), ...]`` for a step model (``vectors``/``sweep`` fields).

    A step with neither has exactly one vector with empty params.
    """
    base: list[tuple[dict[str, Any], dict[str, Limit]]]
    vectors = getattr(step, "vectors", None)
    used: set[str] = set()
    if vectors is None:
        base = [({}, {})]
    elif isinstance(vectors, list):
        if not vectors:
            raise VectorError("vectors: empty list: give at least one vector", ("vectors",))
        base = []
        for v in vectors:
            params = dict(v.model_extra or {})
            used.update(params)
            base.append((params, dict(v.limits)))
    else:
        axes, mode = _vector_axes(vectors)
        used.update(k for k, _ in axes)
        if not axes:
            base = [({}, {})]
        elif mode == "zip":
            lengths = {k: len(v) for k, v in axes}
            if len(set(lengths.values())) > 1:
                shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
                raise VectorError(
                    f"vectors: expand: zip needs lists of equal length ({shown}); "
                    "make them equal or use expand: product",
                    ("vectors", "expand"),
                )
            keys = [k for k, _ in axes]
            base = [(dict(zip(keys, combo)), {}) for combo in zip(*(v for _, v in axes))]
        else:
            keys = [k for k, _ in axes]
            _check_count(math.prod(len(v) for _, v in axes), "vectors", ("vectors",))
            base = [(dict(zip(keys, combo)), {}) for combo in itertools.product(*(v for _, v in axes))]
    sweep = getattr(step, "sweep", None)
    if not sweep:
        return base
    sweep_axes: list[tuple[str, list[Any]]] = []
    for name, rng in sweep.items():
        if name in used:
            raise VectorError(
                f"sweep '{name}': '{name}' is also a vector parameter; rename one of them",
                ("sweep", name),
            )
        sweep_axes.append((name, sweep_points(name, rng)))
    keys = [k for k, _ in sweep_axes]
    _check_count(len(base) * math.prod(len(v) for _, v in sweep_axes), "vectors and sweep", ("sweep",))
    sweeps = [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in sweep_axes))]
    out: list[tuple[dict[str, Any], dict[str, Limit]]] = []
    for params, limits in base:
        for s in sweeps:
            out.append(({**params, **s}, limits))
    return out


def expand(step: Any) -> list[dict[str, Any]]:
    """The parameter dicts of a step's vectors, in execution order."""
    return [params for params, _ in expand_vectors(step)]
