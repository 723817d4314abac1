"""Driver options: a driver's pydantic model of the station's ``settings:`` for a role.

A driver declares ``options_model = MyOptions`` (a pydantic ``BaseModel``; ``extra="forbid"``
makes a misspelt key an error with a "did you mean"). Then:

* ``validate`` and ``run``'s preflight check every role's ``settings:`` against it, with
  ``file:line:col`` errors pointing into the station file;
* ``litmus-seq schema`` puts the model into the station schema, per driver name, so an editor
  completes and checks ``settings:`` for the driver the role names;
* :class:`~litmus_seq.drivers.Driver` validates the settings in its constructor and keeps the
  result as ``self.options``.

The engine adds its own keys to the settings a driver receives (:data:`ENGINE_KEYS`); they are
never validated against the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from litmus_seq.errors import ConfigError, LitmusError, Problem

__all__ = ["ENGINE_KEYS", "options_model", "parse_options", "settings_problems", "settings_schemas", "user_settings"]

#: Keys the engine adds to a role's settings (role name, mock table, resolved VISA library).
ENGINE_KEYS = frozenset({"role", "mock", "visa_library"})


def user_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The station's own ``settings:`` (without :data:`ENGINE_KEYS`)."""
    return {k: v for k, v in (settings or {}).items() if k not in ENGINE_KEYS}


def options_model(cls: Any) -> Any:
    """The pydantic options model a driver class declares, or ``None``."""
    model = getattr(cls, "options_model", None)
    if inspect.isclass(model) and callable(getattr(model, "model_validate", None)):
        return model
    return None


def parse_options(cls: Any, settings: dict[str, Any] | None, role: str) -> Any:
    """Validate ``settings`` against ``cls``'s model; a mistake is one :class:`ConfigError` line."""
    model = options_model(cls)
    if model is None:
        return None
    import pydantic

    try:
        return model.model_validate(user_settings(settings))
    except pydantic.ValidationError as exc:
        details = "; ".join(
            f"settings.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"role {role!r}: {details} (driver {cls.__name__}; `litmus-seq validate` "
                          f"shows the station line)") from None


def settings_problems(role: str, cls: Any, settings: dict[str, Any], doc: Any) -> list[Problem]:
    """``settings:`` of ``role`` checked against its driver's model, located in the station file."""
    model = options_model(cls)
    if model is None:
        return []
    from litmus_seq.loader import Document, validate_document

    prefix = ("instruments", role, "settings")
    node = doc.node(prefix)
    sub = Document(path=doc.path, display=doc.display, data=user_settings(settings), locs=node)
    try:
        validate_document(sub, model)
    except LitmusError as exc:
        base = ".".join(prefix)
        return [Problem(p.location, p.message, f"{base}.{p.path}" if p.path else base) for p in exc.problems]
    return []


def settings_schemas(drivers: Mapping[str, Any], rewrite: Callable[[Any], Any]) -> tuple[list[Any], dict[str, Any]]:
    """JSON Schema rules for the station's ``Instrument``: ``if driver is X then settings is X's
    options``, one per driver with a model, and the definitions they refer to.

    ``rewrite`` turns pydantic's output into the editor dialect (:func:`litmus_seq.schema._rewrite`).
    """
    rules: list[Any] = []
    defs: dict[str, Any] = {}
    for name in sorted(drivers):
        model = options_model(drivers[name])
        if model is None:
            continue
        raw = model.model_json_schema(ref_template="#/definitions/{model}")
        for key, value in raw.pop("$defs", {}).items():
            defs.setdefault(key, rewrite(value))
        rules.append({
            "if": {"properties": {"driver": {"const": name}}, "required": ["driver"]},
            "then": {"properties": {"settings": rewrite(raw)}},
        })
    return rules, defs
