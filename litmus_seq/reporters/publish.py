"""``--publish URL``: POST every step result (and each run's end) as JSON, pytest-publish style.

Documents (see :func:`litmus_seq.reporters.step_document` / :func:`run_document`) carry the
fields of pytest-publish's ``TestResult`` (``type``, ``result`` = pass/skip/fail, ``nodeid``,
``start_time``, ``stop_time``, ``duration``, ``stdout``, ``stderr``, ``log``, ``excinfo``) and
ours (``outcome``, vectors, measurements with their limits, retries).

A dashboard is a convenience, the run is the record: a slow, dead or unresolvable server must
never slow down or fail a production run, and must not lose a result either. So:

* documents go through a queue to one background thread that posts them in order with
  ``urllib.request`` (stdlib; no new dependency); the engine thread never waits for the server;
* the server's reply is never read past :data:`REPLY_LIMIT` bytes (a server answering with an
  endless body costs nothing);
* at the end of the session :meth:`Publisher.close` waits at most :data:`CLOSE_BUDGET_S` for
  the queue, whatever the server does;
* every document not delivered by then (refused, timed out, still queued, or in flight) is kept
  in the outbox, ``<data_dir>/outbox/publish/``, one JSON file per post, and sent again first by
  the next run that publishes, or by ``litmus-seq publish --retry``. Delivery is at least once:
  a post in flight when the budget ran out is kept and may arrive twice.

One line on stderr says what was kept, e.g. ``publish: 3 of 12 posts to URL not delivered
(connection refused); kept in data/outbox/publish: sent again by the next run or 'litmus-seq
publish --retry'``.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litmus_seq.errors import ConfigError
from litmus_seq.reporters import (
    RunRecord,
    StepReporter,
    StepResult,
    atomic_write,
    dumps_document,
    run_document,
    step_document,
)

__all__ = ["CLOSE_BUDGET_S", "REPLY_LIMIT", "Outbox", "Publisher", "post", "validate_url"]

#: bytes of a server's reply read at most (the body is never needed; this keeps it cheap)
REPLY_LIMIT = 4096
#: seconds the end of a session may wait for the server, at most
CLOSE_BUDGET_S = 1.0
_SEQ = itertools.count()


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
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout_s:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {exc}"


def post(url: str, body: bytes, timeout_s: float) -> None:
    """POST ``body`` to ``url``; raises on any failure. Reads at most :data:`REPLY_LIMIT` bytes."""
    import urllib.request

    from litmus_seq import __version__

    headers = {"Content-Type": "application/json", "User-Agent": f"litmus-seq/{__version__}"}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        resp.read(REPLY_LIMIT)


class Outbox:
    """Posts that could not be delivered: ``<folder>/<time>-<pid>-<n>.json`` = ``{"url", "body"}``.

    Files are written atomically and removed once delivered; reading them in name order keeps
    the order they were produced in. One sender at a time: :meth:`claim` takes an exclusive,
    non-blocking ``flock`` on the folder itself (no lock file is left behind).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock_fd: int | None = None

    def entries(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def add(self, url: str, body: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time.time_ns():020d}-{os.getpid()}-{next(_SEQ):06d}.json"
        record = {"url": url, "body": json.loads(body)}
        atomic_write(path, json.dumps(record).encode("utf-8"))
        return path

    @staticmethod
    def read(path: Path) -> tuple[str, bytes]:
        record = json.loads(path.read_text(encoding="utf-8"))
        return str(record["url"]), json.dumps(record["body"]).encode("utf-8")

    def claim(self) -> bool:
        """True if this process may send the outbox now (another sender is not at it)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: single sender assumed
            return True
        try:
            fd = os.open(self.folder, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def send(self, timeout_s: float, *, stop: threading.Event | None = None) -> tuple[int, Counter[str]]:
        """Send every entry in order (each to its own URL); ``(sent, failure reasons)``.

        After a failure, the later entries for the same URL wait for the next attempt: a dead
        server costs one timeout, not one per entry.
        """
        sent, reasons, dead = 0, Counter[str](), set()
        for path in self.entries():
            if stop is not None and stop.is_set():
                break
            try:
                url, body = self.read(path)
            except (OSError, ValueError, KeyError) as exc:
                reasons[f"unreadable outbox file {path.name}: {exc}"] += 1
                continue
            if url in dead:
                reasons["not tried after an earlier failure"] += 1
                continue
            try:
                post(url, body, timeout_s)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none is raised
                reasons[_reason(exc, timeout_s)] += 1
                dead.add(url)
                continue
            path.unlink(missing_ok=True)
            sent += 1
        return sent, reasons


class Publisher(StepReporter):
    """POSTs step and run documents to ``url`` from a background thread (see the module doc)."""

    label = "publish"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        close_budget_s: float = CLOSE_BUDGET_S,
        outbox: Path | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = validate_url(url)
        self.timeout_s = timeout_s
        self.close_budget_s = close_budget_s
        self.outbox: Outbox | None = Outbox(Path(outbox)) if outbox is not None else None
        # bodies waiting, the one being posted and the failed ones, all under one lock so that
        # close() always finds every body that was not delivered
        self._queue: deque[bytes] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._abandon = threading.Event()
        self._in_flight: bytes | None = None
        self._undelivered: list[bytes] = []  # bodies that failed, in order
        self.total = 0  # documents of this session
        self.sent = 0  # of them, delivered
        self.resent = 0  # outbox entries of earlier runs delivered by this one
        self.kept: list[Path] = []  # outbox files written at close
        self.reasons: Counter[str] = Counter()  # failure reason -> count

    def use_data_dir(self, data_dir: Path) -> None:
        """Keep undelivered posts in ``<data_dir>/outbox/publish`` (set before the first run)."""
        if self.outbox is None:
            self.outbox = Outbox(Path(data_dir) / "outbox" / "publish")

    # -- engine thread -------------------------------------------------------------------------

    def on_step(self, step: StepResult, run: RunRecord) -> None:
        self.submit(step_document(step, run))

    def on_run_ended(self, run: RunRecord) -> None:
        self.submit(run_document(run))

    def on_close(self) -> None:
        for run in self.runs:  # a run that started but never ended still gets its document
            if not run.ended:
                self.submit(run_document(run))
        self._finish()

    def submit(self, doc: dict[str, Any]) -> None:
        """Queue ``doc`` for posting; never blocks."""
        body = dumps_document(doc).encode("utf-8")
        with self._lock:
            self.total += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="litmus-seq-publish", daemon=True)
            self._thread.start()
        with self._wake:
            self._queue.append(body)
            self._wake.notify()

    # -- worker thread -------------------------------------------------------------------------

    def _worker(self) -> None:
        outbox = self.outbox
        if outbox is not None and outbox.entries() and outbox.claim():
            try:
                resent, _ = outbox.send(self.timeout_s, stop=self._abandon)
                with self._lock:
                    self.resent += resent
            finally:
                outbox.release()
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._abandon.is_set() or not self._queue:
                    return
                body = self._in_flight = self._queue.popleft()
            try:
                post(self.url, body, self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none is raised
                with self._lock:
                    self.reasons[_reason(exc, self.timeout_s)] += 1
                    self._undelivered.append(body)
            else:
                with self._lock:
                    self.sent += 1
            finally:
                with self._lock:
                    self._in_flight = None

    # -- close ---------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Wait at most ``close_budget_s`` for the queue, then keep what is left in the outbox."""
        thread = self._thread
        if thread is None:
            return
        with self._wake:
            self._stopping = True
            self._wake.notify()
        thread.join(self.close_budget_s)
        with self._wake:
            self._abandon.set()  # the worker stops; a post it has under way may still arrive
            left = list(self._undelivered)
            if self._in_flight is not None:
                left.append(self._in_flight)
                self.reasons[f"no answer within the {self.close_budget_s:g} s given at the end of the run"] += 1
            waiting = list(self._queue)
            self._queue.clear()
            if waiting:
                self.reasons[f"not sent within the {self.close_budget_s:g} s given at the end of the run"] += \
                    len(waiting)
            left += waiting
        for body in left:
            self._keep(body)

    def _keep(self, body: bytes) -> None:
        if self.outbox is None:
            self.problem("a post was lost: no data folder for the outbox")
            return
        try:
            self.kept.append(self.outbox.add(self.url, body))
        except OSError as exc:
            self.problem(f"cannot keep a post in {self.outbox.folder}: {exc.strerror or exc}")

    @property
    def failed(self) -> int:
        """Documents of this session not delivered (kept in the outbox, or lost)."""
        with self._lock:
            return self.total - self.sent

    def warning_lines(self) -> list[str]:
        lines = super().warning_lines()
        with self._lock:
            failed = self.total - self.sent
            if failed > 0 and self.reasons:
                reason, n = self.reasons.most_common(1)[0]
                where = (f"kept in {self.outbox.folder}: sent again by the next run or "
                         f"'litmus-seq publish --retry'") if self.outbox is not None and self.kept else "lost"
                lines.insert(0, f"{self.label}: {failed} of {self.total} posts to {self.url} not delivered "
                                f"({reason}); {where}")
        return lines
