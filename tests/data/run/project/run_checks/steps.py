"""Callables for ``python:`` steps in the run-test project: each exercises one StepContext service."""

from __future__ import annotations

from typing import Any


def full(ctx: Any, gain: float = 1.0) -> None:
    """Uses every context service once: configure, measure (spec and explicit limit), observe, record."""
    ctx.configure("vset", 5.0 * gain)
    ctx.measure("rail", float(ctx.instruments["dmm"].measure_dc_voltage()))
    ctx.measure("ripple", 0.02, units="V", limit={"high": 0.05, "units": "V"})
    ctx.observe("ambient_c", 24.5)
    ctx.observe("waveform", [0.0, 0.5, 1.0, 0.5, 0.0])
    ctx.record("note", {"operator_said": "ok", "k": ctx["k"]})
    ctx.warn("just a warning")


def efficiency(ctx: Any, load_a: float) -> float:
    """A python measure returning its value: judged by the step limit."""
    return 0.5 + float(load_a)


def forget(ctx: Any) -> None:
    """Declared as a measurement but records nothing: must be errored, never a silent pass."""
    return None


def boom(ctx: Any) -> None:
    """User code raising: errored with the message and a traceback."""
    raise ValueError("user code exploded")


def swallow_sigterm(ctx: Any) -> None:
    """SIGTERM arrives while user code that catches ``Exception`` runs: the stop must still win."""
    import os
    import signal
    import time

    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in here
    except Exception:  # noqa: BLE001 - the point of the test
        pass
    ctx.measure("after_sigterm", 1.0)


def ctrl_c(ctx: Any) -> None:
    """Ctrl-C while user code runs."""
    raise KeyboardInterrupt
