"""The plan builder: step identities, includes, vectors, limit resolution, name checks, errors."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from litmus_seq.errors import ConfigError, ExpressionError, LimitError, LitmusError
from litmus_seq.plan import Plan, PlannedStep, build_plan, load_plan

DATA = Path(__file__).parent / "data" / "plan" / "proj"

PRODUCT = """\
id: board
specs:
  rail:
    units: V
    low: 3.0
    high: 3.6
    bands:
      - when: {temperature: [50, 125]}
        low: 3.1
        high: 3.5
  current:
    units: A
    high: 0.5
  fw:
    equals: "1.0"
"""


def make(tmp_path: Path, seq: str, *, product: str | None = PRODUCT, extra: dict[str, str] | None = None) -> Path:
    """A throw-away project: products/board.yaml, sequences/s.yaml (+ extra files)."""
    (tmp_path / "products").mkdir(exist_ok=True)
    (tmp_path / "sequences").mkdir(exist_ok=True)
    if product is not None:
        (tmp_path / "products" / "board.yaml").write_text(product)
    for name, text in (extra or {}).items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    path = tmp_path / "sequences" / "s.yaml"
    path.write_text(textwrap.dedent(seq))
    return path


def plan_of(tmp_path: Path, seq: str, **kw: object) -> Plan:
    return build_plan(make(tmp_path, seq, **kw))  # type: ignore[arg-type]


def step(plan: Plan, path: str) -> PlannedStep:
    for s in plan.steps:
        if s.step_path == path:
            return s
    raise AssertionError(f"no step {path}: {[s.step_path for s in plan.steps]}")


def error_lines(exc: LitmusError) -> list[str]:
    return exc.lines()


# --------------------------------------------------------------------------- the example project


def test_example_fct_plans_cleanly(repo: Path) -> None:
    plan = build_plan(repo / "sequences" / "power_board_fct.yaml")
    assert plan.sequence_name == "power_board_fct"
    assert plan.sequence_file == "sequences/power_board_fct.yaml"
    assert plan.guardband_pct == 10
    assert plan.product.id == "power_board"
    paths = [s.step_path for s in plan.steps]
    assert paths[:4] == ["setup/1", "setup/2", "setup/3", "setup/4"]
    assert paths[-2:] == ["cleanup/1", "cleanup/2"]
    assert "main/thermal/rail_3v3_hot" in paths and "main/dut_self_test" in paths
    assert [s.step_index for s in plan.steps] == list(range(len(plan.steps)))
    for s in plan.steps:
        assert s.node_id == f"sequences/power_board_fct.yaml::{s.step_path}"
    thermal = step(plan, "main/thermal")
    assert thermal.kind == "group" and thermal.when is not None and thermal.actions == []
    children = plan.steps[thermal.step_index + 1 : thermal.subtree_end]
    assert children and all(c.parent_path == "main/thermal" for c in children)
    assert plan.steps[thermal.subtree_end].parent_path == ""
    # spliced from the include: file and line of the fragment
    st = step(plan, "main/dut_self_test")
    assert st.file == "sequences/common/self_test.yaml" and st.line == 8
    # guardbanded spec limit, band chosen by temperature
    hot = step(plan, "main/thermal/rail_3v3_hot").vectors[0].limits["rail_3v3"]
    assert hot.spec_ref == "products.power_board.rail_3v3 @ temperature=85"
    assert (hot.low, hot.high) == (pytest.approx(3.138), pytest.approx(3.462))
    ov = step(plan, "main/output_voltage")
    assert len(ov.vectors) == 4 and ov.retry_max == 1
    assert ov.vectors[0].limits["rail_3v3"].low == pytest.approx(3.1515)
    assert ov.vectors[3].limits["input_current"].high == pytest.approx(0.27)  # vin=12 band
    sweep = step(plan, "main/efficiency_sweep")
    assert [v.params["vin"] for v in sweep.vectors] == [4.5, 4.75, 5.0, 5.25, 5.5]
    assert sweep.actions[-1].python == "checks.power:efficiency"


def test_example_simulated_readings_pass_their_limits(repo: Path) -> None:
    """The sim station answers 3.30 V (dmm), 0.12 A (psu), echoes the psu setpoint; the mocks
    answer firmware 1.4.2, serial SN-SIM-0001, self test true: all must pass the plan's limits."""
    plan = build_plan(repo / "sequences" / "power_board_fct.yaml")
    readings = {"rail_3v3": 3.30, "input_current": 0.12, "fw_version": "1.4.2", "fw_family": "1.4.2",
                "serial_number": "SN-SIM-0001", "self_test": True, "chamber_temperature": 25.0}
    judged = 0
    for s in plan.steps:
        for v in s.vectors:
            for name, lim in v.limits.items():
                if name == "vin_readback":
                    value = v.params["vin"]
                elif name == "efficiency":
                    value = 3.30 * v.params["load"] / (v.params["vin"] * 0.12)
                else:
                    value = readings[name]
                assert lim.check(value)[0] == "passed", (s.step_path, v.params, name, lim)
                judged += 1
    assert judged >= 20


