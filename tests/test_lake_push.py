"""litmus_seq.lake.push and the lake on a real S3-compatible server (moto, on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FLEET_RUNS, make_bucket, project_imports_forgotten

from litmus_seq.cli.main import main
from litmus_seq.lake.push import journal_path
from litmus_seq.lake.store import open_lake

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``runs --lake`` keeps its index in the user's cache folder: a private one per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def lake_objects(uri: str) -> dict[str, int]:
    lake = open_lake(uri)
    return {k: v for k, v in lake.files("").items()}


def test_push_to_a_folder_lake_and_query_it(fleet: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "lake"
    for st in FLEET_RUNS:
        code, out, _ = cli(capsys, "push", "--data-dir", str(fleet[st]), "--to", str(lake))
        assert code == 0 and f"{len(FLEET_RUNS[st])} runs" in out
    files = sorted(p.relative_to(lake).as_posix() for p in (lake / "runs").rglob("*.parquet"))
    assert len(files) == 8
    assert all(f.split("/")[1].startswith("date=") and f.split("/")[2].startswith("station=st-") for f in files)
    code, out, _ = cli(capsys, "push", "--data-dir", str(fleet["st-a"]), "--to", str(lake))  # idempotent
    assert code == 0 and out.splitlines()[-1].startswith("0 runs")

    query = "SELECT station_id, count(DISTINCT run_id) AS n FROM runs GROUP BY 1 ORDER BY 1"
    code, out, _ = cli(capsys, "query", query, "--lake", str(lake), "--csv")
    assert code == 0 and out.splitlines()[1:] == ["st-a,3", "st-b,3", "st-c,2"]
    code, runs_out, _ = cli(capsys, "runs", "--lake", str(lake), "-n", "100")
    assert code == 0 and len(runs_out.splitlines()) == 2 + 8 and "date=" in runs_out
    code, stats_before, _ = cli(capsys, "stats", "--lake", str(lake), "--json")
    code, out, _ = cli(capsys, "compact", "--lake", str(lake))
    assert code == 0 and "8 runs" in out
    code, stats_after, _ = cli(capsys, "stats", "--lake", str(lake), "--json")
    assert stats_after == stats_before
    code, out, _ = cli(capsys, "runs", "--lake", str(lake), "-n", "100")
    assert out == runs_out


def test_channel_files_go_with_their_run(fleet: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    from litmus_seq.stores.channels import ChannelStore

    data = tmp_path / "data"
    shutil.copytree(fleet["st-a"], data)
    run_file = sorted((data / "runs").rglob("*.parquet"))[0]
    run_id = pq.read_metadata(run_file).metadata[b"run_id"].decode()
    ChannelStore(data).write(run_id, "ripple", [0.01, 0.02, 0.015])
    lake = tmp_path / "lake"
    assert cli(capsys, "push", "--data-dir", str(data), "--to", str(lake))[0] == 0
    (pushed,) = (lake / "channels").rglob("*.arrow")
    day = run_file.parent.name
    assert pushed.relative_to(lake).as_posix() == f"channels/date={day}/station=st-a/{run_id}/ripple.arrow"
    assert pushed.read_bytes() == next((data / "channels").rglob("ripple.arrow")).read_bytes()


def test_objects_are_never_overwritten(fleet: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    shutil.copytree(fleet["st-a"], data)
    lake = tmp_path / "lake"
    assert cli(capsys, "push", "--data-dir", str(data), "--to", str(lake))[0] == 0
    victim = sorted((lake / "runs").rglob("*.parquet"))[0]
    victim.write_bytes(b"something else")
    journal_path(data, open_lake(str(lake))).unlink()  # forget what was pushed
    code, out, err = cli(capsys, "push", "--data-dir", str(data), "--to", str(lake))
    assert code == 3 and "1 objects are in the lake with other contents" in err and victim.name in err
    assert victim.read_bytes() == b"something else"
    assert "2 already there" in out  # the others recognised by size, not uploaded again


def test_data_dir_uri_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "run", str(REPO / "sequences" / "smoke.yaml"), "--data-dir", "s3://bucket/x")
    assert code == 4 and len(err.strip().splitlines()) == 1
    assert "--data-dir: data folder s3://bucket/x is a URI" in err and "litmus-seq push --to s3://bucket/x" in err
    assert not (tmp_path / "s3:").exists() and not (REPO / "s3:").exists()
    code, _, err = cli(capsys, "push", "--data-dir", str(tmp_path))
    assert code == 4 and "give --to URI" in err


def test_push_to_runs_in_the_background(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    for name in ("sequences", "products", "stations", "plugins", "checks"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "litmus.yaml").write_text("data_dir: data\npush_to: lake\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with project_imports_forgotten(project):
        code = main(["run", "sequences/smoke.yaml", "--station", "mock_bench", "-y"])
    assert code == 0  # the push neither waits for nor changes the run
    deadline = time.monotonic() + 60
    while not list((project / "lake" / "runs").rglob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.2)
    pushed = list((project / "lake" / "runs").rglob("*.parquet"))
    assert len(pushed) == 1 and pushed[0].parent.name == "station=mock_bench"
    # an unreachable lake: the run still ends with its own outcome, the log says why
    (project / "litmus.yaml").write_text("data_dir: data\npush_to: s3://no-such-bucket/x?endpoint_override=127.0.0.1:9\n")
    with project_imports_forgotten(project):
        assert main(["run", "sequences/smoke.yaml", "--station", "mock_bench", "-y"]) == 0


KILLER = textwrap.dedent("""
    import os, signal, sys
    from litmus_seq.lake import store as st

    real = st.Store.put_file
    count = 0

    def put_file(self, rel, source):
        global count
        count += 1
        if count == int(sys.argv[3]):  # die half-way through this upload
            data = open(source, "rb").read()
            with self.publishing(rel) as path, self.fs.open_output_stream(path) as out:
                out.write(data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
        return real(self, rel, source)

    st.Store.put_file = put_file
    from litmus_seq.cli.main import main
    sys.exit(main(["push", "--data-dir", sys.argv[1], "--to", sys.argv[2]]))
""")


def push_killed_midway(data: Path, uri: str, at: int) -> None:
    """``litmus-seq push`` killed (SIGKILL) half-way through its ``at``-th upload."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(data), uri, str(at)], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_push_to_s3_is_resumable(fleet: dict[str, Path], s3_env: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"s3://{make_bucket(s3_env)}/lake"
    data = tmp_path / "data"
    shutil.copytree(fleet["st-b"], data)
    push_killed_midway(data, uri, at=2)
    objects = lake_objects(uri)
    runs = [k for k in objects if k.startswith("runs/")]
    assert len(runs) == 1  # the first upload; the one cut short left nothing a reader takes
    assert all(k.startswith(("runs/", "_staging/")) for k in objects)

    # the journal line of the first object lost with the process: recognised, not re-uploaded
    journal = journal_path(data, open_lake(uri))
    journal.write_text("")
    code, out, _ = cli(capsys, "push", "--data-dir", str(data), "--to", uri)
    assert code == 0 and out.splitlines()[-1].startswith("2 runs") and "1 already there" in out
    objects = lake_objects(uri)
    assert len([k for k in objects if k.startswith("runs/date=")]) == 3
    assert not [k for k in objects if k.startswith("_staging/")]  # the cut upload is cleared
    local = {p.name: p.stat().st_size for p in (data / "runs").rglob("*.parquet")}
    assert {k.rsplit("/", 1)[1]: v for k, v in objects.items() if k.startswith("runs/")} == local
    assert [json.loads(line)["src"] for line in journal.read_text().splitlines()] == sorted(
        p.relative_to(data).as_posix() for p in (data / "runs").rglob("*.parquet"))

    # the read side over S3: list, show (by DUT serial), SQL
    code, out, _ = cli(capsys, "runs", "--lake", uri, "--json")
    assert code == 0 and sorted(r["dut_serial"] for r in json.loads(out)) == ["SN-B1", "SN-B1", "SN-B2"]
    assert all(r["file_path"].startswith(uri + "/runs/date=") for r in json.loads(out))
    code, out, _ = cli(capsys, "show", "SN-B2", "--lake", uri)
    assert code == 0 and "main/psu_readback" in out and "station st-b" in out
    code, out, _ = cli(capsys, "query", "SELECT count(*) AS n FROM measurements", "--lake", uri, "--csv")
    assert code == 0 and int(out.splitlines()[1]) > 0
