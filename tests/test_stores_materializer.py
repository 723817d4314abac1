"""The run materializer: every row kind, roll-up, traceability and file rule of PARQUET.md,
checked with DuckDB the way users read the files."""

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
from litmus_seq.stores.events import EventStore, read_events
from litmus_seq.stores.materializer import RunMaterializer, materialize_events
from litmus_seq.stores.schema import COLUMN_NAMES
from test_stores_stream import (
    ITEMS, end_session, full_session, make_bus, run_events, start_session,
)


def rows(path: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` over the view ``t`` (the file read as users read it)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path.as_posix()}', union_by_name = true)")
    return con.sql(sql).to_arrow_table().to_pylist()


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    m = RunMaterializer(tmp_path)
    full_session(m)
    m.close()
    (path,) = m.written
    return path


def test_file_location_and_name(run_file: Path, tmp_path: Path) -> None:
    assert run_file.parent.parent == tmp_path / "runs"
    assert run_file.name.endswith("Z_SN_42_A.parquet")  # "SN 42/A" sanitized
    stamp = run_file.name.split("_")[0]
    assert len(stamp) == len("20260509T101112.123456Z") and stamp[8] == "T"
    assert run_file.parent.name == f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
    assert [p.name for p in run_file.parent.iterdir()] == [run_file.name]  # no temp file left


def test_row_kinds_and_run_row_first(run_file: Path) -> None:
    table = pq.read_table(run_file)
    kinds = table.column("record_type").to_pylist()
    assert kinds[0] == "run" and kinds.count("run") == 1
    planned_rows = sum(max(1, i["vector_count"]) for i in ITEMS)
    assert kinds.count("step") == planned_rows == 8
    assert kinds.count("measurement") == 5
    assert set(table.column("run_outcome").to_pylist()) == {"failed"}
    assert set(table.column("run_id").to_pylist()) == {"run-sess-0001-0"}


def test_step_rows(run_file: Path) -> None:
    steps = rows(run_file, "SELECT * FROM t WHERE record_type = 'step' ORDER BY step_index, vector_index")
    by = {(s["step_path"], s["vector_index"]): s for s in steps}
    ov0 = by[("main/output_voltage", 0)]
    assert ov0["vector_outcome"] == "passed"  # the last attempt counts
    assert ov0["step_outcome"] == "passed" and ov0["step_kind"] == "measure"
    assert ov0["step_node_id"] == "sequences/power.yaml::main/output_voltage" and ov0["step_line"] == 12
    assert ov0["step_vector_count"] == 2 and ov0["vector_retry"] is None
    assert ov0["vector_started_at"] <= ov0["vector_ended_at"]
    assert by[("main/firmware", 0)]["step_outcome"] == "failed"
    assert by[("main/firmware", 0)]["vector_error"] == "fw_version = '1.4.1', expected '1.4.2'"
    group = by[("main/thermal", 0)]
    assert group["step_kind"] == "group" and group["step_outcome"] == "passed" and group["vector_outcome"] is None
    assert by[("main/thermal/soak", 0)]["parent_path"] == "main/thermal"
    never = by[("main/never_ran", 0)]
    assert never["step_outcome"] is None and never["step_started_at"] is None and never["step_ended_at"] is None
    assert never["step_name"] == "never_ran" and never["step_index"] == 5
    assert [s["step_index"] for s in steps] == sorted(s["step_index"] for s in steps)
    assert by[("setup/1", 0)]["step_outcome"] == "done"


def test_measurement_rows(run_file: Path) -> None:
    ms = rows(run_file, "SELECT * FROM t WHERE record_type = 'measurement' "
                        "ORDER BY step_index, vector_index, vector_retry")
    first, retried, marginal, fw, soak = ms
    assert (first["vector_retry"], first["measurement_outcome"], first["measurement_value"]) == (0, "failed", 3.6)
    assert (retried["vector_retry"], retried["measurement_outcome"]) == (1, "passed")
    assert first["step_outcome"] == "passed" and first["vector_outcome"] == "passed"  # copied from the step row
    assert first["run_outcome"] == "failed"
    assert first["limit_low"] == 3.1515 and first["limit_high"] == 3.4485 and first["limit_comparator"] == "GELE"
    assert first["limit_spec_low"] == 3.135 and first["limit_guardband_pct"] == 10.0
    assert first["limit_source"] == "spec" and first["characteristic_id"] == "rail_3v3"
    assert first["spec_ref"] == "products.power_board.rail_3v3"
    assert marginal["measurement_marginal"] is True
    assert marginal["measurement_units"] == "V"  # from the limit when the reading has none
    assert fw["measurement_value"] is None and fw["measurement_text"] == "1.4.1"
    assert fw["limit_equals"] == "1.4.2" and fw["limit_low"] is None
    assert fw["step_outcome"] == "failed"
    assert soak["step_path"] == "main/thermal/soak" and soak["in_temperature"] == 85.0


def test_traceability(run_file: Path) -> None:
    ms = rows(run_file, "SELECT * FROM t WHERE record_type = 'measurement' ORDER BY measurement_timestamp")
    dmm = ms[0]
    assert dmm["instrument_name"] == "dmm" and dmm["instrument_resource"] == "USB0::1::INSTR"
    assert (dmm["instrument_manufacturer"], dmm["instrument_model"], dmm["instrument_serial"],
            dmm["instrument_firmware"]) == ("Keysight", "34465A", "MY123", "3.0")
    assert dmm["instrument_cal_due"] == "2027-03-01" and dmm["instrument_cal_certificate"] == "CAL-1234"
    assert dmm["instrument_mocked"] is False and dmm["instrument_channel"] == "CH1"
    assert dmm["dut_pin"] == "VOUT" and dmm["fixture_connection"] == "vout_dmm"
    fw = next(m for m in ms if m["measurement_name"] == "fw_version")
    assert fw["instrument_name"] == "dut" and fw["instrument_mocked"] is True and fw["instrument_serial"] is None
    every = rows(run_file, "SELECT step_instruments_name AS n, step_instruments_mocked AS m, "
                           "step_instruments_serial AS s FROM t")
    assert all(r["n"] == ["dmm", "dut"] and r["m"] == [False, True] and r["s"] == ["MY123", None] for r in every)


def test_run_context_and_dynamic_columns(run_file: Path) -> None:
    schema = pq.read_schema(run_file)
    names = schema.names
    assert names[: len(COLUMN_NAMES)] == list(COLUMN_NAMES)
    assert schema.field("in_vin").type == pa.float64()  # ints in vector params -> float64
    assert schema.field("in_volts_set").type == pa.float64()
    assert schema.field("out_temp_board").type == pa.float64()
    assert schema.field("out_ripple").type == pa.string()
    assert schema.field("custom_temp_c").type == pa.float64() and schema.field("custom_lot").type == pa.string()
    assert not [n for n in names if n.startswith(("in__", "out__", "custom__"))]  # _private never written
    assert schema.field("step_vector_count").type == pa.int32()
    assert schema.field("run_started_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("step_instruments_mocked").type == pa.list_(pa.bool_())
    run = rows(run_file, "SELECT * FROM t WHERE record_type = 'run'")[0]
    assert run["dut_serial"] == "SN 42/A" and run["sequence_name"] == "power_board_fct"
    assert run["custom_lot"] == "L7" and run["step_name"] is None and run["in_vin"] is None
    assert run["run_ended_at"] >= run["run_started_at"]
    v1 = rows(run_file, "SELECT * FROM t WHERE step_path = 'main/output_voltage' AND vector_index = 1")
    assert {r["out_ripple"] for r in v1} == {"channel://run-sess-0001-0/ripple"}
    assert {r["in_vin"] for r in v1} == {12.0} and {r["custom_lot"] for r in v1} == {"L7"}
    meta = pq.read_metadata(run_file).metadata
    assert meta[b"schema_version"] == b"3" and meta[b"run_id"] == b"run-sess-0001-0"
    assert json.loads(meta[b"plan"])["sequence"] == "power_board_fct"
    assert json.loads(meta[b"environment"])["plugins"] == [{"name": "scpi", "version": "1.0"}]


def test_mixed_dynamic_values_become_strings(tmp_path: Path) -> None:
    m = RunMaterializer(tmp_path)
    bus, _ = make_bus(m)
    start_session(bus)
    run_events(bus, run_id="r-mixed", custom={"flag": True, "n": 3})
    bus.run_id = "r-mixed"
    m2 = RunMaterializer(tmp_path / "two")
    bus2, _ = make_bus(m2)
    start_session(bus2)
    bus2.run_id = "r2"
    bus2.emit(ev.RUN_STARTED, dut_serial=None, custom={})
    bus2.emit(ev.STEPS_DISCOVERED, items=ITEMS[:1])
    for i, value in enumerate([5, "five", True]):
        bus2.emit(ev.VECTOR_STARTED, step_path="setup/1", vector_index=i, retry=0, params={"mode": value})
        bus2.emit(ev.VECTOR_ENDED, step_path="setup/1", vector_index=i, retry=0, outcome="done", error=None)
    bus2.emit(ev.RUN_ENDED, outcome="passed", error=None)
    bus2.flush()
    schema = pq.read_schema(m.written[0])
    assert schema.field("custom_flag").type == pa.bool_()
    (path,) = m2.written
    assert "_" not in path.stem.split("Z")[-1]  # no serial, no suffix
    got = rows(path, "SELECT vector_index, in_mode FROM t WHERE record_type = 'step' ORDER BY vector_index")
    assert [r["in_mode"] for r in got] == ["5", "five", "true"]


def test_unfinished_run_is_not_written_live(tmp_path: Path) -> None:
    m = RunMaterializer(tmp_path)
    bus, _ = make_bus(m)
    start_session(bus)
    run_events(bus, run_id="r-crash", crash_after="soak_started")
    assert m.written == [] and m.open_runs == ["r-crash"]
    m.close()
    assert not (tmp_path / "runs").exists()


def test_offline_seal_marks_aborted(tmp_path: Path) -> None:
    bus, rec = make_bus()
    start_session(bus)
    run_events(bus, run_id="r-crash", crash_after="soak_started")
    (path,) = materialize_events(rec.events, tmp_path)
    steps = {(r["step_path"]): r for r in rows(path, "SELECT * FROM t WHERE record_type = 'step'")}
    assert steps["main/thermal/soak"]["step_outcome"] == "aborted"
    assert steps["main/thermal/soak"]["vector_outcome"] == "aborted"
    assert steps["main/thermal"]["step_outcome"] == "aborted"
    assert steps["main/firmware"]["step_outcome"] == "failed"  # finished steps keep their outcome
    assert steps["main/never_ran"]["step_outcome"] is None and steps["cleanup/1"]["step_outcome"] is None
    outcomes = {r["run_outcome"] for r in rows(path, "SELECT run_outcome FROM t")}
    assert outcomes == {"aborted"}
    assert pq.read_metadata(path).metadata[b"recovered"] == b"true"
    assert materialize_events(rec.events, tmp_path / "x", seal_unfinished=False) == []


def test_never_overwrites(tmp_path: Path) -> None:
    bus, rec = make_bus()
    start_session(bus)
    run_events(bus, run_id="r1")
    (a,) = materialize_events(rec.events, tmp_path)
    (b,) = materialize_events(rec.events, tmp_path)  # same start time and serial
    assert a != b and b.name == a.name.replace(".parquet", "_2.parquet")
    assert pq.read_table(a).equals(pq.read_table(b))
    assert sorted(p.name for p in a.parent.iterdir()) == sorted([a.name, b.name])


def test_live_and_replayed_files_are_identical(tmp_path: Path) -> None:
    """The same code live and offline: replaying the event store gives the same table."""
    live = RunMaterializer(tmp_path / "live")
    store = EventStore(tmp_path / "store")
    full_session(live, store, runs=2)
    store.close()
    replayed = materialize_events(read_events(store.paths[0]), tmp_path / "replay")
    assert len(live.written) == len(replayed) == 2
    for a, b in zip(live.written, replayed):
        assert a.name == b.name
        assert pq.read_table(a).equals(pq.read_table(b))


def test_chunked_measurements_match_unchunked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bus, rec = make_bus()
    start_session(bus)
    run_events(bus, run_id="r1")
    end_session(bus)
    (whole,) = materialize_events(rec.events, tmp_path / "a")
    monkeypatch.setattr(mat, "CHUNK_ROWS", 2)
    monkeypatch.setattr(row_writer, "WRITE_ROWS", 1)
    (chunked,) = materialize_events(rec.events, tmp_path / "b")
    assert pq.read_metadata(chunked).num_row_groups > pq.read_metadata(whole).num_row_groups
    assert pq.read_table(whole).equals(pq.read_table(chunked))


def test_terminated_run_keeps_its_outcome(tmp_path: Path) -> None:
    m = RunMaterializer(tmp_path)
    bus, _ = make_bus(m)
    start_session(bus)
    bus.run_id = "r-term"
    bus.emit(ev.RUN_STARTED, dut_serial="S1")
    bus.emit(ev.STEPS_DISCOVERED, items=ITEMS[:2])
    bus.emit(ev.STEP_STARTED, step_path="setup/1", step_index=0, node_id="n", name="1", kind="call", vector_count=1)
    bus.emit(ev.STEP_ENDED, step_path="setup/1", outcome="terminated", error="terminated by operator")
    bus.emit(ev.RUN_ENDED, outcome="terminated", error="terminated by operator")
    bus.flush()
    (path,) = m.written
    got = rows(path, "SELECT record_type, step_path, vector_index, step_outcome, run_outcome FROM t "
                     "ORDER BY record_type, step_path, vector_index")
    assert {r["run_outcome"] for r in got} == {"terminated"}
    steps = [r for r in got if r["record_type"] == "step"]
    assert [(s["step_path"], s["vector_index"], s["step_outcome"]) for s in steps] == [
        ("main/output_voltage", 0, None), ("main/output_voltage", 1, None), ("setup/1", 0, "terminated")]


def test_unannounced_steps_and_stray_vectors_order(tmp_path: Path) -> None:
    """Rows sort by (step_index, plan order, vector index): steps the plan did not announce and
    vectors beyond a step's count come after the plan's rows at the same step_index."""
    m = RunMaterializer(tmp_path)
    bus, _ = make_bus(m)
    start_session(bus)
    bus.run_id = "r-odd"
    bus.emit(ev.RUN_STARTED, dut_serial=None)
    items = [dict(ITEMS[2], step_index=2), dict(ITEMS[0], step_index=0), dict(ITEMS[1], step_index=1)]
    bus.emit(ev.STEPS_DISCOVERED, items=items)
    bus.emit(ev.STEP_STARTED, step_path="extra/x", step_index=1, node_id="n", name="x", kind="call", vector_count=2)
    for index in (1, 0):
        bus.emit(ev.VECTOR_STARTED, step_path="extra/x", vector_index=index, retry=0, params={})
        bus.emit(ev.VECTOR_ENDED, step_path="extra/x", vector_index=index, retry=0, outcome="done", error=None)
    bus.emit(ev.STEP_ENDED, step_path="extra/x", outcome="done", error=None)
    bus.emit(ev.VECTOR_STARTED, step_path="main/output_voltage", vector_index=5, retry=0, params={})  # beyond 2
    bus.emit(ev.VECTOR_STARTED, step_path="nowhere/y", vector_index=None, retry=0, params={})  # unknown step
    bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
    bus.flush()
    (path,) = m.written
    got = [(r["step_path"], r["vector_index"], r["step_index"]) for r in pq.read_table(path).to_pylist()
           if r["record_type"] == "step"]
    assert got == [
        ("setup/1", 0, 0),
        ("main/output_voltage", 0, 1), ("main/output_voltage", 1, 1),
        ("extra/x", 0, 1), ("extra/x", 1, 1),
        ("main/output_voltage", 5, 1),
        ("main/firmware", 0, 2),
        ("nowhere/y", None, None),
    ]


def test_measurement_without_optional_fields(tmp_path: Path) -> None:
    """A measurement event that omits its optional fields (not the engine's) still becomes a row."""
    m = RunMaterializer(tmp_path)
    bus, _ = make_bus(m)
    start_session(bus)
    bus.run_id = "r-min"
    bus.emit(ev.RUN_STARTED, dut_serial="S")
    bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": "main/a", "vector_index": 0, "retry": 0,
                    "name": "v", "outcome": "done", "marginal": False})
    bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
    bus.flush()
    (path,) = m.written
    (row,) = rows(path, "SELECT * FROM t WHERE record_type = 'measurement'")
    assert (row["measurement_name"], row["measurement_value"], row["measurement_units"], row["instrument_name"]) == (
        "v", None, None, None)
    assert row["step_path"] == "main/a" and row["vector_index"] == 0


@pytest.mark.parametrize("caller", ["pluggy", "direct"])
def test_run_ended_is_durable_before_the_seal_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caller: str) -> None:
    """Registered in the engine's order (event store first, so pluggy would call the materializer
    first), the event store still has ``run.ended`` on disk, fsync-ed, when the seal begins."""
    import pluggy

    from litmus_seq import hookspecs
    from litmus_seq.plugins import direct_caller

    pm = pluggy.PluginManager("litmus_seq")
    pm.add_hookspecs(hookspecs)
    store, live = EventStore(tmp_path), RunMaterializer(tmp_path)
    pm.register(store)
    pm.register(live)
    synced: list[int] = []

    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    seen_at_seal: list[tuple[list[str], int]] = []
    real_write = row_writer.RunWriter.write

    def probe(self: Any) -> Path:
        types = [e["event_type"] for e in read_events(store.paths[0])]
        seen_at_seal.append((types, len(synced)))
        return real_write(self)

    monkeypatch.setattr(row_writer.RunWriter, "write", probe)
    deliver = pm.hook.litmus_seq_events if caller == "pluggy" else direct_caller(pm.hook.litmus_seq_events)
    bus = ev.EventBus("sess-1", deliver)
    start_session(bus)
    run_events(bus, run_id="r-1")
    ((types, fsyncs),) = seen_at_seal
    assert types[-1] == ev.RUN_ENDED and fsyncs >= 1
    assert len(live.written) == 1
    store.close()
