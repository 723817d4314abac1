"""Outcomes and their exit codes (PARQUET.md "Outcomes", DESIGN §3)."""

from __future__ import annotations

import pytest

from litmus_seq import outcomes as oc


@pytest.mark.parametrize(("outcome", "code"), [("passed", 0), ("failed", 1), ("terminated", 2), ("aborted", 2),
                                               ("errored", 3)])
def test_sealed_outcomes_map_to_their_exit_codes(outcome: str, code: int) -> None:
    assert oc.exit_code(outcome) == code


@pytest.mark.parametrize("outcome", [None, "done", "skipped", "", "PASSED", "pass"])
def test_anything_else_is_errored_never_zero(outcome: str | None) -> None:
    assert oc.exit_code(outcome) == 3


def test_rollup_and_run_outcome() -> None:
    assert oc.rollup(["passed", None, "failed", "done"]) == "failed"
    assert oc.rollup([None, None]) is None
    assert oc.run_outcome(["done", "skipped", "passed"]) == "passed"
    assert oc.run_outcome(["passed", "errored", "failed"]) == "errored"
