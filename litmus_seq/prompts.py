"""Operator prompts: the built-in answerers on the ``litmus_seq_prompt`` hook.

Prompts are answered by the first plugin that returns something: the console on a terminal,
:class:`AutoConfirm` for unattended runs (``--yes``), or any user plugin (a fixture button, an
HTTP form, the Robot library). :data:`TIMED_OUT` and :data:`ABORT` are the two answers that are
not values.
"""

from __future__ import annotations

import select
import sys
from typing import Any

from litmus_seq.hookspecs import hookimpl

ABORT = "abort"


class _TimedOut:
    def __repr__(self) -> str:
        return "TIMED_OUT"


#: Returned by an answerer whose operator did not answer within ``timeout_s``.
TIMED_OUT: Any = _TimedOut()

_EOF: Any = object()  # TerminalPrompt._readline: the input stream is at end of file


class AutoConfirm:
    """Answers every confirm prompt "yes" (``--yes``), and choice prompts with the first choice.

    Input prompts are left to other answerers: an unattended run cannot invent a serial number.
    """

    @hookimpl(trylast=True)
    def litmus_seq_prompt(self, prompt: dict[str, Any]) -> Any:
        if prompt["prompt_type"] == "confirm":
            return True
        if prompt["prompt_type"] == "choice" and prompt.get("choices"):
            return prompt["choices"][0]
        return None


class TerminalPrompt:
    """Asks the operator on the controlling terminal, honouring the prompt's timeout."""

    def __init__(self, stream_in: Any = None, stream_out: Any = None) -> None:
        self.stream_in = stream_in or sys.stdin
        self.stream_out = stream_out or sys.stderr

    def _readline(self, timeout_s: float | None) -> str | None:
        """One line; ``None`` on timeout; ``EOF`` when the input is closed (Ctrl-D, no stdin)."""
        if timeout_s is not None:
            ready, _, _ = select.select([self.stream_in], [], [], timeout_s)
            if not ready:
                return None
        line = self.stream_in.readline()
        # EOF used to read as "" and re-ask forever (tests/test_prompts.py): report it instead
        return line.rstrip("\n") if line else _EOF

    @hookimpl(trylast=True)
    def litmus_seq_prompt(self, prompt: dict[str, Any]) -> Any:
        kind = prompt["prompt_type"]
        choices = prompt.get("choices") or []
        hint = {"confirm": "[y/n/abort]", "input": "(text, or 'abort')"}.get(
            kind, "[" + "/".join(choices) + "/abort]"
        )
        timeout_s = prompt.get("timeout_s")
        while True:
            suffix = f" (timeout {timeout_s:g} s)" if timeout_s else ""
            print(f"\n? {prompt['message']} {hint}{suffix} ", end="", file=self.stream_out, flush=True)
            line = self._readline(timeout_s)
            if line is None:
                print("", file=self.stream_out)
                return TIMED_OUT
            if line is _EOF:  # input closed: no answer from this terminal (the step fails)
                print("", file=self.stream_out)
                return None
            answer = line.strip()
            if answer.lower() == ABORT:
                return ABORT
            if kind == "confirm":
                if answer.lower() in ("y", "yes"):
                    return True
                if answer.lower() in ("n", "no"):
                    return False
            elif kind == "choice":
                if answer in choices:
                    return answer
            else:
                return answer
            print(f"  please answer {hint}", file=self.stream_out)
