"""The read side of the stores: runs, steps and measurements, for the CLI and the Python client.

:class:`Results` answers the questions people ask of the run files without the caller knowing
their layout: ``list_runs(dut=, station=, outcome=, since=, limit=)``, ``find_runs(ref)`` (a run
id, a run-id prefix or a DUT serial), ``get_run``, ``get_steps``, ``get_measurements`` (dicts
keyed by parquet column names), ``columns()``, and ``connect()`` for SQL over the views ``rows``
(every row), ``runs``, ``steps`` and ``measurements``. ``litmus-seq runs/show/query/columns`` are
thin commands over it.

Listing runs reads a small index, ``<data_dir>/cache/runs-index.parquet``: one row per run file
with the run row's columns and the file's step/measurement counts, keyed by the file's path, size
and modification time. The index is brought up to date from the parquet files alone on every
call (only new or changed files are read, deleted ones dropped), so it is a cache: deleting it
costs one rebuild, never data. Where the cache folder cannot be written, the index lives in
memory for the call.

Everything is fetched as Arrow and converted with ``to_pylist`` (timestamps as aware UTC
``datetime``); DuckDB's own Python conversion of ``TIMESTAMPTZ`` would need ``pytz``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from litmus_seq.errors import LitmusError

__all__ = ["INDEX_COLUMNS", "VIEWS", "Results", "parse_since", "resolve_data_dir"]

#: the run-row columns the index keeps (a file without one of them gives NULL)
_RUN_COLUMNS = (
    "run_id", "session_id", "run_started_at", "run_ended_at", "run_outcome", "run_error", "run_retry_count",
    "dut_serial", "dut_part_number", "product_id", "station_id", "operator_name", "test_phase",
    "sequence_name", "sequence_version", "sequence_file",
)
#: per-file counts the index adds
_COUNTS = ("step_count", "steps_passed", "steps_failed", "steps_errored", "steps_skipped", "steps_never_ran",
           "measurement_count", "measurements_failed")
#: columns of the index (every dict :meth:`Results.list_runs` returns has them, and ``file_path``)
INDEX_COLUMNS = ("file", *_RUN_COLUMNS, *_COUNTS)
_KEY = ("size", "mtime_ns")


def _bad_outcomes() -> Any:
    import pyarrow as pa

    return pa.array(["failed", "errored"])
#: SQL views of :meth:`Results.connect` -> the record_type they hold (None: every row)
VIEWS = {"rows": None, "runs": "run", "steps": "step", "measurements": "measurement"}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def resolve_data_dir(cli_value: str | None) -> Path:
    """``--data-dir``, then ``LITMUS_DATA_DIR``, then ``litmus.yaml``'s ``data_dir``, then ./data."""
    # an existing folder named by the option or the variable needs no project (and so none of
    # its imports: a reader's start-up stays short); anything else gets the project's checks
    given = cli_value or os.environ.get("LITMUS_DATA_DIR")
    if given and Path(given).is_dir():
        return Path(given)
    from litmus_seq.project import ProjectContext

    return ProjectContext.for_path(Path.cwd()).data_dir(cli_value)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2026-12-01``, ``2026-12-01T08:00``, ``2026-12-01 08:00:00+01:00`` or ``7d``/``12h``/``30m``
    (ago) as an aware UTC datetime; a one-line :class:`LitmusError` otherwise."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(text.strip())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LitmusError(f"--since {text}: not a date or a duration; give e.g. 2026-12-01, "
                          "2026-12-01T08:00, 7d, 12h or 30m") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Results:
    """The run files of one data folder (see the module docstring)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "runs"
        self.index_path = self.data_dir / "cache" / "runs-index.parquet"
        #: one line per run file that could not be read (the caller decides how to show them)
        self.warnings: list[str] = []

    def logs(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        """What a run's code logged while its steps ran (``test.log`` events, in order), read
        from its session's event file; empty when that file is gone."""
        from litmus_seq import events as ev
        from litmus_seq.stores.events import read_events

        sid, rid = run.get("session_id"), run.get("run_id")
        if not sid:
            return []
        return [e for f in sorted(self.data_dir.glob(f"events/*/{sid}.arrow")) for e in read_events(f)
                if e.get("event_type") == ev.LOG and e.get("run_id") == rid]

    # -- files ---------------------------------------------------------------------------------

    def _check_folder(self) -> None:
        if not self.data_dir.exists():
            raise LitmusError(f"{self.data_dir}: no such folder, so no run files (run a sequence first, or point "
                              "--data-dir / LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to)")
        if not self.data_dir.is_dir():
            raise LitmusError(f"{self.data_dir}: is a file, not a data folder; point --data-dir / "
                              "LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to")

    def files(self) -> dict[str, tuple[int, int]]:
        """Every run file: path relative to the data folder -> (size, mtime_ns)."""
        self._check_folder()
        found: dict[str, tuple[int, int]] = {}

        def walk(folder: str, rel: str) -> None:
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                return
            except OSError as exc:
                raise LitmusError(f"{folder}: cannot list the run files: {exc.strerror or exc}") from None
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path, f"{rel}/{e.name}")
                elif e.name.endswith(".parquet") and not e.name.startswith("."):
                    st = e.stat()
                    found[f"{rel}/{e.name}"] = (st.st_size, st.st_mtime_ns)

        walk(str(self.root), "runs")
        return found

    def _no_runs(self) -> LitmusError:
        return LitmusError(f"{self.root}: no run files (run a sequence first, or point --data-dir / "
                           "LITMUS_DATA_DIR at the folder 'litmus-seq run' wrote to)")

    # -- the index -----------------------------------------------------------------------------

    def index(self) -> Any:
        """The index as an Arrow table (:data:`INDEX_COLUMNS` + size, mtime_ns), one row per run
        file, up to date with the files on disk."""
        import pyarrow as pa

        files = self.files()
        old = self._read_index()
        names, sizes, mtimes = (old[c].to_pylist() for c in ("file", "size", "mtime_ns"))
        mask = [files.get(f) == (size, mtime) for f, size, mtime in zip(names, sizes, mtimes)]
        known = {f for f, ok in zip(names, mask) if ok}
        new_files = [f for f in files if f not in known]
        if not new_files and all(mask):
            return old
        fresh = self._summarise(new_files) if new_files else []
        for r in fresh:
            r["size"], r["mtime_ns"] = files[r["file"]]
        table = pa.concat_tables([old.filter(pa.array(mask, pa.bool_())),
                                  pa.Table.from_pylist(fresh, schema=old.schema)])
        try:
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd")
            from litmus_seq.reporters import atomic_write

            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.index_path, buf.getvalue())
        except OSError:
            pass  # a read-only data folder: the index lives for this call only
        return table

    @staticmethod
    def _index_schema() -> Any:
        import pyarrow as pa

        from litmus_seq.stores.schema import KINDS, arrow_type

        fields = [pa.field("file", pa.string())]
        fields += [pa.field(c, arrow_type(KINDS[c])) for c in _RUN_COLUMNS]
        fields += [pa.field(c, pa.int64()) for c in (*_COUNTS, *_KEY)]
        return pa.schema(fields)

    def _read_index(self) -> Any:
        import pyarrow.parquet as pq

        schema = self._index_schema()
        try:
            table = pq.read_table(self.index_path)
        except Exception:  # noqa: BLE001 - missing or damaged: rebuilt, never trusted
            return schema.empty_table()
        return table if table.schema == schema else schema.empty_table()

    def _summarise(self, files: Sequence[str]) -> list[dict[str, Any]]:
        """The index rows of ``files`` (paths relative to the data folder), read with pyarrow:
        only the columns the index needs, several files at a time (reading releases the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        out: list[dict[str, Any]] = []
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
            for f, row in zip(files, pool.map(self._summarise_file, files)):
                if isinstance(row, str):
                    self.warnings.append(f"{self.data_dir / f}: not a readable parquet file ({row}); ignored")
                elif row is not None:  # a parquet file that is not a run file has no run row
                    out.append(row)
        return out

    def _summarise_file(self, file: str) -> dict[str, Any] | str | None:
        """One index row; the reason as a string if the file cannot be read."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        try:
            pf = self._parquet_file(file)
            names = set(pf.schema_arrow.names)
            wanted = [c for c in (*_RUN_COLUMNS, "record_type", "step_path", "step_outcome", "measurement_outcome")
                      if c in names]
            table = pf.read(columns=wanted)
        except Exception as exc:  # noqa: BLE001 - every unreadable file is reported the same way
            return _one_line(exc)
        if "record_type" not in names or table.num_rows == 0:
            return None
        kind = table["record_type"]
        is_run = pc.equal(kind, "run")
        run_rows = table.filter(is_run).slice(0, 1).to_pylist()
        if not run_rows:
            return None
        row: dict[str, Any] = {c: run_rows[0].get(c) for c in _RUN_COLUMNS}
        row["file"] = file
        steps = table.filter(pc.equal(kind, "step")).select(
            [c for c in ("step_path", "step_outcome") if c in names]).to_pylist()
        outcome = {s.get("step_path"): s.get("step_outcome") for s in steps}
        groups = {"steps_passed": ("passed", "done"), "steps_failed": ("failed",),
                  "steps_errored": ("errored", "terminated", "aborted"), "steps_skipped": ("skipped",),
                  "steps_never_ran": (None,)}
        row["step_count"] = len(outcome)
        for name, values in groups.items():
            row[name] = sum(1 for o in outcome.values() if o in values)
        is_meas = pc.equal(kind, "measurement")
        row["measurement_count"] = pc.sum(is_meas).as_py() or 0
        if "measurement_outcome" in names:
            bad = pc.and_(is_meas, pc.is_in(table["measurement_outcome"], value_set=_bad_outcomes()))
            row["measurements_failed"] = pc.sum(bad).as_py() or 0
        else:
            row["measurements_failed"] = 0
        return row

    # -- runs ----------------------------------------------------------------------------------

    def _runs_table(self) -> Any:
        table = self.index()
        if table.num_rows == 0:
            n = len(self.files())
            if not n:
                raise self._no_runs()
            if len(self.warnings) >= n:
                raise LitmusError(f"{self.root}: none of the {n} .parquet files can be read (see the warnings above)")
        return table

    def _newest_first(self, table: Any, limit: int | None = None) -> list[dict[str, Any]]:
        table = table.sort_by([("run_started_at", "descending"), ("run_id", "descending")])
        if limit is not None:
            table = table.slice(0, limit)
        return [self._public(r) for r in table.to_pylist()]

    def list_runs(self, *, dut: str | None = None, station: str | None = None, outcome: str | None = None,
                  since: datetime | str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, filtered by DUT serial, station id, outcome and start time."""
        import pyarrow.compute as pc

        table = self._runs_table()
        if isinstance(since, str):
            since = parse_since(since)
        for column, value in (("dut_serial", dut), ("station_id", station), ("run_outcome", outcome)):
            if value is not None:
                table = table.filter(pc.equal(table[column], value))
        if since is not None:
            table = table.filter(pc.greater_equal(table["run_started_at"], since))
        return self._newest_first(table, limit)

    def find_runs(self, ref: str, *, every: bool = False) -> list[dict[str, Any]]:
        """Runs named by ``ref``: a run id, a unique run-id prefix, or a DUT serial (its latest
        run, or all of them with ``every``), newest first. A one-line error when nothing or more
        than one run matches a prefix."""
        import pyarrow.compute as pc

        ref = ref.strip()
        if not ref:
            raise LitmusError("the run id is empty; give a run id, its first characters or a DUT serial "
                              "(list them with 'litmus-seq runs')")
        table = self._runs_table()
        exact = table.filter(pc.equal(table["run_id"], ref))
        if exact.num_rows:
            return self._newest_first(exact)
        by_prefix = table.filter(pc.starts_with(table["run_id"], ref))
        ids = sorted(set(by_prefix["run_id"].to_pylist()))
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise LitmusError(f"{ref!r} matches {len(ids)} runs ({shown}): give more of the run id")
        if ids:
            return self._newest_first(by_prefix)
        by_serial = table.filter(pc.equal(table["dut_serial"], ref))
        if by_serial.num_rows:
            return self._newest_first(by_serial, None if every else 1)
        raise LitmusError(f"no run id or DUT serial matches {ref!r} in {self.root} (list them with 'litmus-seq runs')")

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The index entry of ``run_id`` (run columns, counts, ``file_path``), or None."""
        import pyarrow.compute as pc

        table = self._runs_table()
        found = self._newest_first(table.filter(pc.equal(table["run_id"], run_id)), 1)
        return found[0] if found else None

    def rows(self, run_id: str, record_type: str | None = None) -> list[dict[str, Any]]:
        """The rows of one run (every row, or one ``record_type``), in file order; reads only
        that run's file."""
        run = self.get_run(run_id)
        if run is None:
            raise LitmusError(f"no run {run_id!r} in {self.root} (list them with 'litmus-seq runs')")
        table = self._parquet_file(run["file"]).read()
        if record_type is not None:
            import pyarrow.compute as pc

            table = table.filter(pc.equal(table["record_type"], record_type))
        return table.to_pylist()

    def _parquet_file(self, file: str) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.data_dir / file)

    def get_steps(self, run_id: str) -> list[dict[str, Any]]:
        """Step rows of a run (one per step and vector, planned steps that never ran included)."""
        return self.rows(run_id, "step")

    def get_measurements(self, run_id: str) -> list[dict[str, Any]]:
        """Measurement rows of a run, every retry kept."""
        return self.rows(run_id, "measurement")

    # -- SQL -----------------------------------------------------------------------------------

    def connect(self) -> Any:
        """A DuckDB connection with the views :data:`VIEWS` over every readable run file: the
        compacted parts plus the run files not compacted yet, each run once
        (:func:`litmus_seq.lake.read.connect`)."""
        con = self._rows_connection()
        for view, record_type in VIEWS.items():
            if record_type is not None:
                con.execute(f"CREATE VIEW {view} AS SELECT * FROM rows WHERE record_type = '{record_type}'")
        return con

    def _rows_connection(self) -> Any:
        from litmus_seq.lake.read import connect
        from litmus_seq.lake.store import open_data_dir

        self._check_folder()
        return connect(open_data_dir(self.data_dir), view="rows", warn=self.warnings.append)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """Run ``sql`` over :meth:`connect`'s views; (column names, rows as dicts)."""
        import duckdb

        con = self.connect()
        try:
            rel = con.sql(sql, params=list(params)) if params else con.sql(sql)
            if rel is None:
                return [], []
            table = rel.to_arrow_table()
        except duckdb.Error as exc:
            raise LitmusError(f"query failed: {_one_line(exc)}") from exc
        return table.column_names, table.to_pylist()

    def columns(self) -> list[tuple[str, str]]:
        """(name, DuckDB type) of every column of the run files (fixed and dynamic), file order."""
        con = self.connect()
        return [(r[0], r[1]) for r in con.execute("DESCRIBE rows").fetchall() if r[0] != "filename"]

    def _public(self, r: dict[str, Any]) -> dict[str, Any]:
        """An index row as callers see it: :data:`INDEX_COLUMNS` plus the absolute ``file_path``."""
        out = {k: r[k] for k in INDEX_COLUMNS}
        out["file_path"] = str(self.data_dir / r["file"])
        return out


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
