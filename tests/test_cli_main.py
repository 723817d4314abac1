"""The ``litmus-seq`` command group (litmus_seq/cli/main.py): registration and help texts."""

from __future__ import annotations

import re

import pytest

from litmus_seq.cli.main import COMMANDS, main

#: reStructuredText and Sphinx markup that a terminal would show raw.
_MARKUP = re.compile(r"``|:(func|class|mod|meth|data|attr):`|^\s*\.\. |\x08")


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, line) in COMMANDS.items():
        assert re.search(rf"^  {name}\s+{re.escape(line[:30])}", out, re.M), name
    assert "init" in COMMANDS


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_is_plain_and_short(name: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: litmus-seq {name} ")
    assert not _MARKUP.search(out), out
    description = out.split("\n\n", 2)[1]
    assert len(description.splitlines()) <= 2, description  # the first paragraph says it in a line or two
    assert len(out.splitlines()) <= 60, out
