"""``litmus-seq init`` (litmus_seq/cli/init.py): a new project that validates and runs at once."""

from __future__ import annotations

import os
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import duckdb
import pytest

from litmus_seq.cli.init import STATION_KINDS, project_files
from litmus_seq.cli.main import main
from litmus_seq.errors import EXIT_USAGE

REPO = Path(__file__).resolve().parent.parent


def cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITMUS_DEBUG", "LITMUS_DATA_DIR")}
    return subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("station", list(STATION_KINDS))
def test_init_then_validate_then_run_passes_in_a_fresh_folder(tmp_path: Path, station: str) -> None:
    made = cli("init", "board", "--station", station, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "board"
    assert "litmus-seq run sequences/board_fct.yaml --dut SN0001" in made.stdout
    checked = cli("validate", ".", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok: sequences/board_fct.yaml (sequence)" in checked.stdout
    assert "ok: stations/bench.yaml (station)" in checked.stdout
    ran = cli("run", "sequences/board_fct.yaml", "--dut", "X1", "--yes", cwd=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    files = list((project / "data" / "runs").rglob("*.parquet"))
    assert len(files) == 1
    rows = duckdb.sql(f"""
        SELECT step_name, measurement_name, measurement_value, limit_high, measurement_outcome, run_outcome,
               dut_serial, instrument_name
        FROM read_parquet('{files[0]}') WHERE record_type = 'measurement'
    """).fetchall()
    assert {r[5] for r in rows} == {"passed"} and {r[6] for r in rows} == {"X1"}
    assert {r[4] for r in rows} == {"passed"}
    names = [(r[0], r[1]) for r in rows]
    assert names.count(("rails", "rail_3v3")) == 2  # two vectors
    assert names.count(("line_sweep", "input_power")) == 3  # the sweep's three points
    assert ("firmware", "fw_version") in names and ("led_check", "led_check") in names
    current_high = sorted(r[3] for r in rows if r[1] == "input_current")
    assert current_high == [0.285, 0.475]  # the product's band tightens the limit at 12 V (5 % guardband)
    roles = {r[7] for r in rows if r[1] == "rail_3v3"}
    assert roles == {"dmm"}


def test_the_skeleton_has_what_a_project_needs() -> None:
    files = project_files("my board", "sim")
    for rel in (".gitignore", "README.md", "litmus.yaml", "checks/__init__.py", "checks/board.py",
                "products/board.yaml", "sequences/board_fct.yaml", "stations/bench.yaml", "stations/bench_sim.yaml",
                "schemas/sequence.schema.json", "schemas/product.schema.json", "schemas/station.schema.json",
                "schemas/project.schema.json", "schemas/fragment.schema.json"):
        assert rel in files, rel
    assert "data/" in files[".gitignore"].splitlines()
    assert files["litmus.yaml"].splitlines()[0] == "# yaml-language-server: $schema=schemas/project.schema.json"
    for rel, kind in (("products/board.yaml", "product"), ("sequences/board_fct.yaml", "sequence"),
                      ("stations/bench.yaml", "station")):
        assert files[rel].splitlines()[0] == f"# yaml-language-server: $schema=../schemas/{kind}.schema.json", rel
    assert 'name: "my board"' in files["litmus.yaml"]
    assert files["README.md"].startswith("# my board\n")
    assert "{{" not in "".join(files.values())
    seq = files["sequences/board_fct.yaml"]
    for feature in ("vectors:", "sweep:", "prompt:", "cleanup:", "python: checks.board:input_power"):
        assert feature in seq, feature
    assert "driver: mock" in project_files("x", "mock")["stations/bench.yaml"]
    assert "stations/bench_sim.yaml" not in project_files("x", "mock")


def test_every_template_is_shipped_as_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["litmus_seq"]
    templates = REPO / "litmus_seq" / "templates"
    shipped = [p for p in templates.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert shipped
    for path in shipped:
        rel = path.relative_to(REPO / "litmus_seq").as_posix()
        assert any(fnmatch(rel, pat.replace("**/", "*")) for pat in patterns), rel


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    (tmp_path / "stations").mkdir()
    (tmp_path / "stations" / "bench.yaml").write_text("id: mine\n")
    (tmp_path / "notes.txt").write_text("kept\n")
    assert main(["init", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"{tmp_path.as_posix()}/README.md: exists; init never overwrites")
    assert err[1].startswith(f"{tmp_path.as_posix()}/stations/bench.yaml: exists")
    assert (tmp_path / "README.md").read_text() == "mine\n"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "README.md", "notes.txt", "stations", "stations/bench.yaml"]  # nothing written


def test_init_into_a_folder_holding_other_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("kept\n")
    assert main(["init", str(tmp_path), "--station", "mock"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "kept\n"
    assert (tmp_path / "sequences" / "board_fct.yaml").is_file()


def test_a_write_failing_half_way_leaves_the_folder_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "schemas").write_text("a file where the schemas folder goes\n")
    assert main(["init", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "schemas" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["schemas"]


def test_init_into_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["init", str(tmp_path / "f")]) == EXIT_USAGE
    assert "is a file" in capsys.readouterr().err


def test_unknown_station_kind_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path), "--station", "real"]) == EXIT_USAGE
    assert "'real' is not one of 'mock', 'sim'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
