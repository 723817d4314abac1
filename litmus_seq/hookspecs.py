"""Hook specifications: the whole plugin surface of litmus-seq in one module.

Plugins are found (see :mod:`litmus_seq.plugins`) from the ``litmus_seq`` entry-point group, from
``*.py`` modules directly in the project's ``plugins/`` folder, and from ``-p module``. A plugin
implements any subset of these hooks with ``@litmus_seq.hookimpl``. The built-in event store,
run materializer and console are plugins on these same hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.drivers.registry import DriverRegistry

PROJECT_NAME = "litmus_seq"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def litmus_seq_register_drivers(registry: DriverRegistry) -> None:
    """Register instrument driver classes: ``registry.register("vendor.model", DriverClass)``.

    Called once per plugin manager, when the drivers are first needed (``validate``, ``plugins``,
    preflight). The engine constructs ``DriverClass(resource=<str or None>, settings=<dict>)``,
    calls ``connect()`` and ``identity()`` when a run first uses the role, and ``close()`` at the
    end of the session. The class may declare ``options_model`` (a pydantic model of its
    ``settings:``) and ``calibration() -> {"due", "certificate"}``; ``litmus-seq plugins check``
    tests the whole contract. A name registered twice is an error naming both plugins. Return
    nothing.
    """


@hookspec(firstresult=True)
def litmus_seq_identify_driver(idn: str, resource: str | None) -> str | None:
    """Name the driver for an instrument of a ``driver: auto`` role; the first name wins.

    Called when such a role connects, with its ``*IDN?`` reply (``"Maker,Model,Serial,Firmware"``)
    and its resource string. Return a registered driver name, or ``None`` to let the next plugin
    answer. The built-in generic SCPI drivers answer with ``trylast=True`` so that a vendor plugin
    knowing the exact model is asked first: implement this hook without ``trylast``.
    """


@hookspec
def litmus_seq_add_options(parser: Any) -> None:
    """Add command-line options to ``litmus-seq run``: ``parser.addoption("--soak-s", type=float,
    default=60.0, help="...")`` (the arguments of :meth:`argparse.ArgumentParser.add_argument`).

    Called once per ``run``, after the project's plugins are loaded. The values are on the
    session as ``session.options`` (a dict keyed by the option's destination, ``soak_s``), e.g.
    in ``litmus_seq_session_start``. Give values as ``--soak-s=90`` or after the sequence
    file. Return nothing.
    """


@hookspec
def litmus_seq_event(event: dict[str, Any]) -> None:
    """Receive one event as soon as it is emitted (see :mod:`litmus_seq.events` for fields).

    Called per event, so it costs ~2 µs a measurement: use :func:`litmus_seq_events` for
    anything that can wait until the next step boundary.
    """


@hookspec
def litmus_seq_events(events: list[dict[str, Any]]) -> None:
    """Receive a batch of events, in ``seq`` order, at every step boundary and before blocking.

    The built-in stores and the console subscribe here. The list and its dicts are shared by all
    subscribers: do not mutate them.
    """


@hookspec(firstresult=True)
def litmus_seq_prompt(prompt: dict[str, Any]) -> Any:
    """Answer an operator prompt; the first non-``None`` answer wins.

    ``prompt`` has ``prompt_id``, ``message``, ``prompt_type`` (``confirm`` | ``choice`` |
    ``input``), ``choices`` and ``timeout_s``. Return ``True``/``False`` for confirm, the chosen
    string for choice, the text for input, or the string ``"abort"`` to stop the run
    (terminated). Return ``None`` to let the next implementation answer.
    """


@hookspec(firstresult=True)
def litmus_seq_write_channel(
    run_id: str, key: str, values: Any, step_path: str | None, vector_index: int | None
) -> tuple[str, Any] | None:
    """Store an observed array (``observe()`` of a sequence of numbers); return ``(uri, path)``:
    its ``channel://`` URI and the file (or ``None``). The built-in channel store answers."""


@hookspec
def litmus_seq_run_ending(run_id: str) -> None:
    """A run is about to be sealed: its events so far were delivered. Make what you hold for it
    durable now, and raise if you cannot: the run is then sealed ``errored`` with your error as
    its cause (the event store writes and syncs here)."""


@hookspec
def litmus_seq_run_sealed(run_id: str, outcome: str) -> Any:
    """A run was sealed (its ``run.ended`` delivered); return the path, or a list of paths, of
    what this plugin wrote for it (the run materializer returns the parquet file), or ``None``.
    The recorder hands them to the caller in :class:`~litmus_seq.run.recorder.RunResult`."""


@hookspec
def litmus_seq_session_start(session: Any) -> None:
    """A session (one station, one or more runs) is starting; ``session`` is the live Session."""


@hookspec
def litmus_seq_session_finish(session: Any, outcome: str) -> None:
    """The session finished with ``outcome`` (its last run's outcome); stores are sealed after."""
