"""The three stores downstream of the recorder (DESIGN §5), all plain plugins on the event bus.

* :mod:`litmus_seq.stores.events` — the event store: every event of a session, Arrow IPC stream.
* :mod:`litmus_seq.stores.channels` — arrays and waveforms, one Arrow IPC file each.
* :mod:`litmus_seq.stores.materializer` — one parquet file per run (``PARQUET.md``), the same
  code live (in the recording process) and offline (``litmus-seq recover`` replaying events).

The front door registers them (:func:`register_stores`); the recorder never builds a store.
Nothing heavy is imported here: ``litmus-seq --help`` must not pay for importing pyarrow.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Stores", "register_stores"]


class Stores:
    """The built-in stores registered on one plugin manager; :meth:`close` (or the ``with``
    block's end) seals and unregisters them. Close it after the sessions it served."""

    def __init__(self, pm: Any, data_dir: Path, plugins: list[tuple[str, Any]]) -> None:
        self.pm = pm
        self.data_dir = data_dir
        self.plugins = plugins

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close every store (the event store's writer threads too), then unregister."""
        errors: list[BaseException] = []
        for _, plugin in reversed(self.plugins):
            close = getattr(plugin, "close", None)
            try:
                if close is not None:
                    close()
            except BaseException as exc:  # noqa: BLE001 - the other stores still close
                errors.append(exc)
            finally:
                self.pm.unregister(plugin)
        self.plugins = []
        if errors:
            raise errors[0]


def register_stores(pm: Any, data_dir: Path | str) -> Stores:
    """Register the event store, the run materializer and the channel store for ``data_dir`` on
    ``pm`` (creating the folder); returns the handle that closes them::

        with register_stores(pm, data_dir), Session(station, pm=pm) as session:
            result = run_plan(session, plan)          # result.parquet: the sealed run file

    The materializer answers ``litmus_seq_run_sealed`` with the run's parquet file, the channel
    store ``litmus_seq_write_channel`` for arrays a run observes.
    """
    from litmus_seq.errors import ConfigError
    from litmus_seq.plugins import register_builtin
    from litmus_seq.stores.channels import ChannelStore
    from litmus_seq.stores.events import EventStore
    from litmus_seq.stores.materializer import RunMaterializer

    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{data_dir}: cannot create the data folder ({exc.strerror or exc}); "
                          "give a writable --data-dir or set LITMUS_DATA_DIR") from exc
    plugins = [
        ("litmus_seq.event_store", EventStore(data_dir)),
        ("litmus_seq.materializer", RunMaterializer(data_dir)),
        ("litmus_seq.channel_store", ChannelStore(data_dir)),
    ]
    for name, plugin in plugins:
        register_builtin(pm, plugin, name)
    return Stores(pm, data_dir, plugins)
