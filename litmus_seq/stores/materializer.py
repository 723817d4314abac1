"""The run materializer: events in, one parquet file per run out (``PARQUET.md``).

The same class runs live (a plugin on ``litmus_seq_events`` in the engine's process, writing the
file when ``run.ended`` arrives) and offline (:func:`materialize_events` replaying the event
store after a crash, for ``litmus-seq recover``). One code path means a recovered file cannot
differ from a live one except in what the crash took away.

Cost model, because the hook is on the engine's hot path:

* per event, a dict dispatch to a bound method; a measurement is one tuple appended to a list
  (about a µs). Nothing is denormalized while the run executes.
* step and vector state is columnar (lists of references, ``array('q')`` of timestamps, indexed
  by an int id), not an object per step or vector: small long-lived objects allocated in the
  middle of the event churn pin CPython's memory arenas, so RSS grows although live objects do not.
* every :data:`CHUNK_ROWS` measurements the tuples become compact Arrow arrays in one conversion
  (strings as dictionary codes: ~31 bytes a measurement, ~31 MB for a million).
* at ``run.ended`` the step rows are built column by column, and each slice of
  :data:`WRITE_ROWS` measurements gets its run, step, limit and instrument columns as
  *dictionary arrays*: int32 codes into the step-row, limit or role level values (or into a
  one-value dictionary for run constants) instead of copies of the strings (a string ``take`` was
  ~6 µs a measurement). The parquet writer stores such codes directly as its dictionary pages; the
  Arrow schema stored in the file is the plain one (``string``), so readers see the same types.
  Each slice is written as a row group by a ``ParquetWriter`` on a thread while the next one is
  built, into a temporary file that is then renamed into place.

A run whose events stop without ``run.ended`` (the process died) is not written live: the event
store still has it, and ``recover`` seals it as ``aborted`` (steps and vectors that started but
never ended are ``aborted``; those never started keep NULL).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from itertools import islice, repeat
from operator import itemgetter, le
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq import events as ev
from litmus_seq.errors import StoreError
from litmus_seq.hookspecs import hookimpl
from litmus_seq.stores import schema as S
from litmus_seq.stores.paths import SealTmp, os_reason, run_file_name

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["RunMaterializer", "materialize_events", "run_file_name", "CHUNK_ROWS"]

#: Measurements kept as Python tuples before they become Arrow arrays.
CHUNK_ROWS = 8192
#: Measurement rows denormalized (and written as one row group) at a time. A row group costs
#: ~60 µs per column on top of its rows (zstd contexts, encoders, statistics: ~5 ms for the ~90
#: columns); 32k rows makes that ~0.2 µs a row, and a slice of dictionary codes is ~10 MB.
WRITE_ROWS = 32768

#: Files with fewer rows are snappy-compressed throughout: zstd's set-up (~50 µs a column chunk,
#: ~4 ms of a 5-step run's seal) buys a few kB there (a 3-row file is even smaller with snappy).
SMALL_FILE_ROWS = 1024

# Columns whose values change row by row: in larger files these, and every column that is not a
# dictionary-coded string (timestamps, numbers, lists: zstd shrinks 8 MB of one repeated
# timestamp to almost nothing), are compressed with zstd (2.5x smaller than snappy). The other
# strings are constant or nearly so within a run file (run context, instruments, limit metadata):
# dictionary-coded to almost nothing, where zstd would only add its set-up.
_VARYING = frozenset((
    "step_name", "step_index", "step_path", "step_node_id", "step_line", "step_started_at",
    "step_ended_at", "step_vector_count", "vector_index", "vector_retry", "vector_started_at",
    "vector_ended_at", "measurement_name", "measurement_timestamp", "measurement_value",
    "measurement_outcome", "measurement_marginal", "limit_low", "limit_high", "step_outcome",
    "vector_outcome", "step_error", "vector_error",
))


def _codecs(schema: pa.Schema, rows: int) -> str | dict[str, str]:
    """Compression for a file of ``rows`` rows, per column keyed by leaf path (a list column's
    data is ``<name>.list.element``)."""
    import pyarrow as pa

    if rows < SMALL_FILE_ROWS:
        return "snappy"
    out = {}
    for f in schema:
        if pa.types.is_list(f.type):
            out[f"{f.name}.list.element"] = "zstd"
        elif f.type == pa.string() and f.name not in _VARYING and not f.name.startswith(("in_", "out_")):
            out[f.name] = "snappy"
        else:
            out[f.name] = "zstd"
    return out


ABORTED = "aborted"

#: "No timestamp" in the ``array('q')`` columns of step and vector times; a vector whose end came
#: without a timestamp has :data:`_END_NO_TS` (ended, so not running, but no time to show).
_NO_TS = -(1 << 63)
_END_NO_TS = _NO_TS + 1
#: Vector indices in ``[0, _DENSE_VECTORS)`` are found through a per-step ``array('q')`` of vector
#: ids (no object per vector); any other index (None, huge) through a dict keyed by (path, index).
_DENSE_VECTORS = 1 << 20
_ONE_ID = array("q", (-1,))
_TWO_NO_TS = array("q", (_NO_TS, _NO_TS))
_TWO_NONE = (None, None)
#: Never equal to a step path (the "no cached vector yet" marker of :class:`_Run`).
_UNSET = object()

# Layout of one measurement tuple (the only per-measurement object kept): the event's fields as
# _M_GET returns them (one C call), then the vector, limit and role indices.
_M_KEYS = (
    "retry", "name", "timestamp", "value", "text", "units", "outcome", "marginal", "channel", "dut_pin",
    "fixture_connection",
)
_M_GET = itemgetter(*_M_KEYS)
_M_FIELDS = (
    "retry", "name", "ts", "value", "text", "units", "outcome", "marginal", "channel", "dut_pin",
    "fixture_connection", "vec", "limit", "role",
)

# Measurement row columns taken as they are from the compact chunks.
_OWN = {
    "vector_retry": "retry", "measurement_name": "name", "measurement_timestamp": "ts",
    "measurement_value": "value", "measurement_text": "text", "measurement_units": "units",
    "measurement_outcome": "outcome", "measurement_marginal": "marginal", "instrument_channel": "channel",
    "dut_pin": "dut_pin", "fixture_connection": "fixture_connection",
}

# Step identity columns, in the order of _StepRows.identity.
_IDENTITY = (
    "step_name", "step_index", "step_path", "parent_path", "step_node_id", "step_file", "step_line",
    "step_kind", "step_vector_count",
)

# Limit columns: (key in the limit dict, float?) per column.
_LIMIT_COLUMNS = {
    "limit_low": ("low", True), "limit_high": ("high", True), "limit_nominal": ("nominal", True),
    "limit_comparator": ("comparator", False), "limit_equals": ("equals", False),
    "limit_pattern": ("pattern", False), "limit_spec_low": ("spec_low", True),
    "limit_spec_high": ("spec_high", True), "limit_guardband_pct": ("guardband_pct", True),
    "limit_source": ("source", False), "characteristic_id": ("characteristic_id", False),
    "spec_ref": ("spec_ref", False), "limit_marginal_low": ("marginal_low", True),
    "limit_marginal_high": ("marginal_high", True),
}

_INSTRUMENT_COLUMNS = (
    "instrument_name", "instrument_resource", "instrument_manufacturer", "instrument_model",
    "instrument_serial", "instrument_firmware", "instrument_cal_due", "instrument_cal_certificate",
    "instrument_mocked", "instrument_cal_exception",
)


class _Run:
    """Everything one run's parquet file needs, accumulated from its events.

    Steps and vectors are ids (their position in the ``st_*`` / ``v_*`` columns); the columns hold
    references to what the events carried (plan strings, dicts and ints, shared with the engine)
    and raw int64 timestamps: handling an event leaves behind at most an id and an id array per
    step, nothing per vector, and a measurement's tuple only until its chunk is sealed.
    """

    __slots__ = (
        "run_id", "started", "session", "started_at", "last_ts", "ended_at", "outcome", "error", "ended",
        "instruments", "discovered", "planned", "step_ids", "st_path", "st_info", "st_times", "st_end",
        "st_configured", "st_observed", "vec_dense", "vec_other", "v_times", "v_outcome", "v_errors",
        "v_params", "v_configured", "v_observed", "m_path", "m_index", "m_vi", "rows", "chunks", "limits",
        "limit_ids", "limit_keys", "limit_units", "_limit_units", "roles", "role_ids", "run_configured",
        "run_observed", "retries",
    )

    def __init__(self, run_id: str, started: dict[str, Any], session: dict[str, Any]) -> None:
        self.run_id = run_id
        self.started = started
        self.session = session
        self.started_at: int | None = started.get("timestamp")
        self.last_ts: int | None = self.started_at
        self.ended_at: int | None = None
        self.outcome: str | None = None
        self.error: str | None = None
        self.ended = False
        self.instruments: dict[Any, dict[str, Any]] = dict(session.get("instruments") or {})
        self.discovered: list[dict[str, Any]] | None = None
        self.planned: set[Any] | None = None  # the step paths of ``discovered``
        # steps, by id in the order of their first event
        self.step_ids: dict[Any, int] = {}
        self.st_path: list[Any] = []
        # (name, step_index, node_id, kind, vector_count) of the last test.step_started of a step
        # the plan did not announce (the row's identity; planned steps take it from the plan)
        self.st_info: dict[int, tuple[Any, ...]] = {}
        self.st_times = array("q")  # started, ended (2 * id, 2 * id + 1; _NO_TS: none)
        self.st_end: list[Any] = []  # outcome, error (2 * id, 2 * id + 1)
        self.st_configured: dict[int, dict[Any, Any]] = {}  # step-level (no vector_index)
        self.st_observed: dict[int, dict[Any, Any]] = {}
        # vectors, by id in the order of their first event: first start, last end, last outcome;
        # a vector is running from its test.vector_started (ended reset to _NO_TS) to its end
        self.vec_dense: dict[Any, array[int]] = {}  # step path -> vector id by index (-1: none)
        self.vec_other: dict[tuple[Any, Any], int] = {}
        self.v_times = array("q")  # started, ended (2 * id, 2 * id + 1)
        self.v_outcome: list[Any] = []
        self.v_errors: dict[int, Any] = {}  # only the vectors whose last end had an error
        self.v_params: list[Any] = []  # of the last start
        self.retries = 0  # attempts run again after a failed one (run_retry_count)
        self.v_configured: dict[int, dict[Any, Any]] = {}
        self.v_observed: dict[int, dict[Any, Any]] = {}
        # the vector last started (its measurements and end come next)
        self.m_path: Any = _UNSET
        self.m_index: Any = _UNSET
        self.m_vi = -1
        # measurements
        self.rows: list[tuple[Any, ...]] = []
        self.chunks: list[tuple[int, dict[str, Any]]] = []
        self.limits: list[Any] = [None]
        self.limit_ids: dict[int, int] = {id(None): 0}
        self.limit_keys: dict[Any, int] = {}
        self.limit_units: list[str | None] = [None]
        self._limit_units: pa.Array | None = None
        self.roles: list[Any] = [None]
        self.role_ids: dict[Any, int] = {None: 0}
        self.run_configured: dict[str, Any] = {}
        self.run_observed: dict[str, Any] = {}

    def step(self, path: Any) -> int:
        """The id of step ``path``, registering it on first sight."""
        sid = self.step_ids.get(path)
        if sid is None:
            sid = self.step_ids[path] = len(self.st_path)
            self.st_path.append(path)
            self.st_end += _TWO_NONE
            self.st_times += _TWO_NO_TS
        return sid

    def vector(self, path: Any, index: Any) -> int:
        """The id of vector ``(path, index)``, registering it on first sight."""
        if type(index) is int and 0 <= index < _DENSE_VECTORS:
            ids = self.vec_dense.get(path)
            if ids is None:
                if index == 0:  # the usual first vector of a step
                    vi = self._new_vector()
                    ids = self.vec_dense[path] = _ONE_ID * 1  # (4x faster than array("q", (vi,)))
                    ids[0] = vi
                    return vi
                ids = self.vec_dense[path] = array("q")
            n = len(ids)
            if index < n:
                vi = ids[index]
                if vi < 0:
                    vi = ids[index] = self._new_vector()
                return vi
            if index > n:
                ids.extend(repeat(-1, index - n))
            vi = self._new_vector()
            ids.append(vi)
            return vi
        key = (path, index)
        found = self.vec_other.get(key)
        if found is None:
            found = self.vec_other[key] = self._new_vector()
        return found

    def find_vector(self, path: Any, index: Any) -> int:
        """The id of vector ``(path, index)``, or -1 if no event named it."""
        if type(index) is int and 0 <= index < _DENSE_VECTORS:
            ids = self.vec_dense.get(path)
            return ids[index] if ids is not None and index < len(ids) else -1
        return self.vec_other.get((path, index), -1)

    def _new_vector(self) -> int:
        vi = len(self.v_outcome)
        self.v_times += _TWO_NO_TS
        self.v_outcome.append(None)
        self.v_params.append(None)
        return vi

    def limit_index(self, lim: Any) -> int:
        """Index of ``lim`` in :attr:`limits`; live limits are shared dicts (found by id), replayed
        ones are copies (found by content, and not kept by id, which could be reused)."""
        try:
            key: Any = tuple(lim.items())
            hash(key)
        except (AttributeError, TypeError):
            key = json.dumps(lim, sort_keys=True, default=str)
        li = self.limit_keys.get(key)
        if li is None:
            li = self.limit_keys[key] = len(self.limits)
            self.limits.append(lim)  # kept alive: its id stays unique while registered
            self.limit_ids[id(lim)] = li  # this exact object is now kept alive in self.limits
            self.limit_units.append(_text(lim.get("units")) if isinstance(lim, dict) else None)
        return li

    def role_index(self, role: Any) -> int:
        ri = self.role_ids[role] = len(self.roles)
        self.roles.append(role)
        return ri

    def seal_chunk(self) -> None:
        """Turn the pending measurement tuples into compact Arrow arrays (bounded memory).

        One conversion of the tuples as a struct array (the transposition happens in C++);
        strings become dictionary codes (int8/int16 when few distinct values: names, units and
        outcomes repeat); the units of a reading without any come from its limit here, once.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        rows, self.rows = self.rows, []
        if not rows:
            return
        try:
            whole = pa.array(rows, type=_chunk_type())
        except (pa.ArrowInvalid, OverflowError):  # a retry count beyond int16
            whole = pa.array(rows, type=_chunk_type(pa.int64()))
        n = len(rows)
        del rows
        cols: dict[str, Any] = {name: whole.field(name) for name in _M_FIELDS}
        del whole
        units = cols["units"]
        if units.null_count:
            if self._limit_units is None or len(self._limit_units) != len(self.limit_units):
                self._limit_units = pa.array(self.limit_units, pa.string())
            units = pc.coalesce(units, self._limit_units.take(cols["limit"]))
        cols["units"] = units.dictionary_encode() if units.null_count < n else None
        for name in ("name", "text", "units", "outcome", "channel", "dut_pin", "fixture_connection"):
            cols[name] = _narrow(cols[name], n)
        self.chunks.append((n, cols))


