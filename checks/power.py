"""Power checks for the power board: computations a single instrument reading cannot give.

A ``python:`` measure is called as ``fn(ctx, **args)``; its return value is recorded under the
measurement's name and judged like any other (vector -> step -> product spec limit). Extra values
recorded with ``ctx.measure`` get their limits the same way, resolved when they are recorded.
"""

from __future__ import annotations

from typing import Any


def efficiency(ctx: Any, load_a: float) -> float:
    """Output power over input power at the present operating point.

    The load current is the electronic load's setpoint (``load_a``): in constant-current mode it
    is what the DUT delivers, and reading it back would only add the load's own error.
    """
    vout = float(ctx.instruments["dmm"].measure_dc_voltage())
    vin = float(ctx.instruments["psu"].measure_voltage())
    iin = float(ctx.instruments["psu"].measure_current())
    p_out = vout * float(load_a)
    p_in = vin * iin
    ctx.measure("output_power", p_out, units="W", limit="none")  # recorded, judged by efficiency
    ctx.measure("input_power", p_in, units="W", limit="none")
    if p_in <= 0:
        raise ValueError(f"no input power (vin={vin} V, iin={iin} A): is the supply output on?")
    return p_out / p_in
