"""Compaction: many small run files into a few large files per date and station.

The same code compacts a station's data folder (``litmus-seq compact``) and a lake
(``litmus-seq compact --lake URI``). It never changes or removes a run file; it adds parts
(``compacted/date=D/station=S/part-<stamp>.parquet``) and, after each part is complete,
its manifest entry (:mod:`litmus_seq.lake.manifest`). A compaction cut short leaves at most a
part without an entry, which no reader sees and a later compaction removes. Running it again
compacts only the run files no part holds yet, so it is idempotent.

A part holds every row of its run files with their columns (the union of the files' schemas; a
column whose type differs between files becomes a string, as DuckDB's ``union_by_name`` reads
it) plus ``run_file``, the run file's path relative to the store's root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from litmus_seq.errors import StoreError
from litmus_seq.lake.manifest import MANIFEST, plan_reads, read_parts
from litmus_seq.lake.store import RunFile, Store, partition, stamp

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["compact", "CompactResult", "RUN_FILE", "PART_ROWS"]

#: The column of a part naming the run file each row came from.
RUN_FILE = "run_file"
#: Rows per part before the next part begins (a part is one manifest entry).
PART_ROWS = 4_000_000
#: Rows per row group of a part.
GROUP_ROWS = 131_072
#: A part older than this without a manifest entry was left by a compaction that died.
ORPHAN_AGE = timedelta(hours=1)
_THREADS = 4


@dataclass
class CompactResult:
    """What one compaction did."""

    parts: list[str] = field(default_factory=list)
    runs: int = 0
    rows: int = 0
    removed_orphans: int = 0


def compact(store: Store, *, progress: Callable[[str], None] | None = None) -> CompactResult:
    """Compact every run file of ``store`` that no part holds yet (see the module docstring)."""
    result = CompactResult()
    store.staging = "_staging/compact"
    with store.lock("compact"):
        store.clear_staging()
        result.removed_orphans = _remove_orphans(store)
        plan = plan_reads(store)
        groups: dict[tuple[str, str | None], list[RunFile]] = {}
        for rf, st in zip(plan.raw, _stations(store, plan.raw)):
            groups.setdefault((rf.date, st), []).append(rf)
        for (date, station), files in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            for chunk in _chunks(store, files):
                _write_part(store, date, station, chunk, result)
                if progress is not None:
                    progress(f"{result.parts[-1]}: {len(chunk)} runs")
    return result


def _stations(store: Store, files: list[RunFile]) -> list[str | None]:
    with ThreadPoolExecutor(_THREADS) as pool:
        return list(pool.map(store.station_of, files))


def _chunks(store: Store, files: list[RunFile]) -> Iterator[list[RunFile]]:
    """``files`` in runs of about :data:`PART_ROWS` rows (row counts from the footers)."""
    import pyarrow.parquet as pq

    def rows(rf: RunFile) -> int:
        try:
            return pq.ParquetFile(store.path(rf.path), filesystem=store.fs).metadata.num_rows
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"{store.display(rf.path)}: not a readable run file ({_one_line(exc)}); "
                             "move it out of runs/ and compact again") from None

    with ThreadPoolExecutor(_THREADS) as pool:
        counts = list(pool.map(rows, files))
    chunk: list[RunFile] = []
    total = 0
    for rf, n in zip(files, counts):
        if chunk and total + n > PART_ROWS:
            yield chunk
            chunk, total = [], 0
        chunk.append(rf)
        total += n
    if chunk:
        yield chunk


def _write_part(store: Store, date: str, station: str | None, files: list[RunFile],
                result: CompactResult) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    # The union schema must be known before the writer opens: the footers first.
    schema = unify(_schemas(store, files))
    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    name = stamp()
    rel = f"compacted/{partition(date, station)}/part-{name}.parquet"
    rows = 0
    try:
        with store.publishing(rel) as path:
            with pq.ParquetWriter(path, schema, filesystem=store.fs, compression="zstd",
                                  use_dictionary=strings, store_schema=False) as writer:
                buffered: list[pa.Table] = []
                pending = 0
                for rf, table in zip(files, _read_all(store, files)):
                    table = conform(table, schema, rf.path)
                    buffered.append(table)
                    pending += table.num_rows
                    rows += table.num_rows
                    if pending >= GROUP_ROWS:
                        writer.write_table(pa.concat_tables(buffered), row_group_size=GROUP_ROWS)
                        buffered, pending = [], 0
                if buffered:
                    writer.write_table(pa.concat_tables(buffered), row_group_size=GROUP_ROWS)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{store.display(rel)}: cannot write the compacted part: {_one_line(exc)} "
                         "(the run files are untouched; free space and compact again)") from None
    entry = {"part": rel, "date": date, "station": station, "rows": rows,
             "files": {rf.path: rf.size for rf in files}}
    try:
        store.put(f"{MANIFEST}/{name}.json", json.dumps(entry, indent=0).encode())
    except OSError as exc:
        raise StoreError(f"{store.display(MANIFEST)}: cannot record the part {rel}: {_one_line(exc)} "
                         "(it stays unused; compact again)") from None
    result.parts.append(rel)
    result.runs += len(files)
    result.rows += rows


def _read_all(store: Store, files: list[RunFile]) -> Iterator[pa.Table]:
    """The tables of ``files`` in order, read a few at a time on threads (I/O and decoding
    release the GIL; on an object store, the latency overlaps)."""
    import pyarrow.parquet as pq

    def read(rf: RunFile) -> pa.Table:
        try:
            return pq.read_table(store.path(rf.path), filesystem=store.fs)
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"{store.display(rf.path)}: not a readable run file ({_one_line(exc)}); "
                             "move it out of runs/ and compact again") from None

    with ThreadPoolExecutor(_THREADS) as pool:
        window = 2 * _THREADS
        futures = [pool.submit(read, rf) for rf in files[:window]]
        for i in range(len(files)):
            table = futures[i].result()
            futures[i] = None  # type: ignore[call-overload]
            if i + window < len(files):
                futures.append(pool.submit(read, files[i + window]))
            yield table


def _schemas(store: Store, files: list[RunFile]) -> list[pa.Schema]:
    import pyarrow.parquet as pq

    with ThreadPoolExecutor(_THREADS) as pool:
        return list(pool.map(lambda rf: pq.read_schema(store.path(rf.path), filesystem=store.fs), files))


def unify(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """The union of ``schemas`` by column name, in order of first appearance, without metadata;
    a column with different types in different files becomes a string."""
    import pyarrow as pa

    types: dict[str, pa.DataType] = {}
    for schema in schemas:
        for f in schema:
            seen = types.get(f.name)
            if seen is None:
                types[f.name] = f.type
            elif seen != f.type and not pa.types.is_null(f.type):
                types[f.name] = f.type if pa.types.is_null(seen) else pa.string()
    fields = [pa.field(n, pa.string() if pa.types.is_null(t) else t) for n, t in types.items()
              if n != RUN_FILE]
    return pa.schema([*fields, pa.field(RUN_FILE, pa.string())])


def conform(table: pa.Table, schema: pa.Schema, run_file: str) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones NULL, others cast, and
    ``run_file`` filled in."""
    import pyarrow as pa

    n = table.num_rows
    cols = []
    for f in schema:
        if f.name == RUN_FILE:
            cols.append(pa.array([run_file] * n, pa.string()) if n else pa.array([], pa.string()))
        elif f.name in table.column_names:
            col = table.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _remove_orphans(store: Store) -> int:
    """Delete parts that no manifest entry names and that are older than :data:`ORPHAN_AGE`."""
    import pyarrow.fs as pafs

    named = {p.path for p in read_parts(store)}
    now = datetime.now(timezone.utc)
    removed = 0
    for info in store.fs.get_file_info(pafs.FileSelector(store.path("compacted"), recursive=True,
                                                         allow_not_found=True)):
        rel = info.path[len(store.root) + 1:]
        if info.type != pafs.FileType.File or rel.startswith(MANIFEST) or rel in named:
            continue
        base = info.base_name
        stale = info.mtime is not None and now - info.mtime.astimezone(timezone.utc) > ORPHAN_AGE
        if stale and (base.startswith("part-") or (base.startswith(".") and base.endswith(".tmp"))):
            store.delete(rel)
            removed += 1
    return removed


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