def test_example_smoke_plans(repo: Path) -> None:
    plan = load_plan(repo / "sequences" / "smoke.yaml")
    assert [s.step_path for s in plan.steps] == ["main/firmware", "main/serial", "main/self_test", "main/ambient"]
    assert plan.guardband_pct == 5  # from litmus.yaml
    roles = {a.role for s in plan.steps for a in s.actions if a.role}
    assert roles <= {"dut", "chamber"}


def test_example_files_start_with_schema_comment(repo: Path) -> None:
    for path in [*(repo / "sequences").rglob("*.yaml"), *(repo / "products").glob("*.yaml")]:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path


def test_plan_json_matches_design(repo: Path) -> None:
    data = build_plan(repo / "sequences" / "power_board_fct.yaml").to_json()
    assert set(data) == {"sequence", "steps"}
    for s in data["steps"]:
        assert set(s) == {"node_id", "step_path", "name", "file", "line", "vectors"}
        for v in s["vectors"]:
            assert set(v) == {"index", "params", "limits"}
            for lim in v["limits"].values():
                assert set(lim) <= {"low", "high", "equals", "units", "spec_low", "spec_high",
                                    "guardband_pct", "source"}
                assert None not in lim.values()
    ov = next(s for s in data["steps"] if s["step_path"] == "main/output_voltage")
    rail = ov["vectors"][0]["limits"]["rail_3v3"]
    assert rail["source"] == "spec" and rail["spec_low"] == 3.135 and rail["guardband_pct"] == 10
    assert rail["units"] == "V" and "equals" not in rail
    fw = next(s for s in data["steps"] if s["step_path"] == "main/firmware")
    assert fw["vectors"][0]["limits"]["fw_version"] == {"equals": "1.4.2", "source": "spec"}


# --------------------------------------------------------------------------- identities and names


def test_step_paths_and_derived_names(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        setup:
          - call: psu.output_on
          - name: named_setup
            wait: 0.01
        steps:
          - measure: rail
            from: dmm.measure_dc_voltage
          - call: psu.set_voltage
            args: {volts: 5}
          - call: psu.set_voltage
            args: {volts: 6}
          - wait: 0.01
          - do:
              - call: psu.output_on
              - measure: current
                from: psu.measure_current
        cleanup:
          - call: psu.output_off
        """)
    got = [(s.step_path, s.name, s.kind, s.parent_path, s.phase) for s in plan.steps]
    assert got == [
        ("setup/1", "psu.output_on", "call", "", "setup"),
        ("setup/named_setup", "named_setup", "wait", "", "setup"),
        ("main/rail", "rail", "measure", "", "main"),
        ("main/psu.set_voltage", "psu.set_voltage", "call", "", "main"),
        ("main/psu.set_voltage_2", "psu.set_voltage_2", "call", "", "main"),
        ("main/wait_4", "wait_4", "wait", "", "main"),
        ("main/current", "current", "measure", "", "main"),  # first measurement names the step
        ("cleanup/1", "psu.output_off", "call", "", "cleanup"),
    ]
    assert [s.line for s in plan.steps] == [3, 4, 7, 9, 11, 13, 14, 19]


def test_nested_groups(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        steps:
          - group: outer
            steps:
              - name: a
                wait: 0
              - group: inner
                steps:
                  - name: b
                    wait: 0
          - name: after
            wait: 0
        """)
    rows = [(s.step_path, s.parent_path, s.step_index, s.subtree_end) for s in plan.steps]
    assert rows == [
        ("main/outer", "", 0, 4),
        ("main/outer/a", "main/outer", 1, 2),
        ("main/outer/inner", "main/outer", 2, 4),
        ("main/outer/inner/b", "main/outer/inner", 3, 4),
        ("main/after", "", 4, 5),
    ]
    assert all(len(s.vectors) == 1 for s in plan.steps)
    assert plan.discovered_items()[3]["vector_count"] == 1


