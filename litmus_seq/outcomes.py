"""Outcomes and their roll-up (PARQUET.md "Outcomes").

Outcomes are plain lower-case strings so that they cost nothing on the hot path and land in
parquet unchanged. ``None`` means "never ran".
"""

from __future__ import annotations

from collections.abc import Iterable

ABORTED = "aborted"
TERMINATED = "terminated"
ERRORED = "errored"
FAILED = "failed"
PASSED = "passed"
DONE = "done"
SKIPPED = "skipped"

SEVERITY: dict[str | None, int] = {
    None: 0,
    SKIPPED: 1,
    DONE: 2,
    PASSED: 3,
    FAILED: 4,
    ERRORED: 5,
    TERMINATED: 6,
    ABORTED: 7,
}

ALL = (ABORTED, TERMINATED, ERRORED, FAILED, PASSED, DONE, SKIPPED)


def worst(a: str | None, b: str | None) -> str | None:
    """The more severe of two outcomes (``None`` loses to everything)."""
    return a if SEVERITY[a] >= SEVERITY[b] else b


def rollup(outcomes: Iterable[str | None]) -> str | None:
    """Worst of ``outcomes``; ``None`` if nothing ran."""
    result: str | None = None
    sev = 0
    for o in outcomes:
        s = SEVERITY[o]
        if s > sev:
            result, sev = o, s
    return result


def run_outcome(step_outcomes: Iterable[str | None]) -> str:
    """A run's outcome: the worst step, with ``done``/``skipped``/nothing rolling up as passed."""
    o = rollup(step_outcomes)
    if o is None or SEVERITY[o] <= SEVERITY[PASSED]:
        return PASSED
    return o


EXIT_CODES: dict[str, int] = {
    PASSED: 0,
    FAILED: 1,
    TERMINATED: 2,
    ABORTED: 2,
    ERRORED: 3,
}


def exit_code(outcome: str | None) -> int:
    """The CLI exit code for a run outcome (DESIGN §3). Anything that is not a sealed run's
    outcome (none at all, or a step-level word) is 3, errored: an exit code of 0 is earned."""
    return EXIT_CODES.get(outcome, EXIT_CODES[ERRORED]) if outcome is not None else EXIT_CODES[ERRORED]