def _chunk_type(retry: pa.DataType | None = None) -> pa.DataType:
    """The Arrow type of one measurement tuple (see :data:`_M_FIELDS`); strings are converted
    straight to dictionaries, retries to int16 (they are small) unless told otherwise."""
    import pyarrow as pa

    d = _dict_type()
    types = {
        "vec": pa.int32(), "retry": retry or pa.int16(), "name": d, "ts": S.arrow_type("t"), "value": pa.float64(),
        "text": d, "units": pa.string(), "outcome": d, "marginal": pa.bool_(), "limit": pa.int32(),
        "role": pa.int32(), "channel": d, "dut_pin": d, "fixture_connection": d,
    }
    return pa.struct([(name, types[name]) for name in _M_FIELDS])


def _narrow(d: Any, n: int) -> Any:
    """A dictionary column with the narrowest index type (None when all ``n`` are NULL)."""
    import pyarrow as pa

    if d is None or d.null_count == n:
        return None
    k = len(d.dictionary)
    if k <= 0x7F:
        return pa.DictionaryArray.from_arrays(d.indices.cast(pa.int8()), d.dictionary)
    if k <= 0x7FFF:
        return pa.DictionaryArray.from_arrays(d.indices.cast(pa.int16()), d.dictionary)
    return d


class RunMaterializer:
    """Pluggy plugin writing ``<data_dir>/runs/{date}/{timestamp}_{serial}.parquet`` per run.

    ``written`` lists the files written, in order. ``exclude_runs`` names runs to ignore (used by
    ``recover`` for runs that already have a file). With ``on_error`` (offline), a run whose
    events cannot be handled or whose file cannot be written is handed to it as
    ``(run_id, exception)`` and dropped, and the other runs go on; without it (live) the
    exception reaches the engine.
    """

    def __init__(self, data_dir: Path, *, exclude_runs: Collection[str] = (),
                 on_error: Callable[[Any, Exception], None] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.written: list[Path] = []
        self._by_run: dict[Any, Path | StoreError] = {}  # until litmus_seq_run_sealed asks
        self._exclude = set(exclude_runs)
        self._on_error = on_error
        self._sessions: dict[Any, dict[str, Any]] = {}
        self._runs: dict[Any, _Run] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            ev.SESSION_STARTED: self._on_session_started,
            ev.RUN_STARTED: self._on_run_started,
            ev.RUN_ENDED: self._on_run_ended,
            ev.INSTRUMENT_CONNECTED: self._on_instrument,
            ev.STEPS_DISCOVERED: self._on_discovered,
            ev.STEP_STARTED: self._on_step_started,
            ev.STEP_ENDED: self._on_step_ended,
            ev.VECTOR_STARTED: self._on_vector_started,
            ev.VECTOR_ENDED: self._on_vector_ended,
            ev.MEASUREMENT: self._on_measurement,
            ev.CONFIGURED: self._on_configured,
            ev.OBSERVED: self._on_observed,
        }

    # -- the hook -----------------------------------------------------------------------------

    @hookimpl(trylast=True)
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        """Dispatch each event by type; writes a file when a ``run.ended`` arrives.

        ``trylast``: the event store (``tryfirst``) has made the batch durable before a seal
        starts, so a crash during a long seal never loses the run's real outcome."""
        get = self._handlers.get
        if self._on_error is not None:
            self._isolated(events)
        else:
            for e in events:
                h = get(e["event_type"])
                if h is not None:
                    h(e)
        if events:
            last = events[-1]
            r = self._runs.get(last.get("run_id"))
            if r is not None:
                r.last_ts = last.get("timestamp")

    def _isolated(self, events: list[dict[str, Any]]) -> None:
        """The offline dispatch: an event that cannot be handled drops its run, not the replay."""
        get = self._handlers.get
        for e in events:
            h = get(e.get("event_type"))
            if h is not None:
                try:
                    h(e)
                except Exception as exc:
                    self._drop(e.get("run_id"), exc)

    def _drop(self, run_id: Any, exc: Exception) -> None:
        assert self._on_error is not None
        self._runs.pop(run_id, None)
        if run_id is not None:
            self._exclude.add(run_id)  # its later events are ignored
        self._on_error(run_id, exc)

    @hookimpl
    def litmus_seq_run_sealed(self, run_id: str, outcome: str) -> Path | None:
        """The file written for ``run_id`` (the recorder's :class:`RunResult.parquet`); raises
        the :class:`StoreError` of a seal that failed (disk full, a folder that cannot be
        written): the run's outcome is safe in the event store, but no file holds it, so the
        caller must not report the run as sealed (the CLI exits 3 with that one line)."""
        got = self._by_run.pop(run_id, None)
        if isinstance(got, StoreError):
            raise got
        return got

    def close(self) -> None:
        """Forget unfinished runs: a run without ``run.ended`` is ``recover``'s to seal."""
        self._runs.clear()
        self._sessions.clear()

    @property
    def open_runs(self) -> list[str]:
        """Runs started and not ended (what a crash would leave to ``recover``)."""
        return list(self._runs)

    def seal_unfinished(self) -> list[Path]:
        """Write every open run as ``aborted`` (offline only: the process that ran it is gone)."""
        out = []
        for run_id in list(self._runs):
            path = self._write(self._runs.pop(run_id))
            if path is not None:
                out.append(path)
        return out

    # -- handlers -----------------------------------------------------------------------------

    def _on_session_started(self, e: dict[str, Any]) -> None:
        self._sessions[e.get("session_id")] = {"event": e, "instruments": {}}

    def _session(self, sid: Any) -> dict[str, Any]:
        s = self._sessions.get(sid)
        if s is None:
            s = self._sessions[sid] = {"event": {}, "instruments": {}}
        return s

    def _on_run_started(self, e: dict[str, Any]) -> None:
        run_id = e.get("run_id")
        if run_id is None or run_id in self._exclude:
            return
        self._runs[run_id] = _Run(run_id, e, self._session(e.get("session_id")))

    def _on_run_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.pop(e.get("run_id"), None)
        if r is None:
            return
        r.ended = True
        r.ended_at = e.get("timestamp")
        r.outcome = e.get("outcome")
        r.error = e.get("error")
        self._write(r)

    def _on_instrument(self, e: dict[str, Any]) -> None:
        info = {k: e.get(k) for k in ("role", "driver", "resource", "identity", "calibration", "mocked",
                                      "identity_check")}
        role = info["role"]
        self._session(e.get("session_id"))["instruments"][role] = info
        r = self._runs.get(e.get("run_id"))
        if r is not None:
            r.instruments[role] = info

    def _on_discovered(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e.get("run_id"))
        if r is not None:
            r.discovered = items = list(e.get("items") or ())
            planned = r.planned = {item.get("step_path") for item in items}
            for sid, path in enumerate(r.st_path):  # (steps started before the plan was announced)
                if path in planned:
                    r.st_info.pop(sid, None)

    def _on_step_started(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        sid = r.step_ids.get(path)
        if sid is None:
            sid = r.step(path)
        planned = r.planned
        if planned is None or path not in planned:
            r.st_info[sid] = (e.get("name"), e.get("step_index"), e.get("node_id"), e.get("kind"),
                              e.get("vector_count"))
        ts = e["timestamp"]
        i = 2 * sid
        times = r.st_times
        times[i] = ts if type(ts) is int else _ts(ts)
        times[i + 1] = _NO_TS
        end = r.st_end
        end[i] = end[i + 1] = None

    def _on_step_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        sid = r.step_ids.get(path)
        if sid is None:
            sid = r.step(path)
        ts = e["timestamp"]
        i = 2 * sid
        r.st_times[i + 1] = ts if type(ts) is int else _ts(ts)
        end = r.st_end
        end[i] = e.get("outcome")
        end[i + 1] = e.get("error")

    def _on_vector_started(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        index = e["vector_index"]
        vi = r.m_vi = r.vector(path, index)
        r.m_path = path
        r.m_index = index
        if e.get("retry"):
            r.retries += 1
        times = r.v_times
        i = 2 * vi
        if times[i] == _NO_TS:
            ts = e["timestamp"]
            times[i] = ts if type(ts) is int else _ts(ts)
        times[i + 1] = _NO_TS
        r.v_params[vi] = e.get("params")
        if r.v_errors:
            r.v_errors.pop(vi, None)
        r.v_outcome[vi] = None

    def _on_vector_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        index = e["vector_index"]
        vi = r.m_vi if path is r.m_path and index is r.m_index else r.vector(path, index)
        ts = e["timestamp"]
        r.v_times[2 * vi + 1] = ts if type(ts) is int else _END_NO_TS if ts is None else _ts(ts)
        r.v_outcome[vi] = e.get("outcome")
        error = e.get("error")
        if error is not None:
            r.v_errors[vi] = error
        elif r.v_errors:
            r.v_errors.pop(vi, None)

    def _on_measurement(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        index = e["vector_index"]
        if path is r.m_path and index is r.m_index:
            vi = r.m_vi
        else:
            vi = r.m_vi = r.vector(path, index)
            r.m_path = path
            r.m_index = index
        lim = e.get("limit")
        li = r.limit_ids.get(id(lim))
        if li is None:
            li = r.limit_index(lim)
        role = e.get("instrument")
        ri = r.role_ids.get(role)
        if ri is None:
            ri = r.role_index(role)
        try:
            fields = _M_GET(e)
        except KeyError:  # an event without its optional fields (not from the engine)
            fields = tuple(map(e.get, _M_KEYS))
        rows = r.rows
        rows.append(fields + (vi, li, ri))
        if len(rows) >= CHUNK_ROWS:
            r.seal_chunk()

    def _kv_target(self, e: dict[str, Any], attr: str) -> dict[Any, Any] | None:
        r = self._runs.get(e.get("run_id"))
        if r is None:
            return None
        path, index = e.get("step_path"), e.get("vector_index")
        if path is None:
            return r.run_configured if attr == "configured" else r.run_observed
        if index is None:
            key = r.step(path)
            holder = r.st_configured if attr == "configured" else r.st_observed
        else:
            key = r.vector(path, index)
            holder = r.v_configured if attr == "configured" else r.v_observed
        d = holder.get(key)
        if d is None:
            d = holder[key] = {}
        return d

    def _on_configured(self, e: dict[str, Any]) -> None:
        d = self._kv_target(e, "configured")
        if d is not None:
            d[e.get("key")] = e.get("value")

    def _on_observed(self, e: dict[str, Any]) -> None:
        d = self._kv_target(e, "observed")
        if d is not None:
            d[e.get("key")] = e.get("value")

    # -- writing ------------------------------------------------------------------------------

    def _write(self, r: _Run) -> Path | None:
        try:
            path = _RunWriter(r, self.data_dir).write()
        except StoreError as exc:
            if self._on_error is not None:
                self._drop(r.run_id, exc)
            else:  # live: told once, to whoever asks for the file (litmus_seq_run_sealed)
                self._by_run[r.run_id] = exc
            return None
        except Exception as exc:
            if self._on_error is None:
                raise
            self._drop(r.run_id, exc)
            return None
        self.written.append(path)
        self._by_run[r.run_id] = path
        return path


_NO_INFO: tuple[Any, ...] = (None, None, None, None, None)


def _ts(v: Any) -> int:
    """An event timestamp for an ``array('q')`` column (None -> :data:`_NO_TS`)."""
    if type(v) is int:
        return v
    return _NO_TS if v is None else int(v)


# -- the writer (run end only) --------------------------------------------------------------------


def _infer(values: list[Any]) -> tuple[pa.DataType, list[Any]]:
    """A dynamic column's type from its values: bool, numbers -> float64, else string.

    Mixed types become strings (JSON text for non-strings) rather than failing the write.
    """
    import pyarrow as pa

    kinds = set()
    for v in values:
        if v is None:
            continue
        t = type(v)
        if t is bool:
            kinds.add("b")
        elif t is int or t is float:
            kinds.add("f")
        elif t is str:
            kinds.add("s")
        else:
            kinds.add("o")
    if kinds == {"b"}:
        return pa.bool_(), values
    if kinds == {"f"}:
        return pa.float64(), [None if v is None else float(v) for v in values]
    if kinds <= {"s"}:
        return pa.string(), values
    return pa.string(), [v if v is None or type(v) is str else json.dumps(v, default=str) for v in values]


_STR_OR_NONE = frozenset((str, type(None)))
_INT_OR_NONE = frozenset((int, type(None)))


def _spread(columns: dict[Any, list[Any]], keys: dict[Any, None], run_level: dict[Any, Any], n: int,
            layers_per_row: Iterable[tuple[dict[Any, Any] | None, ...]]) -> None:
    """Fill ``in_``/``out_`` value columns, row by row, from each row's layers (later wins); a
    column starts as the run-level value on every row."""
    for i, layers in enumerate(layers_per_row):
        for layer in layers:
            if layer:
                for k, val in layer.items():
                    col = columns.get(k)
                    if col is None:
                        keys[k] = None
                        col = columns[k] = [run_level.get(k)] * n
                    col[i] = val


def _dyn_names(prefix: str, keys: Iterable[Any]) -> dict[str, Any]:
    """``{column name: key}`` for the keys that may become columns (``_private`` ones never do)."""
    return {f"{prefix}{k}": k for k in keys if not str(k).startswith("_")}


def _equals_text(v: Any) -> str | None:
    if v is None or type(v) is str:
        return v
    return json.dumps(v, default=str)


def _parent(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:-1]) if len(parts) > 2 else ""


# A column at some level (step rows, limits, instruments) as the rows that point into it get it:
#   ("d", codes, dictionary): strings: int32 codes (NULL for NULL) into unique non-NULL values,
#                             which is what the parquet writer needs to write them directly;
#   ("p", values, None):      any other type (taken: fixed-width takes are cheap).
_Src = tuple[str, Any, Any]


def _dict_type() -> pa.DataType:
    import pyarrow as pa

    return pa.dictionary(pa.int32(), pa.string())


def _level(values: list[Any], typ: pa.DataType) -> _Src:
    import pyarrow as pa

    if typ == pa.string():
        d = pa.array(values, typ).dictionary_encode()
        return ("d", d.indices, d.dictionary)
    return ("p", pa.array(values, typ), None)


def _lift(src: _Src, idx: pa.Array) -> _Src:
    """``src`` re-indexed by positions ``idx`` (NULL positions give NULL)."""
    kind, a, d = src
    return (kind, a.take(idx), d)


class _Pick:
    """Positions ``idx`` into one level (step rows, limits or roles) for one slice of rows.

    String columns come out as dictionary arrays whose dictionary is exactly the values the
    slice uses: the parquet writer stores a row group's whole dictionary, and (pyarrow 26) takes
    a row group's min/max statistics from the whole dictionary when the slice has NULLs and uses all but one
    entry, so an unused entry could widen the statistics. The distinct positions are few (a
    slice's measurements come from a few vectors), so this costs a take of them, a
    dictionary-encode of their codes and a take of the slice's positions per column.
    """

    __slots__ = ("idx", "distinct", "local")

    def __init__(self, idx: pa.Array) -> None:
        import pyarrow.compute as pc

        self.idx = idx
        self.distinct = pc.unique(idx)
        self.local = pc.index_in(idx, value_set=self.distinct)

    def at(self, src: _Src) -> pa.Array:
        import pyarrow as pa

        kind, a, d = src
        if kind == "p":
            return a.take(self.idx)
        enc = a.take(self.distinct).dictionary_encode()
        return pa.DictionaryArray.from_arrays(enc.indices.take(self.local), d.take(enc.dictionary))


def _with_run_row(src: _Src) -> pa.Array:
    """A step-row column with the run row's NULL in front (the head of the file)."""
    import pyarrow as pa

    kind, a, d = src
    a = pa.concat_arrays([pa.nulls(1, a.type), a])
    return a if kind == "p" else pa.DictionaryArray.from_arrays(a, d)


def _idx(positions: list[int]) -> pa.Array:
    """Positions as int32 for ``take``, NULL where negative (no such step or vector)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    a = pa.array(positions, pa.int32())
    if -1 in positions:
        a = pc.if_else(pc.less(a, 0), pa.scalar(None, pa.int32()), a)
    return a


def _own(col: Any, typ: pa.DataType, n: int, part: bool) -> pa.Array:
    """A measurement's own column from a chunk, in the writer's type (a ``part`` of a chunk gets
    its dictionary cut to the values it uses, see :class:`_Pick`)."""
    import pyarrow as pa

    if col is None:
        return pa.nulls(n, typ)
    if pa.types.is_dictionary(typ):
        if part:
            enc = col.indices.dictionary_encode()
            return pa.DictionaryArray.from_arrays(enc.indices, col.dictionary.take(enc.dictionary))
        if col.type.index_type != pa.int32():
            return pa.DictionaryArray.from_arrays(col.indices.cast(pa.int32()), col.dictionary)
        return col
    return col if col.type == typ else col.cast(typ)


class _Consts:
    """Run-level columns (one value on every row), built once and then sliced (free) per table.

    Strings are a one-value dictionary with all-zero codes.
    """

    def __init__(self) -> None:
        self.values: dict[str, tuple[Any, pa.DataType]] = {}
        self._built: dict[str, pa.Array] = {}
        self._zeros: pa.Array | None = None

    def get(self, name: str, n: int) -> pa.Array:
        a = self._built.get(name)
        if a is None or len(a) < n:
            value, typ = self.values[name]
            a = self._built[name] = self._repeat(value, typ, n)
        return a if len(a) == n else a.slice(0, n)

    def _repeat(self, value: Any, typ: pa.DataType, n: int) -> pa.Array:
        import pyarrow as pa

        if typ == pa.string() and value is None:
            return pa.nulls(n, _dict_type())
        if self._zeros is None or len(self._zeros) < n:
            self._zeros = _zeros(n)
        zeros = self._zeros if len(self._zeros) == n else self._zeros.slice(0, n)
        if typ == pa.string():
            return pa.DictionaryArray.from_arrays(zeros, pa.array([value], typ))
        return pa.array([value], typ).take(zeros)  # (pa.repeat is 5x slower for lists)


class _StepRows:
    """The step rows in file order.

    ``identity`` holds the identity columns (in :data:`_IDENTITY` order) per group (a plan entry,
    an unannounced step or the unknown step of a stray vector); per row: ``group``, ``vi`` (vector
    id, -1: none) and ``index`` (vector index); ``sid`` is the step id per group (-1: no event);
    ``pos[vector id]`` is the row of each vector.
    """

    __slots__ = ("identity", "sid", "group", "vi", "index", "pos")

    def __init__(self, identity: list[list[Any]], sid: list[int], group: list[int], vi: list[int],
                 index: list[Any], pos: list[int]) -> None:
        self.identity = identity
        self.sid = sid
        self.group = group
        self.vi = vi
        self.index = index
        self.pos = pos


_NONE_INDEX = (None,)  # the vector indices of a step without vectors: one row, index NULL


class _RunWriter:
    """Builds and writes one run's file; lives only for the duration of the write."""

    def __init__(self, run: _Run, data_dir: Path) -> None:
        self.r = run
        self.data_dir = data_dir

    # step rows ---------------------------------------------------------------------------------

    def _step_rows(self) -> _StepRows:
        """One row per planned (step, vector), then the steps and vectors the plan did not announce.

        The order is that of sorting every row by (step_index, plan order, vector index), with the
        unannounced ones after the plan's at the same step_index. Column by column and without a
        sort in the usual case (the plan in step_index order, every step and vector announced):
        this runs once per run but over every step, and container objects would also wake the
        garbage collector.
        """
        r = self.r
        big = 1 << 62
        items = r.discovered or []
        paths = [it.get("step_path") for it in items]
        sindex = [it.get("step_index", o) for o, it in enumerate(items)]
        vcount = [it.get("vector_count") for it in items]
        identity = [
            [it.get("name") for it in items], sindex, paths, [it.get("parent_path") for it in items],
            [it.get("node_id") for it in items], [it.get("file") for it in items],
            [it.get("line") for it in items], [it.get("kind") for it in items], vcount,
        ]
        counts = [c or 0 for c in vcount]
        last = dict(zip(paths, range(len(paths))))  # step path -> its last group
        planned = set(last)
        # the vector rows of a step path: indices below its largest count, and None if a count is 0
        most: dict[Any, int] = dict(zip(paths, counts))
        if len(most) < len(paths):  # a path planned twice
            most = {}
            for path, c in zip(paths, counts):
                most[path] = max(c, most.get(path, 0))
        zero = {path for path, c in zip(paths, counts) if not c}

        def add_group(values: tuple[Any, ...]) -> int:
            for col, v in zip(identity, values):
                col.append(v)
            return len(paths) - 1

        extra: list[tuple[tuple[Any, ...], int, Sequence[Any], int | None]] = []  # key, group, indices, vector
        for sid, path in enumerate(r.st_path):  # steps the plan did not announce
            if path in planned:
                continue
            name, si, node, kind, vc = r.st_info.get(sid) or _NO_INFO
            c = vc or 0
            g = last[path] = add_group((name, si, path, _parent(path), node, None, None, kind, vc))
            counts.append(c)
            most[path] = c
            if not c:
                zero.add(path)
            sidx = si if isinstance(si, int) else big
            for index in (range(c) if c else _NONE_INDEX):
                extra.append(((sidx, big, -1 if index is None else index), g, (index,), None))
        stray: list[tuple[Any, Any, int]] = []  # vectors beyond their step's rows: (path, index, id)
        for path, ids in r.vec_dense.items():
            m = most.get(path, 0)
            if len(ids) > m:
                stray += [(path, m + i, vi) for i, vi in enumerate(ids[m:]) if vi >= 0]
        for (path, index), vi in r.vec_other.items():
            if not (path in zero if index is None else type(index) is int and 0 <= index < most.get(path, 0)):
                stray.append((path, index, vi))
        defaults: dict[Any, int] = {}
        for path, index, vi in sorted(stray, key=_last):
            g = last.get(path, defaults.get(path, -1))
            if g < 0:
                g = defaults[path] = add_group((None, None, path, _parent(path) if isinstance(path, str) else None,
                                                None, None, None, None, None))
                counts.append(0)
            si = identity[1][g]
            extra.append(((si if isinstance(si, int) else big, big + 1 + vi, index if isinstance(index, int) else -1),
                          g, (index,), vi))

        step_ids, dense, other = r.step_ids, r.vec_dense, r.vec_other
        sid_of = [step_ids.get(path, -1) for path in paths]
        sidx = [s if isinstance(s, int) else big for s in sindex[:len(items)]]
        if not extra and all(map(le, sidx, islice(sidx, 1, None))):  # the usual case: plan order
            row_group = [g for g, c in enumerate(counts) for _ in range(c or 1)]
            row_index = [i for c in counts for i in (range(c) if c else _NONE_INDEX)]
            row_vi: list[int] = []
            for path, c in zip(paths, counts):
                ids = dense.get(path)
                if c == 1:
                    row_vi.append(-1 if ids is None else ids[0])
                    continue
                if not c:
                    row_vi.append(other.get((path, None), -1))
                    continue
                if c > _DENSE_VECTORS:
                    row_vi += [r.find_vector(path, i) for i in range(c)]
                    continue
                block = ids[:c].tolist() if ids is not None else []
                row_vi += block
                if len(block) < c:
                    row_vi += [-1] * (c - len(block))
        else:
            segs = [((s, o), o, range(c) if c else _NONE_INDEX, None)
                    for o, (s, c) in enumerate(zip(sidx, counts))]
            segs += extra
            segs.sort(key=_first)
            row_group, row_index, row_vi = [], [], []
            for _, g, indices, vi in segs:
                k = len(indices)
                row_group += [g] * k
                row_index += indices
                if vi is not None:
                    row_vi.append(vi)
                else:
                    path = paths[g]
                    row_vi += [r.find_vector(path, i) for i in indices]
        pos = [0] * len(r.v_outcome)
        for i, vi in enumerate(row_vi):
            if vi >= 0:
                pos[vi] = i
        return _StepRows(identity, sid_of, row_group, row_vi, row_index, pos)

    # tables ------------------------------------------------------------------------------------

    def _run_values(self) -> dict[str, Any]:
        """Run-level column values (the same on every row)."""
        r = self.r
        st = r.started
        vals: dict[str, Any] = {name: st.get(name) for name in S.RUN_CONTEXT}
        session_ev = r.session.get("event") or {}
        for name in ("station_id", "station_name", "station_hostname", "python_version", "litmus_seq_version"):
            if vals.get(name) is None:
                vals[name] = session_ev.get(name)
        if vals.get("operator_name") is None:
            vals["operator_name"] = session_ev.get("operator_name")
        for name in S.RUN_CONTEXT:  # e.g. sequence_version given as a number
            v = vals[name]
            if v is not None and type(v) is not str:
                vals[name] = str(v)
        vals["session_id"] = st.get("session_id")
        vals["run_id"] = r.run_id
        vals["slot_id"] = None if st.get("slot_id") is None else str(st.get("slot_id"))
        vals["run_started_at"] = r.started_at
        vals["run_ended_at"] = r.ended_at if r.ended else r.last_ts
        vals["run_outcome"] = r.outcome if r.ended else ABORTED
        vals["run_error"] = r.error if r.ended else "the process ended before the run did (recovered from the event store)"
        vals["run_retry_count"] = r.retries
        inst = list(r.instruments.values())

        def ident(i: dict[str, Any], k: str) -> Any:
            return _text((i.get("identity") or {}).get(k))

        def cal(i: dict[str, Any], k: str) -> Any:
            return _text((i.get("calibration") or {}).get(k))

        vals["step_instruments_name"] = [_text(i.get("role")) for i in inst]
        vals["step_instruments_driver"] = [_text(i.get("driver")) for i in inst]
        vals["step_instruments_resource"] = [_text(i.get("resource")) for i in inst]
        for k in ("manufacturer", "model", "serial", "firmware"):
            vals[f"step_instruments_{k}"] = [ident(i, k) for i in inst]
        vals["step_instruments_cal_due"] = [cal(i, "due") for i in inst]
        vals["step_instruments_cal_certificate"] = [cal(i, "certificate") for i in inst]
        vals["step_instruments_mocked"] = [None if i.get("mocked") is None else bool(i.get("mocked")) for i in inst]
        vals["step_instruments_cal_exception"] = [cal(i, "exception") for i in inst]
        vals["step_instruments_idn_check"] = [_text(i.get("identity_check")) for i in inst]
        return vals

    def build(self) -> None:
        """Everything but the measurement slices: schema, head (run row + step rows) and the
        per-level column sources the slices take from."""
        import pyarrow as pa

        r = self.r
        rows = self._step_rows()
        n = len(rows.group)
        g_idx, v_idx = _idx(rows.group), _idx(rows.vi)
        s_idx = _idx(rows.sid).take(g_idx)
        string = pa.string()

        # step-row columns: identity (per group), step and vector state (per step, per vector)
        src: dict[str, _Src] = {}
        for name, vals in zip(_IDENTITY, rows.identity):
            kind = S.KINDS[name]
            if kind == "s":
                if not set(map(type, vals)) <= _STR_OR_NONE:
                    vals = [_text(x) for x in vals]
            elif not set(map(type, vals)) <= _INT_OR_NONE:
                vals = [x if type(x) is int else None for x in vals]
            src[name] = _lift(_level(vals, S.arrow_type(kind)), g_idx)
        src["vector_index"] = ("p", pa.array([x if type(x) is int else None for x in rows.index], pa.int64()), None)
        late = None if r.ended else ABORTED
        ts = S.arrow_type("t")
        no = _NO_TS
        s0, s1 = r.st_times[0::2], r.st_times[1::2]
        for name, vals, typ in (
            ("step_started_at", [t if t != no else None for t in s0], ts),
            ("step_ended_at", [e if s != no and e != no else None for s, e in zip(s0, s1)], ts),
            ("step_outcome", [(o if e != no else late) if s != no else None
                              for s, e, o in zip(s0, s1, r.st_end[0::2])], string),
            ("step_error", [x if s != no else None for s, x in zip(s0, r.st_end[1::2])], string),
        ):
            src[name] = _lift(_level(vals, typ), s_idx)
        v0, v1 = r.v_times[0::2], r.v_times[1::2]
        errors = [None] * len(v0)
        for vi, x in r.v_errors.items():
            if v0[vi] != no:
                errors[vi] = x
        end = _END_NO_TS
        for name, vals, typ in (
            ("vector_started_at", [t if t != no else None for t in v0], ts),
            ("vector_ended_at", [e if s != no and e > end else None for s, e in zip(v0, v1)], ts),
            ("vector_outcome", [(late if e == no else o) if s != no else None
                                for s, e, o in zip(v0, v1, r.v_outcome)], string),
            ("vector_error", errors, string),
        ):
            src[name] = _lift(_level(vals, typ), v_idx)

        # dynamic in_/out_ values per step row: run level < vector params < step < vector
        run_in, run_out = r.run_configured, r.run_observed
        in_keys: dict[Any, None] = dict.fromkeys(run_in)
        out_keys: dict[Any, None] = dict.fromkeys(run_out)
        in_rows: dict[Any, list[Any]] = {}  # only the keys some row sets
        out_rows: dict[Any, list[Any]] = {}
        params, vconf, vobs, sconf, sobs = r.v_params, r.v_configured, r.v_observed, r.st_configured, r.st_observed
        row_sid = [rows.sid[g] for g in rows.group] if any(params) or vconf or sconf or sobs or vobs else []
        if any(params) or vconf or sconf:
            _spread(in_rows, in_keys, run_in, n, (
                (params[vi] if vi >= 0 else None, sconf.get(sid), vconf.get(vi))
                for vi, sid in zip(rows.vi, row_sid)))
        if sobs or vobs:
            _spread(out_rows, out_keys, run_out, n, ((sobs.get(sid), vobs.get(vi)) for vi, sid in zip(rows.vi, row_sid)))
        in_cols = _dyn_names("in_", in_keys)
        out_cols = _dyn_names("out_", out_keys)
        custom = r.started.get("custom") or {}
        custom_cols = _dyn_names("custom_", custom if isinstance(custom, dict) else {})

        dyn_types: dict[str, pa.DataType] = {}
        head_dyn: dict[str, pa.Array] = {}  # run row + step rows
        consts = self.consts = _Consts()
        for cols, per_row, run_level in ((in_cols, in_rows, run_in), (out_cols, out_rows, run_out)):
            for name, key in cols.items():
                rv = run_level.get(key)
                values = per_row.get(key)
                typ, vals = _infer([rv, *(values if values is not None else [rv] * n)])
                dyn_types[name] = typ
                kind, a, d = _level(vals, typ)
                head_dyn[name] = a if kind == "p" else pa.DictionaryArray.from_arrays(a, d)
                src[name] = (kind, a.slice(1), d)
        for name, key in custom_cols.items():
            typ, vals = _infer([custom.get(key)])
            dyn_types[name] = typ
            consts.values[name] = (vals[0], typ)
        dyn_order = sorted(in_cols) + sorted(out_cols) + sorted(custom_cols)

        fields = [pa.field(name, S.arrow_type(kind)) for name, kind in S.COLUMNS]
        fields += [pa.field(name, dyn_types[name]) for name in dyn_order]
        # The schemas carry no metadata: it holds the plan (megabytes for a large sweep), and it
        # is only needed once, for the file's footer.
        self.metadata = self._metadata()
        self.schema = schema = pa.schema(fields)
        self.wschema = wschema = pa.schema([pa.field(f.name, _dict_type()) if f.type == string else f for f in schema])
        for name, value in self._run_values().items():
            consts.values[name] = (value, schema.field(name).type)
        self.pos = pa.array(rows.pos, pa.int32())

        # the head: the run row, then the step rows
        arrays = []
        for f in wschema:
            name = f.name
            if name == "record_type":
                a = pa.DictionaryArray.from_arrays(pa.array([0] + [1] * n, pa.int32()), pa.array(["run", "step"]))
            elif name in consts.values:
                a = consts.get(name, n + 1)
            elif name in head_dyn:
                a = head_dyn[name]
            elif name in src:
                a = _with_run_row(src[name])
            else:
                a = pa.nulls(n + 1, f.type)
            arrays.append(a)
        self.head = pa.Table.from_arrays(arrays, schema=wschema)

        # what a measurement row takes, column by column
        consts.values["record_type"] = ("measurement", string)
        lsrc = self._limit_sources()
        isrc = self._instrument_sources()
        plan: list[tuple[str, Any, Any]] = []
        for f in wschema:
            name = f.name
            if name in _OWN:
                plan.append(("o", _OWN[name], f.type))
            elif name in lsrc:
                plan.append(("l", lsrc[name], None))
            elif name in isrc:
                plan.append(("i", isrc[name], None))
            elif name in consts.values:
                plan.append(("c", name, None))
            elif name in src:
                plan.append(("s", src[name], None))
            else:
                plan.append(("n", f.type, None))
        self.plan = plan

    def _limit_sources(self) -> dict[str, _Src]:
        """The limit columns per limit (index into :attr:`_Run.limits`)."""
        import pyarrow as pa

        lims = self.r.limits
        out: dict[str, _Src] = {}
        for name, (key, is_float) in _LIMIT_COLUMNS.items():
            vals = [lim.get(key) if isinstance(lim, dict) else None for lim in lims]
            if is_float:
                vals = [v if v is None or type(v) is float else (float(v) if type(v) is int else None) for v in vals]
                out[name] = ("p", pa.array(vals, pa.float64()), None)
            elif key == "equals":
                out[name] = _level([_equals_text(v) for v in vals], pa.string())
            else:
                out[name] = _level([_text(v) for v in vals], pa.string())
        return out

    def _instrument_sources(self) -> dict[str, _Src]:
        """The instrument columns per role (index into :attr:`_Run.roles`)."""
        import pyarrow as pa

        r = self.r
        data: dict[str, list[Any]] = {k: [] for k in _INSTRUMENT_COLUMNS}
        for role in r.roles:
            info = r.instruments.get(role) if role is not None else None
            data["instrument_name"].append(_text(role))
            if info is None:
                for k, vals in data.items():
                    if k != "instrument_name":
                        vals.append(None)
                continue
            identity = info.get("identity") or {}
            calib = info.get("calibration") or {}
            data["instrument_resource"].append(_text(info.get("resource")))
            for k in ("manufacturer", "model", "serial", "firmware"):
                data[f"instrument_{k}"].append(_text(identity.get(k)))
            data["instrument_cal_due"].append(_text(calib.get("due")))
            data["instrument_cal_certificate"].append(_text(calib.get("certificate")))
            data["instrument_cal_exception"].append(_text(calib.get("exception")))
            m = info.get("mocked")
            data["instrument_mocked"].append(None if m is None else bool(m))
        return {k: _level(v, pa.bool_() if k == "instrument_mocked" else pa.string()) for k, v in data.items()}

    def _tables(self) -> Iterator[pa.Table]:
        """The head, then the measurement slices (a small run is one table: one row group costs
        half the write time and footer of two)."""
        import pyarrow as pa

        r = self.r
        head, self.head = self.head, None
        tables = self._measurement_tables()
        n = len(r.rows) + sum(k for k, _ in r.chunks)
        if n and head.num_rows + n <= WRITE_ROWS:
            first = next(tables)
            yield pa.concat_tables([head, first]).unify_dictionaries()
            del first
        else:
            yield head
        del head
        yield from tables
        # let the slices' sources go (and the allocator return them) before the footer, whose
        # metadata (the plan) can be the largest allocation of the write
        self.consts, self.plan = _Consts(), []
        pa.default_memory_pool().release_unused()

    def _measurement_tables(self) -> Iterator[pa.Table]:
        """Measurement rows in slices of :data:`WRITE_ROWS` (a slice may span chunks: a row group
        has a fixed cost per column, ~60 µs with zstd, so fewer and larger ones write faster);
        each chunk is let go as soon as its rows are written."""
        import pyarrow as pa

        r = self.r
        r.seal_chunk()
        pool = pa.default_memory_pool()
        pieces: list[tuple[int, dict[str, Any], bool]] = []  # (rows, columns, part of a chunk?)
        have = 0
        while r.chunks:
            total, cols = r.chunks.pop(0)
            start = 0
            while start < total:
                n = min(WRITE_ROWS - have, total - start)
                if n == total:
                    pieces.append((n, cols, False))
                else:
                    pieces.append((n, {k: None if v is None else v.slice(start, n) for k, v in cols.items()}, True))
                have += n
                start += n
                if have >= WRITE_ROWS:
                    yield self._measurement_table(pieces)
                    pieces, have = [], 0
                    pool.release_unused()  # the allocator would keep every slice's pages otherwise
            del cols
        if pieces:
            yield self._measurement_table(pieces)
            pool.release_unused()

    def _measurement_table(self, pieces: list[tuple[int, dict[str, Any], bool]]) -> pa.Table:
        """One slice: own columns + int takes of codes for step, limit and instrument columns."""
        import pyarrow as pa

        n = sum(p[0] for p in pieces)

        def own(key: str, typ: pa.DataType) -> pa.Array:
            parts = [_own(cols[key], typ, k, part) for k, cols, part in pieces]
            return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)  # unifies dictionaries

        rows = _Pick(self.pos.take(own("vec", pa.int32())))
        lim, role = _Pick(own("limit", pa.int32())), _Pick(own("role", pa.int32()))
        consts = self.consts
        arrays = []
        for kind, a, b in self.plan:
            if kind == "s":
                arrays.append(rows.at(a))
            elif kind == "c":
                arrays.append(consts.get(a, n))
            elif kind == "o":
                arrays.append(own(a, b))
            elif kind == "l":
                arrays.append(lim.at(a))
            elif kind == "i":
                arrays.append(role.at(a))
            else:
                arrays.append(pa.nulls(n, a))
        return pa.Table.from_arrays(arrays, schema=self.wschema)

    def _metadata(self) -> dict[bytes, bytes]:
        from litmus_seq import __version__

        r = self.r
        session_ev = r.session.get("event") or {}
        env = {
            "python_version": session_ev.get("python_version") or r.started.get("python_version"),
            "platform": session_ev.get("platform"),
            "plugins": session_ev.get("plugins"),
            "station_hostname": session_ev.get("station_hostname") or r.started.get("station_hostname"),
        }
        plan = r.started.get("plan")
        if plan is not None and not isinstance(plan, str):
            plan = json.dumps(plan, default=str)
        return {
            b"litmus_seq_version": str(r.started.get("litmus_seq_version") or __version__).encode(),
            b"schema_version": S.SCHEMA_VERSION.encode(),
            b"plan": (plan or "").encode(),
            b"environment": json.dumps(env, default=str).encode(),
            b"run_id": str(r.run_id).encode(),
            b"session_id": str(r.started.get("session_id")).encode(),
            b"recovered": b"false" if r.ended else b"true",
        }

    def _file_metadata(self) -> dict[bytes, bytes]:
        """Our key-value metadata, handed over once (the writer's copy is the only one left).

        No ``ARROW:schema``: every column type here (string, int, float, bool, UTC timestamps,
        lists) comes back identical from the parquet types alone (a test checks it), and that
        key would store the whole metadata, plan included, a second time (base64: +1.33x).
        Readers get ``schema.metadata`` from the key-value pairs either way."""
        md, self.metadata = self.metadata, {}
        return md

    def write(self) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        r = self.r
        date, stem = run_file_name(r.started_at, r.started.get("dut_serial"))
        folder = self.data_dir / "runs" / date
        self.build()
        # Dictionary columns go to the writer as they are (readers get plain strings back) and
        # our metadata is added by hand, without the ``ARROW:schema`` copy (_file_metadata).
        # zstd where the data is (_codecs): ~2.5x smaller than snappy there.
        # Dictionary encoding for the strings only: timestamps, floats and lists are mostly
        # distinct or constant, where it costs more to write than it saves once compressed;
        # 64k-value write batches (default 1k) cut the writer's per-batch statistics overhead.
        rows = self.head.num_rows + len(r.rows) + sum(k for k, _ in r.chunks)
        options: dict[str, Any] = {
            "compression": _codecs(self.schema, rows),
            "write_batch_size": 65536, "store_schema": False,
            "use_dictionary": [f.name for f in self.schema if f.type == pa.string()],
        }
        tmp: SealTmp | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = SealTmp(folder, stem)
            with pq.ParquetWriter(str(tmp.path), self.wschema, **options) as writer:
                _pipelined(writer.write_table, self._tables(), threaded=rows > WRITE_ROWS)
                # last: the writer's copy of the plan then never coexists with the row groups
                writer.add_key_value_metadata(self._file_metadata())  # (and lets our copy go)
            path = folder / f"{stem}.parquet"
            n = 2
            while path.exists():  # never overwrite a run file
                path = folder / f"{stem}_{n}.parquet"
                n += 1
            os.replace(tmp.path, path)
        except (OSError, pa.ArrowException) as exc:
            if tmp is not None:
                tmp.release(remove=True)
            where = folder / f"{stem}.parquet" if tmp is not None else getattr(exc, "filename", None) or folder
            raise StoreError(f"{where}: cannot write the run file of run {r.run_id}: {os_reason(exc)}; "
                             "free disk space or make the data folder writable, then run 'litmus-seq "
                             "recover' (it rebuilds the file from the event store)") from exc
        tmp.release(remove=False)
        return path


def _pipelined(put: Callable[[pa.Table], None], tables: Iterator[pa.Table], *, threaded: bool) -> None:
    """``put`` every table; ``threaded``, the next one is built while a thread writes the last
    (the parquet writer releases the GIL): at most two slices in memory, and the build time
    hidden on a second core. A run of one table is written without a thread."""
    if not threaded:
        for table in tables:
            put(table)
        return
    table = next(tables, None)
    if table is None:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="litmus-seq-parquet") as pool:
        pending = pool.submit(put, table)
        del table
        for table in tables:
            pending.result()  # (raises what the writer raised)
            pending = pool.submit(put, table)
            del table
        pending.result()


def _first(seg: tuple[Any, ...]) -> Any:
    return seg[0]


def _last(seg: tuple[Any, ...]) -> Any:
    return seg[-1]


def _text(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def _zeros(n: int) -> pa.Array:
    import pyarrow as pa

    return pa.nulls(n, pa.int32()).fill_null(0)


def materialize_events(events: Iterable[dict[str, Any]], data_dir: Path, *, seal_unfinished: bool = True,
                       exclude_runs: Collection[str] = (),
                       on_error: Callable[[Any, Exception], None] | None = None) -> list[Path]:
    """Replay ``events`` through a :class:`RunMaterializer`; returns the files written.

    Runs still open when the events end are sealed as ``aborted`` (``seal_unfinished``), which
    is only right when the process that ran them is gone (``recover`` checks that). With
    ``on_error``, a run that fails is reported to it and the others are still written.
    """
    m = RunMaterializer(Path(data_dir), exclude_runs=exclude_runs, on_error=on_error)
    it = iter(events)
    while True:
        batch = list(islice(it, 4096))
        if not batch:
            break
        m.litmus_seq_events(batch)
    if seal_unfinished:
        m.seal_unfinished()
    m.close()
    return m.written
