"""The run materializer: events in, one parquet file per run out (``PARQUET.md``).

The same class runs live (a plugin on ``litmus_seq_events`` in the engine's process, writing the
file when ``run.ended`` arrives) and offline (:func:`materialize_events` replaying the event
store after a crash, for ``litmus-seq recover``). One code path means a recovered file cannot
differ from a live one except in what the crash took away.

Cost model, because the hook is on the engine's hot path:

* per event, a dict dispatch to a bound method; a measurement is one tuple appended to a list
  (a couple of µs). Nothing is denormalized while the run executes.
* every :data:`CHUNK_ROWS` measurements the tuples become Arrow arrays (~90 bytes a measurement),
  so a million-measurement run stays far below a few hundred MB.
* at ``run.ended`` the step rows are built once, and each measurement chunk gets its run, step,
  limit and instrument columns by ``take`` on small tables, streamed as row groups through a
  ``ParquetWriter`` into a temporary file that is then renamed into place.

A run whose events stop without ``run.ended`` (the process died) is not written live: the event
store still has it, and ``recover`` seals it as ``aborted`` (steps and vectors that started but
never ended are ``aborted``; those never started keep NULL).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq import events as ev
from litmus_seq.errors import StoreError
from litmus_seq.hookspecs import hookimpl
from litmus_seq.stores import schema as S

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["RunMaterializer", "materialize_events", "run_file_name", "CHUNK_ROWS"]

#: Measurements kept as Python tuples before they become Arrow arrays.
CHUNK_ROWS = 8192
#: Measurement rows denormalized (and written as one row group) at a time.
WRITE_ROWS = 16384

# Measurement row columns taken as they are from the compact chunks.
_OWN = {
    "vector_retry": "retry", "measurement_name": "name", "measurement_timestamp": "ts",
    "measurement_value": "value", "measurement_text": "text", "measurement_outcome": "outcome",
    "measurement_marginal": "marginal", "instrument_channel": "channel", "dut_pin": "dut_pin",
    "fixture_connection": "fixture_connection",
}

ABORTED = "aborted"

# Layout of one measurement tuple (the only per-measurement allocation).
_M_FIELDS = (
    "vec", "retry", "name", "ts", "value", "text", "units", "outcome", "marginal", "limit",
    "role", "channel", "dut_pin", "fixture_connection",
)
_M_TYPES = ("i32", "i64", "s", "t", "f", "s", "s", "s", "b", "i32", "i32", "s", "s", "s")


class _Step:
    """A step as the events showed it (identity from ``test.step_started``)."""

    __slots__ = ("info", "started_at", "ended_at", "outcome", "error", "configured", "observed", "order")

    def __init__(self, order: int) -> None:
        self.info: dict[str, Any] | None = None
        self.started_at: int | None = None
        self.ended_at: int | None = None
        self.outcome: str | None = None
        self.error: str | None = None
        self.configured: dict[str, Any] | None = None  # step-level (no vector_index)
        self.observed: dict[str, Any] | None = None
        self.order = order


class _Vector:
    """One (step_path, vector_index): first start, last end, last attempt's outcome."""

    __slots__ = ("step_path", "index", "started_at", "ended_at", "outcome", "error", "retry", "running",
                 "params", "configured", "observed", "order")

    def __init__(self, step_path: str | None, index: int | None, order: int) -> None:
        self.step_path = step_path
        self.index = index
        self.started_at: int | None = None
        self.ended_at: int | None = None
        self.outcome: str | None = None
        self.error: str | None = None
        self.retry: int | None = None
        self.running = False
        self.params: dict[str, Any] | None = None
        self.configured: dict[str, Any] | None = None
        self.observed: dict[str, Any] | None = None
        self.order = order


