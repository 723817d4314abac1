"""litmus_seq.lake.compact / manifest / read: compaction keeps every answer; each run counts once."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from litmus_seq.cli.main import main
from litmus_seq.errors import StoreError
from litmus_seq.lake.compact import compact
from litmus_seq.lake.manifest import MANIFEST, plan_reads
from litmus_seq.lake.read import connect
from litmus_seq.lake.store import Store, open_data_dir

ORDER = ("ORDER BY run_id, record_type, step_index NULLS FIRST, vector_index NULLS FIRST, "
         "measurement_name NULLS FIRST, vector_retry NULLS FIRST")


def merged(fleet: dict[str, Path], dest: Path, stations: tuple[str, ...] = ("st-a", "st-b", "st-c")) -> Path:
    """One data folder holding the run files of ``stations``."""
    for st in stations:
        shutil.copytree(fleet[st] / "runs", dest / "runs", dirs_exist_ok=True)
    return dest


def everything(data: Path):  # noqa: ANN201 - a pyarrow Table
    return connect(open_data_dir(data)).sql(f"SELECT * FROM rows {ORDER}").to_arrow_table()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def digests(data: Path) -> dict[str, str]:
    return {p.relative_to(data).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((data / "runs").rglob("*.parquet"))}


def test_compaction_keeps_every_row_and_answer(fleet: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = merged(fleet, tmp_path / "data")
    before_rows = everything(data)
    before_files = digests(data)
    d = str(data)
    answers = [cli(capsys, "runs", "--data-dir", d, "-n", "100"),
               cli(capsys, "query", "SELECT station_id, step_path, step_outcome, count(*) AS n FROM steps "
                   "GROUP BY ALL ORDER BY ALL", "--data-dir", d, "--csv"),
               cli(capsys, "stats", "--data-dir", d, "--json")]
    run_id = before_rows.column("run_id")[0].as_py()
    answers.append(cli(capsys, "show", run_id[:12], "--data-dir", d))
    assert all(code == 0 for code, _, _ in answers)

    code, out, _ = cli(capsys, "compact", "--data-dir", d)
    assert code == 0 and "8 runs" in out and "3 new parts" in out
    parts = sorted((data / "compacted").rglob("part-*.parquet"))
    assert sorted(p.parent.name for p in parts) == ["station=st-a", "station=st-b", "station=st-c"]
    plan = plan_reads(open_data_dir(data))
    assert plan.raw == [] and plan.runs() == 8  # everything is read from the parts now

    assert everything(data).equals(before_rows)  # every row and column, run_id included
    again = [cli(capsys, "runs", "--data-dir", d, "-n", "100"),
             cli(capsys, "query", "SELECT station_id, step_path, step_outcome, count(*) AS n FROM steps "
                 "GROUP BY ALL ORDER BY ALL", "--data-dir", d, "--csv"),
             cli(capsys, "stats", "--data-dir", d, "--json"),
             cli(capsys, "show", run_id[:12], "--data-dir", d)]
    assert again == answers
    assert digests(data) == before_files  # the run files stay the source of truth, untouched

    code, out, _ = cli(capsys, "compact", "--data-dir", d)  # idempotent
    assert code == 0 and "nothing to compact" in out
    assert sorted((data / "compacted").rglob("part-*.parquet")) == parts


def test_stats_tables(fleet: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = merged(fleet, tmp_path / "data")
    code, out, _ = cli(capsys, "stats", "--data-dir", str(data), "--json")
    assert code == 0
    tables = json.loads(out)
    by_station = {r["station_id"]: r for r in tables["yield"]}
    assert {k: (r["runs"], r["passed"], r["units"], r["first_pass"]) for k, r in by_station.items()} == {
        "st-a": (3, 3, 3, 3), "st-b": (3, 1, 2, 0), "st-c": (2, 0, 2, 0)}
    assert by_station["st-b"]["yield"] == pytest.approx(1 / 3) and by_station["st-b"]["first_pass_yield"] == 0.0
    pareto = tables["pareto"]
    assert [r["failures"] for r in pareto] == sorted((r["failures"] for r in pareto), reverse=True)
    assert pareto[-1]["cumulative_share"] == pytest.approx(1.0)
    top = {r["step_path"]: r for r in pareto}
    assert top["main/psu_readback"]["failed"] == 2  # st-b's two runs on the broken bench
    assert any(r["errored"] for r in pareto)  # st-c's unreadable DMM
    rail = [r for r in tables["cpk"] if r["measurement_name"] == "rail_3v3"]
    assert rail and all(r["n"] > 2 and r["sigma"] > 0 and r["cpk"] is not None for r in rail)
    r = rail[0]
    assert r["ppk"] == pytest.approx(min(r["usl"] - r["mean"], r["mean"] - r["lsl"]) / (3 * r["sigma"]))

    code, out, _ = cli(capsys, "stats", "--data-dir", str(data), "--station", "st-a", "--table", "yield")
    assert code == 0 and "st-a" in out and "st-b" not in out
    code, out, _ = cli(capsys, "stats", "--data-dir", str(data), "--since", "2999-01-01", "--json")
    assert code == 0 and json.loads(out)["yield"] == []
    code, _, err = cli(capsys, "stats", "--data-dir", str(data), "--since", "last week")
    assert code == 4 and "--since last week: expected" in err


def test_compaction_cut_short_is_invisible_and_cleaned_up(fleet: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = merged(fleet, tmp_path / "data", ("st-a",))
    before = everything(data)
    real_put = Store.put

    def lose_power(self: Store, rel: str, payload: bytes) -> None:
        if rel.startswith(MANIFEST):
            raise OSError(28, "No space left on device")
        real_put(self, rel, payload)

    monkeypatch.setattr(Store, "put", lose_power)
    with pytest.raises(StoreError, match="cannot record the part"):
        compact(open_data_dir(data))
    monkeypatch.undo()
    orphans = list((data / "compacted").rglob("part-*.parquet"))
    assert len(orphans) == 1  # written in full, but without its entry
    assert everything(data).equals(before)  # no reader sees it: no run counted twice

    result = compact(open_data_dir(data))  # a young orphan may belong to a running compaction
    assert result.removed_orphans == 0 and result.runs == 3
    old = time.time() - 3 * 3600
    os.utime(orphans[0], (old, old))
    assert compact(open_data_dir(data)).removed_orphans == 1
    assert not orphans[0].exists()
    assert everything(data).equals(before)


def test_each_run_is_read_once(fleet: dict[str, Path], tmp_path: Path) -> None:
    data = merged(fleet, tmp_path / "data", ("st-a", "st-b"))
    compact(open_data_dir(data))

    def counts() -> tuple[int, int]:
        return connect(open_data_dir(data)).sql(
            "SELECT count(*), count(DISTINCT run_id) FROM rows WHERE record_type = 'run'").fetchall()[0]

    assert counts() == (6, 6)
    # a second compactor that covered the same files (two compactions at once): still once
    entry = sorted((data / MANIFEST).glob("*.json"))[0]
    (data / MANIFEST / ("z" + entry.name)).write_text(entry.read_text())
    assert counts() == (6, 6)
    # a run file deleted after compaction disappears from the answers
    victim = sorted((data / "runs").rglob("*.parquet"))[0]
    victim.unlink()
    assert counts() == (5, 5)
    # new runs are read beside the parts, then compacted into a part of their own
    merged(fleet, data, ("st-c",))
    assert counts() == (7, 7)
    assert len(plan_reads(open_data_dir(data)).raw) == 2
    result = compact(open_data_dir(data))
    assert result.runs == 2 and len(result.parts) == 1
    assert counts() == (7, 7)


def test_unreadable_run_file_is_named_and_the_rest_read(fleet: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = merged(fleet, tmp_path / "data", ("st-a",))
    day = next((data / "runs").iterdir())
    (day / "broken.parquet").write_bytes(b"not parquet at all")
    code, out, err = cli(capsys, "query", "SELECT count(*) AS n FROM runs",
                         "--data-dir", str(data), "--csv")
    assert code == 0 and out.splitlines()[1] == "3" and "broken.parquet" in err
    code, _, err = cli(capsys, "compact", "--data-dir", str(data))
    assert code == 3 and "broken.parquet: not a readable run file" in err
    assert not (data / "compacted" / "_manifest").exists() or not list((data / MANIFEST).glob("*.json"))
