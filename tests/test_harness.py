"""``litmus_seq.Harness``: the sidecar config, vectors and retries, and runs it records through the
run recorder into the real stores (a copy of the example project on the simulated bench)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from litmus_seq.errors import ConfigError
from litmus_seq.harness import Harness, HarnessConfig, Vector, load_config, vectors_of

REPO = Path(__file__).resolve().parent.parent


def rows(data_dir: Path, where: str = "true") -> list[dict[str, Any]]:
    import duckdb

    glob = (data_dir / "runs" / "**" / "*.parquet").as_posix()
    rel = duckdb.connect().sql(f"SELECT * FROM read_parquet('{glob}', union_by_name = true) WHERE {where} "
                               "ORDER BY step_index, vector_index, vector_retry, measurement_timestamp")
    return rel.to_arrow_table().to_pylist()


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LITMUS_DATA_DIR", raising=False)
    monkeypatch.chdir(example_project)
    return example_project


# --------------------------------------------------------------------------- config and vectors


def test_config_vectors_expand_like_a_sequence_step() -> None:
    vectors = vectors_of(load_config({"vectors": {"vin": [5.0, 12.0], "load": [0.1, 0.5]}}))
    assert [v.params for v in vectors] == [{"vin": 5.0, "load": 0.1}, {"vin": 5.0, "load": 0.5},
                                           {"vin": 12.0, "load": 0.1}, {"vin": 12.0, "load": 0.5}]
    assert [v.index for v in vectors] == [0, 1, 2, 3]
    assert [v.changed("vin") for v in vectors] == [True, False, True, False]
    assert [v.changed("load") for v in vectors] == [True, True, True, True]
    zipped = vectors_of(load_config({"vectors": {"expand": "zip", "vin": [5, 12], "load": [1, 2]}}))
    assert [dict(v) for v in zipped] == [{"vin": 5, "load": 1}, {"vin": 12, "load": 2}]
    swept = vectors_of(load_config({"sweep": {"vin": {"start": 4.5, "stop": 5.0, "step": 0.25}}}))
    assert [v["vin"] for v in swept] == [4.5, 4.75, 5.0]
    assert [v.params for v in vectors_of(HarnessConfig())] == [{}]  # no vectors: one, without params


def test_explicit_vectors_keep_their_limits() -> None:
    cfg = load_config({"vectors": [{"vin": 5.0, "limits": {"vin_readback": {"low": 4.9, "high": 5.1}}},
                                   {"vin": 12.0}]})
    first, second = vectors_of(cfg)
    assert first["vin"] == 5.0 and first.limits["vin_readback"].high == 5.1
    assert second.limits == {}


def test_vector_names_a_missing_parameter() -> None:
    v = Vector(3, {"vin": 5.0, "load": 0.1})
    with pytest.raises(KeyError, match=r"vector 3 has no parameter 'vn' \(did you mean 'vin'\?\)"):
        v["vn"]


def test_config_mistakes_are_one_line_each() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"vectors": {"vin": [5.0]}, "retyr": {"max_retries": 1}, "limits": {"x": {"hihg": 1}}})
    lines = info.value.lines()
    assert any(line.startswith("config: retyr: unknown key") and "did you mean 'retry'" in line for line in lines)
    assert any("limits.x.hihg" in line and "did you mean 'high'" in line for line in lines)
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(["vectors"])  # type: ignore[arg-type]


def test_sidecar_file_errors_point_at_the_line(tmp_path: Path) -> None:
    sidecar = tmp_path / "sidecar.yaml"
    sidecar.write_text("vectors: {vin: [5.0]}\nretry: {max_retries: -1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(sidecar)
    assert info.value.lines()[0].startswith(f"{sidecar}:2:")
    sidecar.write_text("vectors: {vin: [5.0, 5e-3]}\nretry: {max_retries: 2, delay_s: 0}\n")
    cfg = load_config(sidecar)
    assert [v["vin"] for v in vectors_of(cfg)] == [5.0, 0.005] and cfg.retry.max_retries == 2


# --------------------------------------------------------------------------- runs


def test_harness_run_judges_spec_limits_with_guardband_and_stamps_traceability(project: Path) -> None:
    with Harness(station="sim_bench", product="power_board", dut_serial="SN-H1", guardband_pct=10,
                 config={"vectors": {"vin": [5.0, 12.0]}}, operator="jane", phase="production") as h:
        dmm, psu = h.instruments["dmm"], h.instruments["psu"]
        assert h.retry_config.max_retries == 0
        with h.step("output_voltage", description="rail at two inputs"):
            for vector in h.vectors:
                with h.run_vector(vector):
                    assert h.current_vector is vector
                    psu.set_voltage(vector["vin"])
                    assert h.measure("rail_3v3", dmm.measure_dc_voltage(), instrument="dmm") == "passed"
        assert h.current_vector is None
    assert h.outcome == "passed" and h.result.parquet is not None
    assert h.result.parquet.parent.parent == project / "data" / "runs"  # litmus.yaml's data_dir
    got = rows(project / "data", "record_type = 'measurement'")
    assert [(r["vector_index"], r["in_vin"]) for r in got] == [(0, 5.0), (1, 12.0)]
    for r in got:
        assert (r["limit_low"], r["limit_high"], r["limit_spec_low"], r["limit_spec_high"]) == (3.1515, 3.4485, 3.135, 3.465)
        assert r["limit_guardband_pct"] == 10 and r["limit_source"] == "spec"
        assert r["spec_ref"] == "products.power_board.rail_3v3" and r["dut_pin"] == "J2.1 VOUT"
        assert (r["instrument_name"], r["instrument_model"], r["instrument_serial"]) == ("dmm", "DMM-6500", "SIM-DMM-0001")
        assert r["instrument_cal_due"] == "2031-01-15" and r["instrument_cal_certificate"] == "CAL-SIM-DMM-0001"
        assert (r["dut_serial"], r["operator_name"], r["test_phase"], r["station_id"]) == ("SN-H1", "jane", "production", "sim_bench")
        assert r["product_id"] == "power_board" and r["measurement_units"] == "V"


def test_failing_measurement_fails_the_run_and_is_a_failed_row(project: Path) -> None:
    with Harness(station="sim_bench", product="power_board", dut_serial="SN-H2") as h:
        with h.step("rail"):
            assert h.measure("rail_3v3", 3.7, units="V") == "failed"
            assert h.measure("rail_3v3_again", 1.0, limit={"low": 0.5, "high": 1.5}) == "passed"
    assert h.outcome == "failed"
    m = rows(project / "data", "record_type = 'measurement'")
    assert [(r["measurement_name"], r["measurement_outcome"]) for r in m] == [("rail_3v3", "failed"), ("rail_3v3_again", "passed")]
    # guardband from litmus.yaml (5 %) when none is given
    assert m[0]["limit_guardband_pct"] == 5 and m[1]["limit_source"] == "step"


def test_limit_resolution_order_vector_then_harness_then_spec(project: Path) -> None:
    config = {"vectors": [{"vin": 5.0, "limits": {"rail_3v3": {"low": 3.0, "high": 3.2}}}, {"vin": 12.0}],
              "limits": {"input_current": {"high": 0.2, "units": "A"}}}
    with Harness(station="sim_bench", product="power_board", dut_serial="SN-H3", config=config) as h:
        with h.step("s"):
            for v in h.vectors:
                with h.run_vector(v):
                    h.measure("rail_3v3", 3.3)
                    h.measure("input_current", 0.1)
                    h.measure("unknown_thing", 42)
        assert h.resolve_limit("rail_3v3").source == "spec"  # no vector open: the spec
    m = {(r["vector_index"], r["measurement_name"]): r for r in rows(project / "data", "record_type = 'measurement'")}
    assert m[(0, "rail_3v3")]["limit_source"] == "vector" and m[(0, "rail_3v3")]["measurement_outcome"] == "failed"
    assert m[(1, "rail_3v3")]["limit_source"] == "spec" and m[(1, "rail_3v3")]["measurement_outcome"] == "passed"
    assert m[(1, "input_current")]["limit_source"] == "step" and m[(1, "input_current")]["limit_high"] == 0.2
    assert m[(0, "unknown_thing")]["measurement_outcome"] == "done" and m[(0, "unknown_thing")]["limit_comparator"] is None
    # an explicit limits= replaces config["limits"] (no merge)
    with Harness(station="sim_bench", product="power_board", dut_serial="SN-H3b", config=config,
                 limits={"rail_3v3": {"low": 1, "high": 2}}) as h2:
        assert set(h2.limits) == {"rail_3v3"}


def test_loose_measure_gets_a_step_named_after_it(project: Path) -> None:
    with Harness(station="sim_bench", product="power_board", dut_serial="SN-H4") as h:
        h.measure("fw_version", "1.4.2")
        h.measure("self_test", True)
    steps = rows(project / "data", "record_type = 'step'")
    assert [(r["step_path"], r["step_outcome"]) for r in steps] == [("main/fw_version", "passed"), ("main/self_test", "passed")]
    assert h.outcome == "passed"


def test_run_all_retries_and_yields_pairs(project: Path) -> None:
    readings = iter([3.9, 3.3, 3.3])  # the first attempt of vector 0 fails, its retry passes

    def rail(vector: Vector) -> float:
        return next(readings)

    def pairs(vector: Vector) -> Any:
        yield "rail_3v3", 3.3
        yield "input_current", 0.1

    with Harness(station="sim_bench", product="power_board", dut_serial="SN-H5",
                 config={"vectors": {"vin": [5.0, 12.0]}, "retry": {"max_retries": 2},
                         "limits": {"rail_3v3": {"low": 3.2, "high": 3.4}}}) as h:
        assert h.run_all(rail, step_name="rail") == "passed"
        h.limits.clear()
        assert h.run_all(pairs) == "passed"
    got = rows(project / "data", "record_type = 'measurement'")
    rail_rows = [(r["vector_index"], r["vector_retry"], r["measurement_outcome"]) for r in got if r["step_path"] == "main/rail"]
    assert rail_rows == [(0, 0, "failed"), (0, 1, "passed"), (1, 0, "passed")]
    assert {r["measurement_name"] for r in got if r["step_path"] == "main/test"} == {"rail_3v3", "input_current"}
    assert h.outcome == "passed"


def test_exception_in_a_step_is_recorded_errored_and_the_next_step_runs(project: Path) -> None:
    with Harness(station="sim_bench", product="power_board", dut_serial="SN-H6") as h:
        with h.step("broken"):
            raise ZeroDivisionError("bad fixture math")
        with h.step("fine"):
            h.measure("fw_version", "1.4.2")
    assert h.outcome == "errored"
    steps = {r["step_path"]: r for r in rows(project / "data", "record_type = 'step'")}
    assert steps["main/broken"]["step_outcome"] == "errored"
    assert "ZeroDivisionError: bad fixture math" in steps["main/broken"]["step_error"]
    assert steps["main/fine"]["step_outcome"] == "passed"


def test_exception_out_of_the_with_block_seals_errored_and_propagates(project: Path) -> None:
    with pytest.raises(RuntimeError, match="operator code"):
        with Harness(station="sim_bench", dut_serial="SN-H7") as h:
            h.measure("x", 1.0)
            raise RuntimeError("operator code")
    assert h.outcome == "errored" and "RuntimeError: operator code" in (h.result.error or "")
    run = rows(project / "data", "record_type = 'run'")[0]
    assert run["run_outcome"] == "errored" and "operator code" in run["run_error"]


def test_ctrl_c_terminates(project: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with Harness(station="sim_bench", dut_serial="SN-H8") as h:
            with h.step("long"):
                raise KeyboardInterrupt
    assert h.outcome == "terminated"
    assert rows(project / "data", "record_type = 'step'")[0]["step_outcome"] == "terminated"


def test_planned_steps_that_never_ran_are_rows_and_the_run_cannot_pass(project: Path) -> None:
    with Harness(station="sim_bench", dut_serial="SN-H9", steps=["a", "b", "c"]) as h:
        with h.step("a"):
            h.measure("x", 1.0)
    assert h.outcome == "errored" and "planned step" in (h.result.error or "")
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert steps == {"main/a": "done", "main/b": None, "main/c": None}


def test_context_scopes_become_in_and_out_columns(project: Path) -> None:
    with Harness(station="sim_bench", dut_serial="SN-H10", config={"vectors": {"vin": [5.0]}}) as h:
        h.run_context.configure("fixture_rev", "B")
        with h.step("s"):
            h.context.configure("load_a", 0.5)
            for v in h.vectors:
                with h.run_vector(v):
                    assert h.context.scope == "vector"
                    h.context.observe("temp_c", 24.8)
                    h.context.set_observations({"humidity": 40})
                    h.context.measure("x", 1.0)
            assert h.context.scope == "step"
        assert h.context.scope == "run"
    m = rows(project / "data", "record_type = 'measurement'")[0]
    assert (m["in_fixture_rev"], m["in_load_a"], m["out_temp_c"], m["out_humidity"]) == ("B", 0.5, 24.8, 40)


def test_prompt_answered_up_front_or_by_the_hook_or_not_at_all(project: Path) -> None:
    from litmus_seq import hookimpl

    class Operator:
        @hookimpl
        def litmus_seq_prompt(self, prompt: dict[str, Any]) -> Any:
            return "FX-7" if prompt["prompt_type"] == "input" else None

    with Harness(station="sim_bench", dut_serial="SN-H11", listeners=(Operator(),)) as h:
        with h.step("led"):
            assert h.prompt("LED green?", answer="yes") is True
        with h.step("fixture"):
            assert h.prompt("Fixture id?", prompt_type="input") == "FX-7"
        with h.step("unanswered"):
            assert h.ask("Anyone?") == ("errored", "no answer: no prompt handler (run on a terminal, pass "
                                        "--yes, or install a litmus_seq_prompt plugin)")
    assert h.outcome == "errored"
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert steps == {"main/led": "passed", "main/fixture": "done", "main/unanswered": "errored"}


def test_bad_station_and_product_are_config_errors(project: Path) -> None:
    with pytest.raises(ConfigError, match="station 'nope' not found"):
        Harness(station="nope", dut_serial="X")
    with pytest.raises(ConfigError, match="product"):
        Harness(station="sim_bench", product=42, dut_serial="X")
    assert not (project / "data" / "runs").exists()


def test_call_converts_nothing_and_names_a_missing_method(project: Path) -> None:
    from litmus_seq.errors import InstrumentError

    with Harness(station="sim_bench", dut_serial="SN-H12") as h:
        h.call("psu", "set_voltage", 5.0)
        assert h.call("psu", "measure_voltage") == pytest.approx(5.0)
        with pytest.raises(InstrumentError, match=r"psu.set_voltag: .* \(did you mean 'set_voltage'\?\)"):
            h.call("psu", "set_voltag", 5.0)


# --------------------------------------------------------------------------- process ends


def _script(project: Path, body: str) -> subprocess.Popen[str]:
    code = textwrap.dedent("""
        import sys, time
        from litmus_seq import Harness
    """) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LITMUS_DATA_DIR", None)
    return subprocess.Popen([sys.executable, "-c", code], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def test_harness_without_with_block_is_sealed_at_exit_and_says_so(project: Path) -> None:
    proc = _script(project, """
        h = Harness(station="sim_bench", product="power_board", dut_serial="SN-EXIT")
        h.measure("rail_3v3", 3.3)
        print(h.run_id, flush=True)
    """)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "was not closed; sealed at exit: PASSED" in err
    run = rows(project / "data", "record_type = 'run'")
    assert [(r["run_id"], r["run_outcome"]) for r in run] == [(out.strip(), "passed")]


def _wait_for_event(data_dir: Path, match: Any) -> None:
    import time

    from litmus_seq.stores.events import iter_event_files, read_events

    for _ in range(600):
        try:
            if any(match(e) for path in iter_event_files(data_dir) for e in read_events(path)):
                return
        except Exception:  # a file still being written: read it again
            pass
        time.sleep(0.1)
    raise AssertionError("the event never reached the event store")


def test_harness_killed_with_sigkill_is_recovered(project: Path) -> None:
    from litmus_seq.cli.main import main

    proc = _script(project, """
        h = Harness(station="sim_bench", product="power_board", dut_serial="SN-KILL", steps=["rail", "later"])
        with h.step("rail"):
            h.measure("rail_3v3", 3.3)
        h.start_step("later")
        h.measure("rail_3v3", 3.31)
        h.run.bus.flush()
        print("ready", flush=True)
        time.sleep(600)
    """)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    _wait_for_event(project / "data", lambda e: e.get("value") == 3.31)  # the store writes on a thread
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (project / "data" / "runs").exists()  # nothing sealed
    assert main(["recover", "--data-dir", str(project / "data")]) == 0
    got = rows(project / "data")
    run = next(r for r in got if r["record_type"] == "run")
    assert run["run_outcome"] == "aborted" and run["dut_serial"] == "SN-KILL"
    steps = {r["step_path"]: r["step_outcome"] for r in got if r["record_type"] == "step"}
    assert steps["main/rail"] == "passed"
    assert [r["measurement_value"] for r in got if r["record_type"] == "measurement"] == [3.3, 3.31]


def test_harness_dropped_without_close_is_still_sealed_and_a_failing_close_is_told(project: Path) -> None:
    proc = _script(project, """
        import litmus_seq

        class Broken:
            @litmus_seq.hookimpl
            def litmus_seq_session_finish(self, session, outcome):
                raise RuntimeError("listener broke on the way out")

        def test_once():
            h = Harness(station="sim_bench", product="power_board", dut_serial="SN-DROP", listeners=(Broken(),))
            h.measure("rail_3v3", 3.3)
            print(h.run_id, flush=True)

        test_once()  # the only reference is gone when it returns
        import gc; gc.collect()
    """)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (f"harness run {out.strip()} was not closed; sealed at exit: PASSED, but closing its session failed "
            "(RuntimeError: listener broke on the way out)") in err
    assert [(r["run_id"], r["run_outcome"]) for r in rows(project / "data", "record_type = 'run'")] == [(out.strip(), "passed")]


def test_retry_and_limits_arguments_are_checked_like_the_config(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"retry: max_retries: .*0"):
        Harness(station="sim_bench", dut_serial="X", retry={"max_retries": -1})
    with pytest.raises(ConfigError, match=r"limits.rail: low: .*number"):
        Harness(station="sim_bench", dut_serial="X", limits={"rail": {"low": "three"}})
    with pytest.raises(ConfigError, match="limits.rail: expected a limit mapping"):
        Harness(station="sim_bench", dut_serial="X", limits={"rail": 3.3})
    with Harness(station="sim_bench", dut_serial="X", retry={"max_retries": 3, "delay_s": 0}) as h:
        assert (h.retry_config.max_retries, h.retry_config.delay_s) == (3, 0)


def test_run_sequence_inside_the_harness_run(project: Path) -> None:
    (project / "sequences" / "two.yaml").write_text(
        "sequence: two\nproduct: power_board\nguardband_pct: 10\non_fail: stop\n"
        "setup:\n  - call: psu.output_on\n"
        "steps:\n"
        "  - name: rail\n    measure: rail_3v3\n    from: dmm.measure_dc_voltage\n"
        "  - name: fw\n    measure: fw_version\n    limit: {equals: '0.0.1'}\n    from: dut.read_firmware\n"
        "  - name: after\n    measure: self_test\n    from: dut.self_test\n"
        "cleanup:\n  - call: psu.output_off\n")
    with Harness(station="sim_bench", product="power_board", dut_serial="SN-SEQ", steps=["mine", "seq"]) as h:
        with h.step("mine"):
            h.measure("self_test", True)
        with h.step("seq"):
            assert h.run_sequence(project / "sequences" / "two.yaml") == "failed"
        with pytest.raises(ConfigError, match="no such sequence file"):
            h.run_sequence(project / "sequences" / "nope.yaml")
    assert h.outcome == "failed"  # the run's own planned steps all ran: rolled up, not errored
    steps = {r["step_path"]: r["step_outcome"] for r in rows(project / "data", "record_type = 'step'")}
    assert steps == {"main/mine": "passed", "main/seq": "failed", "main/seq/setup/1": "done",
                     "main/seq/main/rail": "passed", "main/seq/main/fw": "failed", "main/seq/cleanup/1": "done"}
    rail = rows(project / "data", "measurement_name = 'rail_3v3'")[0]
    assert rail["limit_guardband_pct"] == 10 and rail["limit_low"] == 3.1515  # the sequence's guardband
