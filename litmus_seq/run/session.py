"""A session: one station, one plugin manager, one event stream, one or more runs.

The session owns what outlives a run: the instruments (connected lazily, the first time a run
uses their role, and closed when the session closes) and the event bus. It knows nothing of
stores: the front door registers them on the plugin manager (:func:`litmus_seq.stores.register_stores`)
before the session opens, like any other listener.
"""

from __future__ import annotations

import platform
import socket
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from litmus_seq import events as ev
from litmus_seq.drivers.auto import AUTO, identify
from litmus_seq.errors import InstrumentError, LitmusError
from litmus_seq.run.process import active_buses, active_watchdogs
from litmus_seq.run.watchdog import DEFAULT_TIMEOUT_S, Watchdog, within

__all__ = ["Session"]


class Session:
    """One station, one plugin manager, one event stream; starts runs (:meth:`start_run`).

    ``station`` is a :class:`~litmus_seq.models.Station` (or ``None`` for runs without
    instruments); ``allow_expired_cal`` lets instruments past their calibration date measure
    (recorded on their rows); ``data_dir`` tells plugins where the stores write; ``pm`` the plugin
    manager with the stores and reporters already registered
    (a fresh one with the installed and ``plugins`` modules is made when omitted); ``root`` the
    folder relative station paths (a pyvisa-sim file) are resolved against; ``listeners`` extra
    plugins registered for the session's lifetime; ``clock_ns`` what stamps the events
    (nanoseconds since the epoch; the wall clock when omitted). Use as a context manager::

        with Session(station, pm=pm) as session:
            with session.start_run(dut_serial="SN1") as run:
                ...
    """

    def __init__(
        self,
        station: Any = None,
        *,
        pm: Any = None,
        plugins: Iterable[str] = (),
        root: Path | None = None,
        mock_roles: Iterable[str] = (),
        operator: str | None = None,
        listeners: Iterable[Any] = (),
        live: bool = False,
        allow_expired_cal: bool = False,
        clock_ns: Callable[[], int] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        if pm is None:
            from litmus_seq.plugins import get_plugin_manager

            pm = get_plugin_manager(project_root=root, extra=tuple(plugins))
        self.station = station
        self.pm = pm
        self.root = Path(root) if root is not None else Path.cwd()
        #: where the front door's stores write (for plugins: the session itself writes nothing)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.mock_roles = set(mock_roles)
        self.operator = operator
        #: flush events at every step start too (a live console), not only at step ends
        self.live = live
        #: run on instruments whose calibration expired (recorded on every row they touch)
        self.allow_expired_cal = allow_expired_cal
        #: values of the options plugins add to ``run`` (``litmus_seq_add_options``), by name
        self.options: dict[str, Any] = {}
        self.session_id = uuid.uuid4().hex
        #: connected drivers by role
        self.instruments: dict[str, Any] = {}
        #: the ``fixture.instrument_connected`` fields of each connected role
        self.instrument_info: dict[str, dict[str, Any]] = {}
        self.bus: ev.EventBus | None = None
        #: times instrument calls on the main thread (started with the first connection)
        self.watchdog = Watchdog()
        #: the outcome of the last run sealed in this session
        self.last_outcome: str | None = None
        self._listeners = list(listeners)
        self._clock_ns = clock_ns
        self._registered: list[Any] = []
        self._registry: Any = None
        self._open = False

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Register the listeners, start the event stream, emit ``session.started``."""
        from litmus_seq.plugins import plugin_info, register_builtin

        for i, listener in enumerate(self._listeners):
            register_builtin(self.pm, listener, f"litmus_seq.listener.{i}")
            self._registered.append(listener)
        hook = self.pm.hook
        deliver_one = hook.litmus_seq_event if hook.litmus_seq_event.get_hookimpls() else None
        self.bus = ev.EventBus(self.session_id, ev.subscribers(hook.litmus_seq_events), deliver_one, self._clock_ns)
        active_buses.append(self.bus)
        self._open = True
        st = self.station
        hook.litmus_seq_session_start(session=self)
        self.bus.emit(
            ev.SESSION_STARTED,
            station_id=getattr(st, "id", None),
            station_name=getattr(st, "name", None),
            station_hostname=socket.gethostname(),
            operator_name=self.operator,
            litmus_seq_version=_version(),
            python_version=platform.python_version(),
            platform=platform.platform(),
            plugins=[{k: v for k, v in p.items() if k != "hooks"} for p in plugin_info(self.pm)],
        )
        self.bus.flush()

    def close(self) -> None:
        """Close the instruments, emit ``session.ended``, close and unregister the listeners."""
        if not self._open:
            return
        self._open = False
        bus = self.bus
        assert bus is not None
        try:
            bus.run_id = None
            self.disconnect_all()
            try:
                self.pm.hook.litmus_seq_session_finish(session=self, outcome=self.last_outcome)
            finally:
                bus.emit(ev.SESSION_ENDED, outcome=self.last_outcome)
                bus.flush()
        finally:
            if bus in active_buses:
                active_buses.remove(bus)
            if self.watchdog in active_watchdogs:
                active_watchdogs.remove(self.watchdog)
                self.watchdog.stop()
            for plugin in reversed(self._registered):  # listeners with a close() finish their work
                close = getattr(plugin, "close", None)
                try:
                    if close is not None:
                        close()
                finally:
                    self.pm.unregister(plugin)
            self._registered.clear()

    def start_run(self, **context: Any) -> Any:
        """Start a run on this session; see :class:`~litmus_seq.run.recorder.Run` for the
        keyword arguments. The run is a context manager that always seals."""
        from litmus_seq.run.recorder import Run

        if not self._open:
            raise LitmusError("session is not open: use 'with Session(...)' or call open()")
        return Run(self, **context)

    # -- instruments ---------------------------------------------------------------------------

    def driver_registry(self) -> Any:
        """The drivers the plugins registered (collected once per session)."""
        if self._registry is None:
            from litmus_seq.drivers.registry import collect_drivers

            self._registry = collect_drivers(self.pm)
        return self._registry

    def driver_class(self, role: str) -> tuple[type, bool]:
        """``(driver class, mocked)`` for a station role (``--mock`` and ``driver: mock`` mock it)."""
        cfg = self.station.instruments[role]
        mocked = role in self.mock_roles or cfg.driver == "mock"
        if cfg.driver == AUTO and not mocked:  # asks the instrument: only when it connects
            return self.driver_registry().get(identify(self, role)), False
        return self.driver_registry().get("mock" if mocked else cfg.driver), mocked

    def roles(self) -> list[str]:
        """The station's roles (none without a station)."""
        return list(self.station.instruments) if self.station is not None else []

    def _visa_library(self) -> str | None:
        lib = self.station.visa_library
        if lib and "@" in lib and not lib.startswith("@"):
            path, _, backend = lib.rpartition("@")
            p = Path(path)
            if not p.is_absolute():
                p = self.root / p
            lib = f"{p}@{backend}"
        return lib

    def connect(self, role: str) -> Any:
        """The driver of ``role``, constructed and connected on first use (then kept), its
        identity and calibration checked (:func:`~litmus_seq.drivers.admit.admit`)."""
        driver = self.instruments.get(role)
        if driver is not None:
            return driver
        station = self.station
        if station is None or role not in station.instruments:
            from litmus_seq.suggest import did_you_mean

            raise InstrumentError(f"no instrument role '{role}' on station '{getattr(station, 'id', '<none>')}'"
                                  + did_you_mean(role, self.roles()))
        cfg = station.instruments[role]
        from litmus_seq.drivers.admit import admit

        cls, mocked = self.driver_class(role)
        settings = {**cfg.settings, "role": role, "mock": cfg.mock, "visa_library": self._visa_library()}
        def connect() -> tuple[Any, dict[str, Any]]:
            driver = cls(resource=cfg.resource, settings=settings)
            driver.connect()
            return driver, dict(driver.identity() or {})

        self._start_watchdog()
        try:
            driver, identity = within(self.timeout_for(role), connect, f"{role}: connect()")
        except LitmusError:
            raise
        except Exception as exc:
            raise InstrumentError(f"{role}: cannot connect to {cfg.resource or cfg.driver}: "
                                  f"{type(exc).__name__}: {exc}") from exc
        self.instruments[role] = driver
        self.instrument_info[role] = admit(self, self.bus, role, cfg, driver, identity, mocked)
        return driver

    def timeout_for(self, role: str) -> float:
        """The role's timeout: ``instruments.<role>.timeout_s``, else the station's, else 30 s."""
        station = self.station
        cfg = station.instruments.get(role) if station is not None else None
        return (getattr(cfg, "timeout_s", None) or getattr(station, "timeout_s", None) or DEFAULT_TIMEOUT_S)

    def _start_watchdog(self) -> None:
        if self.watchdog not in active_watchdogs:
            active_watchdogs.append(self.watchdog)
            self.watchdog.start()

    def disconnect_all(self) -> None:
        """Close every connected instrument (a failing close is recorded, never raised)."""
        bus = self.bus
        assert bus is not None
        for role in list(self.instruments):
            err = None
            try:  # a hanging close() must never keep the process alive: a daemon thread, bounded
                within(self.timeout_for(role), self.instruments[role].close, f"{role}: close()")
            except Exception as exc:  # a failing close must not lose the session's events
                err = str(exc) if isinstance(exc, LitmusError) else f"{type(exc).__name__}: {exc}"
            bus.emit(ev.INSTRUMENT_DISCONNECTED, role=role, error=err)
        self.instruments.clear()
        visa = sys.modules.get("litmus_seq.drivers.visa")
        if visa is not None:  # only if an instrument ever opened one (no pyvisa import otherwise)
            try:
                visa.close_resource_managers()
            except Exception as exc:
                bus.emit(ev.WARNING, message=f"closing VISA resource managers: {exc}", step_path=None)


def _version() -> str:
    from litmus_seq import __version__

    return __version__
