"""The ``python:`` step of the crash test: a curve of readings per sweep point, judged against an
explicit limit (a few fall outside it), as a characterisation step records them."""

from __future__ import annotations

import math
from typing import Any

_LIMIT = {"low": -1.2, "high": 1.2, "units": "V"}


def curve(ctx: Any, x: float, points: int) -> None:
    for i in range(int(points)):
        ctx.measure(f"p{i % 50}", math.sin(x * 0.37 + i) * 1.25 if i % 97 == 0 else math.sin(x + i),
                    units="V", limit=_LIMIT)
