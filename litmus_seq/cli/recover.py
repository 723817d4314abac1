"""``litmus-seq recover``: rebuild run files from the event store after a crash.

A run whose process died (kill -9, power loss, a crash of litmus-seq itself) has its events on
disk but no parquet file: the live materializer only writes at ``run.ended``. ``recover`` replays
every event file through the same :class:`~litmus_seq.stores.materializer.RunMaterializer` and
writes the runs that have no file yet; unfinished runs are sealed ``aborted``.

"Has a file yet" is decided from the run files themselves (their ``run_id`` metadata), so there
is no second bookkeeping that could disagree with the data: running ``recover`` twice writes
nothing the second time. Sessions still being written by a live process (their event file is
locked) are skipped, so a running test is never sealed as aborted under its feet.

A run whose ``run.ended`` reached the event store keeps its real outcome even if the process died
during the parquet seal (the event store is durable before the seal starts). Two ``recover``
processes at once take turns (a lock), so no run is written twice; a run or file that cannot be
recovered is reported and the others are still written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from litmus_seq.errors import LitmusError, StoreError

try:  # POSIX only; elsewhere two recovers at once are the operator's to avoid
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["recover", "recover_runs", "recorded_run_ids"]


def recorded_run_ids(data_dir: Path) -> set[str]:
    """The run ids that already have a parquet file under ``<data_dir>/runs``."""
    import pyarrow.parquet as pq

    ids: set[str] = set()
    root = Path(data_dir) / "runs"
    if not root.is_dir():
        return ids
    for path in root.glob("**/*.parquet"):
        try:
            meta = pq.read_metadata(path).metadata or {}
            rid = meta.get(b"run_id")
            if rid:
                ids.add(rid.decode())
                continue
            # a file from another writer: read its run_id column
            if "run_id" not in pq.read_schema(path).names:
                click.echo(f"warning: {path}: not a run file (no run_id column); ignored", err=True)
                continue
            table = pq.read_table(path, columns=["run_id"])
            ids.update(str(x) for x in table.column("run_id").unique().to_pylist() if x is not None)
        except Exception as exc:  # a corrupt file must not stop recovery of the others
            click.echo(f"warning: {path}: cannot read ({' '.join(str(exc).split())}); ignored", err=True)
    return ids


def recover_runs(data_dir: Path, *, echo: bool = True) -> list[Path]:
    """Write the missing run files of ``data_dir``; returns the files written.

    Under an exclusive lock (``<data_dir>/.recover.lock``): a second ``recover`` waits, then finds the
    runs the first one wrote. Temporary files of seals cut short are removed first. A run or an
    event file that cannot be recovered is reported (one line each) and the others are still
    written; a :class:`StoreError` at the end then says how many failed (exit 3).
    """
    from litmus_seq.stores.events import iter_event_files, read_events, session_in_progress, started_runs
    from litmus_seq.stores.materializer import materialize_events

    data_dir = Path(data_dir)
    files = _event_files(data_dir, iter_event_files)
    failed: list[str] = []

    def failure(where: object, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, LitmusError) else f"{type(exc).__name__}: {exc}"
        failed.append(f"{where}: {' '.join(message.split())}")
        click.echo(f"error: {failed[-1]}", err=True)

    written: list[Path] = []
    with _exclusive(data_dir, echo):
        _remove_stale_tmp(data_dir, echo)
        done = recorded_run_ids(data_dir)
        for path in files:
            if session_in_progress(path):
                if echo:
                    click.echo(f"skipped {path}: a running session is still writing it")
                continue
            started = started_runs(path)
            if started is None:
                if _size(path) > 0:  # a torn tail is what a crash leaves; no event at all is not
                    click.echo(f"warning: {path}: no readable event in it (not an Arrow IPC event "
                               "file, or cut short before the first event); ignored", err=True)
                continue
            if started <= done:
                continue  # every run of this session has its file: nothing to replay
            try:
                new = materialize_events(read_events(path), data_dir, seal_unfinished=True, exclude_runs=done,
                                         on_error=lambda run_id, exc: failure(f"run {run_id} ({path})", exc))
            except Exception as exc:  # the file itself: one bad file never stops the others
                failure(path, exc)
                continue
            for p in new:
                if echo:
                    click.echo(f"recovered {p}")
            written.extend(new)
    if failed:
        raise StoreError(f"{len(failed)} run{'s' if len(failed) != 1 else ''} could not be recovered "
                         f"({len(written)} written); fix the cause named above and run 'litmus-seq "
                         "recover' again")
    return written


def _event_files(data_dir: Path, iter_event_files: Any) -> list[Path]:
    if not data_dir.is_dir():
        what = "is a file, not a data folder" if data_dir.exists() else "no such folder"
        raise LitmusError(f"{data_dir}: {what}; point --data-dir (or LITMUS_DATA_DIR) at the folder "
                          "'litmus-seq run' wrote to")
    try:
        files = list(iter_event_files(data_dir))
    except OSError as exc:
        raise LitmusError(f"{data_dir / 'events'}: cannot list the event files: "
                          f"{exc.strerror or exc}") from None
    if not files:
        raise LitmusError(f"{data_dir / 'events'}: no event files to recover from (is --data-dir "
                          "right? it is where 'litmus-seq run' wrote its data)")
    return files


@contextmanager
def _exclusive(data_dir: Path, echo: bool) -> Iterator[None]:
    """Hold ``<data_dir>/.recover.lock`` (released by the OS if this process dies)."""
    lock = data_dir / ".recover.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"{exc.filename or lock}: cannot create the recover lock: {exc.strerror or exc}; "
                         "make the data folder writable") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if echo:
                    click.echo(f"waiting for another 'litmus-seq recover' of {data_dir} to finish")
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_stale_tmp(data_dir: Path, echo: bool) -> None:
    """Delete what writes cut short by a crash left (never a file a live writer holds)."""
    from litmus_seq.stores.paths import stale_tmp_files

    for tmp in stale_tmp_files(data_dir / "runs") + stale_tmp_files(data_dir / "channels"):
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            click.echo(f"warning: {tmp}: cannot remove this unfinished file: {exc.strerror or exc}", err=True)
            continue
        if echo:
            click.echo(f"removed {tmp}: an unfinished file (its write was cut short by a crash)")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@click.command()
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
def recover(data_dir: str | None) -> int:
    """Write the run files missing after a crash (unfinished runs become 'aborted')."""
    from litmus_seq.cli.results import resolve_data_dir

    root = resolve_data_dir(data_dir)
    written = recover_runs(root)
    if not written:
        click.echo(f"nothing to recover in {root}: every run has its file")
    else:
        click.echo(f"{len(written)} run file{'s' if len(written) != 1 else ''} written")
    return 0
