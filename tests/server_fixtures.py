"""A real ``litmus-seq serve`` application on 127.0.0.1 for the server tests (uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


@contextmanager
def running_server(project_root: Path, **options: Any) -> Iterator[tuple[str, Any]]:
    """Serve the project's station on a free loopback port; yields ``(base_url, station)``."""
    import uvicorn

    from litmus_seq.project import ProjectContext, find_root
    from litmus_seq.server.app import create_app
    from litmus_seq.server.station import Station

    project = ProjectContext(find_root(project_root))
    station = Station(project, project_root / "data", serial_pattern=options.pop("serial_pattern", None))
    app = create_app(station, **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", station
    finally:
        station.stop()
        station.wait(60)
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_for(predicate: Any, what: str, limit_s: float = 60) -> Any:
    """Poll ``predicate`` until it returns something truthy (a bound on a hang, not a timing assert)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def station_state(client: httpx.Client) -> dict[str, Any]:
    return client.get("/api/station").json()  # type: ignore[no-any-return]