def test_duplicate_sibling_names_name_both_lines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        plan_of(tmp_path, """\
            sequence: s
            steps:
              - name: vout
                wait: 0
              - name: other
                wait: 0
              - name: vout
                wait: 0
            """)
    [line] = error_lines(info.value)
    assert re.match(r"sequences/s\.yaml:7:\d+: .*duplicate step name 'vout' \(also at sequences/s\.yaml:3", line), line


def test_same_name_in_different_groups_is_fine(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        steps:
          - group: a
            steps: [{name: x, wait: 0}]
          - group: b
            steps: [{name: x, wait: 0}]
        """)
    assert [s.step_path for s in plan.steps] == ["main/a", "main/a/x", "main/b", "main/b/x"]


# --------------------------------------------------------------------------- includes


def test_includes_are_spliced_in_place() -> None:
    plan = build_plan(DATA / "sequences" / "includes.yaml")
    rows = [(s.step_path, s.file, s.line) for s in plan.steps]
    assert rows == [
        ("main/first", "sequences/includes.yaml", 5),
        ("main/from_part", "sequences/common/part.yaml", 3),
        ("main/nested", "sequences/common/nested.yaml", 2),
        ("main/conditional", "sequences/common/part_when.yaml", 2),
    ]
    assert all(s.node_id.startswith("sequences/includes.yaml::") for s in plan.steps)
    assert plan.variables == {"limit_v": 5, "mode": "full"}
    cond = step(plan, "main/conditional")
    # the include's when: and the step's own are both required
    assert cond.when.evaluate({"mode": "full", "leak": 0.5}) is True
    assert cond.when.evaluate({"mode": "lite", "leak": 0.5}) is False
    assert cond.when.evaluate({"mode": "full", "leak": 5}) is False


def test_include_cycle_lists_the_chain() -> None:
    with pytest.raises(ConfigError) as info:
        build_plan(DATA / "sequences" / "cycle.yaml")
    [line] = error_lines(info.value)
    assert line.startswith("sequences/common/cycle_c.yaml:2:")
    assert ("include cycle: sequences/cycle.yaml -> sequences/common/cycle_b.yaml -> "
            "sequences/common/cycle_c.yaml -> sequences/common/cycle_b.yaml") in line


def test_missing_include_is_reported_at_the_include_line() -> None:
    with pytest.raises(ConfigError) as info:
        build_plan(DATA / "sequences" / "missing_include.yaml")
    [line] = error_lines(info.value)
    assert re.match(r"sequences/missing_include\.yaml:5:\d+: .*", line), line
    assert "nope.yaml" in line


# --------------------------------------------------------------------------- limit resolution


def test_limit_resolution_order(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        product: board
        guardband_pct: 10
        steps:
          - name: rails
            vectors:
              - {temperature: 25, limits: {rail: {low: 1, high: 2}}}
              - {temperature: 25}
              - {temperature: 85}
            limits:
              current: {high: 0.2}
            do:
              - measure: rail
                from: dmm.measure_dc_voltage
              - measure: current
                from: psu.measure_current
              - measure: other
                from: dmm.measure_resistance
                limit: none
              - measure: fw
                from: dut.read_firmware
                limit: {equals: "9.9"}
        """)
    v0, v1, v2 = step(plan, "main/rails").vectors
    assert (v0.limits["rail"].source, v0.limits["rail"].low) == ("vector", 1)
    assert (v1.limits["rail"].source, v1.limits["rail"].low) == ("spec", pytest.approx(3.03))
    assert v2.limits["rail"].low == pytest.approx(3.12)  # hot band 3.1-3.5 with 10 %
    assert v2.limits["rail"].spec_ref == "products.board.rail @ temperature=85"
    assert v1.limits["current"].source == "step" and v1.limits["current"].high == 0.2
    assert v1.limits["current"].units == "A"  # units fall back to the spec's
    assert "other" not in v1.limits  # `limit: none`: recorded unjudged, by choice
    assert v1.limits["fw"].equals == "9.9" and v1.limits["fw"].source == "step"
    assert step(plan, "main/rails").measurements == ("rail", "current", "other", "fw")


