"""``--pubdir DIR``: every step result as a folder, the tree of pytest-publish's ``--pubdir``.

For each finished step, and once for each run whatever its end (under ``DIR/run``)::

    DIR/<step_path>/.lock                 # flock'ed while a result is added (as the seed's)
    DIR/<step_path>/count                 # number of results so far (runs, stations sharing DIR)
    DIR/<step_path>/<index>.<result>/     # index = count before this result; pass | skip | fail
        brief.txt                         # one line: outcome, step, vectors, time, why
        result.json                       # the same document --publish posts
        exception.txt                     # only if "skip" or "fail": why, failures, tracebacks
        stdout.txt / stderr.txt / log.txt # only if the step has any (log: its diagnostics)

``<result>`` is the seed's word (``pass``/``skip``/``fail``); the full outcome (``errored``,
``terminated``...) is ``outcome`` in ``result.json`` and the first word of ``brief.txt``. Step
paths always begin with their phase (``setup/``, ``main/``, ``cleanup/``), so ``DIR/run`` never
meets a step.

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
    RunRecord,
    StepReporter,
    StepResult,
    atomic_write,
    dumps_document,
    result_word,
    run_document,
    step_document,
)

__all__ = ["RUN_FOLDER", "PubDir", "step_folder"]

#: the folder of run results under DIR
RUN_FOLDER = "run"

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
    """``FAILED main/rail_low (1 vector, 0.002 s) run 8d7e… dut=SN1: rail = 2.0 V < low 3.1``."""
    n = len(step.vectors)
    what = "group" if step.kind == "group" else f"{n} vector{'s' if n != 1 else ''}"
    line = (f"{(step.outcome or 'unknown').upper()} {step.step_path} ({what}, {step.duration_s:.3f} s) "
            f"run {run.run_id[:12]} dut={run.context.get('dut_serial') or '-'}")
    if step.retries and step.outcome in ("passed", "done"):
        line += f" after {step.retries} retr{'y' if step.retries == 1 else 'ies'}"
    excinfo = step_document(step, run)["excinfo"]
    if excinfo is not None:
        line += f": {excinfo['value']}"
    return " ".join(line.split())  # one line, whatever the error message holds


def run_brief_line(run: RunRecord) -> str:
    """``ERRORED run 8d7e… mixed dut=SN1 (0.120 s): dmm: cannot connect ...``."""
    doc = run_document(run)
    line = (f"{run.verdict.upper()} run {run.run_id[:12]} {run.context.get('sequence_name') or ''} "
            f"dut={run.context.get('dut_serial') or '-'} ({run.duration_s:.3f} s)")
    if run.retries:
        line += f" {run.retries} retr{'y' if run.retries == 1 else 'ies'}"
    if doc["excinfo"] is not None:
        line += f": {doc['excinfo']['value']}"
    return " ".join(line.split())


def _files(doc: dict[str, Any], brief: str) -> dict[str, str]:
    """The files of one result folder, as the seed lists them (each "only if" honoured)."""
    files = {"brief.txt": brief + "\n", "result.json": dumps_document(doc, indent=2) + "\n"}
    excinfo = doc.get("excinfo")
    if excinfo is not None:
        files["exception.txt"] = "\n".join([f"{excinfo['type']}: {excinfo['value']}", *excinfo["traceback"]]) + "\n"
    for key in ("stdout", "stderr", "log"):
        if doc.get(key):
            files[f"{key}.txt"] = doc[key]
    return files


class PubDir(StepReporter):
    """Writes one result folder per finished step and per run under ``root`` (module docstring)."""

    label = "pubdir"

    def __init__(self, root: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        #: the result folders written by this reporter, in order
        self.written: list[Path] = []
        self._runs_written: set[str] = set()

    def on_step(self, step: StepResult, run: RunRecord) -> None:
        self._write(step_folder(self.root, step.step_path), result_word(step.outcome),
                    _files(step_document(step, run), brief_line(step, run)))

    def on_run_ended(self, run: RunRecord) -> None:
        self._runs_written.add(run.run_id)
        self._write(self.root / RUN_FOLDER, result_word(run.verdict), _files(run_document(run), run_brief_line(run)))

    def on_close(self) -> None:
        for run in self.runs:  # a run that started but never ended still gets its result
            if run.run_id not in self._runs_written:
                self.on_run_ended(run)

    def _write(self, folder: Path, result: str, files: dict[str, str]) -> None:
        try:
            self.written.append(self.add_result(folder, result, files))
        except OSError as exc:
            where = exc.filename if exc.filename is not None else self.root
            self.problem(f"cannot write {where}: {exc.strerror or exc}; check the --pubdir folder")

    def publish(self, step: StepResult, run: RunRecord) -> Path:
        """Add one result for ``step``; returns its folder."""
        return self.add_result(step_folder(self.root, step.step_path), result_word(step.outcome),
                               _files(step_document(step, run), brief_line(step, run)))

    @staticmethod
    def add_result(folder: Path, result: str, files: dict[str, str]) -> Path:
        """Add result folder ``<count>.<result>`` holding ``files`` under ``folder``; returns it."""
        folder.mkdir(parents=True, exist_ok=True)
        with _Lock(folder):
            index = _read_count(folder)
            target = folder / f"{index}.{result}"
            target.mkdir()  # FileExistsError (an OSError) rather than overwrite a result
            for name, text in files.items():
                (target / name).write_text(text, encoding="utf-8")
            atomic_write(folder / "count", f"{index + 1}\n".encode())
        return target
