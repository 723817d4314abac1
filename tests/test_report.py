"""The per-run HTML report (``litmus-seq report``, ``run --report``): self-contained, complete,
and honest about steps that never ran."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from litmus_seq.cli.main import main
from litmus_seq.report import render_report


def run_example(project: Path, *extra: str) -> int:
    return main(["run", str(project / "sequences" / "power_board_fct.yaml"), "--dut", "SN<1>", "--yes",
                 "--data-dir", str(project / "data"), *extra])


def test_run_report_writes_a_self_contained_page(example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = example_project / "unit.html"
    assert run_example(example_project, "--report", str(out)) == 0
    assert f"report: {out}" in capsys.readouterr().out
    page = out.read_text()
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # nothing fetched from the network
    assert "SN&lt;1&gt;" in page and "SN<1>" not in page  # escaped
    assert 'id="verdict"' in page and "PASSED" in page
    assert "CAL-SIM-DMM-0001" in page and "DMM-6500" in page  # instruments and calibration
    assert "3.1515 ≤ x ≤ 3.4485 V (spec 3.135–3.465, gb 10 %)" in page  # limit with spec and guardband
    assert page.count("<svg") >= 2  # the sweeps are plotted
    assert "Never ran" not in page


def test_report_command_by_serial_and_never_ran_steps(example_project: Path, tmp_path: Path) -> None:
    assert run_example(example_project) == 0
    out = tmp_path / "r.html"
    assert main(["report", "SN<1>", "-o", str(out), "--data-dir", str(example_project / "data")]) == 0
    rows = pq.read_table(next((example_project / "data" / "runs").glob("*/*.parquet"))).to_pylist()
    for r in rows:  # the same run as if it had stopped after its first main step
        if r["record_type"] == "step" and r["step_path"].startswith("main/") and r["step_path"] != "main/psu_readback":
            r["step_outcome"] = r["vector_outcome"] = None
    cut = render_report([r for r in rows if not (r["record_type"] == "measurement" and r["step_path"] not in
                                                 ("main/psu_readback",) and r["step_path"].startswith("main/"))])
    assert "<h2>Never ran</h2>" in cut and "<li>main/firmware</li>" in cut
    assert "never ran</span>" in cut
    assert out.read_text().startswith("<!doctype html>")


def test_a_failing_measurement_says_why(example_project: Path) -> None:
    products = example_project / "products" / "power_board.yaml"
    products.write_text(products.read_text().replace("low: 3.135", "low: 3.4").replace("high: 3.465", "high: 3.6"))
    out = example_project / "fail.html"
    assert run_example(example_project, "--report", str(out)) == 1
    page = out.read_text()
    assert "FAILED" in page and 'class="err"' in page and "&lt; low" in page


def test_no_run_row_is_an_error() -> None:
    with pytest.raises(ValueError, match="no run row"):
        render_report([])
