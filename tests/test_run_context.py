"""StepContext (litmus_seq/run/context.py): what a ``python:`` step can read and record.

The context is exercised on a real, open :class:`~litmus_seq.run.Session` and
:class:`~litmus_seq.run.Run` (real event bus, real channel store); the events it emits are
collected by a listener plugin. The full path into the parquet file is covered in
``tests/test_run_executor.py`` (``py_full``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import open_session
from litmus_seq.run import Run, StepContext
from litmus_seq.stores.channels import ChannelStore
from litmus_seq.limits import Limit
from litmus_seq.plan import build_plan
from litmus_seq.project import ProjectContext
from test_run_executor import Collector

DATA = Path(__file__).resolve().parent / "data" / "run"


class Rig:
    """An open session, a run on ``sequences/pass.yaml`` (recorder), and the collected events."""

    def __init__(self, session: Any, state: Run, col: Collector, data: Path) -> None:
        self.session, self.state, self.col, self.data = session, state, col, data

    def ctx(self, step_path: str = "main/rail", vector_index: int = 0, params: dict[str, Any] | None = None,
            retry: int = 0) -> StepContext:
        run = self.state
        while run._stack:
            run.end_step(flush=False)
        run.begin_step(step_path)
        return run.begin_vector(params or {}, vector_index, retry)

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
    paths = {s.step_path: s for s in plan.steps}
    col = Collector()
    try:
        with open_session(pctx, pctx.load_station("bench"), tmp_path / "d", [col]) as session:
            run = session.start_run(product=plan.product, guardband_pct=plan.guardband_pct, names=plan.variables,
                                    limits=lambda path, params, name: plan.resolve_limit(paths[path], params, name))
            with run:
                yield Rig(session, run, col, tmp_path / "d")
    finally:
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
    assert ctx.measure("free", 42, units="mV", limit="none") == "done"
    assert ctx.outcome == "done"
    assert ctx.measure("missing", None, limit="none") == "errored"
    assert ctx.outcome == "errored" and "missing" in (ctx.failure or "")
    ms = rig.emitted("test.measurement")
    assert (ms[0]["value"], ms[0]["units"], ms[0]["limit"]) == (42.0, "mV", None)


def test_string_and_bool_readings_go_to_text(rig: Rig) -> None:
    ctx = rig.ctx("main/firmware")
    assert ctx.measure("fw_version", "1.0") == "passed"
    assert ctx.measure("flag", True, limit="none") == "done"
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
        assert ChannelStore(rig.data).read(uri).to_pylist() == [1.0, 2.0, 3.0]
    started = rig.emitted("channel.started")
    ended = rig.emitted("channel.ended")
    assert [e["uri"] for e in started] == uris and [e["length"] for e in ended] == [3, 3]
    assert all(Path(e["path"]).is_file() for e in ended)


def test_instruments_are_the_sessions_drivers_connected_on_first_use(rig: Rig) -> None:
    ctx = rig.ctx()
    assert "dmm" not in rig.session.instruments  # nothing used it yet: not connected
    assert set(ctx.instruments) == set(rig.session.station.instruments)
    dmm = ctx.instruments["dmm"]
    assert rig.session.instruments["dmm"] is dmm and ctx.instruments["dmm"] is dmm
    (connected,) = rig.emitted("fixture.instrument_connected")
    assert connected["role"] == "dmm" and connected["run_id"] == rig.state.run_id
    with pytest.raises(KeyError):
        ctx.instruments["nope"]
