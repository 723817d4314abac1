"""``--publish URL``: POST every step result (and each run's end) as JSON, pytest-publish style.

Documents (see :func:`litmus_seq.reporters.step_document` / :func:`run_document`):

* ``{"type": "step", "result": <outcome>, "node_id", "step_path", "run_id", "session_id",
  "dut_serial", "start_time", "stop_time", "duration", "vectors": [...], "measurements": [...],
  "error", ...}`` when a step ends;
* ``{"type": "run", "result": <run outcome>, ...}`` when the run ends.

A dashboard is a convenience, the run is the record: a slow or dead server must never slow down
or fail a production run. So documents go through a bounded queue to one background thread that
posts them in order with ``urllib.request`` (stdlib; no new dependency). A full queue drops the
document; a failed post is counted. ``close()`` drains the queue with a deadline, then prints one
line on stderr if anything was lost, e.g. ``publish: 3 of 12 posts failed: connection refused``.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from litmus_seq.errors import ConfigError
from litmus_seq.reporters import RunRecord, StepReporter, StepResult, dumps_document, run_document, step_document

__all__ = ["Publisher", "validate_url"]

_STOP = object()


def validate_url(url: str, option: str = "--publish") -> str:
    """``url`` if it is an http(s) URL with a host; else a one-line :class:`ConfigError` (exit 4)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{option} {url}: the URL must start with http:// or https:// "
                          f"(e.g. http://localhost:7777/test-update)")
    if not parts.hostname:
        raise ConfigError(f"{option} {url}: the URL has no host (e.g. http://localhost:7777/test-update)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(f"{option} {url}: the port is not a number 0-65535") from None
    return url


def _reason(exc: BaseException, timeout_s: float) -> str:
    """A short, stable reason for the warning line (``connection refused``, ``HTTP 500 ...``)."""
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}".strip()
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        if isinstance(inner, BaseException):
            return _reason(inner, timeout_s)
        return str(inner)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout_s:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {exc}"


class Publisher(StepReporter):
    """POSTs step and run documents to ``url`` from a background thread (see the module doc)."""

    label = "publish"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        queue_size: int = 1000,
        drain_s: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = validate_url(url)
        self.timeout_s = timeout_s
        #: how long close() waits for queued posts before giving up on them
        self.drain_s = drain_s if drain_s is not None else max(5.0, 2 * timeout_s)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(queue_size, 1))
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._abandon = threading.Event()
        self.total = 0  # documents submitted (posted, failed or dropped)
        self.sent = 0
        self.reasons: Counter[str] = Counter()  # failure reason -> count

    # -- engine thread -------------------------------------------------------------------------

    def on_step(self, step: StepResult, run: RunRecord) -> None:
        self.submit(step_document(step, run))

    def on_run_ended(self, run: RunRecord) -> None:
        self.submit(run_document(run))

    def submit(self, doc: dict[str, Any]) -> None:
        """Queue ``doc`` for posting; never blocks (a full queue drops it and counts it)."""
        with self._lock:
            self.total += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="litmus-seq-publish", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(doc)
        except queue.Full:
            self._fail(f"queue full ({self._queue.maxsize} documents waiting; server too slow)")

    # -- worker thread -------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        with self._lock:
            self.reasons[reason] += 1

    @property
    def failed(self) -> int:
        with self._lock:
            return sum(self.reasons.values())

    def _worker(self) -> None:
        import urllib.request

        from litmus_seq import __version__

        headers = {"Content-Type": "application/json", "User-Agent": f"litmus-seq/{__version__}"}
        while True:
            doc = self._queue.get()
            if doc is _STOP or self._abandon.is_set():
                return
            try:
                body = dumps_document(doc).encode("utf-8")
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    resp.read()
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none is raised
                self._fail(_reason(exc, self.timeout_s))
            else:
                with self._lock:
                    self.sent += 1

    # -- close ---------------------------------------------------------------------------------

    def on_close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + self.drain_s
        try:
            self._queue.put(_STOP, timeout=self.drain_s)
        except queue.Full:
            pass
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            self._abandon.set()  # the thread finishes its current post and drops the rest
        with self._lock:
            lost = self.total - self.sent - sum(self.reasons.values())
            if lost > 0:
                self.reasons[f"not sent within {self.drain_s:g} s of the end of the session"] += lost

    def warning_lines(self) -> list[str]:
        lines = super().warning_lines()
        with self._lock:
            failed = sum(self.reasons.values())
            if failed:
                reason, n = self.reasons.most_common(1)[0]
                others = "" if n == failed else f" (and {failed - n} for other reasons)"
                lines.insert(0, f"{self.label}: {failed} of {self.total} posts to {self.url} failed: "
                                f"{reason}{others}")
        return lines
