"""The event store: every event of a session in one Arrow IPC *stream* file.

Layout: ``<data_dir>/events/{YYYY-MM-DD}/{session_id}.arrow`` (UTC date of the session's first
event). Events are the single source of truth (DESIGN §1): the run materializer can rebuild every
parquet file from here (``litmus-seq recover``), so this store favours *durability per cost*.

Why a buffer and a timer: writing an Arrow record batch has a fixed cost whatever its size,
about a whole step's budget of the engine. So the hook only appends to a list and a record batch
is written when

* ``batch_size`` events are pending,
* a ``run.ended`` or ``session.ended`` event arrives; a batch ending in ``run.ended`` is also
  ``fsync``-ed, so the outcome the operator was shown survives a power cut,
* :meth:`EventStore.close` is called,
* a daemon timer thread finds events pending for more than ``flush_interval_s``.

**Guarantee: a killed process loses at most the step in flight and the last
``flush_interval_s`` of events** (batches reach the OS with a ``write`` each; a kill -9 of the
process does not lose them, only a power cut before the OS writes back could).
:func:`read_events` tolerates the truncated last batch such a kill leaves behind.

Order: the hook is ``tryfirst``, so the event store has every batch before any other subscriber,
whatever the registration order; in particular ``run.ended`` is durable before the run
materializer (``trylast``) starts the parquet seal. A kill -9 during the seal leaves the real
outcome in the events, and ``recover`` seals the run with it (never ``aborted``).

Failure (disk full, a folder that cannot be written): the first write that fails raises one
:class:`~litmus_seq.errors.StoreError` naming the file and the session, and the store is then
*failed*: later events are dropped instead of raising again, so the other subscribers (the
materializer can still seal the run ``errored``) keep receiving them. What is on disk stays a
readable stream up to its last complete batch.

Typed columns: the common fields, and the hot ``test.measurement`` fields including the flattened
``limit`` dict (``limit_*``), so that the file is queryable as is (DuckDB reads Arrow IPC through
pyarrow) and a million measurements do not become a million JSON documents; the step and vector
events' fields; and ``plan``, ``run.started``'s resolved plan as it is (already JSON text; files
written before that column have it in ``data``). Everything else goes into ``data`` as JSON. The
round trip is lossless for JSON-able values: :func:`read_events` rebuilds dicts equal to the ones
emitted.

While a session is writing, its file holds an advisory ``flock`` (released by the OS when the
process dies, even by kill -9): :func:`session_in_progress` tells ``recover`` not to seal a run
that is still running.
"""

from __future__ import annotations

import json
import operator
import os
import queue
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq import events as ev
from litmus_seq.errors import StoreError
from litmus_seq.hookspecs import hookimpl
from litmus_seq.stores.paths import os_reason, safe_name
from litmus_seq.stores.schema import LIMIT_KEYS

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

try:  # POSIX only; elsewhere "in progress" cannot be detected and recover trusts the caller.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["EventStore", "read_events", "started_runs", "iter_event_files", "session_in_progress",
           "event_schema"]

_SEAL_TYPES = frozenset((ev.RUN_ENDED, ev.SESSION_ENDED))
_MEASUREMENT = ev.MEASUREMENT

# Column kinds: "s" string, "f" float64, "i" int64, "b" bool.
_COMMON: tuple[tuple[str, str], ...] = (
    ("session_id", "s"), ("run_id", "s"),
)
# Optional typed fields shared by many event types (step-scoped events).
_SCOPED: tuple[tuple[str, str], ...] = (
    ("step_path", "s"), ("vector_index", "i"), ("retry", "i"),
)
# test.measurement fields with their own column (besides step_path/vector_index/retry).
_HOT: tuple[tuple[str, str], ...] = (
    ("name", "s"), ("value", "f"), ("text", "s"), ("units", "s"), ("outcome", "s"),
    ("marginal", "b"), ("instrument", "s"), ("channel", "s"), ("dut_pin", "s"),
    ("fixture_connection", "s"),
)
_LIMIT_KINDS: dict[str, str] = {
    "comparator": "s", "low": "f", "high": "f", "nominal": "f", "equals": "j", "pattern": "s",
    "units": "s", "marginal_low": "f", "marginal_high": "f", "spec_low": "f", "spec_high": "f",
    "guardband_pct": "f", "source": "s", "characteristic_id": "s", "spec_ref": "s",
}
assert set(_LIMIT_KINDS) == set(LIMIT_KEYS)
_LIMIT: tuple[tuple[str, str], ...] = tuple((k, _LIMIT_KINDS[k]) for k in LIMIT_KEYS)
_LIMIT_KEYSET = frozenset(LIMIT_KEYS)

# Keys a measurement event always gets back from the reader (absent ones are listed in data).
_MEAS_KEYS = ("event_type", "seq", "timestamp", "session_id", "run_id", "step_path", "vector_index",
              "retry", *(k for k, _ in _HOT), "limit")
