"""Where run files live, for compaction, push and queries: a data folder or a lake.

Two layouts behind one :class:`Store`:

* a station's **data folder** (``litmus-seq run`` writes it; ``PARQUET.md``)::

      runs/YYYY-MM-DD/<stem>.parquet                 one file per run, the source of truth
      channels/YYYY-MM-DD/<run_id>/<key>.arrow
      compacted/date=YYYY-MM-DD/station=ID/part-*.parquet
      compacted/_manifest/*.json                     one entry per compacted part

* a **lake** (a local folder or an object store, filled by ``litmus-seq push``)::

      runs/date=YYYY-MM-DD/station=ID/<stem>.parquet
      channels/date=YYYY-MM-DD/station=ID/<run_id>/<key>.arrow
      compacted/...                                  as in a data folder
      _staging/...                                   uploads in flight, never read

Every object is written once and never overwritten: it is written in full under a name no
reader takes (a ``.``-prefixed temporary file beside it on a local disk, ``_staging/`` on an
object store) and only then published under its final name -- a hard link on a local disk
(which fails if the name exists), a server-side copy on an object store after checking the
name is free. Readers (DuckDB, pyarrow datasets, Spark) skip names starting with ``.`` or ``_``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq.errors import ConfigError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow.fs as pafs

__all__ = ["Store", "RunFile", "open_data_dir", "open_lake", "is_uri", "NO_STATION", "partition"]

#: The partition value of runs without a station id (Hive's own name for a NULL partition, so
#: Spark and pyarrow read it back as NULL).
NO_STATION = "__HIVE_DEFAULT_PARTITION__"

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def is_uri(value: str) -> bool:
    """Whether ``value`` names a location by URI (``s3://``, ``file://``) rather than a path."""
    return bool(_URI.match(str(value)))


def partition(date: str, station: str | None) -> str:
    """``date=YYYY-MM-DD/station=ID``: the Hive partition folder of a run."""
    value = NO_STATION if station in (None, "") else _UNSAFE.sub(
        lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), str(station))
    return f"date={date}/station={value}"


def _parse_partition(rel: str) -> tuple[str | None, str | None]:
    """``(date, station)`` from the ``date=``/``station=`` parts of a path (None where absent)."""
    from urllib.parse import unquote

    date = station = None
    for part in rel.split("/"):
        if part.startswith("date="):
            date = part[5:]
        elif part.startswith("station="):
            value = unquote(part[8:])
            station = None if value == NO_STATION else value
    return date, station


@dataclass(frozen=True, slots=True)
class RunFile:
    """One sealed run file of a store: its path relative to the store's root, size and partition."""

    path: str
    size: int
    date: str
    station: str | None = None  # known from the path only in a lake