def test_inline_step_limit(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        product: board
        steps:
          - name: r
            measure: rail
            from: dmm.measure_dc_voltage
            limit: {nominal: 3.3, tolerance: 0.1}
        """)
    lim = plan.steps[0].vectors[0].limits["rail"]
    assert lim.source == "step" and lim.low == pytest.approx(3.2) and lim.guardband_pct is None


def test_identical_limits_are_shared_between_vectors(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        product: board
        guardband_pct: 10
        steps:
          - name: r
            vectors: {vin: [1, 2, 3], temperature: [25, 30, 85, 90]}
            measure: rail
            from: dmm.measure_dc_voltage
        """)
    lims = [v.limits["rail"] for v in plan.steps[0].vectors]
    assert len(lims) == 12
    by_temp = {}
    for v in plan.steps[0].vectors:
        by_temp.setdefault(v.params["temperature"], set()).add(id(v.limits["rail"]))
    assert all(len(ids) == 1 for ids in by_temp.values())  # vin does not select a band
    assert lims[0] is lims[4] is lims[8]  # temperature 25 at vin 1, 2, 3
    assert len({id(x) for x in lims}) == 4  # one per temperature (spec_ref names it)
    assert (lims[0].low, lims[0].high) == (lims[1].low, lims[1].high)  # same band, other spec_ref


def test_guardband_defaults_to_litmus_yaml() -> None:
    plan = build_plan(DATA / "sequences" / "uses_project_guardband.yaml")
    assert plan.guardband_pct == 20
    cold, warm = plan.steps[0].vectors
    assert (cold.limits["vout"].low, cold.limits["vout"].high) == (pytest.approx(3.4), pytest.approx(6.6))
    assert (warm.limits["vout"].low, warm.limits["vout"].high) == (pytest.approx(4.2), pytest.approx(5.8))


def test_bands_only_spec_without_match_fails_at_plan_time(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path / "proj")
    seq = tmp_path / "proj" / "sequences" / "hot_only_tmp.yaml"
    seq.write_text("sequence: h\nproduct: widget\nsteps:\n  - name: x\n    vectors: {temperature: [25, 60]}\n"
                   "    measure: hot_only\n    from: dmm.measure_dc_voltage\n")
    with pytest.raises(LimitError) as info:
        build_plan(seq)
    [line] = error_lines(info.value)
    assert re.match(r"sequences/hot_only_tmp\.yaml:5:\d+: ", line), line
    assert "no band matches (temperature=25)" in line and "products/widget.yaml:" in line


def test_runtime_resolution_for_python_measurements(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        product: board
        guardband_pct: 10
        steps:
          - name: calc
            vectors:
              - {temperature: 85, limits: {extra: {low: 7}}}
              - {temperature: 25}
            limits:
              stepwise: {high: 1}
              logged: none
            python: checks.calc:run
        """)
    s = plan.steps[0]
    assert s.kind == "python" and s.actions[0].python == "checks.calc:run"
    v85, v25 = s.vectors
    assert plan.resolve_limit(s, v85.params, "rail").spec_ref == "products.board.rail @ temperature=85"
    assert plan.resolve_limit(s, v25.params, "rail").low == pytest.approx(3.03)
    assert plan.resolve_limit(s, dict(v85.params), "extra").low == 7
    assert plan.resolve_limit(s, v25.params, "stepwise").high == 1
    assert plan.resolve_limit(s, v25.params, "logged") is None  # `limits: {logged: none}`
    # a product names the specs: a name nothing judges is an error of that measurement
    with pytest.raises(LimitError, match="'extra' has no limit.*limit=\"none\""):
        plan.resolve_limit(s, v25.params, "extra")
    with pytest.raises(LimitError, match="'rial' has no limit.*did you mean 'rail'"):
        plan.resolve_limit(s, v25.params, "rial")


# --------------------------------------------------------------------------- expressions


def test_when_and_args_are_compiled(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        variables: {settle_s: 0.02, gain: 2}
        steps:
          - name: x
            vectors: {vin: [5, 12]}
            when: "vin > 6"
            do:
              - call: psu.set_voltage
                args: {volts: "${vin * gain}", label: "vin=${vin}", fixed: 1}
              - wait: "${settle_s}"
              - wait: 0.5
        """)
    s = plan.steps[0]
    assert s.when.evaluate({"vin": 12}) is True
    call, wait, fixed = s.actions
    assert (call.role, call.method) == ("psu", "set_voltage")
    assert call.render_args({"vin": 5, "gain": 2}) == {"volts": 10, "label": "vin=5", "fixed": 1}
    assert wait.wait_seconds({"settle_s": 0.02}) == 0.02
    assert fixed.args is None and fixed.wait_seconds({}) == 0.5


