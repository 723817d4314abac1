"""What one run's parquet file needs, accumulated from its events while the run executes.

The state is columnar because it lives on the engine's hot path: steps and vectors are int ids
into lists and ``array('q')`` columns (references to what the events carried, raw int64
timestamps), not an object per step or vector, since small long-lived objects allocated in the
middle of the event churn pin CPython's memory arenas (resident memory grows although live
objects do not). A measurement is one tuple until :data:`~litmus_seq.stores.materializer.CHUNK_ROWS`
of them become compact Arrow arrays in one conversion (:meth:`RunState.seal_chunk`), strings as
dictionary codes.

:mod:`litmus_seq.stores.materializer` fills it from events; :mod:`litmus_seq.stores.row_writer`
turns it into the file.
"""

from __future__ import annotations

import json
from array import array
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from litmus_seq.stores import schema as S

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["RunState", "NO_TS", "END_NO_TS", "DENSE_VECTORS", "UNSET", "M_KEYS", "M_GET", "M_FIELDS",
           "dict_type", "text", "ts_int"]

#: "No timestamp" in the ``array('q')`` columns of step and vector times; a vector whose end came
#: without a timestamp has :data:`END_NO_TS` (ended, so not running, but no time to show).
NO_TS = -(1 << 63)
END_NO_TS = NO_TS + 1
#: Vector indices in ``[0, DENSE_VECTORS)`` are found through a per-step ``array('q')`` of vector
#: ids (no object per vector); any other index (None, huge) through a dict keyed by (path, index).
DENSE_VECTORS = 1 << 20
_ONE_ID = array("q", (-1,))
_TWO_NO_TS = array("q", (NO_TS, NO_TS))
_TWO_NONE = (None, None)
#: Never equal to a step path (the "no cached vector yet" marker of :class:`RunState`).
UNSET = object()

# Layout of one measurement tuple (the only per-measurement object kept): the event's fields as
# M_GET returns them (one C call), then the vector, limit and role indices.
M_KEYS = (
    "retry", "name", "timestamp", "value", "text", "units", "outcome", "marginal", "channel", "dut_pin",
    "fixture_connection",
)
M_GET = itemgetter(*M_KEYS)
M_FIELDS = (
    "retry", "name", "ts", "value", "text", "units", "outcome", "marginal", "channel", "dut_pin",
    "fixture_connection", "vec", "limit", "role",
)


class RunState:
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
        self.st_times = array("q")  # started, ended (2 * id, 2 * id + 1; NO_TS: none)
        self.st_end: list[Any] = []  # outcome, error (2 * id, 2 * id + 1)
        self.st_configured: dict[int, dict[Any, Any]] = {}  # step-level (no vector_index)
        self.st_observed: dict[int, dict[Any, Any]] = {}
        # vectors, by id in the order of their first event: first start, last end, last outcome;
        # a vector is running from its test.vector_started (ended reset to NO_TS) to its end
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
        self.m_path: Any = UNSET
        self.m_index: Any = UNSET
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
        if type(index) is int and 0 <= index < DENSE_VECTORS:
            ids = self.vec_dense.get(path)
            if ids is None:
                if index == 0:  # the usual first vector of a step
                    vi = self._new_vector()
                    ids = self.vec_dense[path] = _ONE_ID * 1  # (a copy: cheaper than array("q", (vi,)))
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
        if type(index) is int and 0 <= index < DENSE_VECTORS:
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
            self.limit_units.append(text(lim.get("units")) if isinstance(lim, dict) else None)
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
        cols: dict[str, Any] = {name: whole.field(name) for name in M_FIELDS}
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
    """The Arrow type of one measurement tuple (see :data:`M_FIELDS`); strings are converted
    straight to dictionaries, retries to int16 (they are small) unless told otherwise."""
    import pyarrow as pa

    d = dict_type()
    types = {
        "vec": pa.int32(), "retry": retry or pa.int16(), "name": d, "ts": S.arrow_type("t"), "value": pa.float64(),
        "text": d, "units": pa.string(), "outcome": d, "marginal": pa.bool_(), "limit": pa.int32(),
        "role": pa.int32(), "channel": d, "dut_pin": d, "fixture_connection": d,
    }
    return pa.struct([(name, types[name]) for name in M_FIELDS])


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


def dict_type() -> pa.DataType:
    import pyarrow as pa

    return pa.dictionary(pa.int32(), pa.string())


def text(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def ts_int(v: Any) -> int:
    """An event timestamp for an ``array('q')`` column (None -> :data:`NO_TS`)."""
    if type(v) is int:
        return v
    return NO_TS if v is None else int(v)
