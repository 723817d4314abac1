"""A new user's mistakes on the command line: each ends in one clear line and the right exit code.

Every case asserts the exit code, where the message points (file:line:col where a file is
involved), a fragment of what it says, and that no traceback reaches the user. A few go through
a real ``python -m litmus_seq.cli.main`` process, where nothing (pytest's capture, an in-process
``main``) can hide what a terminal would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from litmus_seq.cli.main import main
from litmus_seq.errors import EXIT_ERRORED, EXIT_TERMINATED, EXIT_USAGE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    return code, out, err


def proc(*argv: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "LITMUS_DEBUG"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "litmus_seq.cli.main", *argv],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
    )


@pytest.fixture
def project(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(example_project)
    monkeypatch.delenv("LITMUS_DATA_DIR", raising=False)
    return example_project


# --------------------------------------------------------------------------- wrong files


@pytest.mark.parametrize(
    ("argv", "prefix", "fragment"),
    [
        (["plan", "products/power_board.yaml"], "products/power_board.yaml:5:1: ",
         "this is a product spec, not a sequence"),
        (["plan", "stations/mock_bench.yaml", "--json"], "stations/mock_bench.yaml:4:1: ",
         "this is a station, not a sequence"),
        (["plan", "litmus.yaml"], "litmus.yaml:3:1: ", "this is the project configuration"),
        (["plan", "sequences/common/self_test.yaml"], "sequences/common/self_test.yaml:5:1: ",
         "this is a fragment, not a sequence"),
        (["plan", "sequences/smoke.yaml", "--station", "products/power_board.yaml"],
         "products/power_board.yaml:5:1: ", "this is a product spec, not a station"),
        (["run", "stations/sim_instruments.yaml"], "stations/sim_instruments.yaml:",
         "this is a pyvisa-sim definition file, not a sequence"),
    ],
)
def test_wrong_kind_of_file_is_one_line(project: Path, capsys: pytest.CaptureFixture[str],
                                        argv: list[str], prefix: str, fragment: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    assert len(err.strip().splitlines()) == 1, err  # not one "unknown key" line per key
    assert err.startswith(prefix) and fragment in err, err


def test_including_a_whole_sequence_names_the_included_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = project / "sequences" / "power_board_fct.yaml"
    seq.write_text(seq.read_text().replace("include: sequences/common/self_test.yaml",
                                           "include: sequences/smoke.yaml"))
    code, _, err = run(capsys, "validate", "sequences/power_board_fct.yaml")
    assert code == EXIT_USAGE
    assert "sequences/smoke.yaml:4:1: this is a sequence, not a fragment" in err


def test_validate_a_python_file_beside_a_folder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "sequences", "checks/power.py")
    assert code == EXIT_USAGE
    assert "ok: sequences/smoke.yaml (sequence)" in out  # the folder's files are checked
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("checks/power.py:") and "not a YAML file (a .py file)" in lines[0]


# --------------------------------------------------------------------------- hostile YAML


def _bomb(levels: int = 9) -> str:
    lines = ["sequence: bomb", "version: 1", "variables:",
             "  s0: &g0 {name: a, measure: x, from: dut.read_firmware}"]
    for i in range(1, levels):
        lines.append(f"  g{i}: &g{i} {{group: g{i}, steps: [{', '.join([f'*g{i - 1}'] * 10)}]}}")
    lines.append(f"steps: [*g{levels - 1}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_quickly_in_a_real_process(project: Path) -> None:
    """Valid-shaped nested aliases (10**8 steps): must not hang or eat the memory."""
    (project / "sequences" / "bomb.yaml").write_text(_bomb())
    start = time.perf_counter()
    p = proc("validate", "sequences/bomb.yaml", cwd=project, timeout=30)
    assert time.perf_counter() - start < 20
    assert p.returncode == EXIT_USAGE, p.stderr
    assert "Traceback" not in p.stderr
    line = p.stderr.strip()
    assert line.startswith("sequences/bomb.yaml:") and "billion laughs" in line, line


def test_ordinary_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    from litmus_seq.loader import MAX_ALIASED_VALUES, load_document

    steps = "\n".join(f"  - {{<<: *step, name: s{i}}}" for i in range(2000))
    f = tmp_path / "x.yaml"
    f.write_text("defs:\n  s: &step {measure: m, from: dut.read, limit: {low: 1, high: 2}}\nsteps:\n" + steps + "\n")
    doc = load_document(f)
    assert len(doc.data["steps"]) == 2000 and doc.data["steps"][-1]["limit"] == {"low": 1, "high": 2}
    assert 2000 * 4 < MAX_ALIASED_VALUES  # the sharing above is far below the bomb limit


def test_huge_numbers_are_short_clear_messages(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digits = "9" * 5000
    (project / "sequences" / "long.yaml").write_text(f"sequence: s\nversion: {digits}\nsteps: []\n")
    (project / "sequences" / "big.yaml").write_text(
        "sequence: s\nsteps:\n  - name: a\n    measure: x\n    from: dut.read_firmware\n"
        f"    limit: {{low: {'9' * 400}}}\n")
    code, _, err = run(capsys, "validate", "sequences/long.yaml", "sequences/big.yaml")
    assert code == EXIT_USAGE
    lines = err.splitlines()
    assert lines[0] == "sequences/long.yaml:2:10: number with 5,000 digits is too long to be a value; check for a paste error"
    assert lines[1].startswith("sequences/big.yaml:6:18: steps[0].limit.low: number too large")
    assert all(len(line) < 200 for line in lines), lines


def test_vector_product_too_large_is_refused_before_expanding(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = ", ".join(str(i) for i in range(1000))
    (project / "sequences" / "cube.yaml").write_text(
        f"sequence: c\nsteps:\n  - name: s\n    vectors:\n      a: [{values}]\n      b: [{values}]\n"
        f"      c: [{values}]\n    measure: x\n    from: dut.read_firmware\n")
    start = time.perf_counter()
    code, _, err = run(capsys, "plan", "sequences/cube.yaml", "--json")
    assert time.perf_counter() - start < 10
    assert code == EXIT_USAGE
    assert err.startswith("sequences/cube.yaml:5:7: steps[0].vectors: vectors expand to 1,000,000,000 vectors")


# --------------------------------------------------------------------------- stations and drivers


def test_validate_reports_unknown_driver_on_the_station_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = project / "stations" / "sim_bench.yaml"
    st.write_text(st.read_text().replace("driver: scpi.dmm", "driver: scpi.dmmm"))
    code, _, err = run(capsys, "validate", "sequences/power_board_fct.yaml", "stations/sim_bench.yaml")
    assert code == EXIT_USAGE
    (line,) = err.splitlines()
    # (installed plugins' drivers, if any, are listed too)
    assert line.startswith("stations/sim_bench.yaml:15:13: instruments.dmm.driver: unknown driver 'scpi.dmmm' "
                           "(did you mean 'scpi.dmm'?); registered drivers: demo.chamber, ")
    assert line.endswith("mock, scpi.dmm, scpi.eload, scpi.psu, scpi.psu_multi, scpi.scope, serial.console. "
                         "Install the plugin that provides it or fix the name (`litmus-seq plugins` lists them)")
    code, out, _ = run(capsys, "validate", "--no-plugins", "stations/sim_bench.yaml")
    assert code == 0 and "ok: stations/sim_bench.yaml" in out  # cannot tell without plugins


def test_validate_checks_plugin_drivers_and_broken_plugins(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = project / "stations" / "mock_bench.yaml"
    st.write_text(st.read_text().replace("  chamber:\n    driver: mock", "  chamber:\n    driver: demo.chamber"))
    code, out, err = run(capsys, "validate", "stations/mock_bench.yaml")
    assert (code, err) == (0, ""), err  # a plugin's driver, found through plugins/demo_chamber.py
    (project / "plugins" / "broken.py").write_text("def f(:\n    pass\n")
    code, _, err = run(capsys, "validate", "stations/mock_bench.yaml")
    assert code == EXIT_USAGE
    assert err.startswith("plugins/broken.py:1:7: local plugin failed to import: syntax error")


def test_validate_checks_roles_and_methods_against_the_station(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smoke = project / "sequences" / "smoke.yaml"
    smoke.write_text(smoke.read_text().replace("from: dut.read_firmware", "from: dutt.read_firmware")
                     .replace("from: dut.read_serial", "from: dut.read_serail"))
    fct = project / "sequences" / "power_board_fct.yaml"
    fct.write_text(fct.read_text().replace("from: dmm.measure_dc_voltage", "from: dmm.measure_dc_volts", 1))
    code, _, err = run(capsys, "validate", "sequences/smoke.yaml", "sequences/power_board_fct.yaml")
    assert code == EXIT_USAGE
    lines = err.splitlines()
    assert lines[0].startswith("sequences/smoke.yaml:14:11: role 'dutt' is not on station 'mock_bench' "
                               "(did you mean 'dut'?)")
    assert lines[1].startswith("sequences/smoke.yaml:17:11: dut.read_serail: the mock for role 'dut' has no "
                               "method 'read_serail' (did you mean 'read_serial'?)")
    assert lines[2].startswith("sequences/power_board_fct.yaml:49:15: dmm.measure_dc_volts: driver 'scpi.dmm' "
                               "has no method 'measure_dc_volts' (did you mean 'measure_dc_voltage'?)")
    assert len(lines) == 3


# --------------------------------------------------------------------------- plugins


def test_plugins_command_loads_litmus_yaml_plugins(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = project / "benchplug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "drivers.py").write_text(
        "import litmus_seq\nfrom litmus_seq.drivers import Driver\n\nclass Relay(Driver):\n    pass\n\n"
        "@litmus_seq.hookimpl\ndef litmus_seq_register_drivers(registry):\n"
        "    registry.register('bench.relay', Relay)\n")
    cfg = project / "litmus.yaml"
    cfg.write_text(cfg.read_text() + "plugins: [benchplug.drivers]\n")
    (project / "sub").mkdir()
    os.chdir(project / "sub")  # the project is found upward from the current directory
    code, out, _ = run(capsys, "plugins", "--json", "-p", "benchplug.drivers")  # listed twice: loaded once
    assert code == 0
    import json

    doc = json.loads(out)
    assert {"name": "bench.relay", "plugin": "benchplug.drivers", "class": "benchplug.drivers:Relay"} in doc["drivers"]


def test_broken_litmus_yaml_plugin_points_at_litmus_yaml(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = project / "litmus.yaml"
    text = cfg.read_text() + "plugins:\n  - nosuch_plugin_mod\n"
    cfg.write_text(text)
    line = text.splitlines().index("  - nosuch_plugin_mod") + 1
    for argv in (["plugins"], ["validate", "litmus.yaml"]):
        code, _, err = run(capsys, *argv)
        assert code == EXIT_USAGE, argv
        assert err.startswith(f"litmus.yaml:{line}:5: plugins[0]: plugin 'nosuch_plugin_mod' (litmus.yaml plugins:): "
                              "cannot import: ModuleNotFoundError"), err
        assert "-p" not in err.split(":", 4)[-1].split(";")[0]  # the user never typed -p


def test_plugins_command_reports_a_broken_litmus_yaml(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = project / "litmus.yaml"
    cfg.write_text(cfg.read_text().replace("guardband_pct:", "guardbnd_pct:"))
    code, _, err = run(capsys, "plugins")
    assert code == EXIT_USAGE
    assert err.startswith("litmus.yaml:6:1: guardbnd_pct: unknown key (did you mean 'guardband_pct'?)")


def test_plugin_with_syntax_error_in_a_real_process(project: Path) -> None:
    (project / "plugins" / "broken.py").write_text("import litmus_seq\ndef f(:\n    pass\n")
    p = proc("plugins", cwd=project)
    assert p.returncode == EXIT_USAGE
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("plugins/broken.py:2:7: local plugin failed to import: syntax error")


# --------------------------------------------------------------------------- data folders


def test_data_dir_that_is_a_file_names_its_source(project: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, "run", "sequences/smoke.yaml", "--data-dir", "litmus.yaml")
    assert code == EXIT_USAGE
    assert err.strip() == ("--data-dir: data folder litmus.yaml is a file; give a folder (existing or new) "
                           "for the stores")
    assert not (project / "data").exists()  # nothing ran, nothing written
    code, _, err = run(capsys, "runs", "--data-dir", "litmus.yaml/deeper")
    assert code == EXIT_USAGE and "cannot be created: litmus.yaml is a file" in err
    cfg = project / "litmus.yaml"
    cfg.write_text(cfg.read_text().replace("data_dir: data", "data_dir: litmus.yaml"))
    code, _, err = run(capsys, "recover")
    assert code == EXIT_USAGE and err.startswith("litmus.yaml:4:11: data folder ") and "is a file" in err
    monkeypatch.setenv("LITMUS_DATA_DIR", "checks/power.py")
    code, _, err = run(capsys, "runs")
    assert code == EXIT_USAGE and err.startswith("LITMUS_DATA_DIR: data folder checks/power.py is a file")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (a folder nothing can be created in)")
def test_run_with_uncreatable_data_dir_in_a_real_process(project: Path) -> None:
    p = proc("run", "sequences/smoke.yaml", "--data-dir", "/proc/litmus-seq-test/data", cwd=project)
    assert p.returncode == EXIT_USAGE, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("/proc/litmus-seq-test/data: cannot create the data folder (No such file or directory)")
    assert lines[0].endswith("give a writable --data-dir or set LITMUS_DATA_DIR")


def test_readers_on_missing_data(project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    code, _, err = run(capsys, "runs", "--data-dir", missing)
    assert code == EXIT_USAGE and err.startswith(f"{missing}: no such folder, so no run files")
    code, _, err = run(capsys, "recover", "--data-dir", missing)
    assert code == EXIT_USAGE and err.startswith(f"{missing}: no such folder;")
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "recover", "--data-dir", str(tmp_path / "empty"))
    assert code == EXIT_USAGE and "no event files to recover from" in err


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    from litmus_seq.stores.materializer import RunMaterializer
    from test_stores_stream import full_session

    d = tmp_path / "data"
    m = RunMaterializer(d)
    full_session(m, runs=2, session_id="s1")
    m.close()
    return d


def test_empty_run_id_and_empty_sql(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", " ", "--data-dir", str(data_dir))
    assert code == EXIT_USAGE and err.startswith("show: the run id is empty")
    code, _, err = run(capsys, "query", "", "--data-dir", str(data_dir))
    assert code == EXIT_USAGE and err.startswith("query: the SQL is empty")
    code, _, err = run(capsys, "show", "run-s1", "--data-dir", str(data_dir))
    assert code == EXIT_USAGE and "matches 2 runs" in err


def test_a_corrupt_run_file_is_skipped_with_a_warning(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = data_dir / "runs" / "2020-01-01" / "broken.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a parquet file")
    code, out, err = run(capsys, "runs", "--data-dir", str(data_dir))
    assert code == 0
    assert err.strip() == f"warning: {bad}: not a readable parquet file (" + err.split("(", 1)[1].strip()
    assert "run-s1-0" in out and "run-s1-1" in out
    code, out, _ = run(capsys, "query", "SELECT count(DISTINCT run_id) AS n FROM runs", "--data-dir", str(data_dir), "--csv")
    assert code == 0 and out.splitlines() == ["n", "2"]
    for f in data_dir.glob("runs/**/*.parquet"):
        if f != bad:
            f.write_bytes(b"junk")
    code, _, err = run(capsys, "runs", "--data-dir", str(data_dir))
    assert code == EXIT_USAGE and "none of the 3 .parquet files can be read" in err


def test_recover_warns_about_a_file_that_is_not_an_event_file(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = data_dir / "events" / "2020-01-01" / "junk.arrow"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"garbage, not Arrow IPC")
    code, _, err = run(capsys, "recover", "--data-dir", str(data_dir))
    assert code == 0
    assert f"warning: {junk}: no readable event in it" in err


# --------------------------------------------------------------------------- main() itself


def test_internal_error_is_one_line_and_exit_3(project: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import litmus_seq.cli.results as results

    def boom(_: object) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(results, "resolve_data_dir", boom)
    monkeypatch.delenv("LITMUS_DEBUG", raising=False)
    code, _, err = run(capsys, "runs")
    assert code == EXIT_ERRORED
    assert err.strip() == ("litmus-seq: internal error: RuntimeError: something broke "
                           "(set LITMUS_DEBUG=1 for the traceback)")
    monkeypatch.setenv("LITMUS_DEBUG", "1")
    assert main(["runs"]) == EXIT_ERRORED
    _, err = capsys.readouterr()
    assert "Traceback" in err and err.strip().endswith("litmus-seq: internal error: RuntimeError: something broke")


def test_ctrl_c_is_terminated(project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import litmus_seq.plan as plan_module

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(plan_module, "build_plan", interrupted)
    code, _, err = run(capsys, "plan", "sequences/smoke.yaml")
    assert code == EXIT_TERMINATED and err.strip().endswith("Aborted.")


def test_internal_error_in_a_real_process(project: Path) -> None:
    code = ("import sys, litmus_seq.cli.results as r\n"
            "r.resolve_data_dir = lambda _: 1 / 0\n"
            "from litmus_seq.cli.main import main\n"
            "sys.exit(main(['runs']))\n")
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DEBUG"}
    p = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == EXIT_ERRORED
    assert p.stderr.strip() == ("litmus-seq: internal error: ZeroDivisionError: division by zero "
                                "(set LITMUS_DEBUG=1 for the traceback)")


def test_closed_pipe_is_quiet(data_dir: Path) -> None:
    """`litmus-seq query ... | head -1`: no BrokenPipeError noise, and no hang."""
    p = subprocess.Popen(
        [sys.executable, "-m", "litmus_seq.cli.main", "query", "SELECT * FROM range(200000)",
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
