"""Prompt answerer for tests: the operator presses "abort" at the first prompt."""

from typing import Any

from litmus_seq import hookimpl


@hookimpl
def litmus_seq_prompt(prompt: dict[str, Any]) -> Any:
    return "abort"