class Store:
    """A data folder or a lake: a pyarrow file system and a root path inside it."""

    def __init__(self, fs: pafs.FileSystem, root: str, uri: str, *, hive: bool) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.uri = uri.rstrip("/")
        self.hive = hive  # lake layout (runs/date=/station=/) rather than a data folder's
        self.local = type(fs).__name__ == "LocalFileSystem"
        #: where uploads to an object store wait until complete; one folder per writer, so that
        #: a writer clears only what its own earlier attempts left (:meth:`clear_staging`)
        self.staging = "_staging/any"

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    # -- names ------------------------------------------------------------------------------

    def path(self, rel: str) -> str:
        """``rel`` as a path of :attr:`fs`."""
        return f"{self.root}/{rel}" if rel else self.root

    def display(self, rel: str) -> str:
        """``rel`` as users see it (and as the ``filename`` column holds it)."""
        return f"{self.uri}/{rel}" if rel else self.uri

    # -- reading ----------------------------------------------------------------------------

    def run_files(self) -> dict[str, RunFile]:
        """Every sealed run file, by relative path (temporary and hidden names left out)."""
        if self.local:
            return self._local_run_files()
        import pyarrow.fs as pafs

        found: dict[str, RunFile] = {}
        for info in self._listing("runs"):
            if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
                continue
            rel = info.path[len(self.root) + 1:]
            if any(p[:1] in "._" for p in rel.split("/")):
                continue
            date, station = _parse_partition(rel)
            if date is not None:
                found[rel] = RunFile(rel, info.size, date, station)
        return found

    def _local_run_files(self) -> dict[str, RunFile]:
        # os.scandir: a third of the time of a recursive pyarrow selector for 10,000 files
        found: dict[str, RunFile] = {}
        runs = Path(self.root) / "runs"
        try:
            firsts = sorted(os.scandir(runs), key=lambda e: e.name)
        except FileNotFoundError:
            return found
        except OSError as exc:
            raise StoreError(f"{self.display('runs')}: cannot list the run files: "
                             f"{exc.strerror or exc}") from None
        for first in firsts:
            if first.name[:1] in "._" or not first.is_dir():
                continue
            if self.hive:
                for second in sorted(os.scandir(first.path), key=lambda e: e.name):
                    if second.name[:1] not in "._" and second.is_dir():
                        self._add_files(found, f"runs/{first.name}/{second.name}")
            else:
                self._add_files(found, f"runs/{first.name}")
        return found

    def _add_files(self, found: dict[str, RunFile], folder: str) -> None:
        if self.hive:
            date, station = _parse_partition(folder)
        else:
            date, station = folder.rsplit("/", 1)[1], None
        if date is None or not _DATE.match(date):
            return  # not a folder litmus-seq writes: nothing of ours inside
        for entry in os.scandir(f"{self.root}/{folder}"):
            name = entry.name
            if name.endswith(".parquet") and name[:1] not in "._" and entry.is_file():
                rel = f"{folder}/{name}"
                found[rel] = RunFile(rel, entry.stat().st_size, date, station)

    def station_of(self, rf: RunFile) -> str | None:
        """The station of a run file: its partition in a lake; in a data folder, the
        ``station_id`` column's statistics (or, failing those, its first value)."""
        if self.hive:
            return rf.station
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path(rf.path), filesystem=self.fs)
            names = pf.schema_arrow.names
            if "station_id" not in names or pf.metadata.num_row_groups == 0:
                return None
            col = pf.metadata.row_group(0).column(names.index("station_id"))
            stats = col.statistics
            if stats is not None and stats.has_min_max and stats.min == stats.max:
                return str(stats.min)
            if stats is not None and stats.null_count == col.num_values:
                return None
            value = pf.read_row_group(0, columns=["station_id"]).column(0)[0].as_py()
            return None if value is None else str(value)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            raise StoreError(f"{self.display(rf.path)}: not a readable run file ({_one_line(exc)}); "
                             "move it out of runs/ and try again") from None

    def _listing(self, rel: str) -> list[Any]:
        import pyarrow.fs as pafs

        try:
            return self.fs.get_file_info(pafs.FileSelector(self.path(rel), recursive=True,
                                                           allow_not_found=True))
        except OSError as exc:
            raise StoreError(f"{self.display(rel)}: cannot list: {_one_line(exc)}") from None

    def files(self, rel: str) -> dict[str, int]:
        """Every file under ``rel`` (recursively) with its size, by relative path."""
        import pyarrow.fs as pafs

        return {i.path[len(self.root) + 1:]: i.size for i in self._listing(rel)
                if i.type == pafs.FileType.File}

    def size(self, rel: str) -> int | None:
        """The size of ``rel``, or None if there is no such file."""
        import pyarrow.fs as pafs

        try:
            info = self.fs.get_file_info(self.path(rel))
        except OSError as exc:
            raise StoreError(f"{self.display(rel)}: cannot look it up: {_one_line(exc)}") from None
        return info.size if info.type == pafs.FileType.File else None

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(rel)) as f:
                return f.read()
        except OSError as exc:
            raise StoreError(f"{self.display(rel)}: cannot read: {_one_line(exc)}") from None

    def read_json_entries(self, folder: str) -> list[tuple[str, dict[str, Any]]]:
        """The ``*.json`` objects directly in ``folder``, by name; unreadable ones are skipped
        (an entry is written atomically, so only a foreign file can be unreadable)."""
        out = []
        for rel in sorted(self.files(folder)):
            name = rel.rsplit("/", 1)[-1]
            if not name.endswith(".json") or name[:1] in "._" or rel.count("/") != folder.count("/") + 1:
                continue
            try:
                out.append((name, json.loads(self.read_bytes(rel))))
            except ValueError:
                continue
        return out

    # -- writing (write once, never overwrite) ----------------------------------------------

    @contextmanager
    def publishing(self, rel: str) -> Iterator[str]:
        """Yield a path of :attr:`fs` to write ``rel``'s content to; on a clean exit the content is
        published under ``rel`` in one step, on an exception it is removed. Raises
        :class:`FileExistsError` if ``rel`` exists (nothing is ever overwritten)."""
        if self.local:
            final = Path(self.path(rel))
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        else:
            tmp = None
            staged = self.path(f"{self.staging}/{uuid.uuid4().hex}")
        try:
            yield str(tmp) if tmp is not None else staged
            if tmp is not None:
                _fsync(tmp)
                os.link(tmp, final)  # atomic, and fails if the name is taken
                _fsync(final.parent)
            else:
                if self.size(rel) is not None:
                    raise FileExistsError(f"{self.display(rel)} exists")
                self.fs.move(staged, self.path(rel))  # server-side copy: all or nothing
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            else:
                self._delete_quietly(staged)

    def put(self, rel: str, data: bytes) -> None:
        """Write ``data`` as ``rel`` (write once: :class:`FileExistsError` if it exists)."""
        with self.publishing(rel) as path, self.fs.open_output_stream(path) as out:
            out.write(data)

    def put_file(self, rel: str, source: Path) -> None:
        """Copy the local file ``source`` to ``rel`` (write once)."""
        with self.publishing(rel) as path, open(source, "rb") as src, \
                self.fs.open_output_stream(path) as out:
            while True:
                chunk = src.read(8 << 20)
                if not chunk:
                    break
                out.write(chunk)

    def delete(self, rel: str) -> None:
        self._delete_quietly(self.path(rel))

    def clear_staging(self) -> int:
        """Remove what this writer's uploads cut short left in :attr:`staging` (read by no one)."""
        if self.local:
            return 0
        found = self.files(self.staging)
        for rel in found:
            self.delete(rel)
        return len(found)

    def _delete_quietly(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except (OSError, FileNotFoundError):
            pass

    def lock(self, name: str) -> Any:
        """An exclusive lock file ``.<name>.lock`` in a local store (a no-op elsewhere)."""
        return _Lock(Path(self.root) / f".{name}.lock" if self.local else None)


class _Lock:
    """An exclusive ``flock`` held while a compaction or push runs (released if the process dies)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: Any = None

    def __enter__(self) -> _Lock:
        if self.path is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one writer assumed
            return self
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # releases the flock


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to disk, so a power cut cannot publish a hollow file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def stamp() -> str:
    """A sortable, unique name stem for a manifest entry or a part: UTC time and a random tail."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + uuid.uuid4().hex[:12]


def open_data_dir(path: Path | str) -> Store:
    """The data folder ``path`` (it must exist and hold ``runs/``)."""
    import pyarrow.fs as pafs

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such folder, so no run files (run a sequence first, or point "
                          "--data-dir / LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to)")
    if not p.is_dir():
        raise ConfigError(f"{p}: is a file, not a data folder; point --data-dir / "
                          "LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to")
    root = p.resolve().as_posix()
    return Store(pafs.LocalFileSystem(), root, root, hive=False)


def open_lake(uri: str, *, create: bool = False) -> Store:
    """The lake at ``uri``: a local folder (a path or ``file://``) or an object store
    (``s3://bucket/prefix``; credentials, region and endpoint from the standard AWS
    environment variables and profiles, e.g. ``AWS_ENDPOINT_URL`` for an S3-compatible store)."""
    import pyarrow.fs as pafs

    text = str(uri).strip()
    if not text:
        raise ConfigError("the lake URI is empty; give a folder or s3://bucket/prefix")
    if not is_uri(text) or text.startswith("file://"):
        p = Path(text[7:] if text.startswith("file://") else text)
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{text}: is a file; a lake is a folder or s3://bucket/prefix")
        if not create and not p.is_dir():
            raise ConfigError(f"{text}: no such lake folder (fill it with 'litmus-seq push --to {text}')")
        root = p.resolve().as_posix()
        return Store(pafs.LocalFileSystem(), root, root, hive=True)
    if text.startswith("s3://") and "allow_delayed_open" not in text:
        # one PUT when the object is complete instead of a multipart upload: 5x faster for run
        # files, and nothing at all on the server if the upload never completes
        text_open = text + ("&" if "?" in text else "?") + "allow_delayed_open=true"
    else:
        text_open = text
    try:
        fs, root = pafs.FileSystem.from_uri(text_open)
    except (ValueError, OSError) as exc:  # (pyarrow's ArrowInvalid is a ValueError)
        raise ConfigError(f"{text}: not a lake URI this installation can open ({_one_line(exc)}); "
                          "give a folder or s3://bucket/prefix") from None
    root = root.rstrip("/")
    if not root:
        raise ConfigError(f"{text}: give a bucket (s3://bucket/prefix)")
    return Store(fs, root, text.split("?", 1)[0], hive=True)