_MEAS_KEYSET = frozenset(_MEAS_KEYS)
_BASE_KEYS = ("event_type", "seq", "timestamp", "session_id", "run_id")
_BASE_KEYSET = frozenset(_BASE_KEYS)
_ABSENT = "~absent"  # data key listing always-rebuilt keys that the emitted event did not have

# Typed columns for the step and vector events the engine emits around every step: without them
# four of a step's five events would each cost a JSON document in the flush. ``plan`` holds
# run.started's resolved plan (already JSON text) as it is: escaped into ``data`` it would be
# copied several times on the way, and a large sweep's plan is megabytes.
_STEPCOLS: tuple[tuple[str, str], ...] = (
    ("step_index", "i"), ("node_id", "s"), ("kind", "s"), ("vector_count", "i"), ("error", "s"),
    ("params", "j"), ("plan", "s"),
)
_NO_STEPCOLS = (None,) * len(_STEPCOLS)

_COLUMN_NAMES: tuple[str, ...] = (
    "seq", "timestamp", "event_type", "session_id", "run_id", "step_path", "vector_index", "retry",
    *(k for k, _ in _HOT), "limit_set", *(f"limit_{k}" for k, _ in _LIMIT), "data",
    *(k for k, _ in _STEPCOLS),
)


def _fits(kind: str, v: Any) -> bool:
    """Whether ``v`` survives its typed column unchanged (else it goes to ``data`` as JSON)."""
    if v is None:
        return True
    t = type(v)
    if kind == "s":
        return t is str
    if kind == "f":
        return t is float or (t is int and -(2**53) <= v <= 2**53)
    if kind == "i":
        return t is int and -(2**63) <= v < 2**63
    if kind == "b":
        return t is bool
    return True  # "j": JSON text


