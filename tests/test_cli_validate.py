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


# --------------------------------------------------------------------------- hostile input
# Each fault through a real `python -m litmus_seq.cli.main` process: exit code and the one line.


def _cli(*argv: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DEBUG"}
    return subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def _project(tmp_path: Path, seq: str, product: str = "id: board\nspecs:\n  vref: {low: 1, high: 2}\n") -> Path:
    for folder in ("sequences", "products", "stations"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "litmus.yaml").write_text("name: hostile\n")
    (tmp_path / "products" / "board.yaml").write_text(product)
    (tmp_path / "stations" / "bench.yaml").write_text(
        "id: bench\ninstruments:\n  dmm:\n    driver: mock\n    mock: {read: 1.5}\n")
    (tmp_path / "sequences" / "s.yaml").write_bytes(seq.encode("utf-8"))
    return tmp_path


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


_UNLIMITED = "sequence: s\nproduct: board\nstation: bench\nsteps:\n  - measure: vreff\n    from: dmm.read\n"


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["run", "--dut", "SN1"]])
def test_measurement_without_limit_is_refused_by_every_command(tmp_path: Path, command: list[str]) -> None:
    root = _project(tmp_path, _UNLIMITED)
    result = _cli(*command, "sequences/s.yaml", cwd=root)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert _one_line(result) == (
        "sequences/s.yaml:5:14: steps[0].measure: measurement 'vreff' has no limit: product 'board' "
        "has no spec 'vreff' (did you mean 'vref'?); add the spec, or give the step or action a "
        "limit:, or write `limit: none` to record the value unjudged")
    assert not (root / "data").exists() or not any((root / "data").rglob("*.parquet"))


def test_limit_none_runs_and_records_unjudged(tmp_path: Path) -> None:
    root = _project(tmp_path, _UNLIMITED.replace("vreff", "serial") + "    limit: none\n")
    result = _cli("run", "--dut", "SN1", "sequences/s.yaml", cwd=root)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("product", "where", "message"),
    [
        ("id: board\nspecs:\n  vref: {low: 2, high: 1}\n", "3:9", "specs.vref: low 2 is above high 1: swap them"),
        ("id: board\nspecs:\n  vref: {low: 1, high: 2, comparison: GELX}\n", "3:39",
         "specs.vref.comparison: expected one of EQ, NE"),
        ("id: board\nspecs:\n  vref: {low: 1e400}\n", "3:15", "specs.vref.low: expected a finite number, got inf"),
        ("id: board\nspecs:\n  vref: {high: .nan}\n", "3:16", "specs.vref.high: expected a finite number, got nan"),
        ("id: board\nspecs:\n  vref: {low: -1e400, high: 1}\n", "3:15", "expected a finite number, got -inf"),
        ("id: board\nspecs:\n  vref:\n    bands:\n      - {when: {t: [50, 0]}, low: 1, high: 2}\n", "5:9",
         "specs.vref.bands[0]: when.t: range [50, 0] is inverted"),
        ("id: board\nspecs:\n  vref: {units: V}\n", "3:9", "specs.vref: the spec has no limit"),
    ],
)
def test_product_file_alone_catches_every_limit_error_once(tmp_path: Path, product: str, where: str,
                                                         message: str) -> None:
    root = _project(tmp_path, _UNLIMITED.replace("vreff", "vref"), product=product)
    alone = _cli("validate", "products/board.yaml", cwd=root)
    assert alone.returncode == EXIT_USAGE
    line = _one_line(alone)
    assert line.startswith(f"products/board.yaml:{where}: ") and message in line, line
    both = _cli("validate", "sequences/s.yaml", "products/board.yaml", cwd=root)
    assert both.returncode == EXIT_USAGE
    assert _one_line(both) == line  # the product's problem once, not once per way it was reached


@pytest.mark.parametrize(
    ("step", "where", "message"),
    [
        ("  - wait: .nan\n", "5:11", "steps[0].wait: expected a finite number"),
        ("  - wait: 1e10\n", "5:11", "steps[0].wait: must be <= 86400"),
        ("  - name: r\n    retry: {delay_s: 1e10}\n    wait: 0\n", "6:22",
         "steps[0].retry.delay_s: must be <= 3600"),
        ("  - name: r\n    retry: {delay_s: 1e400}\n    wait: 0\n", "6:22",
         "steps[0].retry.delay_s: expected a finite number, got inf"),
        ("  - measure: vref\n    from: dmm.read\n    limit: {low: .nan}\n", "7:18", "expected a finite number"),
    ],
)
def test_absurd_numbers_are_refused(tmp_path: Path, step: str, where: str, message: str) -> None:
    root = _project(tmp_path, "sequence: s\nproduct: board\nstation: bench\nsteps:\n" + step)
    result = _cli("validate", "sequences/s.yaml", cwd=root)
    assert result.returncode == EXIT_USAGE
    line = _one_line(result)
    assert line.startswith(f"sequences/s.yaml:{where}: ") and message in line, line


