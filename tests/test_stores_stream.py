"""A realistic synthetic session, emitted through the real EventBus, for the store tests.

The stores are tested against this stream rather than against the engine so that every row kind,
retry and crash shape can be produced on purpose. The tests in this module check the stream itself
against the event vocabulary (``litmus_seq.events.FIELDS``), so the store tests cannot pass on a
stream the engine would never emit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litmus_seq import events as ev

RAIL_LIMIT: dict[str, Any] = {
    "comparator": "GELE", "low": 3.1515, "high": 3.4485, "nominal": 3.3, "equals": None, "pattern": None,
    "units": "V", "marginal_low": None, "marginal_high": None, "spec_low": 3.135, "spec_high": 3.465,
    "guardband_pct": 10.0, "source": "spec", "characteristic_id": "rail_3v3",
    "spec_ref": "products.power_board.rail_3v3",
}
FW_LIMIT: dict[str, Any] = {
    "comparator": "EQ", "low": None, "high": None, "nominal": None, "equals": "1.4.2", "pattern": None,
    "units": None, "marginal_low": None, "marginal_high": None, "spec_low": None, "spec_high": None,
    "guardband_pct": None, "source": "spec", "characteristic_id": "fw_version",
    "spec_ref": "products.power_board.fw_version",
}

SEQ_FILE = "sequences/power.yaml"


def _item(index: int, path: str, name: str, kind: str, vectors: int, line: int, parent: str = "") -> dict[str, Any]:
    return {
        "node_id": f"{SEQ_FILE}::{path}", "step_path": path, "parent_path": parent, "step_index": index,
        "name": name, "kind": kind, "phase": path.split("/")[0], "file": SEQ_FILE, "line": line,
        "vector_count": vectors,
    }


ITEMS = [
    _item(0, "setup/1", "1", "call", 1, 8),
    _item(1, "main/output_voltage", "output_voltage", "measure", 2, 12),
    _item(2, "main/firmware", "firmware", "measure", 1, 30),
    _item(3, "main/thermal", "thermal", "group", 1, 34),
    _item(4, "main/thermal/soak", "soak", "measure", 1, 37, "main/thermal"),
    _item(5, "main/never_ran", "never_ran", "call", 1, 45),
    _item(6, "cleanup/1", "1", "call", 1, 50),
]


class Recorder:
    """Collects what the bus delivers and forwards it to the subscribers (stores)."""

    def __init__(self, *subscribers: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.subscribers = subscribers

    def __call__(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)
        for s in self.subscribers:
            s.litmus_seq_events(events=events)


def make_bus(*subscribers: Any, session_id: str = "sess-0001") -> tuple[ev.EventBus, Recorder]:
    rec = Recorder(*subscribers)
    return ev.EventBus(session_id, rec), rec


def start_session(bus: ev.EventBus) -> None:
    bus.emit(ev.SESSION_STARTED, station_id="bench_1", station_name="Bench 1", station_hostname="host-a",
             operator_name="ada", litmus_seq_version="0.1.0", python_version="3.11.7", platform="Linux",
             plugins=[{"name": "scpi", "version": "1.0"}])
    bus.flush()


def run_events(bus: ev.EventBus, run_id: str = "run-aaaa1111", serial: str | None = "SN 42/A",
               *, crash_after: str | None = None, custom: dict[str, Any] | None = None) -> None:
    """One run of the power-board sequence. ``crash_after`` names a point where events stop
    (``"soak_started"``: inside a vector of a step inside a group), as a kill -9 would leave it."""
    bus.run_id = run_id
    plan = {"sequence": "power_board_fct", "steps": [{"node_id": i["node_id"]} for i in ITEMS]}
    bus.emit(ev.RUN_STARTED, dut_serial=serial, dut_part_number="PB-100", dut_revision="C", dut_lot_number=None,
             product_id="power_board", product_name="Power board rev C", product_revision="C",
             station_id="bench_1", station_name="Bench 1", station_hostname="host-a", fixture_id="FX-01",
             slot_id=None, operator_id="ada", operator_name="ada", test_phase="production",
             project_name="example", sequence_name="power_board_fct", sequence_version="1",
             sequence_file=SEQ_FILE, git_commit="abc123", git_branch="main", python_version="3.11.7",
             litmus_seq_version="0.1.0",
             custom=custom if custom is not None else {"lot": "L7", "temp_c": 24, "_secret": "x"},
             plan=json.dumps(plan))
    bus.emit(ev.INSTRUMENT_CONNECTED, role="dmm", driver="scpi.dmm", resource="USB0::1::INSTR",
             identity={"manufacturer": "Keysight", "model": "34465A", "serial": "MY123", "firmware": "3.0"},
             calibration={"due": "2027-03-01", "certificate": "CAL-1234"}, mocked=False)
    bus.emit(ev.INSTRUMENT_CONNECTED, role="dut", driver="mock", resource=None,
             identity={"manufacturer": "mock", "model": "mock", "serial": None, "firmware": None},
             calibration=None, mocked=True)
    bus.emit(ev.STEPS_DISCOVERED, items=ITEMS)
    bus.flush()

    def step(item: dict[str, Any], body: Callable[[], str]) -> str:
        bus.emit(ev.STEP_STARTED, step_path=item["step_path"], step_index=item["step_index"],
                 node_id=item["node_id"], name=item["name"], kind=item["kind"], vector_count=item["vector_count"])
        outcome = body()
        bus.emit(ev.STEP_ENDED, step_path=item["step_path"], outcome=outcome, error=None)
        bus.flush()
        return outcome

    def call_step() -> str:
        path = bus_path[0]
        bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=0, retry=0, params={})
        bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=0, retry=0, outcome="done", error=None)
        return "done"

    bus_path = ["setup/1"]
    step(ITEMS[0], call_step)

    def output_voltage() -> str:
        path = "main/output_voltage"
        # vector 0: fails once, passes on retry 1
        for retry, value, outcome in ((0, 3.6, "failed"), (1, 3.31, "passed")):
            bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=0, retry=retry, params={"vin": 5, "load": 0.1})
            bus.emit(ev.CONFIGURED, step_path=path, vector_index=0, key="volts_set", value=5.0)
            bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": path, "vector_index": 0, "retry": retry,
                            "name": "rail_3v3", "value": value, "text": None, "units": "V", "outcome": outcome,
                            "marginal": False, "limit": RAIL_LIMIT, "instrument": "dmm", "channel": "CH1",
                            "dut_pin": "VOUT", "fixture_connection": "vout_dmm"})
            bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=0, retry=retry, outcome=outcome, error=None)
        # vector 1: passes, observes a scalar and a waveform URI
        bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=1, retry=0, params={"vin": 12, "load": 0.5})
        bus.emit(ev.OBSERVED, step_path=path, vector_index=1, key="temp_board", value=31.5)
        bus.emit(ev.OBSERVED, step_path=path, vector_index=1, key="ripple", value=f"channel://{run_id}/ripple")
        bus.emit(ev.OBSERVED, step_path=path, vector_index=1, key="_debug", value="hidden")
        bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": path, "vector_index": 1, "retry": 0,
                        "name": "rail_3v3", "value": 3.29, "text": None, "units": None, "outcome": "passed",
                        "marginal": True, "limit": RAIL_LIMIT, "instrument": "dmm", "channel": "CH1",
                        "dut_pin": "VOUT", "fixture_connection": "vout_dmm"})
        bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=1, retry=0, outcome="passed", error=None)
        return "passed"

    step(ITEMS[1], output_voltage)

    def firmware() -> str:
        path = "main/firmware"
        bus.emit(ev.VECTOR_STARTED, step_path=path, vector_index=0, retry=0, params={})
        bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": path, "vector_index": 0, "retry": 0,
                        "name": "fw_version", "value": None, "text": "1.4.1", "units": None, "outcome": "failed",
                        "marginal": False, "limit": FW_LIMIT, "instrument": "dut", "channel": None,
                        "dut_pin": None, "fixture_connection": None})
        bus.emit(ev.VECTOR_ENDED, step_path=path, vector_index=0, retry=0, outcome="failed",
                 error="fw_version = '1.4.1', expected '1.4.2'")
        return "failed"

    step(ITEMS[2], firmware)

    # group main/thermal with one child
    g = ITEMS[3]
    bus.emit(ev.STEP_STARTED, step_path=g["step_path"], step_index=3, node_id=g["node_id"], name="thermal",
             kind="group", vector_count=1)
    soak = ITEMS[4]
    bus.emit(ev.STEP_STARTED, step_path=soak["step_path"], step_index=4, node_id=soak["node_id"], name="soak",
             kind="measure", vector_count=1)
    bus.emit(ev.VECTOR_STARTED, step_path=soak["step_path"], vector_index=0, retry=0, params={"temperature": 85})
    bus.emit_event({"event_type": ev.MEASUREMENT, "step_path": soak["step_path"], "vector_index": 0, "retry": 0,
                    "name": "rail_3v3", "value": 3.3, "text": None, "units": "V", "outcome": "passed",
                    "marginal": False, "limit": RAIL_LIMIT, "instrument": "dmm", "channel": None,
                    "dut_pin": "VOUT", "fixture_connection": None})
    bus.flush()
    if crash_after == "soak_started":
        return
    bus.emit(ev.VECTOR_ENDED, step_path=soak["step_path"], vector_index=0, retry=0, outcome="passed", error=None)
    bus.emit(ev.STEP_ENDED, step_path=soak["step_path"], outcome="passed", error=None)
    bus.emit(ev.STEP_ENDED, step_path=g["step_path"], outcome="passed", error=None)
    bus.flush()
    # main/never_ran: on_fail stop -> never started
    bus_path[0] = "cleanup/1"
    step(ITEMS[6], call_step)
    bus.emit(ev.RUN_ENDED, outcome="failed", error="main/firmware: fw_version = '1.4.1', expected '1.4.2'")
    bus.flush()


def end_session(bus: ev.EventBus) -> None:
    bus.run_id = None
    bus.emit(ev.INSTRUMENT_DISCONNECTED, role="dmm", error=None)
    bus.emit(ev.SESSION_ENDED, outcome="failed")
    bus.flush()


def full_session(*subscribers: Any, runs: int = 1, session_id: str = "sess-0001") -> list[dict[str, Any]]:
    """session.started, ``runs`` complete runs, session.ended; returns every event emitted."""
    bus, rec = make_bus(*subscribers, session_id=session_id)
    start_session(bus)
    for i in range(runs):
        run_events(bus, run_id=f"run-{session_id}-{i}")
    end_session(bus)
    return rec.events


def write_parquet_fixture(data_dir: Path) -> list[Path]:
    """A data dir with one finished run written live by the materializer (for CLI tests)."""
    from litmus_seq.stores.materializer import RunMaterializer

    m = RunMaterializer(data_dir)
    full_session(m)
    m.close()
    return m.written


# -- the stream itself --------------------------------------------------------------------------


def _required(event_type: str) -> list[str]:
    return [f for f in ev.FIELDS[event_type] if not f.endswith("?")]


def test_stream_follows_the_event_vocabulary() -> None:
    events = full_session()
    assert events[0]["event_type"] == ev.SESSION_STARTED
    assert events[-1]["event_type"] == ev.SESSION_ENDED
    for e in events:
        assert e["event_type"] in ev.FIELDS, e
        for name in _required(e["event_type"]):
            assert name in e, (e["event_type"], name)
        assert isinstance(e["timestamp"], int)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_stream_limits_match_resolved_limit_fields() -> None:
    """The limit dicts carry exactly the keys ResolvedLimit.as_dict() has (what the engine emits)."""
    from litmus_seq.limits import _FIELDS
    from litmus_seq.stores.schema import LIMIT_KEYS

    assert tuple(LIMIT_KEYS) == tuple(_FIELDS)
    assert set(RAIL_LIMIT) == set(_FIELDS) == set(FW_LIMIT)
