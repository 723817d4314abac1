"""``--pubdir DIR``: every step result as a folder, pytest-publish's ``--pubdir`` per step.

For each finished step::

    DIR/<step_path>/.lock                  # flock'ed while a result is added
    DIR/<step_path>/count                  # number of results so far (runs, stations sharing DIR)
    DIR/<step_path>/<index>.<outcome>/     # index = count before this result
        result.json                        # the same document --publish posts
        brief.txt                          # one line: outcome, step, vectors, time, why
        error.txt                          # only if the step has an error: message, tracebacks

Tools that watch the folder (a dashboard, a log shipper) can trust every ``<index>.*`` folder below
``count``: a result's files are written before ``count`` moves past it, and ``count`` itself is
replaced atomically. Several stations or runs may share ``DIR``: the lock serialises writers of
the same step. Files are written at step boundaries only, never per measurement.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from litmus_seq.reporters import (
    atomic_write,
    RunRecord,
    StepReporter,
    StepResult,
    describe_measurement,
    dumps_document,
    step_document,
)

__all__ = ["PubDir", "step_folder"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# names the folder layout itself uses: a step called "count" must not collide with the file
_RESERVED = re.compile(r"^(count|\.lock|\d+\..*)$")


def _component(part: str) -> str:
    safe = _UNSAFE.sub("_", part) or "_"
    if safe in (".", "..") or _RESERVED.match(safe):
        safe = "_" + safe
    return safe


def step_folder(root: Path, step_path: str) -> Path:
    """The folder of ``step_path`` under ``root`` (each path part made filesystem-safe)."""
    return root.joinpath(*(_component(p) for p in step_path.split("/") if p != ""))


class _Lock:
    """An exclusive ``flock`` on ``<folder>/.lock`` (a no-op where fcntl does not exist)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self._fh: Any = None

    def __enter__(self) -> None:
        self._fh = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: single writer assumed
            return
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        try:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        except ImportError:  # pragma: no cover
            pass
        finally:
            self._fh.close()


def _read_count(folder: Path) -> int:
    """Results so far. ``count`` is trusted; if it is missing or damaged (deleted or edited by
    hand), continue after the highest result folder so no result is ever overwritten."""
    try:
        return int((folder / "count").read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        indices = [int(p.name.split(".", 1)[0]) for p in folder.iterdir()
                   if p.is_dir() and p.name.split(".", 1)[0].isdigit()]
        return max(indices, default=-1) + 1


def brief_line(step: StepResult, run: RunRecord) -> str:
    """``FAILED main/rail_low (1 vector, 0.002 s) run 8d7e… dut=SN1: rail = 2.0 V, …``."""
    n = len(step.vectors)
    what = "group" if step.kind == "group" else f"{n} vector{'s' if n != 1 else ''}"
    line = (f"{(step.outcome or 'unknown').upper()} {step.step_path} ({what}, {step.duration_s:.3f} s) "
            f"run {run.run_id[:12]} dut={run.context.get('dut_serial') or '-'}")
    if step.error:
        line += f": {step.error}"
    return " ".join(line.split())  # one line, whatever the error message holds


def _error_text(step: StepResult) -> str:
    parts = [step.error or ""]
    for m in step.bad_measurements():
        parts.append(describe_measurement(m))
    for d in step.diagnostics:
        parts.append(d.get("traceback") or d.get("message") or "")
    return "\n".join(p.rstrip() for p in parts if p) + "\n"


class PubDir(StepReporter):
    """Writes one result folder per finished step under ``root`` (see the module docstring)."""

    label = "pubdir"

    def __init__(self, root: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        #: the result folders written by this reporter, in order
        self.written: list[Path] = []

    def on_step(self, step: StepResult, run: RunRecord) -> None:
        try:
            self.written.append(self.publish(step, run))
        except OSError as exc:
            where = exc.filename if exc.filename is not None else self.root
            self.problem(f"cannot write {where}: {exc.strerror or exc}; check the --pubdir folder")

    def publish(self, step: StepResult, run: RunRecord) -> Path:
        """Add one result for ``step``; returns its folder."""
        folder = step_folder(self.root, step.step_path)
        folder.mkdir(parents=True, exist_ok=True)
        doc = dumps_document(step_document(step, run), indent=2) + "\n"
        brief = brief_line(step, run) + "\n"
        error = _error_text(step) if step.error or step.diagnostics else None
        with _Lock(folder):
            index = _read_count(folder)
            result = folder / f"{index}.{step.outcome or 'unknown'}"
            result.mkdir()  # FileExistsError (an OSError) rather than overwrite a result
            (result / "result.json").write_text(doc, encoding="utf-8")
            (result / "brief.txt").write_text(brief, encoding="utf-8")
            if error is not None:
                (result / "error.txt").write_text(error, encoding="utf-8")
            atomic_write(folder / "count", f"{index + 1}\n".encode())
        return result
