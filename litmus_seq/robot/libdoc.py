"""The keyword documentation of ``LitmusSeq``: ``python -m litmus_seq.robot.libdoc [FILE]``.

Writes Robot Framework's libdoc HTML (default ``docs/robot/LitmusSeq.html``) with source paths
relative to the package and a fixed generation time, so the file changes only when the keywords
or their documentation do; ``tests/test_robot_libdoc.py`` checks that the committed file is
current.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["LIBRARY", "DEFAULT_OUTPUT", "spec", "spec_of_html", "write"]

LIBRARY = "litmus_seq.robot.LitmusSeq"
DEFAULT_OUTPUT = Path("docs") / "robot" / "LitmusSeq.html"
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the litmus_seq package
_EPOCH = "0"  # SOURCE_DATE_EPOCH: the generation time libdoc embeds
#: What :func:`spec` leaves out: the generation time and what Robot Framework itself writes
#: (its standard type documentation changes with the installed Robot version, not with ours).
_NOT_OURS = ("generated", "specversion", "typedocs")


def _relative(source: str | None) -> str | None:
    if not source:
        return source
    try:
        return Path(source).resolve().relative_to(_ROOT).as_posix()
    except ValueError:
        return source


def _documentation() -> Any:
    from robot.libdoc import LibraryDocumentation

    from litmus_seq import __version__

    doc = LibraryDocumentation(LIBRARY, version=__version__)
    doc.source = _relative(doc.source)
    for kw in [*doc.keywords, *doc.inits]:
        kw.source = _relative(kw.source)
    return doc


def spec() -> dict[str, Any]:
    """The library's own libdoc data (keywords, documentation, sources), as the HTML embeds it."""
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = _EPOCH
    try:
        data = _documentation().to_dictionary()
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    return {k: v for k, v in data.items() if k not in _NOT_OURS}


def spec_of_html(text: str) -> dict[str, Any]:
    """The same part of the libdoc data embedded in a libdoc HTML file."""
    match = re.search(r"^libdoc = (\{.*\})$", text, re.MULTILINE)
    if match is None:
        raise ValueError("not a libdoc HTML file: no 'libdoc = {...}' line")
    data: dict[str, Any] = json.loads(match.group(1))
    return {k: v for k, v in data.items() if k not in _NOT_OURS}


def write(path: Path = DEFAULT_OUTPUT) -> Path:
    """Write the HTML documentation to ``path``; returns it."""
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = _EPOCH
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _documentation().save(str(path), "HTML")
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    return path


if __name__ == "__main__":  # pragma: no cover - exercised by the test through write()
    out = write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
    print(out)
