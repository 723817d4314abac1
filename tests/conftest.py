"""Shared fixtures. Test modules mirror the package: tests/test_limits.py for litmus_seq/limits.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def repo() -> Path:
    """The repository root (the example project lives here)."""
    return REPO


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A private copy of the example project (sequences/products/stations/plugins).

    pyvisa-sim caches simulator state per definition-file path, so every test that runs the
    simulated station gets its own copy.
    """
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("sequences", "products", "stations", "plugins", "checks"):
        src = REPO / name
        if src.exists():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("litmus.yaml",):
        if (REPO / name).exists():
            shutil.copy(REPO / name, dest / name)
    return dest


@pytest.fixture
def reporters_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of tests/data/reporters/project as the working directory (mock-only, no proxies)."""
    dest = tmp_path / "proj"
    shutil.copytree(DATA / "reporters" / "project", dest)
    monkeypatch.chdir(dest)
    for var in ("LITMUS_DATA_DIR", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return dest


def run_in_data(*args: str) -> int:
    """``litmus-seq run ARGS --data-dir data`` in-process; returns the exit code."""
    from litmus_seq.cli.main import main

    return main(["run", *args, "--data-dir", "data"])


JUNIT_XSD = DATA / "junit" / "junit-10.xsd"


def junit_schema(*, as_vendored: bool = False) -> object:
    """The Jenkins/Surefire JUnit schema (``tests/data/junit/junit-10.xsd``) as an xmlschema object.

    The vendored copy (pytest's) declares the test-case error element as ``errors``, a slip in
    that copy: the Jenkins xunit-plugin schema it comes from, every CI server and pytest itself
    use ``<error>``. Unless ``as_vendored``, that one name is corrected before the schema is built;
    nothing else is touched.
    """
    import xmlschema

    text = JUNIT_XSD.read_text(encoding="utf-8")
    if not as_vendored:
        fixed = text.replace('<xs:element name="errors">', '<xs:element name="error">')
        fixed = fixed.replace('<xs:element ref="errors"/>', '<xs:element ref="error"/>')
        assert text.count('"errors"') - fixed.count('"errors"') == 2  # the two attributes stay
        text = fixed
    return xmlschema.XMLSchema(text)


def validate_junit(path: Path) -> None:
    """Raise unless the file at ``path`` is valid against :func:`junit_schema`."""
    junit_schema().validate(str(path))  # type: ignore[attr-defined]


@contextmanager
def open_session(ctx: Any, station: Any, data_dir: Path, listeners: list[Any] = (),  # type: ignore[assignment]
                 **session_kw: Any) -> Iterator[Any]:
    """A session on ``station`` with the built-in stores in ``data_dir``, as the CLI opens it."""
    from litmus_seq.plugins import get_plugin_manager
    from litmus_seq.run import Session
    from litmus_seq.stores import register_stores

    pm = get_plugin_manager(project_root=ctx.root)
    with register_stores(pm, data_dir), Session(station, pm=pm, root=ctx.root, listeners=list(listeners),
                                                data_dir=data_dir, **session_kw) as session:
        yield session
