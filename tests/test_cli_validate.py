"""``litmus-seq validate`` over the broken-file corpus (tests/data/invalid) and the valid project.

Every corpus file states its expected problem on its first line:
``# expect: [FILE:]LINE:COL message fragment`` (FILE defaults to the file itself, shown relative
to its project root). The command must exit 4, print that location with that fragment, and never
show a traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from litmus_seq.cli.main import main
from litmus_seq.cli.validate import detect_kind
from litmus_seq.errors import EXIT_USAGE
from litmus_seq.project import find_root

DATA = Path(__file__).resolve().parent / "data"
INVALID = DATA / "invalid"
VALID = DATA / "valid"
REPO = Path(__file__).resolve().parent.parent

_EXPECT = re.compile(r"^# expect: (?:(?P<file>\S+\.yaml):)?(?P<line>\d+):(?P<col>\d+) (?P<fragment>.+)$")


def corpus() -> list[Path]:
    files = []
    for path in sorted(INVALID.rglob("*.yaml")):
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if first.startswith("# expect:"):
            files.append(path)
    return files


def expectation(path: Path) -> tuple[str, str]:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    m = _EXPECT.match(first)
    assert m, f"{path}: malformed expect line {first!r}"
    file = m["file"] or path.relative_to(find_root(path)).as_posix()
    return f"{file}:{m['line']}:{m['col']}: ", m["fragment"].strip()


CORPUS = corpus()


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.relative_to(INVALID).as_posix())
def test_broken_file_fails_with_located_problem(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix, fragment = expectation(path)
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert any(line.startswith(prefix) and fragment in line for line in lines), (
        f"expected a line starting {prefix!r} containing {fragment!r}, got:\n{err}"
    )
    assert f"ok: {path.name}" not in out


def test_problems_of_all_files_are_collected(capsys: pytest.CaptureFixture[str]) -> None:
    """One run reports every file's problem, not just the first file's."""
    good = VALID / "stations" / "bench.yaml"
    code = main(["validate", str(good), *map(str, CORPUS)])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    for path in CORPUS:
        prefix, fragment = expectation(path)
        assert any(line.startswith(prefix) and fragment in line for line in err.splitlines()), prefix
    assert "ok: stations/bench.yaml (station)" in out


VALID_FILES = [
    VALID / "sequences" / "full.yaml",
    VALID / "sequences" / "common" / "part.yaml",
    VALID / "products" / "widget.yaml",
    VALID / "stations" / "bench.yaml",
    VALID / "litmus.yaml",
]


def test_valid_files_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", *map(str, VALID_FILES)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ok: sequences/full.yaml (sequence)",
        "ok: sequences/common/part.yaml (fragment)",
        "ok: products/widget.yaml (product)",
        "ok: stations/bench.yaml (station)",
        "ok: litmus.yaml (project)",
    ]


def test_sequence_validation_checks_its_product_and_station(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sequence itself is fine; its product and station are not, and both are reported."""
    for sub in ("products", "stations", "sequences"):
        (tmp_path / sub).mkdir()
    (tmp_path / "litmus.yaml").write_text("name: t\n")
    (tmp_path / "products" / "p.yaml").write_text("id: p\nspecs:\n  r: {hihg: 1}\n")
    (tmp_path / "stations" / "s.yaml").write_text("id: s\ninstruments: {dmm: {}}\n")
    seq = tmp_path / "sequences" / "x.yaml"
    seq.write_text("sequence: x\nproduct: p\nstation: s\nsteps:\n  - name: a\n    wait: 0\n")
    code = main(["validate", str(seq)])
    _, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert err.splitlines() == [
        "products/p.yaml:3:7: specs.r.hihg: unknown key (did you mean 'high'?)",
        "stations/s.yaml:2:20: instruments.dmm: missing required key 'driver'; add `driver: ...`",
    ]


def test_default_station_from_litmus_yaml_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sequences").mkdir()
    (tmp_path / "litmus.yaml").write_text("station: nowhere\n")
    seq = tmp_path / "sequences" / "x.yaml"
    seq.write_text("sequence: x\nsteps:\n  - name: a\n    wait: 0\n")
    assert main(["validate", str(seq)]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert "station 'nowhere' not found: expected stations/nowhere.yaml" in err


def test_missing_file_and_unknown_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "litmus.yaml").write_text("name: t\n")
    odd = tmp_path / "odd.yaml"
    odd.write_text("hello: world\n")
    code = main(["validate", str(tmp_path / "nope.yaml"), str(odd)])
    _, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert err.splitlines()[0] == "nope.yaml: file not found; check the path"
    assert err.splitlines()[1].startswith("odd.yaml:1:1: cannot tell what kind of file this is")


