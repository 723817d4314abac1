"""The run materializer: events in, one parquet file per run out (``PARQUET.md``).

The same plugin runs live (on ``litmus_seq_events`` in the engine's process, writing the file
when ``run.ended`` arrives) and offline (:func:`materialize_events` replaying the event store
after a crash, for ``litmus-seq recover``). One code path means a recovered file cannot differ
from a live one except in what the crash took away.

Three parts: this plugin dispatches each event to a handler that updates the run's
:class:`~litmus_seq.stores.run_state.RunState` (a dict dispatch and, for a measurement, one tuple
appended: nothing is denormalized while the run executes); at ``run.ended`` the
:class:`~litmus_seq.stores.row_writer.RunWriter` builds and writes the file.

A run whose events stop without ``run.ended`` (the process died) is not written live: the event
store still has it, and ``recover`` seals it as ``aborted`` (steps and vectors that started but
never ended are ``aborted``; those never started keep NULL).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from litmus_seq import events as ev
from litmus_seq.errors import StoreError
from litmus_seq.hookspecs import hookimpl
from litmus_seq.stores.row_writer import RunWriter
from litmus_seq.stores.run_state import END_NO_TS, M_GET, M_KEYS, NO_TS, RunState, ts_int

__all__ = ["RunMaterializer", "materialize_events", "CHUNK_ROWS"]

#: Measurements kept as Python tuples before they become Arrow arrays.
CHUNK_ROWS = 8192


class RunMaterializer:
    """Pluggy plugin writing ``<data_dir>/runs/{date}/{timestamp}_{serial}.parquet`` per run.

    ``written`` lists the files written, in order. ``exclude_runs`` names runs to ignore (used by
    ``recover`` for runs that already have a file). With ``on_error`` (offline), a run whose
    events cannot be handled or whose file cannot be written is handed to it as
    ``(run_id, exception)`` and dropped, and the other runs go on; without it (live) the
    exception reaches the engine.
    """

    def __init__(self, data_dir: Path, *, exclude_runs: Collection[str] = (),
                 on_error: Callable[[Any, Exception], None] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.written: list[Path] = []
        self._by_run: dict[Any, Path | StoreError] = {}  # until litmus_seq_run_sealed asks
        self._exclude = set(exclude_runs)
        self._on_error = on_error
        self._sessions: dict[Any, dict[str, Any]] = {}
        self._runs: dict[Any, RunState] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            ev.SESSION_STARTED: self._on_session_started,
            ev.RUN_STARTED: self._on_run_started,
            ev.RUN_ENDED: self._on_run_ended,
            ev.INSTRUMENT_CONNECTED: self._on_instrument,
            ev.STEPS_DISCOVERED: self._on_discovered,
            ev.STEP_STARTED: self._on_step_started,
            ev.STEP_ENDED: self._on_step_ended,
            ev.VECTOR_STARTED: self._on_vector_started,
            ev.VECTOR_ENDED: self._on_vector_ended,
            ev.MEASUREMENT: self._on_measurement,
            ev.CONFIGURED: self._on_configured,
            ev.OBSERVED: self._on_observed,
        }

    # -- the hook -----------------------------------------------------------------------------

    @hookimpl(trylast=True)
    def litmus_seq_events(self, events: list[dict[str, Any]]) -> None:
        """Dispatch each event by type; writes a file when a ``run.ended`` arrives.

        ``trylast``: the event store (``tryfirst``) has made the batch durable before a seal
        starts, so a crash during a long seal never loses the run's real outcome."""
        get = self._handlers.get
        if self._on_error is not None:
            self._isolated(events)
        else:
            for e in events:
                h = get(e["event_type"])
                if h is not None:
                    h(e)
        if events:
            last = events[-1]
            r = self._runs.get(last.get("run_id"))
            if r is not None:
                r.last_ts = last.get("timestamp")

    def _isolated(self, events: list[dict[str, Any]]) -> None:
        """The offline dispatch: an event that cannot be handled drops its run, not the replay."""
        get = self._handlers.get
        for e in events:
            h = get(e.get("event_type"))
            if h is not None:
                try:
                    h(e)
                except Exception as exc:
                    self._drop(e.get("run_id"), exc)

    def _drop(self, run_id: Any, exc: Exception) -> None:
        assert self._on_error is not None
        self._runs.pop(run_id, None)
        if run_id is not None:
            self._exclude.add(run_id)  # its later events are ignored
        self._on_error(run_id, exc)

    @hookimpl
    def litmus_seq_run_sealed(self, run_id: str, outcome: str) -> Path | None:
        """The file written for ``run_id`` (the recorder's :class:`RunResult.parquet`); raises
        the :class:`StoreError` of a seal that failed (disk full, a folder that cannot be
        written): the run's outcome is safe in the event store, but no file holds it, so the
        caller must not report the run as sealed (the CLI exits 3 with that one line)."""
        got = self._by_run.pop(run_id, None)
        if isinstance(got, StoreError):
            raise got
        return got

    def close(self) -> None:
        """Forget unfinished runs: a run without ``run.ended`` is ``recover``'s to seal."""
        self._runs.clear()
        self._sessions.clear()

    @property
    def open_runs(self) -> list[str]:
        """Runs started and not ended (what a crash would leave to ``recover``)."""
        return list(self._runs)

    def seal_unfinished(self) -> list[Path]:
        """Write every open run as ``aborted`` (offline only: the process that ran it is gone)."""
        out = []
        for run_id in list(self._runs):
            path = self._write(self._runs.pop(run_id))
            if path is not None:
                out.append(path)
        return out

    # -- handlers -----------------------------------------------------------------------------

    def _on_session_started(self, e: dict[str, Any]) -> None:
        self._sessions[e.get("session_id")] = {"event": e, "instruments": {}}

    def _session(self, sid: Any) -> dict[str, Any]:
        s = self._sessions.get(sid)
        if s is None:
            s = self._sessions[sid] = {"event": {}, "instruments": {}}
        return s

    def _on_run_started(self, e: dict[str, Any]) -> None:
        run_id = e.get("run_id")
        if run_id is None or run_id in self._exclude:
            return
        self._runs[run_id] = RunState(run_id, e, self._session(e.get("session_id")))

    def _on_run_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.pop(e.get("run_id"), None)
        if r is None:
            return
        r.ended = True
        r.ended_at = e.get("timestamp")
        r.outcome = e.get("outcome")
        r.error = e.get("error")
        self._write(r)

    def _on_instrument(self, e: dict[str, Any]) -> None:
        info = {k: e.get(k) for k in ("role", "driver", "resource", "identity", "calibration", "mocked",
                                      "identity_check")}
        role = info["role"]
        self._session(e.get("session_id"))["instruments"][role] = info
        r = self._runs.get(e.get("run_id"))
        if r is not None:
            r.instruments[role] = info

    def _on_discovered(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e.get("run_id"))
        if r is not None:
            r.discovered = items = list(e.get("items") or ())
            planned = r.planned = {item.get("step_path") for item in items}
            for sid, path in enumerate(r.st_path):  # (steps started before the plan was announced)
                if path in planned:
                    r.st_info.pop(sid, None)

    def _on_step_started(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        sid = r.step_ids.get(path)
        if sid is None:
            sid = r.step(path)
        planned = r.planned
        if planned is None or path not in planned:
            r.st_info[sid] = (e.get("name"), e.get("step_index"), e.get("node_id"), e.get("kind"),
                              e.get("vector_count"))
        ts = e["timestamp"]
        i = 2 * sid
        times = r.st_times
        times[i] = ts if type(ts) is int else ts_int(ts)
        times[i + 1] = NO_TS
        end = r.st_end
        end[i] = end[i + 1] = None

    def _on_step_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        sid = r.step_ids.get(path)
        if sid is None:
            sid = r.step(path)
        ts = e["timestamp"]
        i = 2 * sid
        r.st_times[i + 1] = ts if type(ts) is int else ts_int(ts)
        end = r.st_end
        end[i] = e.get("outcome")
        end[i + 1] = e.get("error")

    def _on_vector_started(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        index = e["vector_index"]
        vi = r.m_vi = r.vector(path, index)
        r.m_path = path
        r.m_index = index
        if e.get("retry"):
            r.retries += 1
        times = r.v_times
        i = 2 * vi
        if times[i] == NO_TS:
            ts = e["timestamp"]
            times[i] = ts if type(ts) is int else ts_int(ts)
        times[i + 1] = NO_TS
        r.v_params[vi] = e.get("params")
        if r.v_errors:
            r.v_errors.pop(vi, None)
        r.v_outcome[vi] = None

    def _on_vector_ended(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        index = e["vector_index"]
        vi = r.m_vi if path is r.m_path and index is r.m_index else r.vector(path, index)
        ts = e["timestamp"]
        r.v_times[2 * vi + 1] = ts if type(ts) is int else END_NO_TS if ts is None else ts_int(ts)
        r.v_outcome[vi] = e.get("outcome")
        error = e.get("error")
        if error is not None:
            r.v_errors[vi] = error
        elif r.v_errors:
            r.v_errors.pop(vi, None)

    def _on_measurement(self, e: dict[str, Any]) -> None:
        r = self._runs.get(e["run_id"])
        if r is None:
            return
        path = e["step_path"]
        index = e["vector_index"]
        if path is r.m_path and index is r.m_index:
            vi = r.m_vi
        else:
            vi = r.m_vi = r.vector(path, index)
            r.m_path = path
            r.m_index = index
        lim = e.get("limit")
        li = r.limit_ids.get(id(lim))
        if li is None:
            li = r.limit_index(lim)
        role = e.get("instrument")
        ri = r.role_ids.get(role)
        if ri is None:
            ri = r.role_index(role)
        try:
            fields = M_GET(e)
        except KeyError:  # an event without its optional fields (not from the engine)
            fields = tuple(map(e.get, M_KEYS))
        rows = r.rows
        rows.append(fields + (vi, li, ri))
        if len(rows) >= CHUNK_ROWS:
            r.seal_chunk()

    def _kv_target(self, e: dict[str, Any], attr: str) -> dict[Any, Any] | None:
        r = self._runs.get(e.get("run_id"))
        if r is None:
            return None
        path, index = e.get("step_path"), e.get("vector_index")
        if path is None:
            return r.run_configured if attr == "configured" else r.run_observed
        if index is None:
            key = r.step(path)
            holder = r.st_configured if attr == "configured" else r.st_observed
        else:
            key = r.vector(path, index)
            holder = r.v_configured if attr == "configured" else r.v_observed
        d = holder.get(key)
        if d is None:
            d = holder[key] = {}
        return d

    def _on_configured(self, e: dict[str, Any]) -> None:
        d = self._kv_target(e, "configured")
        if d is not None:
            d[e.get("key")] = e.get("value")

    def _on_observed(self, e: dict[str, Any]) -> None:
        d = self._kv_target(e, "observed")
        if d is not None:
            d[e.get("key")] = e.get("value")

    # -- writing ------------------------------------------------------------------------------

    def _write(self, r: RunState) -> Path | None:
        try:
            path = RunWriter(r, self.data_dir).write()
        except StoreError as exc:
            if self._on_error is not None:
                self._drop(r.run_id, exc)
            else:  # live: told once, to whoever asks for the file (litmus_seq_run_sealed)
                self._by_run[r.run_id] = exc
            return None
        except Exception as exc:
            if self._on_error is None:
                raise
            self._drop(r.run_id, exc)
            return None
        self.written.append(path)
        self._by_run[r.run_id] = path
        return path


def materialize_events(events: Iterable[dict[str, Any]], data_dir: Path, *, seal_unfinished: bool = True,
                       exclude_runs: Collection[str] = (),
                       on_error: Callable[[Any, Exception], None] | None = None) -> list[Path]:
    """Replay ``events`` through a :class:`RunMaterializer`; returns the files written.

    Runs still open when the events end are sealed as ``aborted`` (``seal_unfinished``), which
    is only right when the process that ran them is gone (``recover`` checks that). With
    ``on_error``, a run that fails is reported to it and the others are still written.
    """
    m = RunMaterializer(Path(data_dir), exclude_runs=exclude_runs, on_error=on_error)
    it = iter(events)
    while True:
        batch = list(islice(it, 4096))
        if not batch:
            break
        m.litmus_seq_events(batch)
    if seal_unfinished:
        m.seal_unfinished()
    m.close()
    return m.written
