"""The event store: lossless round trip, flush policy (timer, seal, batch size), crash tolerance."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from litmus_seq import events as ev
from litmus_seq.errors import StoreError
from litmus_seq.stores.events import EventStore, iter_event_files, read_events, session_in_progress
from test_stores_stream import full_session, make_bus, run_events, start_session


def _read_all(paths: list[Path]) -> list[dict]:
    out: list[dict] = []
    for p in paths:
        out.extend(read_events(p))
    return out


def test_round_trip_is_lossless(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    emitted = full_session(store, runs=2)
    store.close()
    (path,) = store.paths
    assert path.parent.parent == tmp_path / "events"
    assert path.name == "sess-0001.arrow"
    assert _read_all([path]) == emitted


def test_odd_events_round_trip(tmp_path: Path) -> None:
    """Misfit types, missing and extra keys, foreign limits and new event types survive."""
    store = EventStore(tmp_path)
    bus, rec = make_bus(store, session_id="odd/id")
    bus.emit_event({"event_type": ev.MEASUREMENT, "name": 5, "value": "3.3", "limit": {"low": 1}, "extra": [1]})
    bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": "a", "vector_index": 1.5, "retry": 0, "name": "n",
                    "value": True, "text": None, "units": None, "outcome": "passed", "marginal": 1, "limit": None,
                    "instrument": None, "channel": None, "dut_pin": None, "fixture_connection": None})
    bus.emit("vendor.custom", step_path=None, vector_index="3", payload={"a": [1, 2.5, None]})
    bus.emit(ev.RECORD, key="k", value={"nested": {"x": "y"}})
    bus.flush()
    store.close()
    got = _read_all(store.paths)
    assert got == rec.events
    assert got[1]["value"] is True and got[1]["vector_index"] == 1.5 and got[1]["marginal"] == 1
    assert "step_path" not in got[0] and got[0]["extra"] == [1]
    assert store.paths[0].name == "odd_id.arrow"


def test_typed_columns_are_queryable(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    store = EventStore(tmp_path)
    full_session(store)
    store.close()
    with pa.OSFile(str(store.paths[0]), "rb") as f:
        table = pa.ipc.open_stream(f).read_all()
    meas = table.filter(pc.equal(table["event_type"], ev.MEASUREMENT))
    assert meas.num_rows == 5
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert meas["value"].type == pa.float64()
    assert meas["limit_spec_low"].to_pylist()[0] == 3.135
    assert meas["data"].null_count == meas.num_rows  # nothing left over for engine-shaped events


def test_truncated_file_yields_complete_batches(tmp_path: Path) -> None:
    store = EventStore(tmp_path, batch_size=10**9, flush_interval_s=3600)
    bus, rec = make_bus(store)
    start_session(bus)
    store.flush()
    run_events(bus, run_id="r1")  # run.ended flushes
    run_events(bus, run_id="r2")
    store.close()
    path = store.paths[0]
    whole = path.read_bytes()
    full = _read_all([path])
    assert full == rec.events
    sizes_seen = set()
    for cut in (1, 7, 100, len(whole) // 2, len(whole) - 9, len(whole) - 1):
        path.write_bytes(whole[: len(whole) - cut])
        got = list(read_events(path))  # never raises
        assert got == full[: len(got)]
        sizes_seen.add(len(got))
    assert len(sizes_seen) > 1  # cuts inside different batches lose different amounts
    path.write_bytes(whole[:5])
    assert list(read_events(path)) == []


def test_timer_flushes_without_close(tmp_path: Path) -> None:
    store = EventStore(tmp_path, flush_interval_s=0.05, batch_size=10**9)
    bus, rec = make_bus(store)
    start_session(bus)
    bus.run_id = "r1"
    bus.emit(ev.STEP_STARTED, step_path="main/a", step_index=0, node_id="x::main/a", name="a", kind="call",
             vector_count=1)
    bus.flush()
    deadline = time.monotonic() + 2.0
    got: list[dict] = []
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if store.paths:
            got = list(read_events(store.paths[0]))
            if len(got) == len(rec.events):
                break
    assert got == rec.events
    assert time.monotonic() < deadline
    store.close()


def test_run_end_flushes_synchronously_and_a_full_batch_in_the_background(tmp_path: Path) -> None:
    store = EventStore(tmp_path, flush_interval_s=3600, batch_size=10**9)
    bus, rec = make_bus(store)
    start_session(bus)
    assert store.paths == []  # buffered: no timer flush within an hour
    run_events(bus, run_id="r1")
    assert list(read_events(store.paths[0])) == rec.events  # run.ended wrote everything
    store.close()

    # a full batch wakes the writer thread (compression runs beside the engine, off its step)
    small = EventStore(tmp_path / "b", flush_interval_s=3600, batch_size=3)
    bus, rec = make_bus(small)
    for i in range(3):
        bus.emit(ev.WARNING, message=f"w{i}")
    bus.flush()
    deadline = time.monotonic() + 30  # liveness bound, not a timing assertion
    while not (small.paths and len(list(read_events(small.paths[0]))) == 3):
        assert time.monotonic() < deadline, "the full batch was never written"
        time.sleep(0.01)
    assert [e["message"] for e in read_events(small.paths[0])] == ["w0", "w1", "w2"]
    small.close()


def test_live_session_is_locked(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    bus, _ = make_bus(store)
    start_session(bus)
    store.flush()
    path = store.paths[0]
    assert session_in_progress(path)
    store.close()
    assert not session_in_progress(path)
    assert list(iter_event_files(tmp_path)) == [path]


def test_events_after_close_are_an_error(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.litmus_seq_events(events=[{"event_type": ev.WARNING, "message": "late"}])


def test_second_store_for_same_session_does_not_clobber(tmp_path: Path) -> None:
    a = EventStore(tmp_path)
    first = full_session(a)
    a.close()
    b = EventStore(tmp_path)
    second = full_session(b)
    b.close()
    assert a.paths[0] != b.paths[0] and b.paths[0].name == "sess-0001_2.arrow"
    assert _read_all(a.paths) == first and _read_all(b.paths) == second


def test_per_plan_values_are_encoded_once_and_round_trip(tmp_path: Path) -> None:
    """The discovered items repeat every run: the store encodes each list once (by identity).
    The plan text has a column of its own, stored as it is (not escaped into ``data``). What it
    reads back is still exactly what was emitted."""
    from litmus_seq.stores import events as store_mod

    store = EventStore(tmp_path, flush_interval_s=3600)
    bus, rec = make_bus(store)
    start_session(bus)
    items = [{"node_id": f"s.yaml::main/s{i}", "step_path": f"main/s{i}", "line": i} for i in range(100)]
    plan_text = '{"sequence":"x","steps":[' + ",".join(f'{{"i":{i}}}' for i in range(100)) + "]}"
    for run in ("r1", "r2"):
        bus.run_id = run
        bus.emit(ev.RUN_STARTED, dut_serial=run, plan=plan_text, custom={"lot": run})
        bus.emit(ev.STEPS_DISCOVERED, items=items)
        bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
        bus.flush()
    assert id(items) in store_mod._memo and id(plan_text) not in store_mod._memo
    store.close()
    import pyarrow as pa

    with pa.ipc.open_stream(pa.OSFile(str(store.paths[0]))) as reader:
        table = reader.read_all()
    assert table.column("plan").drop_null().to_pylist() == [plan_text, plan_text]
    assert not any(plan_text in (d or "") for d in table.column("data").to_pylist())
    back = list(read_events(store.paths[0]))
    assert back == rec.events
    started = [e for e in back if e["event_type"] == ev.RUN_STARTED]
    assert [e["custom"] for e in started] == [{"lot": "r1"}, {"lot": "r2"}]
    assert all(e["plan"] == plan_text for e in started)


@pytest.mark.parametrize("misfit", [None, ("retry", 1.5), ("value", True), ("units", 5), ("run_id", None)])
def test_columnar_groups_round_trip_constants_and_misfits(tmp_path: Path, misfit: Any) -> None:
    """A flush converts each event type as whole columns, with shortcuts for constant columns
    (one session and run id, optional fields that are all None). One value that does not fit
    its column anywhere in the group must still come back exactly as it was emitted."""
    store = EventStore(tmp_path, flush_interval_s=3600)
    bus, rec = make_bus(store)
    start_session(bus)
    bus.run_id = "run-1"
    lim = {"comparator": "GELE", "low": 3.0, "high": 3.6, "nominal": None, "equals": None, "pattern": None,
           "units": "V", "marginal_low": None, "marginal_high": None, "spec_low": None, "spec_high": None,
           "guardband_pct": None, "source": "step", "characteristic_id": None, "spec_ref": None}
    for i in range(300):
        bus.emit_event({"event_type": ev.STEP_STARTED, "step_path": f"main/s{i}", "step_index": i,
                        "node_id": f"x.yaml::main/s{i}", "name": f"s{i}", "kind": "measure", "vector_count": 1})
        e = {"event_type": ev.MEASUREMENT, "step_path": f"main/s{i}", "vector_index": 0, "retry": 0, "name": "v",
             "value": 3.0 + i / 1000, "text": None, "units": None, "outcome": "passed", "marginal": False,
             "limit": lim if i % 2 else None, "instrument": "dmm", "channel": None, "dut_pin": None,
             "fixture_connection": None}
        if misfit is not None and i == 150:
            e[misfit[0]] = misfit[1]
        bus.emit_event(e)
        bus.emit_event({"event_type": ev.STEP_ENDED, "step_path": f"main/s{i}", "outcome": "passed", "error": None})
        if misfit is not None and misfit[0] == "run_id" and i == 150:
            bus.run_id = None  # a run id that changes inside one flush
        bus.flush()
    store.close()
    back = list(read_events(store.paths[0]))
    assert back == rec.events
    assert [type(e.get("value")) for e in back if e["event_type"] == ev.MEASUREMENT][150] is (
        bool if misfit == ("value", True) else float)


def test_files_without_the_plan_column_still_read(tmp_path: Path) -> None:
    """Event files written before the ``plan`` column held the plan in ``data``: they read back
    the same."""
    import json

    import pyarrow as pa

    store = EventStore(tmp_path, flush_interval_s=3600)
    bus, rec = make_bus(store)
    start_session(bus)
    bus.run_id = "r1"
    bus.emit(ev.RUN_STARTED, dut_serial="SN1", plan='{"steps":[]}')
    bus.emit(ev.RUN_ENDED, outcome="passed", error=None)
    store.close()
    with pa.ipc.open_stream(pa.OSFile(str(store.paths[0]))) as reader:
        table = reader.read_all()
    plans, datas = table.column("plan").to_pylist(), table.column("data").to_pylist()
    old_data = [d if p is None else json.dumps({**json.loads(d), "plan": p}) for p, d in zip(plans, datas)]
    old = table.drop_columns(["plan"]).set_column(table.schema.get_field_index("data"), "data",
                                                  pa.array(old_data, pa.string()))
    path = tmp_path / "old.arrow"
    with pa.ipc.new_stream(str(path), old.schema) as writer:
        writer.write_table(old)
    assert list(read_events(path)) == rec.events
