"""``--publish URL`` (litmus_seq/reporters/publish.py) against a REAL HTTP server on 127.0.0.1.

The server is ``http.server`` in a thread, collecting every POST; runs are real ``litmus-seq run``
invocations (in process, through :func:`litmus_seq.cli.main.main`) of the mock-only project in
``tests/data/reporters/project``, so the documents checked are those an operator's dashboard would
get. A server answering 500, a port nobody listens on and a server that hangs must each leave the
run's exit code alone, cost bounded time and end in one warning line on stderr.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import run_in_data

from litmus_seq.errors import ConfigError
from litmus_seq.reporters.publish import Publisher, validate_url

DATA = Path(__file__).resolve().parent / "data" / "reporters" / "project"


class Collector:
    """A real HTTP server collecting POSTed JSON; ``status`` and ``delay_s`` are adjustable."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self.status = status
        self.delay_s = delay_s
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if collector.delay_s:
                    time.sleep(collector.delay_s)
                collector.paths.append(self.path)
                collector.content_types.append(self.headers.get("Content-Type", ""))
                collector.posts.append(json.loads(body))
                self.send_response(collector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/test-update"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Collector]:
    s = Collector()
    yield s
    s.close()


@pytest.fixture
def project(reporters_project: Path) -> Path:
    return reporters_project


def closed_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


run = run_in_data


def test_posts_every_step_then_the_run_in_order(project: Path, server: Collector,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = run("sequences/mixed.yaml", "--dut", "SN-42", "--publish", server.url)
    out, err = capsys.readouterr()
    assert code == 3  # the errored step decides the run; publishing changes nothing
    assert "publish:" not in err  # every post succeeded: no warning
    docs = server.posts
    assert [d["type"] for d in docs] == ["step"] * 7 + ["run"]
    assert [d["step_path"] for d in docs[:-1]] == [
        "setup/1", "main/rail_sweep", "main/rail_low", "main/option_board", "main/garbage",
        "main/firmware", "cleanup/1"]
    assert [d["result"] for d in docs[:-1]] == ["done", "passed", "failed", "skipped", "errored", "passed", "done"]
    assert set(server.paths) == {"/test-update"}
    assert all(ct == "application/json" for ct in server.content_types)
    run_id = docs[0]["run_id"]
    assert f"run {run_id}" in out
    assert {d["run_id"] for d in docs} == {run_id}
    assert len({d["session_id"] for d in docs}) == 1
    assert {d["dut_serial"] for d in docs} == {"SN-42"}

    by_path = {d["step_path"]: d for d in docs[:-1]}
    sweep = by_path["main/rail_sweep"]
    assert sweep["node_id"] == "sequences/mixed.yaml::main/rail_sweep"
    assert [(v["index"], v["outcome"], v["params"]) for v in sweep["vectors"]] == [
        (0, "passed", {"vin": 5.0}), (1, "passed", {"vin": 12.0})]
    assert [(m["name"], m["value"], m["units"], m["outcome"], m["low"], m["high"])
            for m in sweep["measurements"]] == [("rail", 3.30, "V", "passed", 3.1, 3.5),
                                                ("rail", 3.31, "V", "passed", 3.1, 3.5)]
    assert sweep["error"] is None
    assert isinstance(sweep["start_time"], float) and isinstance(sweep["duration"], float)
    assert sweep["start_time"] <= sweep["stop_time"]
    assert sweep["duration"] == pytest.approx(sweep["stop_time"] - sweep["start_time"], abs=1e-6)

    low = by_path["main/rail_low"]
    assert low["measurements"][0]["value"] == 2.0 and low["measurements"][0]["outcome"] == "failed"
    assert "rail = 2.0 V" in low["error"]
    fw = by_path["main/firmware"]["measurements"][0]
    assert (fw["value"], fw["text"], fw["equals"]) == (None, "1.4.2", "1.4.2")
    garbage = by_path["main/garbage"]
    assert garbage["measurements"][0]["text"] == "not-a-number" and "cannot be judged" in garbage["error"]
    assert by_path["main/option_board"]["measurements"] == []
    # steps are posted as they end: start times never go backwards
    starts = [d["start_time"] for d in docs[:-1]]
    assert starts == sorted(starts)

    final = docs[-1]
    assert final["result"] == "errored"
    assert final["steps"] == {"done": 2, "passed": 2, "failed": 1, "skipped": 1, "errored": 1}
    assert final["sequence_name"] == "mixed"
    assert final["stop_time"] >= docs[-2]["stop_time"]


def test_never_ran_steps_are_not_posted_but_counted(project: Path, server: Collector) -> None:
    assert run("sequences/stop.yaml", "--publish", server.url) == 1
    steps = [d["step_path"] for d in server.posts if d["type"] == "step"]
    assert steps == ["main/first", "main/bad", "cleanup/1"]
    assert server.posts[-1]["steps"]["never ran"] == 2
    assert server.posts[-1]["result"] == "failed"


def test_server_error_500_warns_once_and_keeps_exit_code(project: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    failing = Collector(status=500)
    try:
        t0 = time.monotonic()
        code = run("sequences/passing.yaml", "--publish", failing.url)
        elapsed = time.monotonic() - t0
    finally:
        failing.close()
    _, err = capsys.readouterr()
    assert code == 0
    assert len(failing.posts) == 3  # the server did receive them
    lines = [line for line in err.splitlines() if line.startswith("publish:")]
    assert lines == [f"publish: 3 of 3 posts to {failing.url} failed: HTTP 500 Internal Server Error"]
    assert elapsed < 10


def test_unreachable_server_warns_and_is_fast(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    t0 = time.monotonic()
    code = run("sequences/passing.yaml", "--publish", url)
    elapsed = time.monotonic() - t0
    out, err = capsys.readouterr()
    assert code == 0
    assert "PASSED" in out and (project / "data" / "runs").is_dir()  # the record is intact
    assert f"publish: 3 of 3 posts to {url} failed: connection refused" in err.splitlines()
    assert elapsed < 10


@pytest.mark.parametrize("url", ["ftp://host/x", "localhost:7777/x", "http:///nohost", "http://h:notaport/"])
def test_bad_url_is_a_config_error_exit_4(project: Path, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run("sequences/passing.yaml", "--publish", url)
    _, err = capsys.readouterr()
    assert code == 4
    assert err.strip().count("\n") == 0 and err.startswith(f"--publish {url}:")
    assert not (project / "data").exists()  # nothing ran


def test_validate_url_accepts_http_and_https() -> None:
    assert validate_url("https://dash.example/api") == "https://dash.example/api"
    assert validate_url("http://127.0.0.1:7777") == "http://127.0.0.1:7777"
    with pytest.raises(ConfigError, match="http:// or https://"):
        validate_url("file:///tmp/x")


# ------------------------------------------------------------------ the publisher on its own


def _session_events(project: Path, sequence: str) -> list[list[dict[str, Any]]]:
    """The event batches of a real in-process run, as the hook delivered them."""
    from litmus_seq.engine import Session
    from litmus_seq.hookspecs import hookimpl
    from litmus_seq.plan import build_plan
    from litmus_seq.project import ProjectContext

    batches: list[list[dict[str, Any]]] = []

    class Tap:
        @hookimpl
        def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
            batches.append(list(events))

    seq = project / sequence
    ctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=ctx)
    station = ctx.load_station(plan.station_ref or ctx.config.station)
    with Session(project=ctx, station=station, data_dir=project / "data", listeners=[Tap()]) as session:
        session.run(plan, dut_serial="SN-1")
    return batches


def test_hung_server_never_slows_the_run_and_close_is_bounded(project: Path) -> None:
    hung = Collector(delay_s=3.0)
    try:
        batches = _session_events(project, "sequences/mixed.yaml")
        import io

        err = io.StringIO()
        pub = Publisher(hung.url, timeout_s=0.3, drain_s=0.8, stderr=err)
        t0 = time.monotonic()
        for batch in batches:
            pub.litmus_seq_events(batch)
        delivered = time.monotonic() - t0
        pub.close()
        closed = time.monotonic() - t0
    finally:
        hung.close()
    assert delivered < 0.2  # the engine thread only queues; it never waits for the server
    assert closed < 2.0  # drain deadline 0.8 s (+ one post in flight at most 0.3 s)
    line = err.getvalue().strip()
    assert line.startswith(f"publish: 8 of 8 posts to {hung.url} failed: ")
    assert "timed out after 0.3 s" in line or "not sent within 0.8 s" in line


def test_full_queue_drops_and_counts(project: Path) -> None:
    slow = Collector(delay_s=0.2)
    try:
        batches = _session_events(project, "sequences/mixed.yaml")
        import io

        err = io.StringIO()
        pub = Publisher(slow.url, timeout_s=2.0, queue_size=1, drain_s=5.0, stderr=err)
        for batch in batches:
            pub.litmus_seq_events(batch)
        pub.close()
    finally:
        slow.close()
    assert pub.total == 8
    assert pub.sent == len(slow.posts) and 1 <= pub.sent < 8
    assert pub.failed == 8 - pub.sent
    assert "queue full" in err.getvalue()
    # what did get through arrived in emission order
    order = [d.get("step_path", "<run>") for d in slow.posts]
    expected = ["setup/1", "main/rail_sweep", "main/rail_low", "main/option_board", "main/garbage",
                "main/firmware", "cleanup/1", "<run>"]
    assert order == [p for p in expected if p in order]


def test_nothing_posted_means_no_thread_and_no_warning() -> None:
    import io

    err = io.StringIO()
    pub = Publisher("http://127.0.0.1:9/x", stderr=err)
    pub.close()
    assert pub._thread is None and err.getvalue() == ""
