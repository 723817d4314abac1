"""``docs/robot/LitmusSeq.html`` is the current libdoc of the ``LitmusSeq`` library."""

from __future__ import annotations

from pathlib import Path

from litmus_seq.robot import libdoc

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "docs" / "robot" / "LitmusSeq.html"


def test_committed_libdoc_is_current() -> None:
    committed = libdoc.spec_of_html(COMMITTED.read_text(encoding="utf-8"))
    fresh = libdoc.spec()
    stale = [k["name"] for k in fresh["keywords"] if k not in committed["keywords"]]
    stale += [k["name"] for k in committed["keywords"] if k not in fresh["keywords"]]
    assert committed == fresh, (
        f"docs/robot/LitmusSeq.html is out of date (keywords that differ: {sorted(set(stale)) or 'intro/init'}); "
        "regenerate it: python -m litmus_seq.robot.libdoc")


def test_libdoc_lists_every_keyword_with_documentation(tmp_path: Path) -> None:
    out = libdoc.write(tmp_path / "doc.html")
    data = libdoc.spec_of_html(out.read_text(encoding="utf-8"))
    names = {k["name"] for k in data["keywords"]}
    assert {"Open Station", "Start Run", "Run Sequence", "Start Step", "End Step", "Get Vectors",
            "Start Vector", "End Vector", "Measure", "Measure From", "Call Instrument", "Record",
            "Configure", "Observe", "Get Limit", "Prompt Operator", "End Run"} <= names
    assert all(k["doc"].strip() for k in data["keywords"]), "every keyword is documented"
    assert data["scope"] == "GLOBAL" and data["source"] == "litmus_seq/robot/library.py"
    # listener methods of the library are not keywords
    assert not names & {"Start Suite", "End Test", "Close", "Log Message"}


def test_spec_of_html_rejects_other_files() -> None:
    import pytest

    with pytest.raises(ValueError, match="not a libdoc HTML file"):
        libdoc.spec_of_html("<html></html>")