class _Run:
    """Everything one run's parquet file needs, accumulated from its events."""

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
        self.steps: dict[str, _Step] = {}
        self.vec_index: dict[tuple[Any, Any], int] = {}
        self.vectors: list[_Vector] = []
        self.rows: list[tuple[Any, ...]] = []
        self.chunks: list[pa.RecordBatch] = []
        self.limits: list[Any] = [None]
        self.limit_ids: dict[int, int] = {id(None): 0}
        self.limit_keys: dict[Any, int] = {}
        self.roles: list[Any] = [None]
        self.role_ids: dict[Any, int] = {None: 0}
        self.run_configured: dict[str, Any] = {}
        self.run_observed: dict[str, Any] = {}

    def step(self, path: str) -> _Step:
        s = self.steps.get(path)
        if s is None:
            s = self.steps[path] = _Step(len(self.steps))
        return s

    def vector(self, key: tuple[Any, Any]) -> int:
        vi = self.vec_index.get(key)
        if vi is None:
            vi = self.vec_index[key] = len(self.vectors)
            self.vectors.append(_Vector(key[0], key[1], vi))
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
        return li

    def role_index(self, role: Any) -> int:
        ri = self.role_ids[role] = len(self.roles)
        self.roles.append(role)
        return ri

    def seal_chunk(self) -> None:
        """Turn the pending measurement tuples into one Arrow record batch (bounded memory)."""
        import pyarrow as pa

        rows, self.rows = self.rows, []
        if not rows:
            return
        cols = list(zip(*rows))
        arrays = [pa.array(c, type=S.arrow_type(k)) for c, k in zip(cols, _M_TYPES)]
        self.chunks.append(pa.RecordBatch.from_arrays(arrays, names=list(_M_FIELDS)))


