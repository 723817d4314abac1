"""The ``mock`` driver: answers the methods a station lists under ``mock:`` (DESIGN §2.1).

Any role can run on it (``driver: mock`` or ``--mock ROLE``), which is what lets a sequence be
developed and CI-tested without the bench. Semantics, per method in the mapping:

* a scalar (or dict) is returned on every call;
* a list returns its items one call after another, the last one repeating (to return a list on
  every call, wrap it: ``[[1, 2, 3]]``);
* ``null`` returns ``None`` (a setter).

A method that is not listed is an :class:`~litmus_seq.errors.InstrumentError` naming the role, the
method and the methods that are mocked. Methods are built once and cached on the instance, so a
mocked call on the hot path is a plain Python function call.
"""

from __future__ import annotations

from collections.abc import Callable
from collections import deque
from typing import Any

from litmus_seq.drivers.base import Driver
from litmus_seq.errors import InstrumentError

__all__ = ["MockDriver", "MockMethodError"]


class MockMethodError(InstrumentError, AttributeError):
    """A method the station did not mock was called.

    It is also an ``AttributeError`` so that ``hasattr(driver, "method")`` answers ``False``
    (validate-time checks use that) instead of raising.
    """


Call = tuple[str, tuple[Any, ...], dict[str, Any]]

#: How many recent calls a mock remembers: enough for any test or dry run to assert on, bounded
#: so that a million-measurement run does not keep a million argument tuples alive.
CALL_HISTORY = 1000


def _responder(name: str, value: Any, calls: deque[Call]) -> Callable[..., Any]:
    """Build the function answering one mocked method (any args and kwargs are accepted).

    Every call is appended to ``calls`` (the last :data:`CALL_HISTORY` are kept) so tests and dry
    runs can assert what a sequence did.
    """
    if isinstance(value, list) and value:
        items = list(value)
        state = [0]
        last = len(items) - 1

        def next_item(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args, kwargs))
            i = state[0]
            if i < last:
                state[0] = i + 1
            return items[i]

        return next_item
    if isinstance(value, list):  # an empty list: nothing to return
        value = None

    def constant(*args: Any, **kwargs: Any) -> Any:
        calls.append((name, args, kwargs))
        return value

    return constant


class MockDriver(Driver):
    """A driver whose methods are the keys of ``settings["mock"]``."""

    def __init__(self, resource: str | None = None, settings: dict[str, Any] | None = None) -> None:
        super().__init__(resource, settings)
        self.role = str(self.settings.get("role") or "mock")
        mock = self.settings.get("mock")
        if mock is not None and not isinstance(mock, dict):
            raise InstrumentError(
                f"role {self.role!r}: mock must be a mapping of method -> value, got "
                f"{type(mock).__name__}; write e.g. mock: {{read_id: FX-01, relay_on: null}}"
            )
        self._mock: dict[str, Any] = dict(mock or {})
        #: (method, args, kwargs) of the last CALL_HISTORY mocked calls, oldest first.
        self.calls: deque[Call] = deque(maxlen=CALL_HISTORY)
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def identity(self) -> dict[str, str]:
        """``litmus-seq``/``mock``/role; a dict under ``mock: {identity: {...}}`` overrides keys."""
        ident = {"manufacturer": "litmus-seq", "model": "mock", "serial": self.role, "firmware": ""}
        override = self._mock.get("identity")
        if isinstance(override, dict):
            ident.update({str(k): str(v) for k, v in override.items()})
        return ident

    def mocked_methods(self) -> list[str]:
        """The method names this mock answers, sorted (for messages and validation)."""
        return sorted(self._mock)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only reached for attributes not found normally; private/dunder probes (copy, pickle,
        # rich's repr) must see a plain AttributeError, not an instrument fault.
        mock = self.__dict__.get("_mock")
        if mock is None or name.startswith("_"):
            raise AttributeError(name)
        if name not in mock:
            listed = ", ".join(sorted(mock)) or "(none)"
            raise MockMethodError(
                f"role {self.role!r} is mocked and has no method {name!r}; mocked methods: "
                f"{listed}. Add `{name}: <return value>` under the role's mock: in the station file"
            )
        fn = _responder(name, self._mock[name], self.calls)
        self.__dict__[name] = fn  # cache: the next lookup does not come here
        return fn
