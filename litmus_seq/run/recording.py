"""A recording: one run together with everything it records into, opened and closed as one.

The front doors that are not ``litmus-seq run`` — the results client, ``submit``, the HTTP
server — each need the same four things for a run: a plugin manager with the project's plugins,
the stores on the data folder, a session on the station, and the run itself. :func:`open_recording`
opens them in that order and :meth:`Recording.close` seals the run and closes the rest in
reverse, also when something fails half-way, so no front door can leave a session or a store
open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from litmus_seq.errors import ConfigError

__all__ = ["Recording", "open_recording", "resolve_product", "resolve_station"]


class Recording:
    """An open run (:attr:`run`, the recorder) with its session and stores."""

    def __init__(self, stores: Any, session: Any, run: Any) -> None:
        self.stores = stores
        self.session = session
        self.run = run
        self.result: Any = None

    def close(self) -> Any:
        """Seal the run, close the session and the stores (each even if the one before failed);
        returns the :class:`~litmus_seq.run.RunResult`. Idempotent."""
        if self.result is not None:
            return self.result
        try:
            self.result = self.run.finish()
        finally:
            try:
                self.session.close()
            finally:
                self.stores.close()
        return self.result


def resolve_station(project: Any, station: Any, *, optional: bool) -> Any:
    """A station model from an id or file of ``project`` (or a model as given). With
    ``optional``, an id the project has no file for names a station without instruments: a
    tool reporting results from elsewhere only says which station it was."""
    from litmus_seq import models

    if station is None or isinstance(station, models.Station):
        return station
    ref = str(station)
    try:
        path = project.resolve(ref, "stations")
    except ConfigError:
        if optional:
            return models.Station(id=ref)
        raise
    return project.load(path, models.Station)


def resolve_product(project: Any, product: Any) -> Any:
    """A product model from an id or file of ``project`` (or a model as given). An id the
    project has no spec for is an error: measurements would go unjudged, and pass, unseen."""
    from litmus_seq import models

    if product is None or isinstance(product, models.Product):
        return product
    if not isinstance(product, (str, Path)):
        raise ConfigError(f"product: expected a product id, a file or a litmus_seq.models.Product, "
                          f"got {type(product).__name__}")
    return project.load_product(str(product))


def open_recording(
    project: Any,
    *,
    data_dir: Path,
    station: Any = None,
    product: Any = None,
    station_optional: bool = False,
    plugins: Iterable[str] = (),
    mock_roles: Iterable[str] = (),
    listeners: Iterable[Any] = (),
    operator: str | None = None,
    guardband_pct: float | None = None,
    steps: list[Mapping[str, Any]] | None = None,
    sequence: Mapping[str, Any] | None = None,
    clock: Callable[[], int] | None = None,
    **context: Any,
) -> Recording:
    """Open the stores on ``data_dir``, a session on ``station`` and a run of ``product``;
    ``steps`` (``discover`` items) declares the planned steps, ``sequence`` names what is run
    (``name``, ``version``, ``file``; the project's name is filled in), ``clock`` (nanoseconds since
    the epoch) stamps the events instead of the wall clock, and ``context`` goes to
    :meth:`~litmus_seq.run.Session.start_run` (``dut_serial``, ``phase``, ``custom``, ``run_id``…).
    Configuration mistakes raise :class:`~litmus_seq.errors.ConfigError` before anything is
    written."""
    from litmus_seq.plugins import get_plugin_manager
    from litmus_seq.run.session import Session
    from litmus_seq.stores import register_stores

    station_model = resolve_station(project, station, optional=station_optional)
    product_model = resolve_product(project, product)
    if guardband_pct is None:
        guardband_pct = project.config.guardband_pct or 0.0
    pm = get_plugin_manager(project_root=project.root, extra=tuple(plugins) + tuple(project.config.plugins))
    stores = register_stores(pm, data_dir)
    session = Session(station_model, pm=pm, root=project.root, mock_roles=mock_roles, operator=operator,
                      listeners=listeners, clock_ns=clock, data_dir=data_dir)
    try:
        session.open()
        names = {"project_name": getattr(project.config, "name", None) or project.root.name, **(sequence or {})}
        run = session.start_run(product=product_model, guardband_pct=guardband_pct, operator=operator,
                                sequence=names, **context)
        if steps is not None:
            run.discover(steps)
    except BaseException:
        try:
            session.close()
        finally:
            stores.close()
        raise
    return Recording(stores, session, run)
