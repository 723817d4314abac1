"""The event vocabulary (DESIGN §5) and the bus that carries it.

Events are plain ``dict`` objects, not pydantic models: the engine builds them itself on the hot
path and validating our own data there would cost more than the measurement. Every event has

=============  ============================================================================
``event_type`` one of the constants below (the sibling platform's type strings)
``session_id`` str
``run_id``     str, or ``None`` on session and fixture events
``seq``        int, per-session, strictly increasing
``timestamp``  int, microseconds since the Unix epoch, UTC
=============  ============================================================================

plus the fields listed for its type in :data:`FIELDS`. Fields may be added (optional, additive);
existing ones are never renamed or retyped. Subscribers must treat unknown fields as optional.

Delivery: :class:`EventBus` buffers events and hands them to the ``litmus_seq_events`` hook as a
list at every step boundary (and before anything that may block, such as a prompt); plugins that
implement the per-event ``litmus_seq_event`` hook get each event as it is emitted. Batching is what
keeps a measurement at a few microseconds: a pluggy hook call alone costs ~2 µs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]

SESSION_STARTED = "session.started"
SESSION_ENDED = "session.ended"
RUN_STARTED = "run.started"
RUN_ENDED = "run.ended"
INSTRUMENT_CONNECTED = "fixture.instrument_connected"
INSTRUMENT_DISCONNECTED = "fixture.instrument_disconnected"
STEPS_DISCOVERED = "test.steps_discovered"
STEP_STARTED = "test.step_started"
STEP_ENDED = "test.step_ended"
VECTOR_STARTED = "test.vector_started"
VECTOR_ENDED = "test.vector_ended"
MEASUREMENT = "test.measurement"
RECORD = "test.record"
CONFIGURED = "test.configured"
OBSERVED = "test.observed"
DIALOG_OPENED = "dialog.opened"
DIALOG_RESPONDED = "dialog.responded"
CHANNEL_STARTED = "channel.started"
CHANNEL_ENDED = "channel.ended"
WARNING = "diagnostic.warning"
ERROR = "diagnostic.error"
LOG = "test.log"

#: Fields of each event type beyond the common five. ``?`` marks optional fields (may be absent
#: or ``None``). Subscribers (event store, run materializer, console, publishers) rely on these.
FIELDS: dict[str, tuple[str, ...]] = {
    SESSION_STARTED: (
        "station_id", "station_name", "station_hostname", "operator_name?",
        "litmus_seq_version", "python_version", "platform", "plugins",  # plugins: list[dict]
    ),
    SESSION_ENDED: ("outcome?",),
    RUN_STARTED: (
        # run context: every key here becomes a parquet column of the same name
        "dut_serial?", "dut_part_number?", "dut_revision?", "dut_lot_number?",
        "product_id?", "product_name?", "product_revision?",
        "station_id?", "station_name?", "station_hostname?", "fixture_id?", "slot_id?",
        "operator_id?", "operator_name?", "test_phase?", "project_name?",
        "sequence_name?", "sequence_version?", "sequence_file?",
        "git_commit?", "git_branch?", "python_version?", "litmus_seq_version?",
        "run_selection?",  # the options that left main steps out (-k, --from, --only); None: all ran
        "custom?",  # dict -> custom_<key> columns
        "plan?",  # the resolved plan as a JSON string (parquet file metadata)
    ),
    RUN_ENDED: ("outcome", "error?"),
    INSTRUMENT_CONNECTED: (
        "role", "driver", "resource?", "identity",  # identity: {manufacturer, model, serial, firmware}
        "calibration?",  # {due, certificate, source, exception}
        "mocked",
        "identity_check?",  # the expect_idn decision: "matched", "mismatch: ...", or None
    ),
    INSTRUMENT_DISCONNECTED: ("role", "error?"),
    # items: one dict per planned step: node_id, step_path, parent_path, step_index, name, kind,
    # file, line, vector_count, phase ("setup" | "main" | "cleanup")
    STEPS_DISCOVERED: ("items",),
    STEP_STARTED: ("step_path", "step_index", "node_id", "name", "kind", "vector_count"),
    STEP_ENDED: ("step_path", "outcome", "error?"),
    VECTOR_STARTED: ("step_path", "vector_index", "retry", "params"),  # params: dict
    VECTOR_ENDED: ("step_path", "vector_index", "retry", "outcome", "error?"),
    MEASUREMENT: (
        "step_path", "vector_index", "retry", "name",
        "value?",  # float for numeric readings
        "text?",  # str for string/bool readings ("true"/"false")
        "units?", "outcome", "marginal",
        "limit?",  # dict from ResolvedLimit.as_dict() (shared, never mutated) or None
        "instrument?",  # role that took it
        "channel?", "dut_pin?", "fixture_connection?",
    ),
    RECORD: ("step_path?", "vector_index?", "key", "value"),
    CONFIGURED: ("step_path?", "vector_index?", "key", "value"),  # -> in_<key>
    OBSERVED: ("step_path?", "vector_index?", "key", "value"),  # -> out_<key>; arrays: channel:// URI
    DIALOG_OPENED: ("prompt_id", "step_path?", "message", "prompt_type", "choices?", "timeout_s?"),
    DIALOG_RESPONDED: ("prompt_id", "response?", "responder?", "timed_out"),
    CHANNEL_STARTED: ("key", "uri", "step_path?", "vector_index?"),
    CHANNEL_ENDED: ("key", "uri", "length", "path"),
    WARNING: ("message", "step_path?"),
    ERROR: ("message", "step_path?", "exception_type?", "traceback?"),
    # a record of Python's logging while a step ran (litmus_seq.logging.capture_logs)
    LOG: ("step_path?", "vector_index?", "level", "logger", "message", "file?", "line?"),
}

ALL_TYPES = tuple(FIELDS)


#: Events held before a delivery even inside a step (memory stays flat for huge steps).
MAX_BUFFER = 4096


def now_us() -> int:
    """Microseconds since the epoch, UTC: the event timestamp (an int is the cheapest clock)."""
    return time.time_ns() // 1000


def subscribers(hook: Any) -> Callable[..., None]:
    """A callable ``(events=batch)`` that hands a batch to every implementation of ``hook``.

    Every subscriber gets every batch, even when one before it raises: a failing listener must
    not cost the stores their events. What the subscribers raised is collected and returned (the
    bus turns it into :class:`~litmus_seq.errors.SubscriberError`). Calling the implementations'
    functions directly costs ~0.2 µs a batch where pluggy's dispatch costs ~2 µs; the list is
    re-read whenever a plugin comes or goes, and wrappers (whose semantics need pluggy) get the
    plain hook call.
    """
    state: dict[str, Any] = {"impls": None, "calls": None}

    def call(**kwargs: Any) -> list[tuple[str, BaseException]]:
        impls = hook.get_hookimpls()
        if impls != state["impls"]:  # HookImpl compares by identity: a plugin came or went
            state["impls"] = impls
            if any(i.hookwrapper or i.wrapper for i in impls):
                state["calls"] = None
            else:  # pluggy's call order: last registered first (tryfirst/trylast already sorted in)
                state["calls"] = [(i.plugin_name, i.function, tuple(i.argnames)) for i in reversed(impls)]
        calls = state["calls"]
        failed: list[tuple[str, BaseException]] = []
        if calls is None:
            try:
                hook(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by the bus
                failed.append(("litmus_seq_events", exc))
            return failed
        for name, fn, argnames in calls:
            try:
                fn(*[kwargs[a] for a in argnames])
            except BaseException as exc:  # noqa: BLE001 - the others still get the batch
                failed.append((name, exc))
        return failed

    return call


class EventBus:
    """Stamps events with session/run/seq/timestamp and delivers them in batches.

    ``deliver_batch`` is typically :func:`subscribers` of ``pm.hook.litmus_seq_events`` (it returns
    the ``(plugin, exception)`` pairs of subscribers that raised); ``deliver_one`` is the
    per-event hook, or ``None`` when no plugin implements it (checked once, so the hot path does
    not pay a hook call per measurement for nobody).

    The recorder's hot path builds its events complete (``seq`` from :attr:`next_seq`,
    ``run_id``, ``timestamp``) and hands them over with :meth:`push`: one dict literal and one
    call per event. Everyone else uses :meth:`emit`.
    """

    __slots__ = ("session_id", "run_id", "next_seq", "clock_ns", "_buffer", "_deliver_batch", "_deliver_one",
                 "delivering", "pending_signal", "failures", "_reported")

    def __init__(
        self,
        session_id: str,
        deliver_batch: Callable[..., Any],
        deliver_one: Callable[..., Any] | None = None,
        clock_ns: Callable[[], int] | None = None,
    ) -> None:
        self.session_id = session_id
        self.run_id: str | None = None
        #: what stamps events: nanoseconds since the epoch (the wall clock unless a front door
        #: records what happened earlier, e.g. a submitted run with its own times)
        self.clock_ns: Callable[[], int] = clock_ns if clock_ns is not None else time.time_ns
        #: the next ``seq`` of this session (strictly increasing from 1)
        self.next_seq: Callable[[], int] = itertools.count(1).__next__
        self._buffer: list[Event] = []
        self._deliver_batch = deliver_batch
        self._deliver_one = deliver_one
        #: > 0 while subscribers run or a run is being sealed: signal handlers hold interrupts
        #: meanwhile (see :mod:`litmus_seq.run.process`)
        self.delivering = 0
        self.pending_signal: Callable[[], BaseException] | None = None
        #: every ``(plugin, exception)`` a subscriber raised, in order
        self.failures: list[tuple[str, BaseException]] = []
        self._reported: set[str] = set()

    def emit(self, event_type: str, **fields: Any) -> Event:
        """Build, stamp and buffer one event; returns it."""
        fields["event_type"] = event_type
        fields["session_id"] = self.session_id
        fields["run_id"] = self.run_id
        fields["seq"] = self.next_seq()
        fields["timestamp"] = self.clock_ns() // 1000
        return self.push(fields)

    def emit_event(self, event: Event) -> Event:
        """Stamp and buffer an event dict built by the caller (no kwargs repacking)."""
        event["session_id"] = self.session_id
        event["run_id"] = self.run_id
        event["seq"] = self.next_seq()
        if "timestamp" not in event:
            event["timestamp"] = self.clock_ns() // 1000
        return self.push(event)

    def push(self, event: Event) -> Event:
        """Buffer an event that is already stamped (the recorder's hot path)."""
        buf = self._buffer
        buf.append(event)
        if self._deliver_one is not None:
            self._deliver_one(event=event)
        if len(buf) >= MAX_BUFFER:  # a step with very many measurements: keep memory flat
            self.flush()
        return event

    def flush(self) -> None:
        """Deliver buffered events to batch subscribers (step boundaries, before blocking).

        Raises :class:`~litmus_seq.errors.SubscriberError` the first time a plugin fails (each
        failing plugin is reported once; every failure stays in :attr:`failures`), and, after
        the delivery, an interrupt that arrived during it.
        """
        failed = None
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self.delivering += 1
            try:
                failed = self._deliver_batch(events=batch)
            finally:
                self.delivering -= 1
        pending = self.pending_signal
        if pending is not None and not self.delivering:
            self.pending_signal = None
            raise pending()
        if failed:
            self.failures.extend(failed)
            for name, exc in failed:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)) or name in self._reported:
                    continue
                self._reported.add(name)
                from litmus_seq.errors import SubscriberError

                raise SubscriberError(name, exc) from exc