@pytest.mark.parametrize(
    ("rel", "data", "kind"),
    [
        ("litmus.yaml", {"name": "x"}, "project"),
        ("x/seq.yaml", {"sequence": "s"}, "sequence"),
        ("products/p.yaml", {"id": "p"}, "product"),
        ("x/p.yaml", {"id": "p", "specs": {}}, "product"),
        ("stations/s.yaml", {"id": "s"}, "station"),
        ("x/s.yaml", {"id": "s", "instruments": {}}, "station"),
        ("sequences/common/f.yaml", {"steps": []}, "fragment"),
        ("x/f.yaml", {"variables": {}, "steps": []}, "fragment"),
        ("sequences/typo.yaml", {"sequense": "s", "steps": []}, "sequence"),
        ("stations/sim.yaml", {"spec": "1.0", "devices": {}, "resources": {}}, "visa-sim"),
        ("x/what.yaml", {"hello": 1}, None),
    ],
)
def test_detect_kind(rel: str, data: dict, kind: str | None) -> None:
    assert detect_kind(Path("/p") / rel, data) == kind


SUBPROCESS_CASES = [
    INVALID / "sequences" / "garbage_not_yaml.yaml",
    INVALID / "sequences" / "tab_indentation.yaml",
    INVALID / "sequences" / "include_cycle.yaml",
    INVALID / "stations" / "bad_calibration_date.yaml",
]


@pytest.mark.parametrize("path", SUBPROCESS_CASES, ids=lambda p: p.name)
def test_real_process_exits_4_without_traceback(path: Path) -> None:
    prefix, fragment = expectation(path)
    proc = subprocess.run(
        [sys.executable, "-m", "litmus_seq.cli.main", "validate", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == EXIT_USAGE
    assert "Traceback" not in proc.stderr
    assert any(line.startswith(prefix) and fragment in line for line in proc.stderr.splitlines()), proc.stderr


def test_validate_imports_no_heavy_modules() -> None:
    files = [str(p) for p in VALID_FILES]
    example = sorted((REPO / "sequences").glob("*.yaml")) if (REPO / "sequences").is_dir() else []
    files += [str(p) for p in example]
    code = (
        "import sys\n"
        "from litmus_seq.cli.main import main\n"
        f"rc = main(['validate', *{files!r}])\n"
        "heavy = sorted(m for m in ('duckdb', 'pyarrow', 'pyvisa', 'pyvisa_sim', 'jsonschema') "
        "if m in sys.modules)\n"
        "print('RC', rc, 'HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "RC 0 HEAVY []", proc.stdout + proc.stderr


def test_tty_output_uses_rich(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["validate", str(VALID / "stations" / "bench.yaml")]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" in out  # styled
    assert re.sub(r"\x1b\[[0-9;]*m", "", out) == "ok: stations/bench.yaml (station)\n"


# --------------------------------------------------------------------------- folders


def test_validate_the_project_root_checks_every_file_it_knows(
        example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(example_project)
    (example_project / ".github").mkdir()
    (example_project / ".github" / "ci.yaml").write_text("on: [push]\n")  # hidden: never entered
    (example_project / "compose.yaml").write_text("services: {db: {image: x}}\n")  # not ours: skipped
    (example_project / "data" / "runs").mkdir(parents=True)
    (example_project / "data" / "runs" / "junk.yaml").write_text("{{{\n")  # the data folder: skipped
    assert main(["validate", "."]) == 0
    out = capsys.readouterr().out
    kinds = dict(line.removeprefix("ok: ").rsplit(" ", 1) for line in out.splitlines())
    assert kinds == {
        "litmus.yaml": "(project)", "products/power_board.yaml": "(product)",
        "sequences/common/self_test.yaml": "(fragment)", "sequences/power_board_fct.yaml": "(sequence)",
        "sequences/smoke.yaml": "(sequence)", "stations/mock_bench.yaml": "(station)",
        "stations/sim_bench.yaml": "(station)", "stations/sim_instruments.yaml": "(visa-sim)",
    }


def test_validate_a_folder_reports_its_broken_files(
        example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(example_project)
    (example_project / "products" / "typo.yaml").write_text("id: typo\nspecz: {}\n")  # kind by folder
    (example_project / "sequences" / "broken.yaml").write_text("sequence: [\n")  # unparsable, ours
    assert main(["validate", "products", "sequences"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert "ok: products/power_board.yaml (product)" in out
    assert any(line.startswith("products/typo.yaml:2:1: ") and "specz" in line for line in err.splitlines()), err
    assert any(line.startswith("sequences/broken.yaml:") for line in err.splitlines()), err


def test_validate_an_empty_folder_has_nothing_to_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.yaml").write_text("title: not a litmus-seq file\n")
    assert main(["validate", str(tmp_path)]) == 5
    assert "no sequence, product, station or litmus.yaml file to check" in capsys.readouterr().err
