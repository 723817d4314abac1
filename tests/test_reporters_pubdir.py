"""``--pubdir DIR`` (litmus_seq/reporters/pubdir.py): pytest-publish's folder tree, per step.

Real runs of the mock-only project (``tests/data/reporters/project``) write the tree; the tests
read it back as a watcher would. Concurrent writers are real processes contending for the
``.lock`` of the same step folder.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from pathlib import Path

import pytest
from conftest import run_in_data

from litmus_seq.reporters import RunRecord, StepResult
from litmus_seq.reporters.pubdir import PubDir, step_folder

DATA = Path(__file__).resolve().parent / "data" / "reporters" / "project"


@pytest.fixture
def project(reporters_project: Path) -> Path:
    return reporters_project


run = run_in_data


def results(folder: Path) -> list[str]:
    return sorted((p.name for p in folder.iterdir() if p.is_dir()), key=lambda n: int(n.split(".")[0]))


WORD = {"done": "pass", "passed": "pass", "skipped": "skip", "failed": "fail", "errored": "fail"}


def test_tree_of_one_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sequences/mixed.yaml", "--dut", "SN-3", "--pubdir", "pub") == 3
    out, err = capsys.readouterr()
    assert "pubdir" not in err
    pub = project / "pub"
    expected = {"setup/1": "done", "main/rail_sweep": "passed", "main/rail_low": "failed",
                "main/option_board": "skipped", "main/garbage": "errored", "main/firmware": "passed",
                "cleanup/1": "done"}
    for path, outcome in expected.items():
        folder = pub / path
        word = WORD[outcome]
        assert (folder / "count").read_text() == "1\n"
        assert (folder / ".lock").exists()  # the seed's test-level lock, and nowhere below it
        assert results(folder) == [f"0.{word}"]
        result = folder / f"0.{word}"
        doc = json.loads((result / "result.json").read_text())
        assert (doc["type"], doc["step_path"], doc["result"], doc["outcome"], doc["dut_serial"]) == (
            "step", path, word, outcome, "SN-3")
        assert f"run {doc['run_id']}" in out
        brief = (result / "brief.txt").read_text()
        assert brief.count("\n") == 1 and brief.startswith(f"{outcome.upper()} {path} ")
        assert (result / "exception.txt").exists() == (word != "pass")  # only if "skip" or "fail"
        assert not list(result.glob(".*"))
    rail_low = pub / "main" / "rail_low" / "0.fail"
    assert "rail = 2.0 V < low 3.1" in (rail_low / "brief.txt").read_text()
    assert (rail_low / "exception.txt").read_text().splitlines()[:2] == [
        "failed: rail = 2.0 V < low 3.1", "[0]: rail = 2.0 V < low 3.1"]
    assert "cannot be judged" in (pub / "main" / "garbage" / "0.fail" / "exception.txt").read_text()
    assert not (pub / "main" / "garbage" / "0.fail" / "log.txt").exists()  # only if any logs
    sweep = json.loads((pub / "main" / "rail_sweep" / "0.pass" / "result.json").read_text())
    assert [v["params"] for v in sweep["vectors"]] == [{"vin": 5.0}, {"vin": 12.0}]
    assert [m["value"] for m in sweep["measurements"]] == [3.30, 3.31]
    (run_result,) = [p for p in (pub / "run").iterdir() if p.is_dir()]
    assert run_result.name == "0.fail"
    run_doc = json.loads((run_result / "result.json").read_text())
    assert (run_doc["type"], run_doc["outcome"], run_doc["result"]) == ("run", "errored", "fail")


def test_results_accumulate_across_runs_and_never_ran_steps_write_nothing(project: Path) -> None:
    assert run("sequences/stop.yaml", "--pubdir", "pub") == 1
    assert run("sequences/stop.yaml", "--pubdir", "pub") == 1
    pub = project / "pub"
    assert (pub / "main" / "first" / "count").read_text() == "2\n"
    assert results(pub / "main" / "first") == ["0.pass", "1.pass"]
    assert results(pub / "main" / "bad") == ["0.fail", "1.fail"]
    assert results(pub / "run") == ["0.fail", "1.fail"]
    run_ids = {json.loads((pub / "main" / "bad" / r / "result.json").read_text())["run_id"]
               for r in ("0.fail", "1.fail")}
    assert len(run_ids) == 2
    assert not (pub / "main" / "never_a").exists() and not (pub / "main" / "never_b").exists()


def test_connect_failure_still_writes_the_run_result(project: Path) -> None:
    assert run("sequences/powered.yaml", "--station", "dead", "--pubdir", "pub") == 3
    pub = project / "pub"
    assert sorted(p.name for p in pub.iterdir()) == ["run"]  # no step ran
    result = pub / "run" / "0.fail"
    doc = json.loads((result / "result.json").read_text())
    assert (doc["outcome"], doc["steps"]) == ("errored", {"never ran": 4})
    assert "psu: cannot connect" in doc["excinfo"]["value"]
    assert doc["excinfo"]["type"] == "InstrumentError"
    assert (result / "exception.txt").read_text().startswith("InstrumentError: psu: cannot connect")
    assert "ConnectionRefusedError" in (result / "exception.txt").read_text()
    assert "ERRORED run" in (result / "brief.txt").read_text()
    assert (result / "log.txt").read_text().startswith("ERROR psu: cannot connect")


def test_pubdir_that_is_a_file_is_exit_4(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pub").write_text("x")
    assert run("sequences/passing.yaml", "--pubdir", "pub") == 4
    _, err = capsys.readouterr()
    assert err.strip().startswith("--pubdir pub: is a file")
    assert not (project / "data").exists()


def test_unwritable_pubdir_warns_once_and_keeps_the_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "afile").write_text("x")
    assert run("sequences/passing.yaml", "--pubdir", "afile/pub") == 0
    _, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("pubdir:")]
    assert len(warnings) == 1
    assert "cannot write" in warnings[0] and "(and 2 more problems)" in warnings[0]  # 2 steps + run, one line
    assert list((project / "data" / "runs").rglob("*.parquet"))


def test_step_folder_is_safe() -> None:
    root = Path("/r")
    assert step_folder(root, "main/output_voltage") == Path("/r/main/output_voltage")
    assert step_folder(root, "main/../etc") == Path("/r/main/_../etc")
    assert step_folder(root, "main/grp/count") == Path("/r/main/grp/_count")  # not the group's count file
    assert step_folder(root, "main/grp/3.passed") == Path("/r/main/grp/_3.passed")
    assert step_folder(root, "main/a b:c") == Path("/r/main/a_b_c")


def _writer(root: str, n: int) -> None:
    pub = PubDir(root)
    run = RunRecord(run_id="r" * 32, session_id="s", start_us=0, context={})
    for i in range(n):
        step = StepResult(step_path="main/shared", node_id="x::main/shared", name="shared", kind="measure",
                          step_index=0, start_us=i, stop_us=i + 1, outcome="passed" if i % 2 else "failed",
                          error=None if i % 2 else "boom")
        pub.publish(step, run)


def test_concurrent_writers_never_share_an_index(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 15)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    folder = tmp_path / "main" / "shared"
    names = results(folder)
    assert (folder / "count").read_text() == "60\n"
    assert [int(n.split(".")[0]) for n in names] == list(range(60))
    for name in names:  # each result complete: written before count moved past it
        assert json.loads((folder / name / "result.json").read_text())["result"] == name.split(".")[1]
        assert (folder / name / "exception.txt").exists() == name.endswith(".fail")


def test_missing_count_continues_after_the_highest_result(tmp_path: Path) -> None:
    _writer(str(tmp_path), 3)
    folder = tmp_path / "main" / "shared"
    (folder / "count").unlink()
    _writer(str(tmp_path), 1)
    assert results(folder) == ["0.fail", "1.pass", "2.fail", "3.fail"]
    assert (folder / "count").read_text() == "4\n"


# ------------------------------------------------------------------ a pytest-publish consumer


@dataclasses.dataclass
class ExcInfo:
    """Seed 003's ``TestResult.ExcInfo``, field for field."""

    type: str
    value: str
    traceback: list[str]


