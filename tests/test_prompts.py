"""Operator prompt answerers (litmus_seq/prompts.py): AutoConfirm and TerminalPrompt."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

from litmus_seq import hookimpl, hookspecs
from litmus_seq.prompts import ABORT, TIMED_OUT, AutoConfirm, TerminalPrompt


def prompt(kind: str = "confirm", choices: list[str] | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    return {"prompt_id": "p1", "message": "Is the LED green?", "prompt_type": kind,
            "choices": choices or [], "timeout_s": timeout_s}


def ask(answers: str, p: dict[str, Any]) -> tuple[Any, str]:
    out = io.StringIO()
    tp = TerminalPrompt(stream_in=io.StringIO(answers), stream_out=out)
    return tp.litmus_seq_prompt(p), out.getvalue()


# --------------------------------------------------------------------------- AutoConfirm


def test_auto_confirm_answers_confirm_and_first_choice_only() -> None:
    a = AutoConfirm()
    assert a.litmus_seq_prompt(prompt("confirm")) is True
    assert a.litmus_seq_prompt(prompt("choice", ["red", "green"])) == "red"
    assert a.litmus_seq_prompt(prompt("choice", [])) is None
    assert a.litmus_seq_prompt(prompt("input")) is None  # cannot invent a serial number


def test_a_user_plugin_answers_before_auto_confirm() -> None:
    class Fixture:
        @hookimpl
        def litmus_seq_prompt(self, prompt: dict[str, Any]) -> Any:
            return False if prompt["prompt_type"] == "confirm" else None

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(AutoConfirm())
    pm.register(Fixture())
    assert pm.hook.litmus_seq_prompt(prompt=prompt("confirm")) is False  # firstresult: the fixture's "no"
    assert pm.hook.litmus_seq_prompt(prompt=prompt("choice", ["a", "b"])) == "a"  # falls through


# --------------------------------------------------------------------------- TerminalPrompt


@pytest.mark.parametrize(("typed", "answer"), [("y\n", True), ("YES\n", True), ("n\n", False), ("no\n", False)])
def test_terminal_confirm(typed: str, answer: bool) -> None:
    got, out = ask(typed, prompt("confirm"))
    assert got is answer
    assert "? Is the LED green? [y/n/abort]" in out


def test_terminal_reasks_until_the_answer_is_valid() -> None:
    got, out = ask("maybe\n\ny\n", prompt("confirm"))
    assert got is True
    assert out.count("please answer [y/n/abort]") == 2


def test_terminal_choice_must_be_one_of_the_choices() -> None:
    got, out = ask("purple\ngreen\n", prompt("choice", ["red", "green"]))
    assert got == "green"
    assert "[red/green/abort]" in out and "please answer" in out


def test_terminal_input_returns_the_text() -> None:
    assert ask("  LOT-77  \n", prompt("input"))[0] == "LOT-77"


@pytest.mark.parametrize("kind", ["confirm", "choice", "input"])
def test_terminal_abort(kind: str) -> None:
    assert ask("ABORT\n", prompt(kind, ["a"]))[0] == ABORT


@pytest.mark.parametrize("kind", ["confirm", "choice", "input"])
def test_terminal_eof_is_no_answer_not_an_endless_loop(kind: str) -> None:
    got, out = ask("", prompt(kind, ["a"]))
    assert got is None
    assert "please answer" not in out


@pytest.fixture
def pipe() -> Iterator[tuple[Any, Any]]:
    r, w = os.pipe()
    with os.fdopen(r, "r") as rf, os.fdopen(w, "w") as wf:
        yield rf, wf


def test_terminal_times_out(pipe: tuple[Any, Any]) -> None:
    rf, _ = pipe
    tp = TerminalPrompt(stream_in=rf, stream_out=io.StringIO())
    t0 = time.monotonic()
    assert tp.litmus_seq_prompt(prompt("confirm", timeout_s=0.05)) is TIMED_OUT
    assert 0.04 <= time.monotonic() - t0 < 2
    assert "(timeout 0.05 s)" in tp.stream_out.getvalue()


def test_terminal_answer_within_the_timeout(pipe: tuple[Any, Any]) -> None:
    rf, wf = pipe
    wf.write("n\n")
    wf.flush()
    tp = TerminalPrompt(stream_in=rf, stream_out=io.StringIO())
    assert tp.litmus_seq_prompt(prompt("confirm", timeout_s=5)) is False
