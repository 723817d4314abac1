"""``--publish URL`` (litmus_seq/reporters/publish.py) against a REAL HTTP server on 127.0.0.1.

The server is ``http.server`` in a thread, collecting every POST; runs are real ``litmus-seq run``
invocations (in process, through :func:`litmus_seq.cli.main.main`) of the mock-only project in
``tests/data/reporters/project``, so the documents checked are those an operator's dashboard would
get. A server answering 500, a port nobody listens on, a host that does not resolve, a server that
hangs and one that answers with an endless body must each leave the run's exit code alone, cost at
most the publisher's close budget, and lose nothing: what was not delivered waits in the outbox
and is delivered by the next run or ``litmus-seq publish --retry``. No test measures wall-clock
time: each asserts what was delivered, what waits in the outbox and what was read.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import run_in_data
from test_reporters_pubdir import SeedResult

from litmus_seq.errors import ConfigError
from litmus_seq.cli.main import main
from litmus_seq.reporters.publish import CLOSE_BUDGET_S, REPLY_LIMIT, Outbox, Publisher, post, validate_url

DATA = Path(__file__).resolve().parent / "data" / "reporters" / "project"


class Collector:
    """A real HTTP server collecting POSTed JSON.

    ``status``: the reply's status. ``hold``: while set... cleared, each request is answered only
    once the test sets it (a server that hangs). ``reply_bytes``: the reply claims and streams that
    many bytes (a server answering with an endless body); ``streamed`` counts what the socket took.
    """

    def __init__(self, status: int = 200, port: int = 0, hold: threading.Event | None = None,
                 reply_bytes: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self.status = status
        self.hold = hold
        self.reply_bytes = reply_bytes
        self.streamed = 0
        self.stream_broken = threading.Event()
        self.received = threading.Event()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.paths.append(self.path)
                collector.content_types.append(self.headers.get("Content-Type", ""))
                collector.posts.append(json.loads(body))
                collector.received.set()
                if collector.hold is not None:
                    collector.hold.wait(60)
                self.send_response(collector.status)
                self.send_header("Content-Length", str(collector.reply_bytes))
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    while collector.streamed < collector.reply_bytes:
                        self.wfile.write(chunk)
                        collector.streamed += len(chunk)
                except OSError:
                    collector.stream_broken.set()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/test-update"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
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


def outbox(project: Path) -> list[dict[str, Any]]:
    """The posts waiting in the project's outbox, oldest first."""
    return [json.loads(p.read_text()) for p in Outbox(project / "data" / "outbox" / "publish").entries()]


def publish_cli(*argv: str) -> int:
    return main(["publish", *argv, "--data-dir", "data"])


