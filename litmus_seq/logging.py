"""The bridge between Python's :mod:`logging` and a run.

Two directions:

* :class:`LitmusHandler` turns log records into verdicts: a WARNING (or worse) fails the open
  step, an ERROR (or worse) errors it — the levels are yours to set. Attach it to the logger of
  the code under test::

      run = LitmusClient().start_run(dut_serial="SN001", station_id="bench_1")
      logging.getLogger("my_test").addHandler(LitmusHandler(run))

* :func:`capture_logs` keeps every record logged while a step runs as a ``test.log`` event, so
  what a ``python:`` step or a harness step logged is in the event store and shown by
  ``litmus-seq show``, the ``--publish`` document (``log``) and ``--pubdir``'s ``log.txt``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["LitmusHandler", "capture_logs", "format_record"]

#: How a captured record reads in ``log.txt`` and ``show`` (pytest's default log format).
LOG_FORMAT = "%(levelname)-8s %(name)s:%(filename)s:%(lineno)d %(message)s"


def format_record(event: dict[str, Any]) -> str:
    """One ``test.log`` event as a line of text (``log.txt``, ``show``)."""
    where = f"{event.get('logger')}:{event.get('file')}:{event.get('line')}"
    return f"{event.get('level', 'INFO'):<8} {where} {event.get('message', '')}"


class LitmusHandler(logging.Handler):
    """A :class:`logging.Handler` that fails (``fail_level`` and above) or errors
    (``error_level`` and above; ``None``: never) what is open in ``target``: a results-client
    run or step, a :class:`~litmus_seq.Harness`, or a recorder :class:`~litmus_seq.run.Run` —
    anything with ``fail(message)`` and ``error(message)``. Records below ``fail_level`` are
    ignored (use :func:`capture_logs` to keep them)."""

    def __init__(self, target: Any, *, fail_level: int = logging.WARNING,
                 error_level: int | None = logging.ERROR) -> None:
        super().__init__(level=fail_level)
        self.target = target
        self.fail_level = fail_level
        self.error_level = error_level

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"{record.levelname}: {record.getMessage()}"
            if self.error_level is not None and record.levelno >= self.error_level:
                self.target.error(message)
            elif record.levelno >= self.fail_level:
                self.target.fail(message)
        except Exception:  # noqa: BLE001 - logging must never raise into the code under test
            self.handleError(record)


class _Capture(logging.Handler):
    """Records logged while a step runs, as ``test.log`` events of that step."""

    def __init__(self, run: Any, level: int) -> None:
        super().__init__(level=level)
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.run.log(level=record.levelname, logger=record.name, message=record.getMessage(),
                         file=record.filename, line=record.lineno)
        except Exception:  # noqa: BLE001 - logging must never raise into the code under test
            self.handleError(record)


@contextmanager
def capture_logs(run: Any, level: int = logging.INFO) -> Iterator[None]:
    """While the block runs, every record of ``level`` or above reaching the root logger is
    kept in ``run`` (a recorder :class:`~litmus_seq.run.Run`) as a ``test.log`` event of the
    open step. The root logger's level is lowered to ``level`` meanwhile, then restored."""
    root = logging.getLogger()
    handler = _Capture(run, level)
    old = root.level
    root.addHandler(handler)
    if old > level:
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
