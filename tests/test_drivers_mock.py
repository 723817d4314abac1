"""The ``mock`` driver: DESIGN §2.1 semantics."""

from __future__ import annotations

import pytest

from litmus_seq.drivers.mock import MockDriver
from litmus_seq.errors import InstrumentError


def make(mock: dict | None, role: str = "fixture") -> MockDriver:
    # exactly how the engine constructs drivers
    return MockDriver(resource=None, settings={"role": role, "mock": mock, "visa_library": None})


def test_scalar_is_returned_on_every_call() -> None:
    drv = make({"read_id": "FX-01", "measure_temp": 24.8})
    assert [drv.read_id() for _ in range(3)] == ["FX-01"] * 3
    assert drv.measure_temp() == 24.8


def test_list_returns_items_in_turn_and_the_last_repeats() -> None:
    drv = make({"measure": [1.0, 2.0, 3.0]})
    assert [drv.measure() for _ in range(5)] == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_wrapped_list_returns_the_list_every_call() -> None:
    drv = make({"waveform": [[1, 2, 3]]})
    assert drv.waveform() == [1, 2, 3]
    assert drv.waveform() == [1, 2, 3]


def test_null_is_a_setter_returning_none_and_any_arguments_are_accepted() -> None:
    drv = make({"relay_on": None, "set_voltage": None})
    assert drv.relay_on() is None
    assert drv.set_voltage(5.0) is None
    assert drv.set_voltage(volts=3.3, channel=2) is None
    assert list(drv.calls) == [
        ("relay_on", (), {}),
        ("set_voltage", (5.0,), {}),
        ("set_voltage", (), {"volts": 3.3, "channel": 2}),
    ]


def test_unlisted_method_names_role_method_and_the_mocked_methods() -> None:
    drv = make({"read_id": "FX-01", "relay_on": None}, role="fixture")
    with pytest.raises(InstrumentError) as info:
        drv.measure_temp()
    message = str(info.value)
    assert "'fixture'" in message
    assert "'measure_temp'" in message
    assert "read_id, relay_on" in message
    assert info.value.exit_code == 3


def test_hasattr_is_false_for_unlisted_methods_and_private_names() -> None:
    drv = make({"read_id": 1})
    assert hasattr(drv, "read_id")
    assert not hasattr(drv, "nope")
    assert not hasattr(drv, "__deepcopy__")
    with pytest.raises(AttributeError):
        drv._private  # noqa: B018


def test_identity_and_lifecycle() -> None:
    drv = make({}, role="dut")
    drv.connect()
    assert drv.connected
    assert drv.identity() == {"manufacturer": "litmus-seq", "model": "mock", "serial": "dut", "firmware": ""}
    drv.close()
    assert not drv.connected


def test_identity_can_be_overridden_from_the_mock_mapping() -> None:
    drv = make({"identity": {"model": "DMM6500", "serial": 42}}, role="dmm")
    ident = drv.identity()
    assert ident["model"] == "DMM6500"
    assert ident["serial"] == "42"
    assert ident["manufacturer"] == "litmus-seq"


def test_mock_none_means_nothing_is_mocked() -> None:
    drv = make(None, role="psu")
    with pytest.raises(InstrumentError, match=r"mocked methods: \(none\)"):
        drv.output_on()


def test_mock_that_is_not_a_mapping_is_an_error() -> None:
    with pytest.raises(InstrumentError, match="mapping"):
        make([1, 2], role="psu")  # type: ignore[arg-type]


def test_each_instance_has_its_own_list_position() -> None:
    first, second = make({"m": [1, 2]}), make({"m": [1, 2]})
    assert first.m() == 1 and first.m() == 2
    assert second.m() == 1


def test_call_history_is_bounded() -> None:
    from litmus_seq.drivers.mock import CALL_HISTORY

    drv = MockDriver(settings={"role": "dmm", "mock": {"read": 1.0}})
    for _ in range(CALL_HISTORY + 5):
        drv.read()
    assert len(drv.calls) == CALL_HISTORY
