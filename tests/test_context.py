"""StepContext (litmus_seq/context.py): what a ``python:`` step can read and record.

The context is exercised on a real, open :class:`~litmus_seq.engine.Session` and
:class:`~litmus_seq.engine.RunState` (real event bus, real channel store); the events it emits are
collected by a listener plugin. The full path into the parquet file is covered in
``tests/test_engine.py`` (``py_full``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from litmus_seq.context import StepContext
from litmus_seq.engine import RunState, Session
from litmus_seq.limits import Limit
from litmus_seq.plan import build_plan
from litmus_seq.project import ProjectContext
from test_engine import Collector

DATA = Path(__file__).resolve().parent / "data" / "run"


class Rig:
    """An open session, a run state on ``sequences/pass.yaml`` and the collected events."""

    def __init__(self, session: Session, state: RunState, col: Collector) -> None:
        self.session, self.state, self.col = session, state, col

    def ctx(self, step_path: str = "main/rail", vector_index: int = 0, params: dict[str, Any] | None = None,
            retry: int = 0) -> StepContext:
        return StepContext(self.state, params or {}, step_path, vector_index, retry)

    def emitted(self, event_type: str) -> list[dict[str, Any]]:
        self.session.bus.flush()  # type: ignore[union-attr]
        return [e for e in self.col.events if e["event_type"] == event_type]


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    saved = list(sys.path)
    project = tmp_path / "proj"
    shutil.copytree(DATA / "project", project, ignore=shutil.ignore_patterns("__pycache__"))
    seq = project / "sequences" / "pass.yaml"
    pctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=pctx)
    col = Collector()
    session = Session(project=pctx, station=pctx.load_station("bench"), data_dir=tmp_path / "d", listeners=[col])
    session.open()
    state = RunState(session, plan)
    session.bus.run_id = state.run_id  # type: ignore[union-attr]
    try:
        yield Rig(session, state, col)
    finally:
        session.bus.run_id = None  # type: ignore[union-attr]
        session.close()
        sys.path[:] = saved


def test_getitem_prefers_vector_parameters_then_names(rig: Rig) -> None:
    rig.state.names.update({"vin": 1.0, "settle_s": 0.5})
    ctx = rig.ctx(params={"vin": 12.0})
    assert ctx["vin"] == 12.0  # the vector's parameter shadows a variable of the same name
    assert ctx["settle_s"] == 0.5
    assert ctx.variables is rig.state.names
    with pytest.raises(KeyError):
        ctx["nope"]


def test_measure_without_limit_uses_the_plans_limit(rig: Rig) -> None:
    ctx = rig.ctx("main/rail")
    assert ctx.measure("rail", 3.3) == "passed"
    assert ctx.outcome == "passed" and ctx.failure is None
    assert ctx.measure("rail", 2.0) == "failed"
    assert ctx.outcome == "failed" and ctx.failure is not None and ctx.failure.startswith("rail = 2.0 V")
    assert "rail" in ctx._measured  # counts as recorded for the declared-measurement check
    m = rig.emitted("test.measurement")
    assert [(e["name"], e["value"], e["outcome"]) for e in m] == [("rail", 3.3, "passed"), ("rail", 2.0, "failed")]
    # pass.yaml guardbands the spec 3.0..3.6 by 10 %
    assert m[0]["limit"]["low"] == pytest.approx(3.03) and m[0]["limit"]["source"] == "spec"
    assert m[0]["dut_pin"] == "VOUT" and m[0]["step_path"] == "main/rail"


def test_measure_a_name_only_known_at_run_time_gets_the_spec_limit(rig: Rig) -> None:
    ctx = rig.ctx("main/supply", 1, params={"vin": 12.0})
    assert ctx.measure("current", 0.47) == "failed"  # spec high 0.5, guardbanded to 0.45
    (m,) = rig.emitted("test.measurement")
    assert m["limit"]["high"] == pytest.approx(0.45) and m["units"] == "A" and m["vector_index"] == 1


@pytest.mark.parametrize(("limit", "value", "outcome"), [
    ({"low": 1, "high": 2}, 1.5, "passed"),
    ({"low": 1, "high": 2}, 2.5, "failed"),
    ({"equals": "A1"}, "A1", "passed"),
    ({"matches": "^A[0-9]$"}, "B1", "failed"),
    (Limit(high=0.05), 0.01, "passed"),
])
def test_measure_with_an_explicit_limit(rig: Rig, limit: Any, value: Any, outcome: str) -> None:
    ctx = rig.ctx("main/rail")
    assert ctx.measure("extra", value, limit=limit, instrument="dmm") == outcome
    (m,) = rig.emitted("test.measurement")
    assert m["outcome"] == outcome and m["instrument"] == "dmm" and m["limit"]["source"] == "step"


def test_measure_without_any_limit_is_done_and_none_is_errored(rig: Rig) -> None:
    ctx = rig.ctx("main/rail")
    assert ctx.measure("free", 42, units="mV") == "done"
    assert ctx.outcome == "done"
    assert ctx.measure("missing", None) == "errored"
    assert ctx.outcome == "errored" and "missing" in (ctx.failure or "")
    ms = rig.emitted("test.measurement")
    assert (ms[0]["value"], ms[0]["units"], ms[0]["limit"]) == (42.0, "mV", None)


def test_string_and_bool_readings_go_to_text(rig: Rig) -> None:
    ctx = rig.ctx("main/firmware")
    assert ctx.measure("fw_version", "1.0") == "passed"
    assert ctx.measure("flag", True) == "done"
    ms = rig.emitted("test.measurement")
    assert [(e["value"], e["text"]) for e in ms] == [(None, "1.0"), (None, "true")]


def test_configure_observe_record_warn_emit_scoped_events(rig: Rig) -> None:
    ctx = rig.ctx("main/supply", 1, params={"vin": 12.0})
    ctx.configure("vset", 12.0)
    ctx.observe("temp_c", 24.5)
    ctx.observe("label", "ok")
    ctx.record("dump", {"regs": [1, 2]})
    ctx.warn("check the fixture")
    (conf,) = rig.emitted("test.configured")
    assert (conf["key"], conf["value"], conf["step_path"], conf["vector_index"]) == ("vset", 12.0, "main/supply", 1)
    obs = rig.emitted("test.observed")
    assert [(e["key"], e["value"]) for e in obs] == [("temp_c", 24.5), ("label", "ok")]
    (rec,) = rig.emitted("test.record")
    assert rec["value"] == {"regs": [1, 2]} and rec["run_id"] == rig.state.run_id
    (warn,) = rig.emitted("diagnostic.warning")
    assert warn["message"] == "check the fixture" and warn["step_path"] == "main/supply"


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0], (1, 2, 3), "numpy"], ids=["list", "tuple", "numpy"])
def test_observe_sequences_go_to_the_channel_store(rig: Rig, values: Any) -> None:
    if values == "numpy":
        np = pytest.importorskip("numpy")
        values = np.array([1.0, 2.0, 3.0])
    ctx = rig.ctx("main/rail")
    ctx.observe("wave", values)
    ctx.observe("wave", values)  # the same key twice: two channels, two URIs
    obs = rig.emitted("test.observed")
    uris = [e["value"] for e in obs]
    assert uris == [f"channel://{rig.state.run_id}/wave", f"channel://{rig.state.run_id}/wave_2"]
    for uri in uris:
        assert rig.session.channels.read(uri).to_pylist() == [1.0, 2.0, 3.0]
    started = rig.emitted("channel.started")
    ended = rig.emitted("channel.ended")
    assert [e["uri"] for e in started] == uris and [e["length"] for e in ended] == [3, 3]
    assert all(Path(e["path"]).is_file() for e in ended)


def test_instruments_are_the_sessions_connected_drivers(rig: Rig) -> None:
    assert rig.ctx().instruments is rig.session.instruments
