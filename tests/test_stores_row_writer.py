"""The row writer: dictionary-encoded slices, statistics, codecs, the footer, and the files
themselves compared column by column with recorded ones."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litmus_seq import events as ev
from litmus_seq.stores import materializer as mat
from litmus_seq.stores import row_writer
from litmus_seq.stores.materializer import RunMaterializer, materialize_events
from test_stores_stream import (
    FW_LIMIT, ITEMS, RAIL_LIMIT, full_session, make_bus, run_events, start_session,
)


# -- dictionary-encoded writing, slices, statistics (issue 4) ----------------------------------


def _big_run(bus: ev.EventBus, run_id: str = "r-big") -> list[dict[str, Any]]:
    """A run whose measurements vary in every field: vectors, retries, limits (shared, copied,
    none), units from the reading or its limit, text readings, known and unknown instruments."""
    bus.run_id = run_id
    bus.emit(ev.RUN_STARTED, dut_serial="SN-BIG", custom={"lot": "L1"}, plan="{}")
    bus.emit(ev.INSTRUMENT_CONNECTED, role="dmm", driver="scpi.dmm", resource="USB0::1::INSTR",
             identity={"manufacturer": "Keysight", "model": "34465A", "serial": "MY123", "firmware": "3.0"},
             calibration={"due": "2027-03-01", "certificate": "CAL-1234"}, mocked=False)
    bus.emit(ev.STEPS_DISCOVERED, items=ITEMS)
    bus.flush()
    measurements: list[dict[str, Any]] = []
    limits: list[Any] = [RAIL_LIMIT, FW_LIMIT, None, dict(RAIL_LIMIT, units="mV", source="copy")]
    k = 0
    for item in ITEMS[:5]:
        path = item["step_path"]
        bus.emit(ev.STEP_STARTED, step_path=path, step_index=item["step_index"], node_id=item["node_id"],
                 name=item["name"], kind=item["kind"], vector_count=item["vector_count"])
        for index in range(item["vector_count"]):
            for retry in range(2 if index == 0 else 1):
                bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=index, retry=retry, params={"p": index})
                for _ in range(9):
                    k += 1
                    lim = limits[k % len(limits)]
                    m = {"event_type": ev.MEASUREMENT, "step_path": path, "vector_index": index, "retry": retry,
                         "name": f"m{k % 5}", "value": None if k % 7 == 0 else k / 8,
                         "text": "t" if k % 7 == 0 else None,
                         "units": None if k % 3 else "A", "outcome": ("passed", "failed", "done")[k % 3],
                         "marginal": k % 4 == 0, "limit": lim, "instrument": (None, "dmm", "scope")[k % 3],
                         "channel": f"CH{k % 2}" if k % 5 else None, "dut_pin": None if k % 2 else "P1",
                         "fixture_connection": "fc" if k % 6 == 0 else None}
                    bus.emit_event(m)
                    measurements.append(m)
                bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=index, retry=retry,
                         outcome="passed", error=None if k % 2 else "boom")
        bus.emit(ev.STEP_ENDED, step_path=path, outcome="passed", error=None)
        bus.flush()
    bus.emit(ev.RUN_ENDED, outcome="failed", error="boom")
    bus.flush()
    return measurements


def _check_statistics(path: Path) -> None:
    """Every row group's column statistics describe its data (min/max of the non-NULL values)."""
    import pyarrow.compute as pc

    f = pq.ParquetFile(path)
    for g in range(f.metadata.num_row_groups):
        rg, data = f.metadata.row_group(g), f.read_row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            if "." in col.path_in_schema:  # list leaves
                continue
            st, values = col.statistics, data.column(col.path_in_schema)
            assert st is not None and st.null_count == values.null_count, (g, col.path_in_schema)
            if values.null_count == len(values):
                assert not st.has_min_max, (g, col.path_in_schema)
            else:
                mm = pc.min_max(values)
                assert (st.min, st.max) == (mm["min"].as_py(), mm["max"].as_py()), (g, col.path_in_schema)