@dataclasses.dataclass
class SeedResult:
    """Seed 003's ``TestResult``, field for field (``dataclass_json``'s ``from_dict`` behaviour:
    every field without a default must be present)."""

    type: str
    result: str  # "pass", "skip", "fail"
    nodeid: str
    start_time: float
    stop_time: float
    duration: float
    stdout: str
    stderr: str
    log: str
    xdist_dist: str | None
    xdist_worker: str | None
    xdist_scope: str | None
    excinfo: ExcInfo | None = None

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> SeedResult:
        names = [f.name for f in dataclasses.fields(cls)]
        kwargs = {n: d[n] for n in names if n != "excinfo"}
        exc = d.get("excinfo")
        result = cls(**kwargs, excinfo=ExcInfo(**exc) if exc is not None else None)  # type: ignore[arg-type]
        assert result.result in ("pass", "skip", "fail")
        assert all(isinstance(getattr(result, n), float) for n in ("start_time", "stop_time", "duration"))
        assert all(isinstance(getattr(result, n), str) for n in ("type", "nodeid", "stdout", "stderr", "log"))
        assert (result.excinfo is not None) == (result.result in ("skip", "fail"))  # "only if skip or fail"
        if result.excinfo is not None:
            assert isinstance(result.excinfo.value, str) and all(isinstance(x, str) for x in result.excinfo.traceback)
        return result