def test_unknown_name_in_when_is_located_with_hint(tmp_path: Path) -> None:
    with pytest.raises(ExpressionError) as info:
        plan_of(tmp_path, """\
            sequence: s
            variables: {temp: 25}
            steps:
              - name: x
                when: "tempx > 50"
                wait: 0
            """)
    [line] = error_lines(info.value)
    assert re.match(r"sequences/s\.yaml:5:\d+: steps\[0\]\.when: unknown name 'tempx' \(did you mean 'temp'\?\)", line), line


def test_names_must_be_declared_earlier(tmp_path: Path) -> None:
    text = """\
        sequence: s
        steps:
          - name: uses_late
            call: psu.set_voltage
            args: {volts: "${reading}"}
          - name: produce
            measure: reading
            from: dmm.measure_dc_voltage
          - name: uses_ok
            when: "reading > 1 and answer == 'y' and saved"
            call: psu.set_voltage
            args: {volts: "${reading}"}
          - name: ask
            prompt: "Answer?"
            type: input
            save_as: answer
        """
    with pytest.raises(ExpressionError) as info:
        plan_of(tmp_path, text)
    lines = error_lines(info.value)
    assert len(lines) == 3
    assert re.match(r"sequences/s\.yaml:5:\d+: steps\[0\]\.args: unknown name 'reading'", lines[0])
    assert "unknown name 'answer'" in lines[1] and "unknown name 'saved'" in lines[2]