@pytest.mark.parametrize("chunk_rows, write_rows", [(8192, 32768), (7, 16), (16, 7), (1, 1)])
def test_measurement_rows_match_their_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             chunk_rows: int, write_rows: int) -> None:
    """Value by value, with measurements spanning several chunks and write slices (row groups)."""
    monkeypatch.setattr(mat, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(row_writer, "WRITE_ROWS", write_rows)
    m = RunMaterializer(tmp_path)
    bus, _ = make_bus(m)
    start_session(bus)
    sent = _big_run(bus)
    (path,) = m.written
    table = pq.read_table(path)
    assert len(sent) == 99
    if write_rows < len(sent):  # the head, then one row group per slice
        assert pq.read_metadata(path).num_row_groups == 1 + -(-len(sent) // write_rows)
    rows_ = table.to_pylist()
    ts = table.column("measurement_timestamp").cast(pa.int64()).to_pylist()
    steps = {(r["step_path"], r["vector_index"]): r for r in rows_ if r["record_type"] == "step"}
    got = [(r, t) for r, t in zip(rows_, ts) if r["record_type"] == "measurement"]
    assert len(got) == len(sent)
    for (row, t), e in zip(got, sent):  # emission order
        lim = e["limit"] or {}
        assert (row["step_path"], row["vector_index"], row["vector_retry"]) == (
            e["step_path"], e["vector_index"], e["retry"])
        assert (row["measurement_name"], t, row["measurement_value"], row["measurement_text"]) == (
            e["name"], e["timestamp"], e["value"], e["text"])
        assert row["measurement_units"] == (e["units"] if e["units"] is not None else lim.get("units"))
        assert (row["measurement_outcome"], row["measurement_marginal"]) == (e["outcome"], e["marginal"])
        assert (row["limit_low"], row["limit_high"], row["limit_comparator"], row["limit_source"],
                row["limit_equals"], row["characteristic_id"]) == (
            lim.get("low"), lim.get("high"), lim.get("comparator"), lim.get("source"), lim.get("equals"),
            lim.get("characteristic_id"))
        assert (row["instrument_name"], row["instrument_channel"], row["dut_pin"], row["fixture_connection"]) == (
            e["instrument"], e["channel"], e["dut_pin"], e["fixture_connection"])
        known = e["instrument"] == "dmm"
        assert row["instrument_serial"] == ("MY123" if known else None)
        assert row["instrument_mocked"] == (False if known else None)
        step = steps[(e["step_path"], e["vector_index"])]
        for name in ("step_name", "step_index", "step_node_id", "step_kind", "step_outcome", "vector_outcome",
                     "vector_error", "step_started_at", "vector_ended_at", "in_p"):
            assert row[name] == step[name], name
        assert (row["run_outcome"], row["run_error"], row["custom_lot"], row["dut_serial"]) == (
            "failed", "boom", "L1", "SN-BIG")
        assert row["step_instruments_name"] == ["dmm"] and row["step_instruments_serial"] == ["MY123"]
    _check_statistics(path)


def test_files_read_back_with_plain_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strings are written as dictionary arrays, but readers see ``string``/VARCHAR columns, UTC
    timestamps and the same schema (and metadata) as a file written from plain columns."""
    monkeypatch.setattr(row_writer, "WRITE_ROWS", 40)
    m = RunMaterializer(tmp_path / "new")
    bus, _ = make_bus(m)
    start_session(bus)
    _big_run(bus)
    (path,) = m.written
    schema = pq.read_schema(path)
    assert not [f for f in schema if pa.types.is_dictionary(f.type)]
    assert schema.field("step_path").type == pa.string() and schema.field("run_outcome").type == pa.string()
    assert schema.field("measurement_timestamp").type == pa.timestamp("us", tz="UTC")
    table = pq.read_table(path)
    assert table.schema.equals(schema) and table.column("step_name").type == pa.string()
    assert schema.metadata[b"run_id"] == b"r-big" and pq.read_metadata(path).metadata[b"plan"] == b"{}"
    # the same table written by pyarrow from plain columns: same schema, metadata and values
    plain = tmp_path / "plain.parquet"
    pq.write_table(table, plain)
    assert pq.read_schema(plain).equals(schema, check_metadata=True)
    assert pq.read_table(plain).equals(table)
    con = duckdb.connect()
    types = {name: typ for name, typ, *_ in con.sql(f"DESCRIBE SELECT * FROM '{path.as_posix()}'").fetchall()}
    assert types["step_path"] == "VARCHAR" and types["measurement_timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["step_instruments_name"] == "VARCHAR[]"
    # an older file (fewer columns) and this one, read together by name
    old = tmp_path / "old.parquet"
    pq.write_table(table.drop_columns(["run_error", "in_p", "custom_lot"]).slice(0, 3), old)
    got = con.sql(f"SELECT count(*), count(run_error), count(in_p), min(step_path) FROM read_parquet("
                  f"['{old.as_posix()}', '{path.as_posix()}'], union_by_name = true)").fetchall()
    first = min(v for v in table.column("step_path").to_pylist() if v is not None)
    assert got == [(table.num_rows + 3, table.num_rows, len(table.column("in_p").drop_null()), first)]


def test_statistics_describe_each_row_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row-group min/max come from the values in the group, not from the whole dictionary (pyarrow
    takes them from the whole dictionary when a group has NULLs and uses all but one value)."""
    monkeypatch.setattr(mat, "CHUNK_ROWS", 5)
    monkeypatch.setattr(row_writer, "WRITE_ROWS", 9)
    m = RunMaterializer(tmp_path)
    bus, _ = make_bus(m)
    start_session(bus)
    _big_run(bus)
    (path,) = m.written
    assert pq.read_metadata(path).num_row_groups > 5
    _check_statistics(path)


def test_footer_holds_the_plan_once(tmp_path: Path) -> None:
    """The metadata is written once, as key-value pairs: no ``ARROW:schema`` copy of it (which
    would hold the whole plan again), and pyarrow readers still get it as ``schema.metadata``."""
    bus, rec = make_bus()
    start_session(bus)
    _big_run(bus)
    plan = json.dumps({"steps": [{"name": "s" * 5000}]})
    for e in rec.events:
        if e["event_type"] == ev.RUN_STARTED:
            e["plan"] = plan
    (path,) = materialize_events(rec.events, tmp_path)
    kv = pq.read_metadata(path).metadata
    assert b"ARROW:schema" not in kv and kv[b"plan"] == plan.encode()
    assert pq.read_schema(path).metadata == kv == pq.read_table(path).schema.metadata
    assert path.read_bytes().count(b"s" * 5000) == 1


def _codecs_of(path: Path) -> dict[str, str]:
    rg = pq.read_metadata(path).row_group(0)
    return {rg.column(i).path_in_schema: rg.column(i).compression for i in range(rg.num_columns)}


def test_zstd_where_the_data_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a larger file, columns that change row by row, and every non-string one, are
    zstd-compressed; the dictionary-coded run-constant strings (run context, instruments) snappy:
    zstd's per-page set-up would be most of their write time. Nothing is left uncompressed."""
    bus, rec = make_bus()
    start_session(bus)
    _big_run(bus)
    (small,) = materialize_events(rec.events, tmp_path / "small")
    assert pq.read_metadata(small).num_rows < row_writer.SMALL_FILE_ROWS
    assert set(_codecs_of(small).values()) == {"SNAPPY"}
    monkeypatch.setattr(row_writer, "SMALL_FILE_ROWS", 10)
    (path,) = materialize_events(rec.events, tmp_path / "large")
    codecs = _codecs_of(path)
    for name in ("step_path", "step_started_at", "measurement_value", "measurement_timestamp", "in_p",
                 "run_started_at", "step_instruments_serial.list.element"):
        assert codecs[name] == "ZSTD", name
    assert "UNCOMPRESSED" not in codecs.values()
    for name in ("run_id", "dut_serial", "station_hostname", "instrument_serial", "custom_lot"):
        assert codecs[name] == "SNAPPY", name


# -- the files stay the same: column-level comparison with recorded files ------------------------

GOLDEN = Path(__file__).resolve().parent / "data" / "stores" / "golden_run_files.json"


def _golden_events() -> dict[str, list[dict[str, Any]]]:
    """Event streams with fixed timestamps: a finished session of two runs, one run cut short,
    and the unannounced steps and stray vectors of :func:`test_unannounced_steps_and_stray_vectors_order`."""
    from test_stores_stream import Recorder

    def fixed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for e in events:
            e["timestamp"] = 1_767_225_600_000_000 + 1_000 * e["seq"]
        return events

    full = fixed(full_session(runs=2))
    rec = Recorder()
    bus = ev.EventBus("sess-crash", rec)
    start_session(bus)
    run_events(bus, run_id="r-cut", crash_after="soak_started")
    cut = fixed(rec.events)
    rec = Recorder()
    bus = ev.EventBus("sess-odd", rec)
    start_session(bus)
    bus.run_id = "r-odd"
    bus.emit(ev.RUN_STARTED, dut_serial=None, custom={"n": 1, "mixed": "a"})
    items = [dict(ITEMS[2], step_index=2), dict(ITEMS[0], step_index=0), dict(ITEMS[1], step_index=1)]
    bus.emit(ev.STEPS_DISCOVERED, items=items)
    bus.emit(ev.STEP_STARTED, step_path="extra/x", step_index=1, node_id="n", name="x", kind="call", vector_count=2)
    for index in (1, 0):
        bus.emit(ev.VECTOR_STARTED, step_path="extra/x", vector_index=index, retry=0, params={"p": index})
        bus.emit(ev.CONFIGURED, step_path="extra/x", vector_index=index, key="k", value=[index] if index else "s")
        bus.emit(ev.VECTOR_ENDED, step_path="extra/x", vector_index=index, retry=0, outcome="done", error=None)
    bus.emit(ev.STEP_ENDED, step_path="extra/x", outcome="done", error=None)
    bus.emit(ev.VECTOR_STARTED, step_path="main/output_voltage", vector_index=5, retry=0, params={})
    bus.emit(ev.VECTOR_STARTED, step_path="nowhere/y", vector_index=None, retry=0, params={})
    bus.emit(ev.OBSERVED, step_path=None, vector_index=None, key="run_level", value=True)
    bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
    bus.flush()
    return {"full": full, "cut": cut, "odd": fixed(rec.events)}


def _describe(path: Path) -> dict[str, Any]:
    """A run file as data: schema, row groups and their codecs, key-value metadata, every value."""
    meta = pq.read_metadata(path)
    table = pq.read_table(path)
    groups = [[meta.row_group(g).num_rows, *sorted({meta.row_group(g).column(i).compression
                                                     for i in range(meta.num_columns)})]
              for g in range(meta.num_row_groups)]
    columns = json.loads(json.dumps(table.to_pydict(), default=lambda v: v.isoformat()))
    return {"name": path.name, "schema": [f"{f.name}: {f.type}" for f in table.schema], "row_groups": groups,
            "metadata": {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}, "columns": columns}


def _golden_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    out: dict[str, Any] = {}
    streams = _golden_events()
    for case, sizes in (("default", {}), ("sliced", {"CHUNK_ROWS": 2, "WRITE_ROWS": 3, "SMALL_FILE_ROWS": 4})):
        with monkeypatch.context() as m:
            for name, value in sizes.items():
                m.setattr(mat if name == "CHUNK_ROWS" else row_writer, name, value)
            for stream, events in streams.items():
                files = materialize_events(events, tmp_path / case / stream)
                out[f"{case}/{stream}"] = [_describe(p) for p in files]
    return out


def test_files_match_the_recorded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column, value, row group, codec and metadata entry of the run files written from fixed
    event streams equals what was recorded in ``tests/data/stores`` (refactors must not change the
    files; ``LITMUS_WRITE_GOLDEN=1`` records them again after a deliberate change)."""
    got = _golden_files(tmp_path, monkeypatch)
    if os.environ.get("LITMUS_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, sort_keys=True, separators=(",", ":")) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    for key in want:
        assert len(got[key]) == len(want[key]), key
        for g, w in zip(got[key], want[key]):
            for part in ("name", "schema", "row_groups", "metadata"):
                assert g[part] == w[part], (key, part)
            for column, values in w["columns"].items():
                assert g["columns"][column] == values, (key, column)
