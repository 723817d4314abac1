"""The one "did you mean" (litmus_seq.suggest)."""

from __future__ import annotations

from pathlib import Path

import litmus_seq
from litmus_seq.suggest import did_you_mean, suggest


def test_close_name_is_suggested() -> None:
    assert suggest("vreff", ["vref", "rail_3v3"]) == "vref"
    assert did_you_mean("hihg", ["low", "high"]) == " (did you mean 'high'?)"


def test_nothing_close_gives_nothing() -> None:
    assert suggest("zzz", ["vref", "rail_3v3"]) is None
    assert did_you_mean("zzz", []) == ""


def test_case_only_difference_is_found_even_for_short_names() -> None:
    assert suggest("v", ["V", "A"]) == "V"


def test_non_string_candidates_are_compared_as_text() -> None:
    assert suggest("10", [1, 10, 100]) == "10"


def test_no_other_module_implements_did_you_mean() -> None:
    package = Path(litmus_seq.__file__).parent
    users = sorted(
        str(p.relative_to(package)) for p in package.rglob("*.py")
        if "difflib" in p.read_text(encoding="utf-8") and p.name != "suggest.py"
    )
    assert users == []