def test_earlier_declarations_are_visible(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        steps:
          - name: ask
            prompt: "Serial?"
            type: input
          - name: save
            call: dut.read_id
            save_as: dut_id
          - name: use
            when: "ask != '' and dut_id != ''"
            do:
              - measure: v
                from: dmm.measure_dc_voltage
              - call: psu.set_voltage
                args: {volts: "${v}"}
        """)
    assert plan.steps[-1].when.names == frozenset({"ask", "dut_id"})


def test_vector_params_do_not_leak_to_other_steps(tmp_path: Path) -> None:
    with pytest.raises(ExpressionError, match="unknown name 'vin'"):
        plan_of(tmp_path, """\
            sequence: s
            steps:
              - name: a
                vectors: {vin: [1]}
                wait: 0
              - name: b
                when: "vin > 0"
                wait: 0
            """)


def test_bad_expression_syntax(tmp_path: Path) -> None:
    with pytest.raises(ExpressionError) as info:
        plan_of(tmp_path, """\
            sequence: s
            steps:
              - name: a
                call: psu.set_voltage
                args: {volts: "${vin +}"}
            """)
    assert re.match(r"sequences/s\.yaml:5:\d+: .*not a valid expression", error_lines(info.value)[0])


# --------------------------------------------------------------------------- errors


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(LitmusError) as info:
        plan_of(tmp_path, """\
            sequence: s
            product: board
            steps:
              - name: a
                sweep: {vin: {start: 5, stop: 1, step: 1}}
                measure: rail
                from: dmm.measure_dc_voltage
              - name: b
                measure: rail
                from: dmm.measure_dc_voltage
                timeout_s: 5
              - name: c
                measure: rail
              - name: d
                do: [{wait: 0}]
                call: psu.output_on
              - name: e
              - name: f
                wait: 0
                units: V
              - name: g
                measure: rail
                python: checks.power.efficiency
              - name: h
                wait: soon
              - name: i
                measure: rail
                from: dmm.measure_dc_voltage
                limits: {rial: {low: 1}}
            """)
    lines = error_lines(info.value)
    text = "\n".join(lines)
    expected = [
        (5, "goes the wrong direction"),
        (11, "'timeout_s' does not apply to a measure step"),
        (13, "needs exactly one source"),
        (16, "'call' cannot be combined with 'do:'"),
        (17, "the step does nothing"),
        (20, "'units' does not apply to a wait step"),
        (23, "python"),
        (25, "neither seconds nor a ${...} expression"),
        (29, "limits: 'rial' is not measured by this step (did you mean 'rail'?)"),
    ]
    assert len(lines) == len(expected), text
    for (line_no, message), line in zip(expected, lines):
        assert line.startswith(f"sequences/s.yaml:{line_no}:"), (line, line_no)
        assert message in line, (line, message)


def test_bad_product_spec_is_reported_in_the_product_file(tmp_path: Path) -> None:
    bad = "id: board\nspecs:\n  rail:\n    low: 3.6\n    high: 3.0\n"
    with pytest.raises(ConfigError) as info:
        plan_of(tmp_path, "sequence: s\nproduct: board\nsteps: []\n", product=bad)
    [line] = error_lines(info.value)
    assert line == "products/board.yaml:4:5: specs.rail: low 3.6 is above high 3: swap them", line


def test_a_measurement_no_limit_judges_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(LimitError) as info:
        plan_of(tmp_path, """\
            sequence: s
            product: board
            steps:
              - name: a
                vectors:
                  - {vin: 1, limits: {currnt: {low: 0}}}
                  - {vin: 2}
                do:
                  - measure: currnt
                    from: psu.measure_current
                  - measure: currnt
                    from: psu.measure_current
              - name: b
                measure: rial
                python: checks.power:rail
            """)
    assert error_lines(info.value) == [
        "sequences/s.yaml:9:18: steps[0].do[0].measure: measurement 'currnt' has no limit: product "
        "'board' has no spec 'currnt' (did you mean 'current'?); add the spec, or give the step or "
        "action a limit:, or write `limit: none` to record the value unjudged",
        "sequences/s.yaml:14:14: steps[1].measure: measurement 'rial' has no limit: product "
        "'board' has no spec 'rial' (did you mean 'rail'?); add the spec, or give the step or "
        "action a limit:, or write `limit: none` to record the value unjudged",
    ]


def test_limit_none_records_unjudged_on_purpose(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        sequence: s
        product: board
        steps:
          - name: a
            measure: serial
            from: dut.read_serial
            limit: none
          - name: b
            vectors:
              - {vin: 1, limits: {rail: none}}
              - {vin: 2}
            do:
              - measure: rail
                from: dmm.measure_dc_voltage
              - measure: noise
                from: dmm.measure_dc_voltage
            limits: {noise: none}
        """)
    assert plan.steps[0].vectors[0].limits == {}
    v1, v2 = plan.steps[1].vectors
    assert v1.limits == {}  # the vector's `none` wins over the spec
    assert list(v2.limits) == ["rail"] and v2.limits["rail"].source == "spec"


def test_without_a_product_a_measurement_without_limit_is_recorded(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "sequence: s\nsteps:\n  - measure: x\n    from: dmm.read\n", product=None)
    assert plan.steps[0].vectors[0].limits == {}


def test_guardband_inversion_error_from_sequence(tmp_path: Path) -> None:
    # the model caps guardband_pct below 100; an inverted band still cannot slip through
    with pytest.raises(LitmusError):
        plan_of(tmp_path, "sequence: s\nproduct: board\nguardband_pct: 150\nsteps: []\n")


def test_vector_limit_for_unmeasured_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vector limit for 'rial'.*did you mean 'rail'"):
        plan_of(tmp_path, """\
            sequence: s
            steps:
              - name: a
                vectors:
                  - {vin: 1, limits: {rial: {low: 1}}}
                measure: rail
                from: dmm.measure_dc_voltage
            """)


def test_zip_error_located_at_expand(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        plan_of(tmp_path, """\
            sequence: s
            steps:
              - name: a
                vectors:
                  expand: zip
                  vin: [1, 2]
                  load: [1]
                wait: 0
            """)
    assert error_lines(info.value)[0].startswith("sequences/s.yaml:5:")


def test_choice_prompt_needs_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="choices"):
        plan_of(tmp_path, "sequence: s\nsteps:\n  - name: p\n    prompt: Pick\n    type: choice\n")


def test_empty_group_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="group 'g' has no steps"):
        plan_of(tmp_path, "sequence: s\nsteps:\n  - group: g\n    steps: []\n")


# --------------------------------------------------------------------------- scale


