"""Which driver name maps to which class, and which plugin registered it.

The registry is filled once per plugin manager by :func:`collect_drivers`, which calls every
``litmus_seq_register_drivers`` implementation *separately* (not through the hook relay) so that
each registration is attributed to its plugin: a duplicate driver name can then be reported with
both plugins named, and ``litmus-seq plugins`` can show who provides what.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq.errors import DriverError, Location, PluginError, Problem
from litmus_seq.suggest import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

__all__ = ["DriverRegistry", "builtin_registry", "collect_drivers", "station_driver_problems"]

_NAME = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$")


class DriverRegistry:
    """Driver name (``"mock"``, ``"scpi.dmm"``, ``"vendor.model"``) -> driver class."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}
        self._owners: dict[str, str | None] = {}
        #: set by :func:`collect_drivers` while one plugin's hook runs (attribution)
        self._current_plugin: str | None = None

    def register(self, name: str, cls: type, *, plugin: str | None = None) -> None:
        """Register ``cls`` under ``name``; a name already taken is a :class:`PluginError`."""
        owner = plugin if plugin is not None else self._current_plugin
        who = f"plugin {owner!r}" if owner else "an unnamed caller"
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{who} registered a driver with an invalid name {name!r}: use dotted identifiers "
                f"such as 'vendor.model'"
            )
        if not callable(cls):
            raise PluginError(
                f"{who} registered driver {name!r} as {cls!r}, which is not a class: pass the "
                f"driver class itself, e.g. registry.register({name!r}, MyDriver)"
            )
        if name in self._classes:
            first = self._owners.get(name)
            raise PluginError(
                f"driver {name!r} is registered twice: by plugin {first!r} "
                f"({_qualname(self._classes[name])}) and by plugin {owner!r} ({_qualname(cls)}); "
                f"uninstall or block one of them (-p no:NAME), or rename one driver"
            )
        self._classes[name] = cls
        self._owners[name] = owner

    def get(self, name: str, location: Location | None = None) -> type:
        """The class registered as ``name``; unknown names raise :class:`DriverError`.

        ``location`` (the station file's ``driver:`` value) makes the message point at the line.
        """
        try:
            return self._classes[name]
        except KeyError:
            pass
        hint = did_you_mean(name, self._classes)
        message = (
            f"unknown driver {name!r}{hint}; registered drivers: {', '.join(self.names()) or '(none)'}. "
            f"Install the plugin that provides it or fix the name (`litmus-seq plugins` lists them)"
        )
        if location is not None:
            raise DriverError(problems=[Problem(location, message)])
        raise DriverError(message)

    def names(self) -> list[str]:
        """Registered driver names, sorted."""
        return sorted(self._classes)

    def owner(self, name: str) -> str | None:
        """The plugin that registered ``name`` (``None`` if registered without attribution)."""
        if name not in self._classes:
            self.get(name)  # raises the helpful DriverError
        return self._owners.get(name)

    def items(self) -> Iterator[tuple[str, type, str | None]]:
        """``(name, class, plugin)`` for every driver, sorted by name."""
        for name in self.names():
            yield name, self._classes[name], self._owners[name]

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"<DriverRegistry {self.names()}>"


def _qualname(cls: Any) -> str:
    module = getattr(cls, "__module__", "?")
    return f"{module}:{getattr(cls, '__qualname__', repr(cls))}"


def builtin_registry() -> DriverRegistry:
    """The drivers litmus-seq ships, without loading any plugin (``validate --no-plugins``)."""
    from litmus_seq.drivers import BUILTIN_DRIVERS

    registry = DriverRegistry()
    for name, cls in BUILTIN_DRIVERS.items():
        registry.register(name, cls, plugin="litmus_seq.drivers")
    return registry


