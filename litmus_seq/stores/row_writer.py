"""The row writer: one run's state (:class:`~litmus_seq.stores.run_state.RunState`) in, its
parquet file (``PARQUET.md``) out, once, when the run ends.

The step rows are built column by column. Each slice of :data:`WRITE_ROWS` measurements gets its
run, step, limit and instrument columns as *dictionary arrays*: int32 codes into the step-row,
limit or role level values (or into a one-value dictionary for run constants) instead of copies
of the strings. The parquet writer stores such codes directly as its dictionary pages; the Arrow
schema stored in the file is the plain one (``string``), so readers see the same types. Each
slice is written as a row group by a ``ParquetWriter`` on a thread while the next one is built,
into a locked temporary file that is then renamed into place (a reader never sees half a file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from operator import le
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq import outcomes as oc
from litmus_seq.errors import StoreError
from litmus_seq.stores import schema as S
from litmus_seq.stores.paths import SealTmp, os_reason, run_file_name
from litmus_seq.stores.run_state import DENSE_VECTORS, END_NO_TS, NO_TS, RunState, dict_type, text

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["RunWriter", "WRITE_ROWS", "SMALL_FILE_ROWS"]

#: Measurement rows denormalized (and written as one row group) at a time. A row group has a
#: fixed cost per column on top of its rows (compression contexts, encoders, statistics); a large
#: slice spreads it thin while its dictionary codes stay a few megabytes.
WRITE_ROWS = 32768

#: Files with fewer rows are snappy-compressed throughout: zstd's per-column-chunk set-up would be
#: a large part of a small run's seal and saves next to nothing there.
SMALL_FILE_ROWS = 1024

# Columns whose values change row by row: in larger files these, and every column that is not a
# dictionary-coded string (timestamps, numbers, lists: zstd shrinks a repeated timestamp to
# almost nothing), are compressed with zstd (much smaller than snappy there). The other
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


_NO_INFO: tuple[Any, ...] = (None, None, None, None, None)


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
            return pa.nulls(n, dict_type())
        if self._zeros is None or len(self._zeros) < n:
            self._zeros = _zeros(n)
        zeros = self._zeros if len(self._zeros) == n else self._zeros.slice(0, n)
        if typ == pa.string():
            return pa.DictionaryArray.from_arrays(zeros, pa.array([value], typ))
        return pa.array([value], typ).take(zeros)  # (pa.repeat is much slower for lists)


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


_BIG = 1 << 62  # sorts after every real step_index


class _StepRowPlan:
    """One row per planned (step, vector), then the steps and vectors the plan did not announce.

    The order is that of sorting every row by (step_index, plan order, vector index), with the
    unannounced ones after the plan's at the same step_index. Column by column and without a sort
    in the usual case (the plan in step_index order, every step and vector announced): this runs
    once per run but over every step, and container objects would also wake the garbage
    collector. Groups are the identities rows take (a plan entry, an unannounced step, the
    unknown step of a stray vector); ``extra`` holds the rows beyond the plan's as
    ``(sort key, group, vector indices, vector id)``.
    """

    def __init__(self, r: RunState) -> None:
        self.r = r
        items = self.items = r.discovered or []
        paths = [it.get("step_path") for it in items]
        self.sindex = [it.get("step_index", o) for o, it in enumerate(items)]
        vcount = [it.get("vector_count") for it in items]
        self.identity = [
            [it.get("name") for it in items], self.sindex, paths, [it.get("parent_path") for it in items],
            [it.get("node_id") for it in items], [it.get("file") for it in items],
            [it.get("line") for it in items], [it.get("kind") for it in items], vcount,
        ]
        self.paths = paths  # (the identity's step_path column: groups added later extend it)
        counts = self.counts = [c or 0 for c in vcount]
        self.last = dict(zip(paths, range(len(paths))))  # step path -> its last group
        self.planned = set(self.last)
        # the vector rows of a step path: indices below its largest count, and None if a count is 0
        most: dict[Any, int] = dict(zip(paths, counts))
        if len(most) < len(paths):  # a path planned twice
            most = {}
            for path, c in zip(paths, counts):
                most[path] = max(c, most.get(path, 0))
        self.most = most
        self.zero = {path for path, c in zip(paths, counts) if not c}
        self.extra: list[tuple[tuple[Any, ...], int, Sequence[Any], int | None]] = []

    def rows(self) -> _StepRows:
        self._add_unannounced()
        self._add_stray()
        r = self.r
        sid_of = [r.step_ids.get(path, -1) for path in self.paths]
        sidx = [s if isinstance(s, int) else _BIG for s in self.sindex[:len(self.items)]]
        if not self.extra and all(map(le, sidx, islice(sidx, 1, None))):  # the usual case: plan order
            row_group, row_index, row_vi = self._in_plan_order()
        else:
            row_group, row_index, row_vi = self._sorted(sidx)
        pos = [0] * len(r.v_outcome)
        for i, vi in enumerate(row_vi):
            if vi >= 0:
                pos[vi] = i
        return _StepRows(self.identity, sid_of, row_group, row_vi, row_index, pos)

    def _add_group(self, values: tuple[Any, ...]) -> int:
        for col, v in zip(self.identity, values):
            col.append(v)
        return len(self.paths) - 1

    def _add_unannounced(self) -> None:
        """Steps that ran although the plan did not announce them, with their own identity."""
        r = self.r
        for sid, path in enumerate(r.st_path):
            if path in self.planned:
                continue
            name, si, node, kind, vc = r.st_info.get(sid) or _NO_INFO
            c = vc or 0
            g = self.last[path] = self._add_group((name, si, path, _parent(path), node, None, None, kind, vc))
            self.counts.append(c)
            self.most[path] = c
            if not c:
                self.zero.add(path)
            sidx = si if isinstance(si, int) else _BIG
            for index in (range(c) if c else _NONE_INDEX):
                self.extra.append(((sidx, _BIG, -1 if index is None else index), g, (index,), None))

    def _add_stray(self) -> None:
        """Vectors beyond their step's rows (or of a step no event started), after the plan's."""
        r, most, zero = self.r, self.most, self.zero
        stray: list[tuple[Any, Any, int]] = []  # (path, index, vector id)
        for path, ids in r.vec_dense.items():
            m = most.get(path, 0)
            if len(ids) > m:
                stray += [(path, m + i, vi) for i, vi in enumerate(ids[m:]) if vi >= 0]
        for (path, index), vi in r.vec_other.items():
            if not (path in zero if index is None else type(index) is int and 0 <= index < most.get(path, 0)):
                stray.append((path, index, vi))
        defaults: dict[Any, int] = {}
        for path, index, vi in sorted(stray, key=_last):
            g = self.last.get(path, defaults.get(path, -1))
            if g < 0:
                g = defaults[path] = self._add_group((None, None, path, _parent(path) if isinstance(path, str) else None,
                                                      None, None, None, None, None))
                self.counts.append(0)
            si = self.identity[1][g]
            self.extra.append(((si if isinstance(si, int) else _BIG, _BIG + 1 + vi,
                                index if isinstance(index, int) else -1), g, (index,), vi))

    def _in_plan_order(self) -> tuple[list[int], list[Any], list[int]]:
        r, counts = self.r, self.counts
        dense, other = r.vec_dense, r.vec_other
        row_group = [g for g, c in enumerate(counts) for _ in range(c or 1)]
        row_index = [i for c in counts for i in (range(c) if c else _NONE_INDEX)]
        row_vi: list[int] = []
        for path, c in zip(self.paths, counts):
            ids = dense.get(path)
            if c == 1:
                row_vi.append(-1 if ids is None else ids[0])
                continue
            if not c:
                row_vi.append(other.get((path, None), -1))
                continue
            if c > DENSE_VECTORS:
                row_vi += [r.find_vector(path, i) for i in range(c)]
                continue
            block = ids[:c].tolist() if ids is not None else []
            row_vi += block
            if len(block) < c:
                row_vi += [-1] * (c - len(block))
        return row_group, row_index, row_vi

    def _sorted(self, sidx: list[int]) -> tuple[list[int], list[Any], list[int]]:
        segs = [((s, o), o, range(c) if c else _NONE_INDEX, None) for o, (s, c) in enumerate(zip(sidx, self.counts))]
        segs += self.extra
        segs.sort(key=_first)
        row_group: list[int] = []
        row_index: list[Any] = []
        row_vi: list[int] = []
        for _, g, indices, vi in segs:
            row_group += [g] * len(indices)
            row_index += indices
            if vi is not None:
                row_vi.append(vi)
            else:
                path = self.paths[g]
                row_vi += [self.r.find_vector(path, i) for i in indices]
        return row_group, row_index, row_vi


class RunWriter:
    """Builds and writes one run's file; lives only for the duration of the write."""

    def __init__(self, run: RunState, data_dir: Path) -> None:
        self.r = run
        self.data_dir = data_dir

    # step rows ---------------------------------------------------------------------------------

    def _step_rows(self) -> _StepRows:
        return _StepRowPlan(self.r).rows()

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
        vals["run_outcome"] = r.outcome if r.ended else oc.ABORTED
        vals["run_error"] = r.error if r.ended else "the process ended before the run did (recovered from the event store)"
        vals["run_retry_count"] = r.retries
        inst = list(r.instruments.values())

        def ident(i: dict[str, Any], k: str) -> Any:
            return text((i.get("identity") or {}).get(k))

        def cal(i: dict[str, Any], k: str) -> Any:
            return text((i.get("calibration") or {}).get(k))

        vals["step_instruments_name"] = [text(i.get("role")) for i in inst]
        vals["step_instruments_driver"] = [text(i.get("driver")) for i in inst]
        vals["step_instruments_resource"] = [text(i.get("resource")) for i in inst]
        for k in ("manufacturer", "model", "serial", "firmware"):
            vals[f"step_instruments_{k}"] = [ident(i, k) for i in inst]
        vals["step_instruments_cal_due"] = [cal(i, "due") for i in inst]
        vals["step_instruments_cal_certificate"] = [cal(i, "certificate") for i in inst]
        vals["step_instruments_mocked"] = [None if i.get("mocked") is None else bool(i.get("mocked")) for i in inst]
        vals["step_instruments_cal_exception"] = [cal(i, "exception") for i in inst]
        vals["step_instruments_idn_check"] = [text(i.get("identity_check")) for i in inst]
        return vals

    def build(self) -> None:
        """Everything but the measurement slices: schema, head (run row + step rows) and the
        per-level column sources the slices take from."""
        import pyarrow as pa

        rows = self._step_rows()
        self.consts = _Consts()
        src = self._step_sources(rows)
        dyn_types, head_dyn, dyn_order = self._dynamic(rows, src)
        fields = [pa.field(name, S.arrow_type(kind)) for name, kind in S.COLUMNS]
        fields += [pa.field(name, dyn_types[name]) for name in dyn_order]
        # The schemas carry no metadata: it holds the plan (megabytes for a large sweep), and it
        # is only needed once, for the file's footer.
        self.metadata = self._metadata()
        self.schema = schema = pa.schema(fields)
        self.wschema = pa.schema([pa.field(f.name, dict_type()) if f.type == pa.string() else f for f in schema])
        for name, value in self._run_values().items():
            self.consts.values[name] = (value, schema.field(name).type)
        self.pos = pa.array(rows.pos, pa.int32())
        self.head = self._head(len(rows.group), head_dyn, src)
        self.plan = self._slice_plan(src)

    def _step_sources(self, rows: _StepRows) -> dict[str, _Src]:
        """The step-row columns: identity (per group), step and vector state (per step, per vector)."""
        import pyarrow as pa

        r = self.r
        g_idx, v_idx = _idx(rows.group), _idx(rows.vi)
        s_idx = _idx(rows.sid).take(g_idx)
        string = pa.string()
        src: dict[str, _Src] = {}
        for name, vals in zip(_IDENTITY, rows.identity):
            kind = S.KINDS[name]
            if kind == "s":
                if not set(map(type, vals)) <= _STR_OR_NONE:
                    vals = [text(x) for x in vals]
            elif not set(map(type, vals)) <= _INT_OR_NONE:
                vals = [x if type(x) is int else None for x in vals]
            src[name] = _lift(_level(vals, S.arrow_type(kind)), g_idx)
        src["vector_index"] = ("p", pa.array([x if type(x) is int else None for x in rows.index], pa.int64()), None)
        late = None if r.ended else oc.ABORTED
        ts = S.arrow_type("t")
        no = NO_TS
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
        end = END_NO_TS
        for name, vals, typ in (
            ("vector_started_at", [t if t != no else None for t in v0], ts),
            ("vector_ended_at", [e if s != no and e > end else None for s, e in zip(v0, v1)], ts),
            ("vector_outcome", [(late if e == no else o) if s != no else None
                                for s, e, o in zip(v0, v1, r.v_outcome)], string),
            ("vector_error", errors, string),
        ):
            src[name] = _lift(_level(vals, typ), v_idx)
        return src

    def _dynamic(self, rows: _StepRows, src: dict[str, _Src]
                 ) -> tuple[dict[str, pa.DataType], dict[str, pa.Array], list[str]]:
        """The ``in_``/``out_`` columns per step row (run level < vector params < step < vector;
        added to ``src`` for the measurement rows) and the ``custom_`` constants; returns their
        types, their head arrays and their order in the file."""
        import pyarrow as pa

        r = self.r
        n = len(rows.group)
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
            self.consts.values[name] = (vals[0], typ)
        return dyn_types, head_dyn, sorted(in_cols) + sorted(out_cols) + sorted(custom_cols)

    def _head(self, n: int, head_dyn: dict[str, pa.Array], src: dict[str, _Src]) -> pa.Table:
        """The first rows of the file: the run row, then the ``n`` step rows."""
        import pyarrow as pa

        consts = self.consts
        arrays = []
        for f in self.wschema:
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
        return pa.Table.from_arrays(arrays, schema=self.wschema)

    def _slice_plan(self, src: dict[str, _Src]) -> list[tuple[str, Any, Any]]:
        """What a measurement row takes, column by column (see :meth:`_measurement_table`)."""
        import pyarrow as pa

        consts = self.consts
        consts.values["record_type"] = ("measurement", pa.string())
        lsrc = self._limit_sources()
        isrc = self._instrument_sources()
        plan: list[tuple[str, Any, Any]] = []
        for f in self.wschema:
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
        return plan

    def _limit_sources(self) -> dict[str, _Src]:
        """The limit columns per limit (index into :attr:`RunState.limits`)."""
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
                out[name] = _level([text(v) for v in vals], pa.string())
        return out

    def _instrument_sources(self) -> dict[str, _Src]:
        """The instrument columns per role (index into :attr:`RunState.roles`)."""
        import pyarrow as pa

        r = self.r
        data: dict[str, list[Any]] = {k: [] for k in _INSTRUMENT_COLUMNS}
        for role in r.roles:
            info = r.instruments.get(role) if role is not None else None
            data["instrument_name"].append(text(role))
            if info is None:
                for k, vals in data.items():
                    if k != "instrument_name":
                        vals.append(None)
                continue
            identity = info.get("identity") or {}
            calib = info.get("calibration") or {}
            data["instrument_resource"].append(text(info.get("resource")))
            for k in ("manufacturer", "model", "serial", "firmware"):
                data[f"instrument_{k}"].append(text(identity.get(k)))
            data["instrument_cal_due"].append(text(calib.get("due")))
            data["instrument_cal_certificate"].append(text(calib.get("certificate")))
            data["instrument_cal_exception"].append(text(calib.get("exception")))
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
        has a fixed cost per column, so fewer and larger ones write faster);
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
        # zstd where the data is (_codecs).
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


def _zeros(n: int) -> pa.Array:
    import pyarrow as pa

    return pa.nulls(n, pa.int32()).fill_null(0)