def event_schema() -> pa.Schema:
    """The Arrow schema of an event file (fixed: new event fields go to ``data``)."""
    import pyarrow as pa

    types = {"s": pa.string(), "f": pa.float64(), "i": pa.int64(), "b": pa.bool_(), "j": pa.string()}
    fields = [
        pa.field("seq", pa.int64()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("event_type", pa.string()),
        *(pa.field(k, types[t]) for k, t in _COMMON + _SCOPED + _HOT),
        pa.field("limit_set", pa.bool_()),
        *(pa.field(f"limit_{k}", types[t]) for k, t in _LIMIT),
        pa.field("data", pa.string()),
        *(pa.field(k, types[t]) for k, t in _STEPCOLS),
    ]
    return pa.schema(fields, metadata={b"litmus_seq.event_store": b"1"})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


# Values a station sends again with every run: the plan's ``test.steps_discovered`` items (one
# list per plan, read-only by contract). Encoding them costs per step of the plan; each object
# is encoded once (keyed by identity, and kept alive so that its id cannot be reused). The plan
# itself has its own column.
_MEMO_KEYS = frozenset(((ev.STEPS_DISCOVERED, "items"),))
_MEMO_MIN = 64  # smaller values are cheaper to encode than to look up
_MEMO_SIZE = 8
_memo: dict[int, tuple[Any, str]] = {}


def _dumps_data(event_type: Any, data: dict[str, Any]) -> str:
    """``_dumps(data)``, with the big per-plan values encoded once per object."""
    big = [k for k, v in data.items() if (event_type, k) in _MEMO_KEYS and type(v) in (str, list)
           and len(v) >= _MEMO_MIN]
    if not big:
        return _dumps(data)
    pieces = []
    for k in big:
        v = data[k]
        hit = _memo.get(id(v))
        if hit is None or hit[0] is not v:
            if len(_memo) >= _MEMO_SIZE:
                del _memo[next(iter(_memo))]
            hit = _memo[id(v)] = (v, _dumps(v))
        pieces.append(f"{_dumps(k)}:{hit[1]}")
    rest = _dumps({k: v for k, v in data.items() if k not in big})
    return ("{" if rest == "{}" else rest[:-1] + ",") + ",".join(pieces) + "}"


_NONE = type(None)
_OK: dict[str, frozenset[type]] = {
    "s": frozenset((str, _NONE)), "f": frozenset((float, _NONE)), "i": frozenset((int, _NONE)),
    "b": frozenset((bool, _NONE)), "j": frozenset(),
}
# The leading values of every row, in column order (a measurement fills them all).
_MEAS_ROW_KEYS = ("seq", "timestamp", "event_type", *(k for k, _ in _COMMON + _SCOPED + _HOT))
_MEAS_ROW_KIND = ("i", "i", "s", *(kind for _, kind in _COMMON + _SCOPED + _HOT))
_MEAS_GETTER = operator.itemgetter(*_MEAS_ROW_KEYS, "limit")
_NO_HOT = (None,) * len(_HOT)
# Columns pyarrow would fill lossily instead of refusing (1.5 -> int64 1, True -> float64 1.0).
_CHECKED: dict[str, frozenset[type]] = {
    "seq": _OK["i"], "timestamp": _OK["i"], "vector_index": _OK["i"], "retry": _OK["i"],
    "value": frozenset((float, int, _NONE)),
    "step_index": _OK["i"], "vector_count": _OK["i"],
}


class _Limits:
    """The distinct limit dicts of one flush: rows reference them by index.

    The engine shares one limit dict among all measurements of a spec, so flattening it per
    event would dominate the flush; here each distinct dict is flattened once and the
    ``limit_*`` columns are built with ``take`` (C speed).
    """

    __slots__ = ("rows", "by_id")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.by_id: dict[int, int | None] = {}

    def index(self, lim: Any) -> int | None:
        """Row index of ``lim``; None when it does not fit the columns (it goes to ``data``)."""
        key = id(lim)  # safe: the events (and their limits) outlive the flush
        if key in self.by_id:
            return self.by_id[key]
        row = _limit_row(lim)
        i = None
        if row is not None:
            i = len(self.rows)
            self.rows.append(row)
        self.by_id[key] = i
        return i


def _limit_row(lim: Any) -> tuple[Any, ...] | None:
    """The ``limit_*`` values of a limit dict that fits its columns, else None."""
    if type(lim) is not dict or lim.keys() != _LIMIT_KEYSET:
        return None
    out: list[Any] = []
    for k, kind in _LIMIT:
        v = lim[k]
        if kind == "j":
            out.append(None if v is None else _dumps(v))
        elif _fits(kind, v):
            out.append(v)
        else:
            return None
    return tuple(out)


def _to_rows(events: list[dict[str, Any]], limits: _Limits, fast: bool = True) -> list[tuple[Any, ...]]:
    """One tuple per event: the leading typed values, ``limit_set``, limit index, ``data``.

    Measurement events as the engine emits them (exactly the documented keys) take a fast path:
    one ``itemgetter`` call. Their value types are not checked here but per column by
    :func:`_to_batch` (C speed), which redoes the batch with ``fast=False`` (every value checked)
    when a column does not fit.
    """
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    getter, meas_len, limit_index = _MEAS_GETTER, len(_MEAS_KEYS), limits.index
    no_limit = (False, None, None, *_NO_STEPCOLS)
    fast_keys = _FAST_KEYS
    for e in events:
        et = e.get("event_type")
        if et != _MEASUREMENT:
            if fast:
                keys = fast_keys.get(et)
                if keys is not None and e.keys() == keys:
                    append(_FAST_ROWS[et](e))
                    continue
            append(_other_row(e))
            continue
        if fast and len(e) == meas_len:
            try:
                vals = getter(e)
            except KeyError:
                append(_measurement_row(e, limits))
                continue
            lim = vals[-1]
            if lim is None:
                append(vals[:-1] + no_limit)
                continue
            li = limit_index(lim)
            if li is not None:
                append(vals[:-1] + (True, li, None, *_NO_STEPCOLS))
                continue
        append(_measurement_row(e, limits))
    return rows


def _measurement_row(e: dict[str, Any], limits: _Limits) -> tuple[Any, ...]:
    """The general path for a measurement event: misfit values, extra or missing keys."""
    data: dict[str, Any] = {}
    vals: list[Any] = []
    for k, kind in zip(_MEAS_ROW_KEYS, _MEAS_ROW_KIND):
        v = e.get(k)
        if k == "event_type":
            vals.append(_MEASUREMENT)
        elif _fits(kind, v):
            vals.append(v)
        else:
            vals.append(None)
            data[k] = v
    lim = e.get("limit")
    lset: bool | None = False
    li = None
    if lim is not None:
        li = limits.index(lim)
        if li is None:
            data["limit"] = lim
            lset = None
        else:
            lset = True
    keys = e.keys()
    for k in keys - _MEAS_KEYSET:
        data[k] = e[k]
    missing = _MEAS_KEYSET - keys
    if missing:
        data[_ABSENT] = sorted(missing)
    return (*vals, lset, li, _dumps(data) if data else None, *_NO_STEPCOLS)


def _other_row(e: dict[str, Any]) -> tuple[Any, ...]:
    """A non-measurement event: common and step-scoped fields typed, the rest JSON."""
    data: dict[str, Any] = {}
    head: list[Any] = []
    for k, kind in (("seq", "i"), ("timestamp", "i"), ("event_type", "s"), *_COMMON):
        v = e.get(k)
        if _fits(kind, v):
            head.append(v)
        else:
            head.append(None)
            data[k] = v
    for k, kind in _SCOPED:
        v = e.get(k)
        if v is not None and _fits(kind, v):
            head.append(v)
        else:
            head.append(None)
            if k in e:
                data[k] = v
    plan = None
    for k in e.keys() - _BASE_KEYSET:
        if k not in _SCOPED_KEYS:
            data[k] = e[k]
    if type(data.get("plan")) is str and e.get("event_type") == ev.RUN_STARTED:
        plan = data.pop("plan")
    missing = _BASE_KEYSET - e.keys()
    if missing:
        data[_ABSENT] = sorted(missing)
    if not data and e.get("event_type") in _FAST_KEYS:
        data_text: str | None = "{}"  # marks "not the fast layout" for the reader
    else:
        data_text = _dumps_data(e.get("event_type"), data) if data else None
    return (*head, *_NO_HOT, None, None, data_text, *_NO_STEPCOLS[:-1], plan)


_SCOPED_KEYS = frozenset(k for k, _ in _SCOPED)


_BASE = ("event_type", "seq", "timestamp", "session_id", "run_id")
_FAST_KEYS: dict[str, frozenset[str]] = {
    ev.STEP_STARTED: frozenset((*_BASE, "step_path", "step_index", "node_id", "name", "kind", "vector_count")),
    ev.STEP_ENDED: frozenset((*_BASE, "step_path", "outcome", "error")),
    ev.VECTOR_STARTED: frozenset((*_BASE, "step_path", "vector_index", "retry", "params")),
    ev.VECTOR_ENDED: frozenset((*_BASE, "step_path", "vector_index", "retry", "outcome", "error")),
}
_N_HOT_AFTER_NAME = len(_HOT) - 1


def _s(v: Any) -> Any:
    return v if v is None or type(v) is str else _Misfit  # misfit -> TypeError -> slow pass


class _Misfit:  # a value that makes pa.array refuse a string column (forces the checked path)
    pass


def _fast_step_started(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["seq"], e["timestamp"], e["event_type"], e["session_id"], e["run_id"], _s(e["step_path"]),
            None, None, _s(e["name"]), *(None,) * _N_HOT_AFTER_NAME, None, None,
            None,
            e["step_index"], _s(e["node_id"]), _s(e["kind"]), e["vector_count"], None, None, None)


def _fast_step_ended(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["seq"], e["timestamp"], e["event_type"], e["session_id"], e["run_id"], _s(e["step_path"]),
            None, None, None, None, None, None, _s(e["outcome"]), *(None,) * (len(_HOT) - 5), None, None,
            None,
            None, None, None, None, _s(e["error"]), None, None)


def _fast_vector_started(e: dict[str, Any]) -> tuple[Any, ...]:
    params = e["params"]
    return (e["seq"], e["timestamp"], e["event_type"], e["session_id"], e["run_id"], _s(e["step_path"]),
            e["vector_index"], e["retry"], *_NO_HOT, None, None, None,
            None, None, None, None, None, "{}" if params == {} else _dumps(params), None)


def _fast_vector_ended(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["seq"], e["timestamp"], e["event_type"], e["session_id"], e["run_id"], _s(e["step_path"]),
            e["vector_index"], e["retry"], None, None, None, None, _s(e["outcome"]), *(None,) * (len(_HOT) - 5),
            None, None, None,
            None, None, None, None, _s(e["error"]), None, None)


_FAST_ROWS = {
    ev.STEP_STARTED: _fast_step_started,
    ev.STEP_ENDED: _fast_step_ended,
    ev.VECTOR_STARTED: _fast_vector_started,
    ev.VECTOR_ENDED: _fast_vector_ended,
}


def _rows_to_batch(events: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Events -> one record batch of :func:`event_schema`, row by row (any event, any value)."""
    import pyarrow as pa

    n_lead = len(_MEAS_ROW_KEYS)
    n_limit = len(_LIMIT)
    fields = list(schema)
    lead_fields = fields[:n_lead]
    lset_field = fields[n_lead]
    limit_fields = fields[n_lead + 1:n_lead + 1 + n_limit]
    data_at = n_lead + 2  # in a row: lead..., limit_set, limit index, data, step columns...
    step_fields = fields[n_lead + 1 + n_limit + 1:]
    for fast in (True, False):
        limits = _Limits()
        cols = list(zip(*_to_rows(events, limits, fast)))
        try:
            arrays = []
            for col, f in zip(cols, lead_fields):
                allowed = _CHECKED.get(f.name)
                if allowed is not None and not set(map(type, col)) <= allowed:
                    raise TypeError(f.name)
                arrays.append(pa.array(col, type=f.type))
            arrays.append(pa.array(cols[n_lead], type=lset_field.type))
            index = pa.array(cols[n_lead + 1], type=pa.int32())
            by_column = list(zip(*limits.rows)) if limits.rows else [()] * len(limit_fields)
            for values, f in zip(by_column, limit_fields):
                arrays.append(pa.array(values, type=f.type).take(index))
            arrays.append(pa.array(cols[data_at], type=pa.string()))
            for col, f in zip(cols[data_at + 1:], step_fields):
                allowed = _CHECKED.get(f.name)
                if allowed is not None and not set(map(type, col)) <= allowed:
                    raise TypeError(f.name)
                arrays.append(_encoded(col) if f.name == "plan" else pa.array(col, type=f.type))
        except (TypeError, ValueError, OverflowError, pa.ArrowException):
            if not fast:
                raise
            continue
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    raise AssertionError("unreachable")  # pragma: no cover


def _encoded(col: list[str | None]) -> pa.Array:
    """A string column of long texts: ``str.encode`` and a binary array viewed as string is much
    faster than ``pa.array`` on the str (which validates UTF-8 a character at a time), and
    ``encode`` cannot produce invalid UTF-8 (it raises instead)."""
    import pyarrow as pa

    return pa.array([None if v is None else v.encode() for v in col], pa.binary()).view(pa.string())


# Columnar fast path: the engine's own events (exactly the documented keys) grouped by type, one
# list comprehension per *relevant* column and all-null arrays for the rest. About a microsecond
# an event, against ~5 for the row path; the row path stays for everything else (user events,
# misfit values), and the groups are merged back into ``seq`` order.
_COLUMNAR: dict[str, tuple[str, ...]] = {
    # event type -> keys stored in same-named typed columns (besides the common five)
    ev.STEP_STARTED: ("step_path", "step_index", "node_id", "name", "kind", "vector_count"),
    ev.STEP_ENDED: ("step_path", "outcome", "error"),
    ev.VECTOR_STARTED: ("step_path", "vector_index", "retry"),  # + params as JSON text
    ev.VECTOR_ENDED: ("step_path", "vector_index", "retry", "outcome", "error"),
    _MEASUREMENT: ("step_path", "vector_index", "retry", *(k for k, _ in _HOT)),  # + limit
}
_COLUMNAR_KEYS: dict[str, frozenset[str]] = {
    **_FAST_KEYS, _MEASUREMENT: _MEAS_KEYSET,
}
_COLUMNAR_SIZES: dict[str, int] = {et: len(keys) for et, keys in _COLUMNAR_KEYS.items()}


def _column(col: list[Any], typ: pa.DataType, kind: str) -> pa.Array:
    """``pa.array(col, typ)``, with the common constant columns (a session's id, a run's id,
    the many ``None`` of optional fields) made without converting every value.

    ``list.count`` compares in C (identity first); only ``None`` and ``str`` constants take the
    shortcut, where equality cannot hide a different type. Ints are converted by inference,
    which refuses nothing but reports a float as ``double`` (pyarrow would truncate 1.5 to 1 in
    an int64 column): a misfit raises ``TypeError`` so that the caller takes the row path.
    """
    import pyarrow as pa

    global _INT64
    if _INT64 is None:
        _INT64 = pa.int64()
    n = len(col)
    first = col[0] if n else None
    if kind == "s" or first is None:
        if (first is None or type(first) is str) and col.count(first) == n:
            return pa.nulls(n, typ) if first is None else pa.repeat(pa.scalar(first, typ), n)
    if kind == "i":
        arr = pa.array(col)
        if arr.type == _INT64:
            return arr if typ == _INT64 else arr.cast(typ)  # int64 -> timestamp[us]: same buffers
        if arr.type == pa.null():
            return pa.nulls(n, typ)
        raise TypeError("not an int64 column")
    return pa.array(col, type=typ)


_INT64: Any = None  # pa.int64(), set on first use (pyarrow is imported lazily)
_KINDS: dict[str, str] = {k: kind for k, kind in (*_COMMON, *_SCOPED, *_HOT, *_STEPCOLS)}
_KINDS.update(seq="i", timestamp="i")
_FLOAT_OK = frozenset((float, int, type(None)))


def _columnar_batch(et: str, group: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch | None:
    """One event type's group as a record batch; ``None`` if a value does not fit its column."""
    import pyarrow as pa

    n = len(group)
    cols: dict[str, Any] = {}
    kinds = _KINDS
    try:
        for k in ("seq", "timestamp", "session_id", "run_id", *_COLUMNAR[et]):
            col = [e[k] for e in group]
            kind = kinds[k]
            if k == "value" and not set(map(type, col)) <= _FLOAT_OK:  # True would become 1.0
                return None
            cols[k] = _column(col, schema.field(k).type, kind)
        cols["event_type"] = pa.repeat(pa.scalar(et, pa.string()), n)
        if et == ev.VECTOR_STARTED:
            cols["params"] = pa.array(["{}" if e["params"] == {} else _dumps(e["params"]) for e in group],
                                      type=pa.string())
        elif et == _MEASUREMENT:
            limits = _Limits()
            lims = [e["limit"] for e in group]
            idx = [None if lim is None else limits.index(lim) for lim in lims]
            if None in idx and any(i is None and lim is not None for i, lim in zip(idx, lims)):
                return None  # a limit that does not fit the columns: row path (JSON)
            index = pa.array(idx, type=pa.int32())
            cols["limit_set"] = index.is_valid()
            by_column = list(zip(*limits.rows)) if limits.rows else [()] * len(_LIMIT)
            for values, (k, _) in zip(by_column, _LIMIT):
                f = schema.field(f"limit_{k}")
                if values.count(None) == len(values):
                    cols[f.name] = pa.nulls(n, f.type)
                else:
                    cols[f.name] = pa.array(values, type=f.type).take(index)
    except (TypeError, ValueError, OverflowError, KeyError, pa.ArrowException):
        return None
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _to_batch(events: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Events -> one record batch of :func:`event_schema`, in the order given."""
    import pyarrow as pa

    groups: dict[str, list[dict[str, Any]]] = {}
    rest: list[dict[str, Any]] = []
    sizes = _COLUMNAR_SIZES
    for e in events:
        et = e.get("event_type")
        # same size and (checked by KeyError in _columnar_batch) every key present = same keys
        if sizes.get(et) == len(e):  # type: ignore[arg-type]
            g = groups.get(et)  # type: ignore[arg-type]
            if g is None:
                groups[et] = g = []  # type: ignore[index]
            g.append(e)
        else:
            rest.append(e)
    batches = []
    for et, group in groups.items():
        b = _columnar_batch(et, group, schema)
        if b is None:
            rest.extend(group)
        else:
            batches.append(b)
    if rest:
        rest.sort(key=_seq_key)
        batches.append(_rows_to_batch(rest, schema))
    if len(batches) == 1 and not rest or len(batches) == 1 and len(rest) == len(events):
        return batches[0]
    table = pa.Table.from_batches(batches, schema=schema)
    seqs = table.column("seq")
    if seqs.null_count:  # an event without a usable seq: keep the order it arrived in
        return _rows_to_batch(events, schema)
    return table.sort_by("seq").combine_chunks().to_batches()[0]


def _seq_key(e: dict[str, Any]) -> Any:
    v = e.get("seq")
    return v if type(v) is int else -1


def _from_batch(batch: pa.RecordBatch) -> Iterator[dict[str, Any]]:
    """Rebuild event dicts from one record batch (the inverse of :func:`_to_columns`)."""
    import pyarrow as pa

    ts_index = batch.schema.get_field_index("timestamp")
    batch = batch.set_column(ts_index, "timestamp", batch.column(ts_index).cast(pa.int64()))
    cols = batch.to_pydict()
    n = batch.num_rows
    types, seqs, stamps, datas = cols["event_type"], cols["seq"], cols["timestamp"], cols["data"]
    base = [(k, cols[k]) for k, _ in _COMMON]
    scoped = [(k, cols[k]) for k, _ in _SCOPED]
    hot = [(k, cols[k]) for k, _ in _HOT]
    lset = cols["limit_set"]
    fast_cols = {k: cols[k] for k in ("step_path", "vector_index", "retry", "name", "outcome",
                                      *(k for k, _ in _STEPCOLS)) if k in cols}
    limits = [(k, kind, cols[f"limit_{k}"]) for k, kind in _LIMIT]
    plans = cols.get("plan") or [None] * n  # (files written before the column: in data)
    for i in range(n):
        et = types[i]
        e: dict[str, Any] = {"event_type": et, "seq": seqs[i], "timestamp": stamps[i]}
        for k, col in base:
            e[k] = col[i]
        raw = datas[i]
        data: dict[str, Any] = json.loads(raw) if raw is not None else {}
        if et == _MEASUREMENT:
            for k, col in scoped:
                e[k] = col[i]
            for k, col in hot:
                e[k] = col[i]
            if lset[i]:
                lim: dict[str, Any] = {}
                for k, kind, col in limits:
                    v = col[i]
                    lim[k] = json.loads(v) if kind == "j" and v is not None else v
                e["limit"] = lim
            else:
                e["limit"] = None
        elif raw is None and et in _FAST_KEYS:
            # written by a _fast_* builder: exactly the engine's keys, restored from the columns
            for k in _FAST_KEYS[et]:
                if k not in e:
                    if k == "params":
                        v = fast_cols["params"][i]
                        e[k] = json.loads(v) if v is not None else None
                    else:
                        e[k] = fast_cols[k][i]
        else:
            for k, col in scoped:
                v = col[i]
                if v is not None:
                    e[k] = v
        absent = data.pop(_ABSENT, None)
        if data:
            e.update(data)
        if plans[i] is not None:
            e["plan"] = plans[i]
        if absent:
            for k in absent:
                e.pop(k, None)
        yield e


def _date_of(ts_us: Any) -> str:
    if type(ts_us) is not int:
        ts_us = time.time_ns() // 1000
    return datetime.fromtimestamp(ts_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%d")


class _SessionFile:
    """One open stream file: the sink, the IPC writer and the advisory lock that marks it live."""

    __slots__ = ("path", "sink", "writer", "lock_fd")

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        import pyarrow as pa

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # OSFile writes straight to the file descriptor: a written batch is in the OS, so a
        # killed process keeps it (no user-space buffer to lose).
        self.sink = pa.OSFile(str(path), "wb")
        self.lock_fd: int | None = None
        if fcntl is not None:
            fd = os.open(str(path), os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # pragma: no cover - a unique session id makes this impossible
                os.close(fd)
            else:
                self.lock_fd = fd
        # zstd: the smallest files and the cheapest write of the codecs every pyarrow build reads
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        self.writer = pa.ipc.new_stream(self.sink, schema, options=options)

    def close(self) -> None:
        try:
            try:
                self.writer.close()  # end-of-stream marker
            finally:
                self.sink.close()
        finally:
            if self.lock_fd is not None:
                os.close(self.lock_fd)  # releases the flock
                self.lock_fd = None


class EventStore:
    """Pluggy plugin writing every event to ``<data_dir>/events/{date}/{session_id}.arrow``.

    The engine registers it (``pm.register(EventStore(data_dir), name="litmus_seq.event_store")``)
    and calls :meth:`close` in a ``finally``. See the module docstring for the durability
    guarantee; ``flush_interval_s`` and ``batch_size`` trade durability for speed.

    Two threads of its own: a timer that converts what is pending every ``flush_interval_s``, and
    a writer that compresses and writes converted record batches. Converting holds the GIL, so it
    is done where it is due (the engine's thread for a full batch: memory stays bounded by one
    batch of event dicts); compressing and writing release the GIL and run on another core
    beside the engine. A run or session end waits until everything is written.
    """

    def __init__(self, data_dir: Path, *, flush_interval_s: float = 0.05, batch_size: int = 4096) -> None:
        self.data_dir = Path(data_dir)
        self.flush_interval_s = float(flush_interval_s)
        self.batch_size = int(batch_size)
        self._pending: list[dict[str, Any]] = []
        self._since = 0.0  # monotonic time the oldest pending event arrived
        self._lock = threading.Lock()  # guards _pending/_since (hook thread vs timer thread)
        self._write_lock = threading.Lock()  # one converter at a time: batches in arrival order
        self._files: dict[Any, _SessionFile] = {}
        self._schema: pa.Schema | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # converted batches on their way to disk (bounded: a slow disk slows the engine down
        # instead of filling memory)
        self._queue: queue.Queue[tuple[_SessionFile, Any] | None] = queue.Queue(maxsize=8)
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None  # a background failure not reported yet
        self._failed = False  # a failure was reported: drop events from now on
        self._closed = False

    @property
    def paths(self) -> list[Path]:
        """The event files this store has opened (one per session)."""
        return [f.path for f in self._files.values()]

    # -- the hook: the engine's hot path -----------------------------------------------------

    @hookimpl(tryfirst=True)
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        """Queue ``events``; convert a full batch now, and write everything at a run/session end
        (``fsync`` too at a run end: see the module docstring)."""
        if self._failed:
            return
        if self._error is not None:
            self._raise_error()
        if self._closed:
            raise StoreError("event store is closed: events arrived after close()")
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            self._pending.extend(events)
            n = len(self._pending)
        if self._thread is None:
            self._start_threads()
        # the engine delivers right after run.ended / session.ended: they end their batch
        last = events[-1].get("event_type") if events else None
        if last in _SEAL_TYPES:
            self.flush(durable=last == ev.RUN_ENDED)
        elif n >= self.batch_size:
            self.flush(wait=False)

    @hookimpl
    def litmus_seq_run_ending(self, run_id: str) -> None:
        """Before a run is sealed: everything so far is written, or the error is raised (the
        recorder then seals the run ``errored``)."""
        if self._error is not None:
            self._raise_error()
        self.flush()

    # -- writing ------------------------------------------------------------------------------

    def flush(self, wait: bool = True, *, durable: bool = False) -> None:
        """Convert every pending event to record batches (one per session file) and write them;
        with ``wait`` (the default) return only once they are in the OS, ``durable`` only once
        they are on the disk (``fsync``)."""
        if self._failed:
            return
        self._convert()
        if self._error is not None:
            self._raise_error()
        if wait or durable:
            self._queue.join()
            if self._error is not None:
                self._raise_error()
        if durable:
            for f in self._files.values():
                try:
                    os.fsync(f.sink.fileno())
                except OSError as exc:
                    self._error = self._write_error(exc, f)
                    self._raise_error()

    def _convert(self) -> None:
        """Turn what is pending into record batches for the writer; a failure is kept in
        ``_error`` (reported by the caller: the hook's thread or the next hook call)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch or self._error is not None:
                return
            try:
                self._write(batch)
            except OSError as exc:
                self._error = self._write_error(exc, None)
            except StoreError as exc:
                self._error = exc
            except Exception as exc:  # a value no column or JSON can hold
                self._error = StoreError(f"{self.data_dir}: cannot record {len(batch)} events: "
                                         f"{type(exc).__name__}: {exc}")

    def _write_error(self, exc: OSError, f: _SessionFile | None) -> StoreError:
        """The one line a failed write becomes: the file, what was being written, the fix."""
        where = exc.filename or (f.path if f is not None else self.data_dir / "events")
        return StoreError(f"{where}: cannot write the event store (the events of this session): "
                          f"{os_reason(exc)}; free disk space or make the data folder writable")

    def _write(self, events: list[dict[str, Any]]) -> None:
        if self._schema is None:
            self._schema = event_schema()
        # Nearly always one session; keep order within each session.
        groups: dict[Any, list[dict[str, Any]]] = {}
        for e in events:
            sid = e.get("session_id")
            g = groups.get(sid)
            if g is None:
                groups[sid] = g = []
            g.append(e)
        for sid, group in groups.items():
            f = self._files.get(sid)
            if f is None:
                f = self._files[sid] = self._open(sid, group[0].get("timestamp"))
            record_batch = _to_batch(group, self._schema)
            if self._writer is None:  # no writer thread (closed, or never started): write here
                f.writer.write_batch(record_batch)
            else:
                self._queue.put((f, record_batch))

    def _open(self, session_id: Any, ts_us: Any) -> _SessionFile:
        folder = self.data_dir / "events" / _date_of(ts_us)
        stem = safe_name(str(session_id))
        path = folder / f"{stem}.arrow"
        n = 2
        while path.exists():  # a stream cannot be appended to after its end marker
            path = folder / f"{stem}_{n}.arrow"
            n += 1
        assert self._schema is not None
        return _SessionFile(path, self._schema)

    # -- the threads --------------------------------------------------------------------------

    def _start_threads(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._writer = threading.Thread(target=self._write_loop, name="litmus-seq-event-store-writer",
                                            daemon=True)
            t = threading.Thread(target=self._timer, name="litmus-seq-event-store-flush", daemon=True)
            self._thread = t
        self._writer.start()
        t.start()

    def _write_loop(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                if self._error is None and not self._failed:  # after a failure, drop: reported once
                    f, record_batch = item
                    try:
                        f.writer.write_batch(record_batch)  # compresses and writes without the GIL
                    except OSError as exc:
                        self._error = self._write_error(exc, f)
                    except BaseException as exc:  # reported on the next hook call, flush or close()
                        self._error = exc
            finally:
                q.task_done()

    def _timer(self) -> None:
        interval = self.flush_interval_s
        timeout = interval
        while not self._stop.wait(timeout):
            with self._lock:
                since = self._since if self._pending else None
            if since is None:
                timeout = interval
                continue
            age = time.monotonic() - since
            if age < interval:
                timeout = interval - age
                continue
            self._convert()  # a failure is reported on the next hook call or close()
            if self._error is not None:
                return
            timeout = interval

    def _raise_error(self) -> None:
        """Report the failure once; the store is failed from then on (see the module docstring)."""
        err, self._error = self._error, None
        self._failed = True
        with self._lock:
            self._pending = []
        if isinstance(err, StoreError):
            raise err
        raise StoreError(f"{self.data_dir / 'events'}: the event store failed in the background: {err}") from err

    # -- end ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, write the end-of-stream markers, release the locks and stop the threads."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            self.flush()
        finally:
            if self._writer is not None:
                self._queue.put(None)
                self._writer.join()
                self._writer = None
            for f in self._files.values():
                try:
                    f.close()
                except OSError as exc:  # the end-of-stream marker: the batches before it are readable
                    if not self._failed and self._error is None:
                        self._error = self._write_error(exc, f)
        if self._error is not None and not self._failed:
            self._raise_error()


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Every event of one event file, in order, as the dicts that were emitted.

    A file cut short (kill -9 during a write, disk full) yields every complete record batch and
    then stops: a partial last batch is what a crash leaves, not an error.
    """
    import pyarrow as pa

    try:
        source = pa.OSFile(str(path), "rb")
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the event file: {exc}") from exc
    with source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError, EOFError):
            return  # not even a complete schema: the process died at once
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError, EOFError):
                return  # truncated tail
            yield from _from_batch(batch)


def started_runs(path: Path) -> set[str] | None:
    """The run ids of the ``run.started`` events of one event file (two columns read, no event
    rebuilt: a file of a million events in milliseconds); None when not one event is readable."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = event_schema().names
    options = pa.ipc.IpcReadOptions(included_fields=[names.index("event_type"), names.index("run_id")])
    ids: set[str] = set()
    seen = False
    try:
        with pa.OSFile(str(path), "rb") as source:
            for batch in pa.ipc.open_stream(source, options=options):
                seen = seen or batch.num_rows > 0
                started = pc.equal(batch.column("event_type"), ev.RUN_STARTED)
                ids.update(x for x in pc.filter(batch.column("run_id"), started).to_pylist() if x is not None)
    except (pa.ArrowInvalid, OSError, EOFError):
        pass  # a torn tail ends the file, as in read_events
    return ids if seen else None


def iter_event_files(data_dir: Path) -> Iterator[Path]:
    """Every event file under ``data_dir``, oldest date folder first, then by name."""
    root = Path(data_dir) / "events"
    if not root.is_dir():
        return iter(())
    return iter(sorted(root.glob("*/*.arrow"), key=lambda p: (p.parent.name, p.stat().st_mtime, p.name)))


def session_in_progress(path: Path) -> bool:
    """Whether a live process is still writing ``path`` (its ``flock`` is held).

    The lock dies with the process, so a crashed session reads as not in progress. Without
    ``fcntl`` (Windows) this always answers False.
    """
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