def test_posts_every_step_then_the_run_in_order(project: Path, server: Collector,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = run("sequences/mixed.yaml", "--dut", "SN-42", "--publish", server.url)
    out, err = capsys.readouterr()
    assert code == 3  # the errored step decides the run; publishing changes nothing
    assert "publish:" not in err  # every post succeeded: no warning
    assert outbox(project) == []
    docs = server.posts
    assert [d["type"] for d in docs] == ["step"] * 7 + ["run"]
    assert [d["step_path"] for d in docs[:-1]] == [
        "setup/1", "main/rail_sweep", "main/rail_low", "main/option_board", "main/garbage",
        "main/firmware", "cleanup/1"]
    assert [d["outcome"] for d in docs[:-1]] == ["done", "passed", "failed", "skipped", "errored", "passed", "done"]
    assert [d["result"] for d in docs[:-1]] == ["pass", "pass", "fail", "skip", "fail", "pass", "pass"]
    assert set(server.paths) == {"/test-update"}
    assert all(ct == "application/json" for ct in server.content_types)
    run_id = docs[0]["run_id"]
    assert f"run {run_id}" in out
    assert {d["run_id"] for d in docs} == {run_id}
    assert len({d["session_id"] for d in docs}) == 1
    assert {d["dut_serial"] for d in docs} == {"SN-42"}

    by_path = {d["step_path"]: d for d in docs[:-1]}
    sweep = by_path["main/rail_sweep"]
    assert sweep["nodeid"] == "sequences/mixed.yaml::main/rail_sweep"
    assert [(v["index"], v["outcome"], v["params"]) for v in sweep["vectors"]] == [
        (0, "passed", {"vin": 5.0}), (1, "passed", {"vin": 12.0})]
    assert [(m["name"], m["value"], m["units"], m["outcome"], m["limit"]["low"], m["limit"]["high"])
            for m in sweep["measurements"]] == [("rail", 3.30, "V", "passed", 3.1, 3.5),
                                                ("rail", 3.31, "V", "passed", 3.1, 3.5)]
    assert sweep["error"] is None and sweep["excinfo"] is None
    assert isinstance(sweep["start_time"], float) and isinstance(sweep["duration"], float)
    assert sweep["start_time"] <= sweep["stop_time"]
    assert sweep["duration"] == pytest.approx(sweep["stop_time"] - sweep["start_time"], abs=1e-6)

    low = by_path["main/rail_low"]
    assert low["measurements"][0]["value"] == 2.0 and low["measurements"][0]["outcome"] == "failed"
    assert low["measurements"][0]["failure"] == "2.0 V < low 3.1"
    assert low["excinfo"] == {"type": "failed", "value": "rail = 2.0 V < low 3.1",
                              "traceback": ["[0]: rail = 2.0 V < low 3.1"]}
    fw = by_path["main/firmware"]["measurements"][0]
    assert (fw["value"], fw["text"], fw["limit"]["equals"]) == (None, "1.4.2", "1.4.2")
    garbage = by_path["main/garbage"]
    assert garbage["measurements"][0]["text"] == "not-a-number"
    assert "cannot be judged" in garbage["excinfo"]["value"]
    assert by_path["main/option_board"]["measurements"] == []
    assert by_path["main/option_board"]["excinfo"]["type"] == "skipped"
    # steps are posted as they end: start times never go backwards
    starts = [d["start_time"] for d in docs[:-1]]
    assert starts == sorted(starts)

    final = docs[-1]
    assert (final["result"], final["outcome"], final["nodeid"]) == ("fail", "errored", "sequences/mixed.yaml")
    assert final["steps"] == {"done": 2, "passed": 2, "failed": 1, "skipped": 1, "errored": 1}
    assert final["sequence_name"] == "mixed"
    assert final["stop_time"] >= docs[-2]["stop_time"]
    # a consumer written for pytest-publish reads every body unchanged
    assert [SeedResult.from_dict(d).result for d in docs] == [d["result"] for d in docs]


def test_never_ran_steps_are_not_posted_but_counted(project: Path, server: Collector) -> None:
    assert run("sequences/stop.yaml", "--publish", server.url) == 1
    steps = [d["step_path"] for d in server.posts if d["type"] == "step"]
    assert steps == ["main/first", "main/bad", "cleanup/1"]
    assert server.posts[-1]["steps"]["never ran"] == 2
    assert (server.posts[-1]["result"], server.posts[-1]["outcome"]) == ("fail", "failed")


def test_connect_failure_is_posted_as_the_run_document(project: Path, server: Collector) -> None:
    assert run("sequences/powered.yaml", "--station", "dead", "--publish", server.url) == 3
    (doc,) = server.posts
    assert (doc["type"], doc["result"], doc["outcome"]) == ("run", "fail", "errored")
    assert doc["excinfo"]["type"] == "InstrumentError" and "psu: cannot connect" in doc["excinfo"]["value"]
    assert doc["log"].startswith("ERROR psu: cannot connect")


def test_server_error_500_keeps_the_posts_and_retry_delivers_them(project: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    failing = Collector(status=500)
    try:
        code = run("sequences/passing.yaml", "--publish", failing.url)
    finally:
        failing.close()
    _, err = capsys.readouterr()
    assert code == 0
    assert len(failing.posts) == 3  # the server did receive them, and refused them
    lines = [line for line in err.splitlines() if line.startswith("publish:")]
    assert lines == [f"publish: 3 of 3 posts to {failing.url} not delivered (HTTP 500 Internal Server Error); "
                     f"kept in data/outbox/publish: sent again by the next run or 'litmus-seq publish --retry'"]
    kept = outbox(project)
    assert [(k["url"], k["body"]["type"]) for k in kept] == [(failing.url, "step")] * 2 + [(failing.url, "run")]

    assert publish_cli() == 0
    assert "3 posts waiting" in capsys.readouterr().out
    healthy = Collector(port=int(failing.url.split(":")[2].split("/")[0]))
    try:
        assert publish_cli("--retry") == 0
    finally:
        healthy.close()
    assert capsys.readouterr().out.strip() == "sent 3 of 3 posts"
    assert [d["step_path"] if d["type"] == "step" else "<run>" for d in healthy.posts] == [
        "main/rail_ok", "main/firmware", "<run>"]
    assert outbox(project) == []
    assert publish_cli("--retry") == 0  # nothing left: nothing sent twice
    assert len(healthy.posts) == 3


def test_refused_posts_are_sent_first_by_the_next_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/x"
    assert run("sequences/passing.yaml", "--publish", url) == 0
    out, err = capsys.readouterr()
    assert "PASSED" in out and (project / "data" / "runs").is_dir()  # the record is intact
    assert f"publish: 3 of 3 posts to {url} not delivered (connection refused)" in err
    first_run = {k["body"]["run_id"] for k in outbox(project)}
    assert len(outbox(project)) == 3 and len(first_run) == 1

    back = Collector(port=port)  # the dashboard is back
    try:
        assert run("sequences/passing.yaml", "--publish", url) == 0
    finally:
        back.close()
    assert "publish:" not in capsys.readouterr().err
    runs_in_order = [d["run_id"] for d in back.posts]
    assert len(runs_in_order) == 6 and set(runs_in_order[:3]) == first_run  # old posts first
    assert len(set(runs_in_order[3:])) == 1 and set(runs_in_order[3:]) != first_run
    assert outbox(project) == []


def test_unresolvable_host_keeps_the_posts(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://litmus-seq-dashboard.invalid/x"  # .invalid never resolves (RFC 2606)
    assert run("sequences/passing.yaml", "--publish", url) == 0
    err = capsys.readouterr().err
    assert f"publish: 3 of 3 posts to {url} not delivered" in err
    assert [k["url"] for k in outbox(project)] == [url] * 3


def test_hung_server_costs_the_close_budget_and_nothing_is_lost(project: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    hold = threading.Event()
    hung = Collector(hold=hold)
    try:
        assert run("sequences/passing.yaml", "--publish", hung.url) == 0
        err = capsys.readouterr().err
        # the first post reached the server and got no answer; the others never left the queue
        assert len(hung.posts) == 1
        assert "not delivered (no answer within the 1 s given at the end of the run)" in err \
            or "not delivered (not sent within the 1 s given at the end of the run)" in err
        kept = outbox(project)
        assert [k["body"]["type"] for k in kept] == ["step", "step", "run"]
        hold.set()  # the server answers again: retry delivers all three (the first one twice)
        assert publish_cli("--retry") == 0
    finally:
        hung.close()
    assert outbox(project) == []
    assert [d["type"] for d in hung.posts] == ["step", "step", "step", "run"]
    assert hung.posts[0] == hung.posts[1]  # at least once: the unanswered post came again


def test_endless_reply_is_read_only_up_to_the_bound(project: Path) -> None:
    """A server answering with a 1 GB body: the post counts, the rest of the body is never read."""
    flood = Collector(reply_bytes=1 << 30)
    try:
        assert run("sequences/passing.yaml", "--publish", flood.url) == 0
        assert flood.stream_broken.wait(30)  # the client hung up on it
    finally:
        flood.close()
    assert len(flood.posts) == 3 and outbox(project) == []
    # what the server got rid of is only what the loopback socket buffers hold
    assert flood.streamed < 3 * 64 * (1 << 20)


def test_post_reads_at_most_the_reply_limit() -> None:
    """``post`` itself, against a server that counts how much of its reply was taken."""
    import http.client

    taken = []

    class Probe(http.client.HTTPResponse):
        def read(self, amt: int | None = None) -> bytes:
            data = super().read(amt)
            taken.append((amt, len(data)))
            return data

    flood = Collector(reply_bytes=1 << 24)
    original = http.client.HTTPConnection.response_class
    http.client.HTTPConnection.response_class = Probe
    try:
        post(flood.url, b"{}", timeout_s=5)
    finally:
        http.client.HTTPConnection.response_class = original
        flood.close()
    assert taken == [(REPLY_LIMIT, REPLY_LIMIT)]


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


def test_default_close_budget_is_one_second() -> None:
    assert CLOSE_BUDGET_S == 1.0 and Publisher("http://127.0.0.1:9/x").close_budget_s == 1.0


def test_publisher_never_blocks_the_caller_and_keeps_everything(tmp_path: Path) -> None:
    """Documents submitted while the server hangs are queued (the caller returns at once), and the
    close keeps every one of them in the outbox, in order."""
    import io

    hold = threading.Event()
    hung = Collector(hold=hold)
    err = io.StringIO()
    pub = Publisher(hung.url, outbox=tmp_path / "outbox", close_budget_s=0.2, stderr=err)
    try:
        for i in range(50):
            pub.submit({"type": "step", "i": i})
        assert hung.received.wait(30)
        pub.close()
        assert pub.total == 50 and pub.failed == 50  # read before the server is let go
    finally:
        hung.close()
    kept = [json.loads(p.read_text())["body"]["i"] for p in Outbox(tmp_path / "outbox").entries()]
    assert kept == list(range(50))
    assert err.getvalue().startswith(f"publish: 50 of 50 posts to {hung.url} not delivered")


def test_nothing_posted_means_no_thread_and_no_warning() -> None:
    import io

    err = io.StringIO()
    pub = Publisher("http://127.0.0.1:9/x", stderr=err)
    pub.close()
    assert pub._thread is None and err.getvalue() == ""


def test_two_senders_never_send_the_same_outbox(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "box")
    box.add("http://127.0.0.1:9/x", b'{"a": 1}')
    other = Outbox(tmp_path / "box")
    assert box.claim()
    try:
        assert not other.claim()
    finally:
        box.release()
    assert other.claim()
    other.release()
    assert not list((tmp_path / "box").glob(".*"))  # the lock is the folder itself: no lock file
