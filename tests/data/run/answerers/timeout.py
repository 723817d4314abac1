"""Prompt answerer for tests: nobody answers before the prompt's timeout."""

from typing import Any

from litmus_seq import hookimpl
from litmus_seq.prompts import TIMED_OUT


@hookimpl
def litmus_seq_prompt(prompt: dict[str, Any]) -> Any:
    return TIMED_OUT