def test_planning_ten_thousand_vectors(tmp_path: Path) -> None:
    path = make(tmp_path, """\
        sequence: big
        product: board
        guardband_pct: 10
        steps:
          - name: grid
            vectors: {vin: [5.0, 12.0], load: [0.1, 0.2, 0.3, 0.4, 0.5]}
            sweep: {temperature: {start: -40, stop: 125, step: 0.165}}
            do:
              - call: psu.set_voltage
                args: {volts: "${vin}"}
              - measure: rail
                from: dmm.measure_dc_voltage
              - measure: current
                from: psu.measure_current
        """)
    plan = build_plan(path)
    assert len(plan.steps[0].vectors) == 10010
    hot = plan.steps[0].vectors[-1].limits["rail"]
    assert (hot.low, hot.high) == (3.12, 3.48)  # the band for temperature 125, guardbanded


class _CountingStr(str):
    """A measurement name that counts how often it is compared for equality.

    A ``name in some_list`` compares against every element (pydantic hands back plain strings,
    so the names are swapped in after validation); a set or dict lookup compares almost never.
    """

    compares = 0
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        _CountingStr.compares += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)


def _operations(monkeypatch: pytest.MonkeyPatch, path: Path) -> tuple[int, int]:
    """(lines of litmus_seq executed, name comparisons) to plan ``path``: a cost that does not
    depend on the machine's speed or load."""
    import sys

    import litmus_seq
    from litmus_seq import models
    from litmus_seq.project import ProjectContext

    original = ProjectContext.load

    def counting_names(self: ProjectContext, p: Path, model: type) -> object:
        loaded = original(self, p, model)
        if isinstance(loaded, models.Product):
            loaded.specs = {_CountingStr(k): v for k, v in loaded.specs.items()}
        for item in getattr(loaded, "steps", []):
            for action in [item, *(item.do or [])]:
                if getattr(action, "measure", None):
                    action.__dict__["measure"] = _CountingStr(action.measure)
        return loaded

    monkeypatch.setattr(ProjectContext, "load", counting_names)
    package = str(Path(litmus_seq.__file__).parent)
    lines = 0

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        nonlocal lines
        if not frame.f_code.co_filename.startswith(package):
            return None
        lines += 1
        return tracer

    _CountingStr.compares = 0
    sys.settrace(tracer)
    try:
        build_plan(path)
    finally:
        sys.settrace(None)
    return lines, _CountingStr.compares


@pytest.mark.parametrize("shape", ["measurements in one step", "unnamed steps"])
def test_planning_is_linear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    """Four times the measurements (or steps) cost at most about four times the operations.

    Measured in executed lines and name comparisons, not seconds: a quadratic ``x not in list``
    (30,000 measurements in one step once took 19 s to plan) shows as ~16x here on any machine.
    """

    def project(n: int) -> Path:
        specs = "".join(f"  m{i}: {{low: 0, high: 2}}\n" for i in range(n))
        if shape == "unnamed steps":  # all measure m0: named m0, m0_2, m0_3, ...
            body = "  - measure: m0\n    from: dmm.read\n" * n
        else:
            body = "  - name: one\n    do:\n" + "".join(
                f"      - measure: m{i}\n        from: dmm.read\n" for i in range(n))
        root = tmp_path / str(n)
        root.mkdir()
        (root / "litmus.yaml").write_text("name: scale\n")
        return make(root, f"sequence: s\nproduct: board\nsteps:\n{body}",
                    product=f"id: board\nspecs:\n{specs}")

    small, large = project(150), project(600)
    _operations(monkeypatch, small)  # warm-up: models built, modules imported
    lines_small, compares_small = _operations(monkeypatch, small)
    lines_large, compares_large = _operations(monkeypatch, large)
    assert lines_large <= 4.5 * lines_small, (lines_small, lines_large)
    assert compares_large <= 4.5 * compares_small + 100, (compares_small, compares_large)


def test_plan_json_text_and_items_are_built_once(repo: Path) -> None:
    """A station runs one plan unit after unit: its JSON and step identities are made once."""
    import json

    plan = build_plan(repo / "sequences" / "power_board_fct.yaml")
    text = plan.json_text()
    assert json.loads(text) == json.loads(json.dumps(plan.to_json(), default=str))
    assert plan.json_text() is text
    items = plan.discovered_items()
    assert plan.discovered_items() is items
    assert [i["step_path"] for i in items] == [s.step_path for s in plan.steps]