def collect_drivers(pm: pluggy.PluginManager) -> DriverRegistry:
    """Build a :class:`DriverRegistry` from every plugin's ``litmus_seq_register_drivers``.

    An exception inside a plugin's hook becomes a :class:`PluginError` naming the plugin (and, for
    local plugins, the file and line), never a traceback.
    """
    from litmus_seq.plugins import describe_plugin  # local import: plugins imports this module

    registry = DriverRegistry()
    hook = pm.hook.litmus_seq_register_drivers
    # get_hookimpls() is in registration order (builtins first), the order a reader expects
    for impl in hook.get_hookimpls():
        if getattr(impl, "wrapper", False) or getattr(impl, "hookwrapper", False):
            continue
        registry._current_plugin = impl.plugin_name
        kwargs = {"registry": registry} if "registry" in impl.argnames else {}
        try:
            impl.function(**kwargs)
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure in user code is reported, not raised
            raise PluginError(
                f"{describe_plugin(pm, impl.plugin_name, exc)}: litmus_seq_register_drivers failed: "
                f"{type(exc).__name__}: {exc}. Fix the plugin or block it with -p no:{impl.plugin_name}"
            ) from exc
        finally:
            registry._current_plugin = None
    return registry


def station_driver_problems(
    station: Any, doc: Any, known: Any, *, mock_roles: Any = (), registry: DriverRegistry | None = None
) -> list[Problem]:
    """One problem per instrument of ``station`` whose ``driver:`` is not in ``known``, one per
    broken rule of the driver contract of each known driver class the station uses, one per
    ``settings:`` mistake against the driver's options model and one per bad ``expect_idn``.

    ``doc`` is the station's :class:`litmus_seq.loader.Document`, so each problem points at the
    ``driver:`` value in the *station* file (where the fix goes), once per role -- not at every
    sequence line that calls the role. ``known`` is any container of driver names (a registry,
    or a set when plugins were not loaded); ``registry`` supplies the "did you mean" list.
    Roles in ``mock_roles`` (``--mock ROLE``) are not checked: they run on the mock driver.
    """
    problems: list[Problem] = []
    names = registry if registry is not None else (known if isinstance(known, DriverRegistry) else None)
    used_by: dict[str, list[str]] = {}
    for role, inst in getattr(station, "instruments", {}).items():
        if role in mock_roles:
            continue
        if inst.driver in known:
            used_by.setdefault(inst.driver, []).append(role)
            continue
        if inst.driver == "auto":  # chosen from *IDN? when it connects (drivers/auto.py)
            if not inst.resource:
                problems.append(Problem(doc.locate(("instruments", role, "driver")), (
                    "driver: auto reads *IDN? from the instrument, so the role needs resource: "
                    "(e.g. \"TCPIP::10.0.0.5::INSTR\"); or name the driver"), f"instruments.{role}.driver"))
            continue
        where = doc.locate(("instruments", role, "driver"))
        candidates = names.names() if names is not None else sorted(known)
        hint = did_you_mean(inst.driver, candidates)
        problems.append(Problem(where, (
            f"unknown driver {inst.driver!r}{hint}; registered drivers: {', '.join(candidates) or '(none)'}. "
            "Install the plugin that provides it or fix the name (`litmus-seq plugins` lists them)"
        ), f"instruments.{role}.driver"))
    if names is not None:
        from litmus_seq.drivers.contract import contract_problems
        from litmus_seq.drivers.options import settings_problems

        problems += contract_problems(((n, names.get(n)) for n in sorted(used_by)), _root_of(doc), used_by)
        for role, inst in getattr(station, "instruments", {}).items():
            if role not in mock_roles and inst.driver in used_by:
                problems += settings_problems(role, names.get(inst.driver), inst.settings, doc)
    from litmus_seq.drivers.identity import expect_idn_problems

    return problems + expect_idn_problems(station, doc)


def _root_of(doc: Any) -> Path | None:
    """The project root a loader document's ``display`` path is relative to."""
    path, display = getattr(doc, "path", None), getattr(doc, "display", None)
    if path is None or not display or Path(display).is_absolute():
        return None
    parts = len(Path(display).parts)
    root = Path(path).resolve()
    for _ in range(parts):
        root = root.parent
    return root