@pytest.mark.parametrize("depth", [500, 999, 100_000])
def test_deep_nesting_is_a_located_usage_error(tmp_path: Path, depth: int) -> None:
    root = _project(tmp_path, "sequence: s\nvariables:\n  deep: " + "[" * depth + "]" * depth + "\n")
    result = _cli("validate", "sequences/s.yaml", cwd=root)
    assert result.returncode == EXIT_USAGE
    assert _one_line(result) == (
        "sequences/s.yaml:3:207: mappings and lists nested more than 200 levels deep; a litmus-seq "
        "file needs far fewer: flatten the data or split the file")


@pytest.mark.parametrize(("char", "code"), [("\x00", "0000"), ("\x07", "0007"), ("\x1b", "001B")])
def test_control_character_is_reported_at_line_and_column(tmp_path: Path, char: str, code: str) -> None:
    root = _project(tmp_path, f"sequence: s\nvariables:\n  a: \"b{char}c\"\n")
    result = _cli("validate", "sequences/s.yaml", cwd=root)
    assert result.returncode == EXIT_USAGE
    line = _one_line(result)
    assert line.startswith(f"sequences/s.yaml:3:8: control character U+{code} is not allowed"), line
    assert char not in line


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[[1]*99999]*99999", "a repetition (x * n) would hold more than 100,000 items or characters"),
        ("'1'.zfill(10**9)", "zfill() would hold more than 100,000 items or characters"),
        ("'%01000000000d' % 1", "a %-format with this width would hold more than 100,000"),
        ("-" * 5000 + "1", "nested more than 100 levels deep; simplify the expression"),
    ],
)
def test_expression_budget_is_a_located_usage_error(tmp_path: Path, expression: str, message: str) -> None:
    root = _project(tmp_path, "sequence: s\nstation: bench\nsteps:\n  - name: a\n    call: dmm.read\n"
                              f"    args: {{x: \"${{{expression}}}\"}}\n")
    result = _cli("validate", "sequences/s.yaml", cwd=root, timeout=30)
    assert result.returncode == EXIT_USAGE
    line = _one_line(result)
    assert line.startswith("sequences/s.yaml:6:11: steps[0].args: ") and message in line, line


def test_expression_budget_in_when_is_located(tmp_path: Path) -> None:
    root = _project(tmp_path, "sequence: s\nsteps:\n  - name: a\n    when: \"len('1'.zfill(10**9)) > 1\"\n"
                              "    wait: 0\n")
    result = _cli("validate", "sequences/s.yaml", cwd=root, timeout=30)
    assert result.returncode == EXIT_USAGE
    line = _one_line(result)
    assert line.startswith("sequences/s.yaml:4:11: steps[0].when: when: ") and "zfill()" in line, line


def _outside(tmp_path: Path) -> tuple[Path, Path]:
    root = _project(tmp_path / "proj", "sequence: s\nsteps:\n  - include: ../secret/frag.yaml\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "frag.yaml").write_text("steps:\n  - wait: 0\n")
    return root, secret


def test_include_outside_the_project_root_is_refused(tmp_path: Path) -> None:
    root, _ = _outside(tmp_path)
    result = _cli("validate", "sequences/s.yaml", cwd=root)
    assert result.returncode == EXIT_USAGE
    line = _one_line(result)
    assert line.startswith("sequences/s.yaml:3:14: steps[0].include: ") and "outside the project" in line, line
    assert "include_roots" in line


def test_include_symlink_resolving_outside_is_refused(tmp_path: Path) -> None:
    root, secret = _outside(tmp_path)
    (root / "sequences" / "link.yaml").symlink_to(secret / "frag.yaml")
    (root / "sequences" / "s.yaml").write_text("sequence: s\nsteps:\n  - include: sequences/link.yaml\n")
    result = _cli("validate", "sequences/s.yaml", cwd=root)
    assert result.returncode == EXIT_USAGE
    assert "outside the project" in _one_line(result)


def test_include_roots_in_litmus_yaml_allow_a_folder(tmp_path: Path) -> None:
    root, _ = _outside(tmp_path)
    (root / "litmus.yaml").write_text("name: hostile\ninclude_roots: [../secret]\n")
    result = _cli("validate", "sequences/s.yaml", cwd=root)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "content",
    ["root:x:0:0:root:/root:/bin/bash\n", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n",
     "API_TOKEN=hunter2-secret\n", "[core]\n\tsecret = hunter2-secret %\n", "{\"token\": \"hunter2-secret\"\n"],
)
def test_a_file_that_is_not_our_yaml_is_never_echoed(tmp_path: Path, content: str) -> None:
    root = _project(tmp_path, "sequence: s\nsteps:\n  - include: sequences/secret.yaml\n")
    (root / "sequences" / "secret.yaml").write_text(content)
    result = _cli("validate", "sequences/s.yaml", cwd=root)
    assert result.returncode == EXIT_USAGE
    line = _one_line(result)
    assert line.startswith("sequences/secret.yaml:"), line
    for word in ("root:x", "OPENSSH", "b3Bl", "hunter2", "API_TOKEN", "secret ="):
        assert word not in line, line
