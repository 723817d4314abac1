"""Prompt answerer for tests: answers like an operator who says yes, green and LOT-77."""

from typing import Any

from litmus_seq import hookimpl


@hookimpl
def litmus_seq_prompt(prompt: dict[str, Any]) -> Any:
    kind = prompt["prompt_type"]
    if kind == "confirm":
        return True
    if kind == "choice":
        return "green" if "green" in prompt["choices"] else None
    return "LOT-77"
