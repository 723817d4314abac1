"""``litmus-seq push``: a station's sealed run files and their channel files into a lake.

Runs always seal locally first; a push copies what is sealed, so testing never waits on the
network. For each run file not yet pushed: its channel files, then the run file itself, to::

    runs/date=YYYY-MM-DD/station=ID/<run file name>
    channels/date=YYYY-MM-DD/station=ID/<run_id>/<key>.arrow

(``date`` the run's UTC start date, ``station`` its ``station_id``). Each object is written
once, complete or not at all (:meth:`Store.publishing`), and never overwritten. What has been
pushed is recorded, one line per object, in the push journal
``<data_dir>/.push/<lake id>.jsonl`` -- the manifest that makes a push resumable: a push cut
short (network down, process killed) is simply run again. An object that is in the lake but not
in the journal (the journal line was lost with the process) is recognised by its size and
recorded without a second upload; one of a different size is reported and left alone.

One push per data folder runs at a time. A push started while another runs leaves a note and
returns at once; the running one makes another pass before it ends, so nothing sealed in the
meantime waits for the next run. ``push_to:`` in ``litmus.yaml`` starts a push in the background
after every run (:func:`push_in_background`); its output goes to ``<data_dir>/.push/push.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from litmus_seq.errors import StoreError
from litmus_seq.lake.store import RunFile, Store, open_data_dir, partition

__all__ = ["push", "PushResult", "push_in_background", "journal_path"]

_JOURNAL_DIR = ".push"


@dataclass
class PushResult:
    """What one push did."""

    runs: int = 0  # run files uploaded in this push
    objects: int = 0  # objects uploaded (run and channel files)
    bytes: int = 0
    already: int = 0  # found in the lake already (same size), recorded without upload
    conflicts: list[str] = field(default_factory=list)  # in the lake with another size: left alone
    seconds: float = 0.0
    busy: bool = False  # another push was running: it takes these runs


def journal_path(data_dir: Path, lake: Store) -> Path:
    """The push journal of ``data_dir`` for ``lake``."""
    digest = hashlib.sha256(lake.uri.encode()).hexdigest()[:16]
    return Path(data_dir) / _JOURNAL_DIR / f"{digest}.jsonl"


def push(data_dir: Path, lake: Store, *, progress: Callable[[str], None] | None = None) -> PushResult:
    """Push every sealed run of ``data_dir`` not yet in ``lake`` (see the module docstring)."""
    source = open_data_dir(data_dir)
    folder = Path(source.root) / _JOURNAL_DIR
    folder.mkdir(exist_ok=True)
    again = folder / "again"
    lock = _try_lock(folder / "push.lock")
    if lock is None:
        again.touch()
        return PushResult(busy=True)
    result = PushResult()
    started = time.perf_counter()
    try:
        scope = hashlib.sha256(f"{socket.gethostname()}:{source.root}".encode()).hexdigest()[:16]
        lake.staging = f"_staging/{scope}"
        lake.clear_staging()
        journal = journal_path(data_dir, lake)
        while True:
            again.unlink(missing_ok=True)
            _pass(source, lake, journal, result, progress)
            if not again.exists():
                break
    finally:
        result.seconds = time.perf_counter() - started
        lock.close()
    return result


def _pass(source: Store, lake: Store, journal: Path, result: PushResult,
          progress: Callable[[str], None] | None) -> None:
    done = _read_journal(journal)
    channels = _channel_folders(source)
    with open(journal, "a", encoding="utf-8") as log:
        for rf in sorted(source.run_files().values(), key=lambda r: r.path):
            if rf.path in done:
                continue
            station = source.station_of(rf)
            where = partition(rf.date, station)
            objects = [(c, f"channels/{where}/{c.split('/', 2)[2]}")
                       for c in channels.get(_run_id(source, rf), ())]
            objects.append((rf.path, f"runs/{where}/{rf.path.rsplit('/', 1)[1]}"))
            uploaded = 0
            for src, key in objects:  # channels first: a run in the lake has its waveforms
                if src in done:
                    continue
                uploaded += _one(source, lake, src, key, result)
                # no fsync: a line lost with the machine only costs a size check next time
                log.write(json.dumps({"src": src, "key": key}) + "\n")
                log.flush()
                done.add(src)
            if uploaded:
                result.runs += 1
                if progress is not None:
                    progress(f"{lake.display(objects[-1][1])}")


def _one(source: Store, lake: Store, src: str, key: str, result: PushResult) -> int:
    """Upload one object unless the lake has it; 1 if uploaded."""
    size = os.path.getsize(source.path(src))
    try:
        there = lake.size(key)
        if there is None:
            try:
                lake.put_file(key, Path(source.path(src)))
            except FileExistsError:
                there = lake.size(key)  # another writer published it meanwhile
            else:
                result.objects += 1
                result.bytes += size
                return 1
    except OSError as exc:
        raise StoreError(f"push to {lake.uri} stopped at {src}: {' '.join(str(exc).split())} "
                         f"({result.objects} objects pushed so far; run 'litmus-seq push' again to "
                         "resume)") from None
    if there == size:
        result.already += 1
    else:
        result.conflicts.append(lake.display(key))
    return 0


def _read_journal(path: Path) -> set[str]:
    done: set[str] = set()
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    done.add(json.loads(line)["src"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: its object is checked again
    except FileNotFoundError:
        pass
    return done


def _channel_folders(source: Store) -> dict[str, list[str]]:
    """The channel files of each run folder name (``channels/<date>/<run>/<key>.arrow``)."""
    out: dict[str, list[str]] = {}
    root = Path(source.root) / "channels"
    if not root.is_dir():
        return out
    for path in sorted(root.glob("*/*/*.arrow")):
        if path.name.startswith("."):
            continue
        out.setdefault(path.parent.name, []).append(path.relative_to(source.root).as_posix())
    return out


def _run_id(source: Store, rf: RunFile) -> str:
    """The run folder name of a run file's channels (its ``run_id``, made path-safe as the
    channel store makes it)."""
    import pyarrow.parquet as pq

    from litmus_seq.stores.paths import safe_name

    try:
        md = pq.read_metadata(source.path(rf.path)).metadata or {}
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{source.display(rf.path)}: not a readable run file ({exc}); move it out "
                         "of runs/ and push again") from None
    run_id = md.get(b"run_id")
    if run_id is None:
        table = pq.ParquetFile(source.path(rf.path)).read_row_group(0, columns=["run_id"])
        run_id = str(table.column(0)[0].as_py()).encode()
    return safe_name(run_id.decode())


class _Held:
    def __init__(self, fh: object) -> None:
        self.fh = fh

    def close(self) -> None:
        self.fh.close()  # type: ignore[attr-defined]  # releases the flock


def _try_lock(path: Path) -> _Held | None:
    """An exclusive ``flock`` on ``path``, or None if another process holds it."""
    fh = open(path, "a")  # noqa: SIM115 - closed by _Held.close
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one pusher assumed
        return _Held(fh)
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return _Held(fh)


def push_in_background(data_dir: Path, uri: str) -> None:
    """Start ``litmus-seq push --to uri`` for ``data_dir`` as a detached process (output to
    ``<data_dir>/.push/push.log``). Never raises: a push that cannot start is a warning, and the
    run it follows keeps its outcome."""
    try:
        folder = Path(data_dir) / _JOURNAL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "push.log", "ab") as log:
            subprocess.Popen(  # noqa: S603 - our own CLI, arguments from our own configuration
                [sys.executable, "-m", "litmus_seq.cli.main", "push", "--data-dir", str(data_dir),
                 "--to", uri],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
    except Exception as exc:  # noqa: BLE001 - the run's outcome must not depend on the push
        print(f"warning: push_to {uri}: the background push did not start ({exc}); "
              f"run 'litmus-seq push' later", file=sys.stderr)