class RunMaterializer:
    """Pluggy plugin writing ``<data_dir>/runs/{date}/{timestamp}_{serial}.parquet`` per run.

    ``written`` lists the files written, in order. ``exclude_runs`` names runs to ignore (used by
    ``recover`` for runs that already have a file).
    """

    def __init__(self, data_dir: Path, *, exclude_runs: Collection[str] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.written: list[Path] = []
        self._exclude = frozenset(exclude_runs)
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

    @hookimpl
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        """Dispatch each event by type; writes a file when a ``run.ended`` arrives."""
        get = self._handlers.get
        for e in events:
            h = get(e["event_type"])
            if h is not None:
                h(e)
        if events:
            last = events[-1]
            r = self._runs.get(last.get("run_id"))
            if r is not None:
                r.last_ts = last.get("timestamp")

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
            r = self._runs.pop(run_id)
            out.append(self._write(r))
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
        info = {k: e.get(k) for k in ("role", "driver", "resource", "identity", "calibration", "mocked")}
        role = info["role"]
        self._session(e.get("session_id"))["instruments"][role] = info
        r = self._runs.get(e.get("run_id"))
        if r is not None:
            r.instruments[role] = info

    def _on_discovered(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e.get("run_id"))
        if r is not None:
            r.discovered = list(e.get("items") or ())

    def _on_step_started(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        s = r.step(e["step_path"])
        s.info = e
        s.started_at = e["timestamp"]
        s.ended_at = s.outcome = s.error = None

    def _on_step_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        s = r.step(e["step_path"])
        s.ended_at = e["timestamp"]
        s.outcome = e.get("outcome")
        s.error = e.get("error")

    def _on_vector_started(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        v = r.vectors[r.vector((e["step_path"], e["vector_index"]))]
        if v.started_at is None:
            v.started_at = e["timestamp"]
        v.retry = e.get("retry")
        v.params = e.get("params")
        v.running = True
        v.outcome = v.error = v.ended_at = None

    def _on_vector_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        v = r.vectors[r.vector((e["step_path"], e["vector_index"]))]
        v.ended_at = e["timestamp"]
        v.outcome = e.get("outcome")
        v.error = e.get("error")
        v.retry = e.get("retry")
        v.running = False

    def _on_measurement(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        key = (e["step_path"], e["vector_index"])
        vi = r.vec_index.get(key)
        if vi is None:
            vi = r.vector(key)
        lim = e.get("limit")
        li = r.limit_ids.get(id(lim))
        if li is None:
            li = r.limit_index(lim)
        role = e.get("instrument")
        ri = r.role_ids.get(role)
        if ri is None:
            ri = r.role_index(role)
        rows = r.rows
        rows.append((vi, e.get("retry"), e.get("name"), e.get("timestamp"), e.get("value"), e.get("text"),
                     e.get("units"), e.get("outcome"), e.get("marginal"), li, ri, e.get("channel"),
                     e.get("dut_pin"), e.get("fixture_connection")))
        if len(rows) >= CHUNK_ROWS:
            r.seal_chunk()

    def _kv_target(self, e: dict[str, Any], attr: str) -> dict[str, Any] | None:
        r = self._runs.get(e.get("run_id"))
        if r is None:
            return None
        path, index = e.get("step_path"), e.get("vector_index")
        if path is None:
            return r.run_configured if attr == "configured" else r.run_observed
        holder: Any = r.step(path) if index is None else r.vectors[r.vector((path, index))]
        d = getattr(holder, attr)
        if d is None:
            d = {}
            setattr(holder, attr, d)
        return d  # type: ignore[no-any-return]

    def _on_configured(self, e: dict[str, Any]) -> None:
        d = self._kv_target(e, "configured")
        if d is not None:
            d[e.get("key")] = e.get("value")

    def _on_observed(self, e: dict[str, Any]) -> None:
        d = self._kv_target(e, "observed")
        if d is not None:
            d[e.get("key")] = e.get("value")

    # -- writing ------------------------------------------------------------------------------

    def _write(self, r: _Run) -> Path:
        path = _RunWriter(r, self.data_dir).write()
        self.written.append(path)
        return path


# -- the writer (run end only) --------------------------------------------------------------------


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _iso_name(ts_us: int | None) -> tuple[str, str]:
    dt = datetime.fromtimestamp((ts_us if ts_us is not None else 0) / 1e6, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d"), dt.strftime("%Y%m%dT%H%M%S.%fZ")


def run_file_name(started_at_us: int | None, serial: str | None) -> tuple[str, str]:
    """``(date folder, file stem)`` of a run: ``2026-05-09``, ``20260509T101112.123456Z_SN1``."""
    date, stamp = _iso_name(started_at_us)
    s = _safe(str(serial)) if serial not in (None, "") else ""
    return date, f"{stamp}_{s}" if s else stamp


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


class _RunWriter:
    """Builds and writes one run's file; lives only for the duration of the write."""

    def __init__(self, run: _Run, data_dir: Path) -> None:
        self.r = run
        self.data_dir = data_dir

    # step rows ---------------------------------------------------------------------------------

    def _step_rows(self) -> tuple[list[tuple[str | None, int | None, dict[str, Any], _Step | None, _Vector | None]], list[int]]:
        """Ordered step rows and, for each vector record, the position of its row."""
        r = self.r
        rows: list[tuple[Any, ...]] = []  # (sort key, path, index, identity, step, vector)
        seen: set[tuple[Any, Any]] = set()
        planned_paths: set[str] = set()
        big = 1 << 62
        for order, item in enumerate(r.discovered or ()):
            path = item.get("step_path")
            planned_paths.add(path)
            identity = {
                "step_name": item.get("name"), "step_index": item.get("step_index", order),
                "step_path": path, "parent_path": item.get("parent_path"), "step_node_id": item.get("node_id"),
                "step_file": item.get("file"), "step_line": item.get("line"), "step_kind": item.get("kind"),
                "step_vector_count": item.get("vector_count"),
            }
            count = item.get("vector_count") or 0
            sidx = identity["step_index"] if isinstance(identity["step_index"], int) else big
            for index in (range(count) if count else (None,)):
                seen.add((path, index))
                rows.append(((sidx, order, -1 if index is None else index), path, index, identity))
        # steps and vectors the plan did not announce (or beyond its vector count)
        for path, s in r.steps.items():
            if path in planned_paths:
                continue
            info = s.info or {}
            identity = {
                "step_name": info.get("name"), "step_index": info.get("step_index"), "step_path": path,
                "parent_path": _parent(path), "step_node_id": info.get("node_id"), "step_file": None,
                "step_line": None, "step_kind": info.get("kind"), "step_vector_count": info.get("vector_count"),
            }
            count = info.get("vector_count") or 0
            sidx = info.get("step_index") if isinstance(info.get("step_index"), int) else big
            for index in (range(count) if count else (None,)):
                seen.add((path, index))
                rows.append(((sidx, big, -1 if index is None else index), path, index, identity))
        by_path: dict[Any, dict[str, Any]] = {row[1]: row[3] for row in rows}
        for v in r.vectors:
            key = (v.step_path, v.index)
            if key in seen:
                continue
            seen.add(key)
            identity = by_path.get(v.step_path) or {
                "step_name": None, "step_index": None, "step_path": v.step_path,
                "parent_path": _parent(v.step_path) if isinstance(v.step_path, str) else None,
                "step_node_id": None, "step_file": None, "step_line": None, "step_kind": None,
                "step_vector_count": None,
            }
            si = identity.get("step_index")
            rows.append(((si if isinstance(si, int) else big, big + 1 + v.order,
                          v.index if isinstance(v.index, int) else -1), v.step_path, v.index, identity))
        rows.sort(key=lambda row: row[0])
        out = []
        pos = [0] * len(r.vectors)
        for i, (_, path, index, identity) in enumerate(rows):
            vi = r.vec_index.get((path, index))
            v = r.vectors[vi] if vi is not None else None
            if vi is not None:
                pos[vi] = i
            out.append((path, index, identity, r.steps.get(path), v))
        return out, pos

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
        return vals

    def build(self) -> tuple[pa.Schema, pa.Table, list[int], pa.Table, pa.Table, dict[str, pa.DataType]]:
        import pyarrow as pa

        r = self.r
        step_rows, pos = self._step_rows()
        n = len(step_rows)
        run_vals = self._run_values()
        custom = r.started.get("custom") or {}
        custom_cols = _dyn_names("custom_", custom if isinstance(custom, dict) else {})

        # dynamic in_/out_ values per step row
        ins: list[dict[str, Any]] = []
        outs: list[dict[str, Any]] = []
        in_keys: dict[Any, None] = dict.fromkeys(r.run_configured)
        out_keys: dict[Any, None] = dict.fromkeys(r.run_observed)
        run_in, run_out = r.run_configured, r.run_observed
        for path, index, identity, s, v in step_rows:
            # most rows add nothing to the run-level values: share the run's dicts (no copies)
            i_vals, o_vals = run_in, run_out
            if v is not None and (v.params or v.configured) or s is not None and s.configured:
                i_vals = dict(run_in)
                if v is not None and v.params:
                    i_vals.update(v.params)
                if s is not None and s.configured:
                    i_vals.update(s.configured)
                if v is not None and v.configured:
                    i_vals.update(v.configured)
                in_keys.update(dict.fromkeys(i_vals))
            if s is not None and s.observed or v is not None and v.observed:
                o_vals = dict(run_out)
                if s is not None and s.observed:
                    o_vals.update(s.observed)
                if v is not None and v.observed:
                    o_vals.update(v.observed)
                out_keys.update(dict.fromkeys(o_vals))
            ins.append(i_vals)
            outs.append(o_vals)
        in_cols = _dyn_names("in_", in_keys)
        out_cols = _dyn_names("out_", out_keys)

        dyn_types: dict[str, pa.DataType] = {}
        step_dyn: dict[str, list[Any]] = {}
        run_dyn: dict[str, Any] = {}
        for cols, per_row, run_level in ((in_cols, ins, r.run_configured), (out_cols, outs, r.run_observed)):
            for name, key in cols.items():
                values = [d.get(key) for d in per_row]
                typ, values2 = _infer([*values, run_level.get(key)])
                dyn_types[name] = typ
                step_dyn[name] = values2[:-1]
                run_dyn[name] = values2[-1]
        for name, key in custom_cols.items():
            typ, vals = _infer([custom.get(key)])
            dyn_types[name] = typ
            run_dyn[name] = vals[0]
        dyn_order = sorted(in_cols) + sorted(out_cols) + sorted(custom_cols)

        fields = [pa.field(name, S.arrow_type(kind)) for name, kind in S.COLUMNS]
        fields += [pa.field(name, dyn_types[name]) for name in dyn_order]
        schema = pa.schema(fields, metadata=self._metadata())

        # the run row (one row): run values + run-level dynamic values
        run_arrays = {}
        for f in schema:
            if f.name in run_vals:
                run_arrays[f.name] = pa.array([run_vals[f.name]], type=f.type)
            elif f.name in run_dyn:
                run_arrays[f.name] = pa.array([run_dyn[f.name]], type=f.type)
        run_arrays["record_type"] = pa.array(["run"])
        run_table = _table(schema, 1, run_arrays)

        # step rows: run columns repeated, step/vector columns, dynamic values
        aborted = not r.ended
        # one list comprehension per column (C-speed loops); identities are plain data
        idents = [row[2] for row in step_rows]
        cols: dict[str, list[Any]] = {}
        for k in ("step_name", "step_path", "parent_path", "step_node_id", "step_file", "step_kind"):
            col = [i.get(k) for i in idents]
            if not set(map(type, col)) <= _STR_OR_NONE:
                col = [x if x is None or type(x) is str else str(x) for x in col]
            cols[k] = col
        for k in ("step_index", "step_line", "step_vector_count"):
            col = [i.get(k) for i in idents]
            if not set(map(type, col)) <= _INT_OR_NONE:
                col = [x if type(x) is int else None for x in col]
            cols[k] = col
        cols["vector_index"] = [row[1] if type(row[1]) is int else None for row in step_rows]
        steps_ = [row[3] if row[3] is not None and row[3].started_at is not None else None for row in step_rows]
        vecs = [row[4] if row[4] is not None and row[4].started_at is not None else None for row in step_rows]
        late = ABORTED if aborted else None
        cols["step_started_at"] = [x and x.started_at for x in steps_]
        cols["step_ended_at"] = [x and x.ended_at for x in steps_]
        cols["step_outcome"] = [x and (x.outcome if x.ended_at is not None else late) for x in steps_]
        cols["step_error"] = [x and x.error for x in steps_]
        cols["vector_started_at"] = [x and x.started_at for x in vecs]
        cols["vector_ended_at"] = [x and x.ended_at for x in vecs]
        cols["vector_outcome"] = [x and (x.outcome if not x.running else late) for x in vecs]
        cols["vector_error"] = [x and x.error for x in vecs]
        step_arrays: dict[str, Any] = {}
        zeros = _zeros(n)
        for name in run_vals:
            step_arrays[name] = run_table.column(name).take(zeros)
        for name, values in cols.items():
            step_arrays[name] = pa.array(values, type=schema.field(name).type)
        for name, values in step_dyn.items():
            step_arrays[name] = pa.array(values, type=dyn_types[name])
        for name in custom_cols:
            step_arrays[name] = run_table.column(name).take(zeros)
        step_arrays["record_type"] = pa.array(["step"] * n, pa.string())
        step_table = _table(schema, n, step_arrays)

        limit_table = self._limit_table()
        instr_table = self._instrument_table()
        return schema, pa.concat_tables([run_table, step_table]), pos, limit_table, instr_table, dyn_types

    def _limit_table(self) -> pa.Table:
        import pyarrow as pa

        lims = self.r.limits

        def col(key: str, kind: str) -> pa.Array:
            vals = [lim.get(key) if isinstance(lim, dict) else None for lim in lims]
            if kind == "f":
                vals = [v if v is None or type(v) is float else (float(v) if type(v) is int else None) for v in vals]
                return pa.array(vals, pa.float64())
            if key == "equals":
                return pa.array([_equals_text(v) for v in vals], pa.string())
            return pa.array([_text(v) for v in vals], pa.string())

        spec = {
            "limit_low": ("low", "f"), "limit_high": ("high", "f"), "limit_nominal": ("nominal", "f"),
            "limit_comparator": ("comparator", "s"), "limit_equals": ("equals", "s"),
            "limit_pattern": ("pattern", "s"), "limit_spec_low": ("spec_low", "f"),
            "limit_spec_high": ("spec_high", "f"), "limit_guardband_pct": ("guardband_pct", "f"),
            "limit_source": ("source", "s"), "characteristic_id": ("characteristic_id", "s"),
            "spec_ref": ("spec_ref", "s"), "limit_marginal_low": ("marginal_low", "f"),
            "limit_marginal_high": ("marginal_high", "f"), "_units": ("units", "s"),
        }
        return pa.table({name: col(key, kind) for name, (key, kind) in spec.items()})

    def _instrument_table(self) -> pa.Table:
        import pyarrow as pa

        r = self.r
        data: dict[str, list[Any]] = {k: [] for k in (
            "instrument_name", "instrument_resource", "instrument_manufacturer", "instrument_model",
            "instrument_serial", "instrument_firmware", "instrument_cal_due", "instrument_cal_certificate",
            "instrument_mocked")}
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
            m = info.get("mocked")
            data["instrument_mocked"].append(None if m is None else bool(m))
        return pa.table({k: pa.array(v, pa.bool_() if k == "instrument_mocked" else pa.string())
                         for k, v in data.items()})

    def _measurement_tables(self, schema: pa.Schema, base: pa.Table, pos: list[int], limits: pa.Table,
                            instruments: pa.Table) -> Iterable[pa.Table]:
        """Measurement rows slice by slice: own columns + ``take`` of step, limit, instrument."""
        import pyarrow as pa

        r = self.r
        r.seal_chunk()
        step_only = base.slice(1)  # drop the run row: positions index step rows
        pos_arr = pa.array(pos, pa.int32())
        pool = pa.default_memory_pool()
        while r.chunks:
            whole = r.chunks.pop(0)  # let each chunk go as soon as it is written
            for start in range(0, whole.num_rows, WRITE_ROWS):
                chunk = whole.slice(start, WRITE_ROWS)
                yield self._measurement_table(schema, chunk, step_only, pos_arr, limits, instruments)
                pool.release_unused()  # the allocator would keep every slice's pages otherwise

    def _measurement_table(self, schema: pa.Schema, chunk: pa.RecordBatch, step_only: pa.Table,
                           pos_arr: pa.Array, limits: pa.Table, instruments: pa.Table) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = chunk.num_rows
        rows = pc.take(pos_arr, chunk.column("vec"))
        taken = step_only.take(rows)
        lim = limits.take(chunk.column("limit"))
        ins = instruments.take(chunk.column("role"))
        arrays: dict[str, Any] = {name: taken.column(name) for name in taken.column_names}
        for name in lim.column_names:
            if not name.startswith("_"):
                arrays[name] = lim.column(name)
        for name in ins.column_names:
            arrays[name] = ins.column(name)
        for name, src in _OWN.items():
            arrays[name] = chunk.column(src)
        arrays["measurement_units"] = pc.coalesce(chunk.column("units"), lim.column("_units"))
        arrays["record_type"] = pa.array(["measurement"] * n, pa.string())
        return _table(schema, n, arrays)

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

    def write(self) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        r = self.r
        date, stem = run_file_name(r.started_at, r.started.get("dut_serial"))
        folder = self.data_dir / "runs" / date
        schema, head, pos, limits, instruments, _ = self.build()
        tmp = folder / f".{stem}.{os.getpid()}.parquet.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # zstd: ~2.5x smaller than the default snappy here, and faster to write (bench_stores)
            with pq.ParquetWriter(str(tmp), schema, compression="zstd") as writer:
                tables = iter(self._measurement_tables(schema, head, pos, limits, instruments))
                first = next(tables, None)
                if first is not None and head.num_rows + first.num_rows <= WRITE_ROWS:
                    # a small run is one row group: half the write cost and footer of two
                    writer.write_table(pa.concat_tables([head, first]))
                else:
                    writer.write_table(head)
                    if first is not None:
                        writer.write_table(first)
                for table in tables:
                    writer.write_table(table)
            path = folder / f"{stem}.parquet"
            n = 2
            while path.exists():  # never overwrite a run file
                path = folder / f"{stem}_{n}.parquet"
                n += 1
            os.replace(tmp, path)
        except (OSError, pa.ArrowException) as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{folder}: cannot write the run file of run {r.run_id}: {exc} "
                             "(the events are safe; free space and run 'litmus-seq recover')") from exc
        return path


def _text(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def _zeros(n: int) -> pa.Array:
    import pyarrow as pa

    return pa.nulls(n, pa.int32()).fill_null(0)


def _table(schema: pa.Schema, n: int, arrays: dict[str, Any]) -> pa.Table:
    """A table of ``schema`` from ``arrays``, NULL-filling the columns not given."""
    import pyarrow as pa

    cols = []
    for f in schema:
        a = arrays.get(f.name)
        if a is None:
            a = pa.nulls(n, f.type)
        elif a.type != f.type:
            a = a.cast(f.type)
        cols.append(a)
    return pa.Table.from_arrays(cols, schema=schema)


def materialize_events(events: Iterable[dict[str, Any]], data_dir: Path, *, seal_unfinished: bool = True,
                       exclude_runs: Collection[str] = ()) -> list[Path]:
    """Replay ``events`` through a :class:`RunMaterializer`; returns the files written.

    Runs still open when the events end are sealed as ``aborted`` (``seal_unfinished``), which
    is only right when the process that ran them is gone (``recover`` checks that).
    """
    m = RunMaterializer(Path(data_dir), exclude_runs=exclude_runs)
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
