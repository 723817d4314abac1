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


# -- the lake (tests/test_lake_*.py) -----------------------------------------------------------

#: The simulated fleet: station id -> (station file variant, serial) of each run, in order.
#: st-a passes; st-b fails its supply readback, then SN-B1 passes a retest on a repaired bench
#: (yield 1/3, first-pass yield 0/2); st-c cannot read its DMM (errored).
FLEET_RUNS: dict[str, list[tuple[str, str]]] = {
    "st-a": [("st-a", "SN-A1"), ("st-a", "SN-A2"), ("st-a", "SN-A3")],
    "st-b": [("st-b", "SN-B1"), ("st-b", "SN-B2"), ("st-b-fixed", "SN-B1")],
    "st-c": [("st-c", "SN-C1"), ("st-c", "SN-C2")],
}


def _fleet_stations(project: Path) -> None:
    import yaml

    base = yaml.safe_load((project / "stations" / "mock_bench.yaml").read_text())
    good = [5.0, 12.0, 5.0]  # the supply reads back 5 V, then 12 V (psu_readback), then 5 V on
    variants = {
        "st-a": ("st-a", good, [3.28, 3.31, 3.30, 3.33, 3.29, 3.32]),
        "st-b": ("st-b", 5.0, [3.25, 3.36, 3.31, 3.27]),
        "st-b-fixed": ("st-b", good, [3.30, 3.29, 3.31, 3.30]),
        "st-c": ("st-c", good, None),
    }
    for name, (station_id, vin, rail) in variants.items():
        doc = yaml.safe_load(yaml.safe_dump(base))
        doc["id"], doc["name"] = station_id, f"fleet bench {name}"
        doc["instruments"]["psu"]["mock"]["measure_voltage"] = vin
        doc["instruments"]["dmm"]["mock"]["measure_dc_voltage"] = rail
        (project / "stations" / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three stations' data folders (station id -> folder), filled by real ``litmus-seq run``s of
    the example FCT sequence on mock benches (:data:`FLEET_RUNS`). Read-only: copy to change."""
    from litmus_seq.cli.main import main

    root = tmp_path_factory.mktemp("fleet")
    project = root / "project"
    project.mkdir()
    for name in ("sequences", "products", "stations", "plugins", "checks"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    _fleet_stations(project)
    out = {}
    with project_imports_forgotten(project):
        for station_id, runs in FLEET_RUNS.items():
            data = root / f"data-{station_id}"
            for variant, serial in runs:
                code = main(["run", str(project / "sequences" / "power_board_fct.yaml"), "--station", variant,
                             "--dut", serial, "--data-dir", str(data), "-y"])
                assert code in (0, 1, 3), (variant, serial, code)
            out[station_id] = data
    return out


@contextmanager
def project_imports_forgotten(project: Path) -> Iterator[None]:
    """Run in-process commands on ``project``, then forget the modules they imported from it
    (its ``checks`` package would otherwise shadow another project's in later tests)."""
    import sys

    path = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = path
        root = str(project.resolve())
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(root):
                del sys.modules[name]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a real HTTP endpoint); yields its URL."""
    import socket
    import subprocess
    import sys
    import time

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The standard AWS environment pointing at the moto server (dummy credentials)."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "http_proxy", "HTTP_PROXY", "https_proxy",
                "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return s3_server


def make_bucket(endpoint: str) -> str:
    """A new, empty bucket on the moto server; returns its name."""
    import uuid

    import pyarrow.fs as pafs

    name = f"lake-{uuid.uuid4().hex[:12]}"
    pafs.S3FileSystem(endpoint_override=endpoint, access_key="testing", secret_key="testing",
                      region="us-east-1", allow_bucket_creation=True).create_dir(name)
    return name
