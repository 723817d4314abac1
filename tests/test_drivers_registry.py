"""DriverRegistry and collect_drivers: attribution, duplicates, helpful lookups."""

from __future__ import annotations

import pluggy
import pytest

from litmus_seq import hookimpl, hookspecs
from litmus_seq.drivers import MockDriver, ScpiDmm
from litmus_seq.drivers.registry import DriverRegistry, collect_drivers
from litmus_seq.errors import DriverError, Location, PluginError


class Dummy:
    def __init__(self, resource=None, settings=None) -> None:
        pass


def test_register_get_names_owner() -> None:
    reg = DriverRegistry()
    reg.register("scpi.dmm", ScpiDmm, plugin="builtin")
    reg.register("vendor.model", Dummy, plugin="acme")
    assert reg.get("vendor.model") is Dummy
    assert reg.names() == ["scpi.dmm", "vendor.model"]
    assert reg.owner("vendor.model") == "acme"
    assert "scpi.dmm" in reg and "nope" not in reg
    assert len(reg) == 2


def test_unknown_driver_suggests_and_lists() -> None:
    reg = DriverRegistry()
    reg.register("scpi.dmm", ScpiDmm, plugin="b")
    reg.register("mock", MockDriver, plugin="b")
    with pytest.raises(DriverError) as info:
        reg.get("scpi.dm")
    message = str(info.value)
    assert "did you mean 'scpi.dmm'" in message
    assert "registered drivers: mock, scpi.dmm" in message
    assert info.value.exit_code == 4


def test_unknown_driver_with_location_points_at_the_station_line() -> None:
    reg = DriverRegistry()
    with pytest.raises(DriverError) as info:
        reg.get("acme.psu", Location("stations/bench.yaml", 7, 13))
    assert info.value.lines()[0].startswith("stations/bench.yaml:7:13: unknown driver 'acme.psu'")


def test_owner_of_unknown_name_raises_driver_error() -> None:
    with pytest.raises(DriverError):
        DriverRegistry().owner("x")


def test_duplicate_name_names_both_plugins() -> None:
    reg = DriverRegistry()
    reg.register("scpi.dmm", ScpiDmm, plugin="litmus_seq.drivers")
    with pytest.raises(PluginError) as info:
        reg.register("scpi.dmm", Dummy, plugin="acme-plugin")
    message = str(info.value)
    assert "'litmus_seq.drivers'" in message and "'acme-plugin'" in message
    assert "ScpiDmm" in message and "Dummy" in message


@pytest.mark.parametrize("name", ["", "has space", "1abc", "a..b", 3])
def test_invalid_names_are_rejected(name: object) -> None:
    with pytest.raises(PluginError, match="invalid name"):
        DriverRegistry().register(name, Dummy, plugin="p")  # type: ignore[arg-type]


def test_non_class_is_rejected() -> None:
    with pytest.raises(PluginError, match="not a class"):
        DriverRegistry().register("a.b", 42, plugin="p")  # type: ignore[arg-type]


def _pm(*plugins: tuple[str, object]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm


def test_collect_drivers_attributes_each_registration_to_its_plugin() -> None:
    class First:
        @hookimpl
        def litmus_seq_register_drivers(self, registry: DriverRegistry) -> None:
            registry.register("one.a", Dummy)

    class Second:
        @hookimpl
        def litmus_seq_register_drivers(self, registry: DriverRegistry) -> None:
            registry.register("two.b", Dummy)
            registry.register("two.c", Dummy)

    reg = collect_drivers(_pm(("first", First()), ("second", Second())))
    assert [(n, o) for n, _, o in reg.items()] == [("one.a", "first"), ("two.b", "second"), ("two.c", "second")]


def test_collect_drivers_duplicate_across_plugins_names_both() -> None:
    class A:
        @hookimpl
        def litmus_seq_register_drivers(self, registry: DriverRegistry) -> None:
            registry.register("x.y", Dummy)

    class B:
        @hookimpl
        def litmus_seq_register_drivers(self, registry: DriverRegistry) -> None:
            registry.register("x.y", MockDriver)

    with pytest.raises(PluginError) as info:
        collect_drivers(_pm(("plugin-a", A()), ("plugin-b", B())))
    assert "'plugin-a'" in str(info.value) and "'plugin-b'" in str(info.value)


def test_exception_inside_register_hook_becomes_plugin_error() -> None:
    class Broken:
        @hookimpl
        def litmus_seq_register_drivers(self, registry: DriverRegistry) -> None:
            raise RuntimeError("driver table corrupt")

    with pytest.raises(PluginError) as info:
        collect_drivers(_pm(("broken-plugin", Broken())))
    message = str(info.value)
    assert "'broken-plugin'" in message
    assert "RuntimeError: driver table corrupt" in message
    assert "-p no:broken-plugin" in message
