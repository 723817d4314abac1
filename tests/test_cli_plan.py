"""``litmus-seq plan``: JSON for tools, readable text off a terminal, errors as exit 4 lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from litmus_seq.cli.main import main
from litmus_seq.plan import build_plan


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_the_plan(example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = example_project / "sequences" / "power_board_fct.yaml"
    code, out, err = run(["plan", str(seq), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data == json.loads(json.dumps(build_plan(seq).to_json()))
    assert data["sequence"] == "power_board_fct"
    ov = next(s for s in data["steps"] if s["step_path"] == "main/output_voltage")
    assert ov["node_id"] == "sequences/power_board_fct.yaml::main/output_voltage"
    assert [v["params"] for v in ov["vectors"]] == [
        {"vin": 5.0, "load": 0.1}, {"vin": 5.0, "load": 0.5},
        {"vin": 12.0, "load": 0.1}, {"vin": 12.0, "load": 0.5},
    ]
    assert ov["vectors"][0]["limits"]["rail_3v3"]["low"] == pytest.approx(3.1515)


def test_text_listing(example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = example_project / "sequences" / "power_board_fct.yaml"
    code, out, err = run(["plan", str(seq)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("power_board_fct v3 (sequences/power_board_fct.yaml) · product power_board")
    assert "guardband 10%" in lines[0] and "station sim_bench" in lines[0]
    assert "rail_3v3       3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10%)" in out
    assert "x ≥ 0.792 ratio (spec ≥ 0.72, gb 10%)" in out
    assert "main/thermal  [group]  when: soak_temperature > 50" in out
    assert "  main/thermal/rail_3v3_hot  [measure]" in out  # indented under its group
    assert "[temperature=85]" in out
    assert "fw_version  x == '1.4.2'" in out
    assert "\x1b[" not in out  # no terminal escapes in a pipe


def test_max_vectors_truncates(example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = example_project / "sequences" / "power_board_fct.yaml"
    code, out, _ = run(["plan", str(seq), "--max-vectors", "2"], capsys)
    assert code == 0
    assert "… 3 more vectors" in out  # the 5-point sweep
    assert "[2] load=0.162 vin=5" not in out


def test_station_option(example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = example_project / "sequences" / "smoke.yaml"
    code, out, _ = run(["plan", str(seq), "--station", "mock_bench"], capsys)
    assert code == 0 and "station mock_bench" in out.splitlines()[0]
    code, _, err = run(["plan", str(seq), "--station", "no_such_bench"], capsys)
    assert code == 4
    assert err.startswith("--station no_such_bench: ") and "not found" in err


def test_errors_are_lines_with_locations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sequences").mkdir()
    (tmp_path / "litmus.yaml").write_text("name: t\n")  # marks the project root
    seq = tmp_path / "sequences" / "bad.yaml"
    seq.write_text("sequence: bad\nvariables: {temp: 1}\nsteps:\n  - name: a\n    when: \"tempx > 1\"\n    wait: 0\n")
    code, out, err = run(["plan", str(seq), "--json"], capsys)
    assert code == 4
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("sequences/bad.yaml:5:")
    assert "unknown name 'tempx' (did you mean 'temp'?)" in line
    assert "Traceback" not in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", str(tmp_path / "nope.yaml")], capsys)
    assert code == 4 and "no such sequence file" in err


def test_entry_point_json(example_project: Path) -> None:
    """The installed command, in a real process (lazy imports, exit code, stdout only JSON)."""
    proc = subprocess.run(
        [sys.executable, "-m", "litmus_seq.cli.main", "plan", "sequences/smoke.yaml", "--json"],
        cwd=example_project, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [s["step_path"] for s in data["steps"]] == [
        "main/firmware", "main/serial", "main/self_test", "main/ambient",
    ]
    assert data["steps"][3]["vectors"][0]["limits"]["chamber_temperature"] == {
        "low": 15, "high": 35, "units": "degC", "source": "step",
    }


def test_rich_table_on_a_terminal(example_project: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    code, out, err = run(["plan", str(example_project / "sequences" / "power_board_fct.yaml")], capsys)
    assert code == 0, err
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "┃ step" in out and "┃ limit" in out
    assert "3.1515 ≤ x ≤ 3.4485 V" in out
    assert "spec @ temperature=85" in out
    assert "when: soak_temperature > 50" in out
