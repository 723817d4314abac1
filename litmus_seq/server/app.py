"""The HTTP API and the operator page of ``litmus-seq serve`` (FastAPI; OpenAPI at ``/docs``).

| method and path | what |
|---|---|
| ``GET /`` | the operator page (static files shipped with the package, no build step) |
| ``GET /api/station`` | the station: sequences, serial pattern, the unit running, the last verdict, an open prompt |
| ``POST /api/station/run`` | ``{"sequence", "serial", "operator"?}``: start a unit (409 while one runs) |
| ``POST /api/station/stop`` | stop the unit: ``terminated``, cleanup still runs |
| ``POST /api/prompts/{id}`` | ``{"answer"}``: answer an operator prompt |
| ``GET /api/events`` | the station's live events (Server-Sent Events) |
| ``GET /api/runs`` | stored runs: ``dut``, ``station``, ``outcome``, ``since``, ``limit`` |
| ``GET /api/runs/{id}`` (``/steps``, ``/measurements``, ``/report``) | one run, its rows, its HTML report |
| ``POST /api/results`` | a whole run as a ``submit`` document: same checks, all or nothing, idempotent |

Security: the server binds to loopback unless told otherwise, and then it requires a token
(``Authorization: Bearer <token>``, or ``?token=`` for the event stream) on every request — on
reads too unless ``public_read``. Request bodies are limited to :data:`MAX_BODY` bytes. Run ids
in URLs are looked up in the run index, never joined into paths. No CORS headers are sent.
"""

from __future__ import annotations

import asyncio
import hmac
import queue
import re
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse

from litmus_seq.errors import ConfigError, LitmusError
from litmus_seq.server.station import Busy, Station

__all__ = ["MAX_BODY", "create_app"]

#: The largest request body accepted (a submitted run document of ~10,000 measurements).
MAX_BODY = 2 * 1024 * 1024
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_STATIC = Path(__file__).resolve().parent / "static"


def _problem(status: int, exc: LitmusError) -> JSONResponse:
    return JSONResponse({"detail": exc.lines()}, status_code=status)


def create_app(station: Station, *, token: str | None = None, public_read: bool = False) -> FastAPI:
    """The application serving ``station``; with ``token``, every request must carry it (reads
    too unless ``public_read``)."""
    app = FastAPI(title="litmus-seq station", version="1", docs_url="/docs", redoc_url=None)
    app.state.station = station

    def check(request: Request, write: bool) -> None:
        if token is None or (public_read and not write):
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() \
            or request.query_params.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "a token is required: Authorization: Bearer <token>")

    def reader(request: Request) -> None:
        check(request, write=False)

    def writer(request: Request) -> None:
        check(request, write=True)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, status_code=413)
        return await call_next(request)  # type: ignore[no-any-return]

    async def body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise HTTPException(413, f"request body over {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def json_body(request: Request) -> dict[str, Any]:
        import json

        try:
            data = json.loads(await body(request) or b"{}")
        except ValueError:
            raise HTTPException(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "the body must be a JSON object")
        return data

    def results() -> Any:
        from litmus_seq.results import Results

        return Results(station.data_dir)

    def run_summary(run_id: str) -> dict[str, Any]:
        if not _RUN_ID.match(run_id):
            raise HTTPException(404, "no such run")
        try:
            found = results().find_runs(run_id)
        except LitmusError:
            found = []
        if len(found) != 1:
            raise HTTPException(404, "no such run")
        return found[0]  # type: ignore[no-any-return]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(_STATIC / "index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        files = {p.name: p for p in _STATIC.iterdir()}
        if name not in files:
            raise HTTPException(404, "no such file")
        return FileResponse(files[name])

    @app.get("/api/station", dependencies=[Depends(reader)])
    def station_state() -> dict[str, Any]:
        return station.state()

    @app.post("/api/station/run", dependencies=[Depends(writer)], status_code=202)
    async def station_run(request: Request) -> Any:
        data = await json_body(request)
        try:
            return station.start(str(data.get("sequence", "")), str(data.get("serial", "")), data.get("operator"))
        except Busy as exc:
            return _problem(409, exc)
        except LitmusError as exc:
            return _problem(422, exc)

    @app.post("/api/station/stop", dependencies=[Depends(writer)])
    def station_stop() -> dict[str, Any]:
        return {"stopping": station.stop()}

    @app.post("/api/prompts/{prompt_id}", dependencies=[Depends(writer)])
    async def answer(prompt_id: str, request: Request) -> dict[str, Any]:
        data = await json_body(request)
        if "answer" not in data:
            raise HTTPException(422, 'give {"answer": ...}')
        if not station.prompts.answer(prompt_id, data["answer"]):
            raise HTTPException(404, "no such open prompt")
        return {"answered": prompt_id}

    @app.get("/api/events", dependencies=[Depends(reader)])
    async def events(request: Request) -> StreamingResponse:
        feed = station.feed
        q = feed.subscribe()

        async def stream() -> Any:
            try:
                yield ": connected\n\n"
                while not await request.is_disconnected():
                    try:
                        line = await asyncio.to_thread(q.get, True, 1.0)
                    except queue.Empty:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {line}\n\n"
            finally:
                feed.unsubscribe(q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/runs", dependencies=[Depends(reader)])
    def runs(dut: str | None = None, station_id: str | None = Query(None, alias="station"),
             outcome: str | None = None, since: str | None = None,
             limit: int = Query(50, ge=1, le=10_000)) -> Any:
        try:
            return results().list_runs(dut=dut, station=station_id, outcome=outcome, since=since, limit=limit)
        except LitmusError as exc:
            if not (station.data_dir / "runs").is_dir():
                return []
            return _problem(422, exc)

    @app.get("/api/runs/{run_id}", dependencies=[Depends(reader)])
    def run(run_id: str) -> dict[str, Any]:
        return run_summary(run_id)

    @app.get("/api/runs/{run_id}/steps", dependencies=[Depends(reader)])
    def steps(run_id: str) -> list[dict[str, Any]]:
        return results().get_steps(run_summary(run_id)["run_id"])  # type: ignore[no-any-return]

    @app.get("/api/runs/{run_id}/measurements", dependencies=[Depends(reader)])
    def measurements(run_id: str) -> list[dict[str, Any]]:
        return results().get_measurements(run_summary(run_id)["run_id"])  # type: ignore[no-any-return]

    @app.get("/api/runs/{run_id}/report", dependencies=[Depends(reader)], response_class=HTMLResponse)
    def report(run_id: str) -> HTMLResponse:
        from litmus_seq.report import render_report

        return HTMLResponse(render_report(results().rows(run_summary(run_id)["run_id"])))

    @app.post("/api/results", dependencies=[Depends(writer)])
    async def post_results(request: Request) -> JSONResponse:
        from litmus_seq.submit import submit

        text = await body(request)
        try:
            result = await asyncio.to_thread(submit, text, data_dir=station.data_dir, project=station.project,
                                             source="body")
        except ConfigError as exc:
            return _problem(422, exc)
        return JSONResponse({"run_id": result.run_id, "outcome": result.outcome, "stored": result.stored},
                            status_code=201 if result.stored else 200)

    return app