def consume_pubdir(root: Path) -> list[tuple[str, int, SeedResult]]:
    """Read a --pubdir tree exactly as seed 003 documents it: each test folder holds ``.lock``
    and ``count``, and ``<index>.<result>`` folders with ``brief.txt``, ``result.json``, and
    ``exception.txt`` / ``stdout.txt`` / ``stderr.txt`` / ``log.txt`` only if there is any."""
    found = []
    for count_file in sorted(root.rglob("count")):
        test = count_file.parent
        n = int(count_file.read_text())
        assert (test / ".lock").is_file()
        folders = sorted((p for p in test.iterdir() if p.is_dir() and p.name[0].isdigit()),
                         key=lambda p: int(p.name.split(".")[0]))
        assert [int(p.name.split(".")[0]) for p in folders] == list(range(n))
        for folder in folders:
            index, _, word = folder.name.partition(".")
            doc = json.loads((folder / "result.json").read_text())
            seed = SeedResult.from_dict(doc)
            assert seed.result == word
            assert (folder / "brief.txt").read_text().count("\n") == 1
            assert (folder / "exception.txt").exists() == (word in ("skip", "fail"))
            for key in ("stdout", "stderr", "log"):
                assert (folder / f"{key}.txt").exists() == bool(getattr(seed, key))
                if getattr(seed, key):
                    assert (folder / f"{key}.txt").read_text() == getattr(seed, key)
            assert sorted(p.name for p in folder.iterdir()) == sorted(
                ["brief.txt", "result.json"] + [f for f in ("exception.txt", "stdout.txt", "stderr.txt", "log.txt")
                                                 if (folder / f).exists()])
            found.append((str(test.relative_to(root)), int(index), seed))
    # no .lock anywhere the seed has none: only beside a count
    assert {p.parent for p in root.rglob(".lock")} == {p.parent for p in root.rglob("count")}
    return found


def test_a_pytest_publish_consumer_reads_our_tree_unchanged(project: Path) -> None:
    assert run("sequences/mixed.yaml", "--pubdir", "pub") == 3
    assert run("sequences/powered.yaml", "--station", "dead", "--pubdir", "pub") == 3
    assert run("sequences/retry.yaml", "--pubdir", "pub") == 1
    found = consume_pubdir(project / "pub")
    by_test: dict[str, list[SeedResult]] = {}
    for test, _, seed in found:
        by_test.setdefault(test, []).append(seed)
    assert [s.result for s in by_test["run"]] == ["fail", "fail", "fail"]
    assert [s.result for s in by_test["main/rail_low"]] == ["fail"]
    assert [s.result for s in by_test["main/option_board"]] == ["skip"]
    assert [s.result for s in by_test["main/flaky"]] == ["pass"]
    assert by_test["main/rail_low"][0].nodeid == "sequences/mixed.yaml::main/rail_low"
    assert by_test["main/rail_low"][0].excinfo.value == "rail = 2.0 V < low 3.1"  # type: ignore[union-attr]
    connect = by_test["run"][1]
    assert connect.excinfo is not None and connect.excinfo.type == "InstrumentError"
    assert connect.log.startswith("ERROR psu: cannot connect")
