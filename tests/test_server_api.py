"""The HTTP API of ``litmus-seq serve``, against the real server on 127.0.0.1 (issue "The station
in a browser"): every endpoint, the station's one-unit-at-a-time rule, prompts, stop, the live
event stream, results submission, and the security rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from server_fixtures import running_server, station_state, wait_for

FCT = "sequences/power_board_fct.yaml"
SMOKE = "sequences/smoke.yaml"
DOC: dict[str, Any] = {
    "run_id": "lv-1", "dut_serial": "SN-POST", "station_id": "labview_3",
    "steps": [{"name": "rail", "measurements": [{"name": "rail_3v3", "value": 3.62, "units": "V",
                                                  "low": 3.1, "high": 3.5}]}],
}


def idle(client: httpx.Client) -> dict[str, Any] | None:
    state = station_state(client)
    return state["last"] if state["running"] is None and state["last"] else None


def test_a_unit_with_a_prompt_answered_over_http(example_project: Path) -> None:
    with running_server(example_project) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        state = station_state(client)
        assert FCT in state["sequences"] and SMOKE in state["sequences"]
        started = client.post("/api/station/run", json={"sequence": FCT, "serial": "SN-WEB-1", "operator": "ana"})
        assert started.status_code == 202 and started.json()["serial"] == "SN-WEB-1"
        prompt = wait_for(lambda: station_state(client)["prompt"], "the LED prompt")
        assert prompt["message"] == "Is the status LED green?"
        busy = client.post("/api/station/run", json={"sequence": SMOKE, "serial": "SN-WEB-2"})
        assert busy.status_code == 409 and "SN-WEB-1" in busy.json()["detail"][0]
        assert client.post("/api/prompts/nope", json={"answer": True}).status_code == 404
        assert client.post(f"/api/prompts/{prompt['prompt_id']}", json={"answer": True}).status_code == 200
        last = wait_for(lambda: idle(client), "the verdict")
        assert last["outcome"] == "passed", last
        run_id = last["run_id"]

        runs = client.get("/api/runs").json()
        assert [r["run_id"] for r in runs] == [run_id]
        assert client.get("/api/runs", params={"outcome": "failed"}).json() == []
        one = client.get(f"/api/runs/{run_id[:12]}").json()
        assert one["run_id"] == run_id and one["dut_serial"] == "SN-WEB-1"
        steps = client.get(f"/api/runs/{run_id}/steps").json()
        assert {s["step_path"] for s in steps} >= {"main/led_check", "cleanup/1"}
        led = [m for m in client.get(f"/api/runs/{run_id}/measurements").json() if m["step_name"] == "led_check"]
        assert led[0]["measurement_text"] == "true" and led[0]["measurement_outcome"] == "passed"
        report = client.get(f"/api/runs/{run_id}/report")
        assert report.status_code == 200 and "text/html" in report.headers["content-type"]
        assert 'id="verdict"' in report.text and "PASSED" in report.text and "SN-WEB-1" in report.text
        assert client.get("/openapi.json").json()["paths"]["/api/results"]


def test_stop_terminates_and_cleanup_runs(example_project: Path) -> None:
    with running_server(example_project) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        client.post("/api/station/run", json={"sequence": FCT, "serial": "SN-STOP"})
        wait_for(lambda: station_state(client)["prompt"], "the LED prompt")
        assert client.post("/api/station/stop").json() == {"stopping": True}
        last = wait_for(lambda: idle(client), "the verdict")
        assert last["outcome"] == "terminated"
        steps = client.get(f"/api/runs/{last['run_id']}/steps").json()
        cleanup = {s["step_path"]: s["step_outcome"] for s in steps if s["step_path"].startswith("cleanup/")}
        assert cleanup and all(o == "done" for o in cleanup.values()), cleanup
        assert client.post("/api/station/stop").json() == {"stopping": False}


def test_bad_starts_are_one_line_each(example_project: Path) -> None:
    with running_server(example_project, serial_pattern=r"SN\d{3}") as (url, _), \
            httpx.Client(base_url=url, timeout=30) as client:
        bad = client.post("/api/station/run", json={"sequence": SMOKE, "serial": "hello"})
        assert bad.status_code == 422 and "does not match" in bad.json()["detail"][0]
        bad = client.post("/api/station/run", json={"sequence": "sequences/smok.yaml", "serial": "SN123"})
        assert bad.status_code == 422 and "did you mean 'sequences/smoke.yaml'" in bad.json()["detail"][0]
        assert client.post("/api/station/run", content=b"[1]").status_code == 400
        ok = client.post("/api/station/run", json={"sequence": SMOKE, "serial": "SN123"})
        assert ok.status_code == 202
        assert wait_for(lambda: idle(client), "the verdict")["outcome"] == "passed"


def test_the_event_stream_follows_a_unit_and_survives_a_client_leaving(example_project: Path) -> None:
    with running_server(example_project) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("GET", "/api/events") as stream:  # a client that leaves at once
            next(stream.iter_lines())
        client.post("/api/station/run", json={"sequence": SMOKE, "serial": "SN-SSE"})
        seen: list[dict[str, Any]] = []
        with client.stream("GET", "/api/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if seen[-1]["event_type"] == "station.idle":
                        break
        types = [e["event_type"] for e in seen]
        assert types.index("run.started") < types.index("test.measurement") < types.index("run.ended")
        assert seen[types.index("run.ended")]["outcome"] == "passed"
        assert "plan" not in seen[types.index("run.started")]
        assert station_state(client)["last"]["outcome"] == "passed"  # still serving


def test_results_submission(example_project: Path) -> None:
    with running_server(example_project) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        first = client.post("/api/results", json=DOC)
        assert first.status_code == 201 and first.json() == {"run_id": "lv-1", "outcome": "failed", "stored": True}
        again = client.post("/api/results", json=DOC)
        assert again.status_code == 200 and again.json()["stored"] is False
        bad = client.post("/api/results", json={**DOC, "hihg": 1, "run_id": "lv-2"})
        assert bad.status_code == 422
        assert any("$.hihg: unknown key" in line for line in bad.json()["detail"])
        huge = client.post("/api/results", content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
                           headers={"Content-Type": "application/json"})
        assert huge.status_code == 413
        assert [r["run_id"] for r in client.get("/api/runs").json()] == ["lv-1"]
        assert "FAILED" in client.get("/api/runs/lv-1/report").text
    got = duckdb.sql(f"SELECT run_id, run_outcome FROM read_parquet('{example_project}/data/runs/**/*.parquet') "
                     "WHERE record_type = 'run'").fetchall()
    assert got == [("lv-1", "failed")]


@pytest.mark.parametrize("ref", ["..%2F..%2Fetc%2Fpasswd", "..", "a.b", "%2e%2e", "x" * 65])
def test_run_ids_never_reach_files(example_project: Path, ref: str) -> None:
    with running_server(example_project) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        client.post("/api/results", json=DOC)
        for tail in ("", "/steps", "/measurements", "/report"):
            assert client.get(f"/api/runs/{ref}{tail}").status_code == 404


def test_a_token_guards_writes_and_reads(example_project: Path) -> None:
    with running_server(example_project, token="s3cret") as (url, _), httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/api/runs").status_code == 401
        assert c.post("/api/results", json=DOC).status_code == 401
        assert c.get("/api/events").status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        assert c.post("/api/results", json=DOC, headers=auth).status_code == 201
        assert c.get("/api/runs", headers=auth).status_code == 200
        assert c.get("/api/runs", params={"token": "s3cret"}).status_code == 200
        assert c.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert "access-control-allow-origin" not in c.get("/api/runs", headers={**auth, "Origin": "http://evil"}).headers
    with running_server(example_project, token="s3cret", public_read=True) as (url, _), \
            httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/api/runs").status_code == 200
        assert c.post("/api/station/stop").status_code == 401


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(example_project: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "serve", "--host", "0.0.0.0"],
                          cwd=example_project, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4 and "needs a token" in proc.stderr and "Traceback" not in proc.stderr


def test_stop_between_prompts_ends_the_unit_at_its_next_step_boundary(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "sequences").mkdir(parents=True)
    (project / "stop_checks").mkdir()
    (project / "litmus.yaml").write_text("name: stop-test\n")
    (project / "stop_checks" / "__init__.py").write_text("")
    (project / "stop_checks" / "gate.py").write_text(
        "import time\nfrom pathlib import Path\n"
        "def hold(ctx):\n"
        "    Path('held').touch()\n"
        "    while not Path('go').exists():\n"
        "        time.sleep(0.01)\n")
    (project / "sequences" / "held.yaml").write_text(
        "sequence: held\nsteps:\n  - name: hold\n    python: stop_checks.gate:hold\n"
        "  - name: after\n    python: stop_checks.gate:hold\n"
        "cleanup:\n  - name: tidy\n    python: stop_checks.gate:hold\n")
    import os

    old = os.getcwd()
    os.chdir(project)  # the callables create and wait for files relative to the working folder
    try:
        with running_server(project) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
            client.post("/api/station/run", json={"sequence": "sequences/held.yaml", "serial": "SN-H"})
            wait_for(lambda: (project / "held").exists(), "the step to start")
            assert client.post("/api/station/stop").json() == {"stopping": True}
            (project / "go").touch()
            last = wait_for(lambda: idle(client), "the verdict")
            assert last["outcome"] == "terminated" and "stopped by the operator" in last["error"]
            steps = {s["step_path"]: s["step_outcome"] for s in client.get(f"/api/runs/{last['run_id']}/steps").json()}
            assert steps["main/after"] is None  # never ran
            assert steps["cleanup/tidy"] == "done"
    finally:
        os.chdir(old)
