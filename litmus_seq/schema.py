"""JSON Schemas for editors, generated from the pydantic models (the one source of truth).

Editors check YAML while it is typed through the yaml-language-server ``$schema`` comment. Two
things make pydantic's output serve editors better: draft-07 (the VS Code YAML extension does not
fully support 2020-12, so ``$defs`` becomes ``definitions``), and tagged unions written as
``if``/``then`` on the tag key instead of ``oneOf`` -- with ``oneOf`` a typo inside one step makes
every branch fail and the editor reports all of them; with ``if``/``then`` it reports the one
that matters, exactly as the loader's discriminator picks it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DRAFT_07",
    "SCHEMA_KINDS",
    "build_schema",
    "build_schemas",
    "installed_driver_names",
    "write_schemas",
]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

# kind -> model name in litmus_seq.models.KINDS; the files are <kind>.schema.json
SCHEMA_KINDS = ("sequence", "product", "station", "fragment", "project")

# Tagged unions, in the discriminator's order (models._step_tag / models._action_tag):
# (tag key, definition) pairs tried first to last, then the default (or None: one tag required).
_TAGGED: list[tuple[frozenset[str], list[tuple[str, str]], str | None]] = [
    (frozenset({"Step", "Group", "Include"}), [("group", "Group"), ("include", "Include")], "Step"),
    (
        frozenset({"Measure", "Call", "Wait", "Prompt", "Python"}),
        [("measure", "Measure"), ("call", "Call"), ("wait", "Wait"), ("prompt", "Prompt"),
         ("python", "Python")],
        None,
    ),
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{name}"}


def _if_then(branches: list[tuple[str, str]], default: str | None) -> dict[str, Any]:
    """Nested ``if (has tag key) then member else ...``, mirroring the discriminator function."""
    if default is not None:
        tail: dict[str, Any] = _ref(default)
    else:
        tail = {
            "anyOf": [{"required": [tag]} for tag, _ in branches],
            "description": "an action: one of the keys " + ", ".join(t for t, _ in branches),
        }
    for tag, name in reversed(branches):
        tail = {"if": {"required": [tag]}, "then": _ref(name), "else": tail}
    return {"type": "object", **tail}


def _rewrite(node: Any) -> Any:
    """Refs to draft-07 ``definitions`` and tagged ``oneOf`` unions to ``if``/``then``."""
    if isinstance(node, list):
        return [_rewrite(x) for x in node]
    if not isinstance(node, dict):
        return node
    one_of = node.get("oneOf")
    if isinstance(one_of, list) and all(isinstance(x, dict) and "$ref" in x for x in one_of):
        names = frozenset(x["$ref"].rsplit("/", 1)[-1] for x in one_of)
        for members, branches, default in _TAGGED:
            if names == members:
                rest = {k: _rewrite(v) for k, v in node.items() if k not in ("oneOf", "discriminator")}
                return {**rest, **_if_then(branches, default)}
    if isinstance(one_of, list):  # other tagged unions (a limit or `none`) have disjoint members
        node = {("anyOf" if k == "oneOf" else k): v for k, v in node.items()}
    out = {}
    for k, v in node.items():
        if k == "$ref" and isinstance(v, str):
            out[k] = v.replace("#/$defs/", "#/definitions/")
        elif k == "discriminator":  # OpenAPI keyword, meaningless in draft-07
            continue
        else:
            out[k] = _rewrite(v)
    return out


def build_schema(kind: str, driver_names: list[str] | None = None) -> dict[str, Any]:
    """The draft-07 schema of one file kind (``sequence``, ``product``, ``station``, ...)."""
    from litmus_seq import models

    model = models.KINDS[kind]
    raw = model.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    defs = raw.pop("$defs", {})
    body = _rewrite(raw)
    schema: dict[str, Any] = {
        "$schema": DRAFT_07,
        "title": f"litmus-seq {kind}",
        **{k: v for k, v in body.items() if k != "title"},
    }
    if defs:
        schema["definitions"] = {name: _rewrite(d) for name, d in defs.items()}
    if driver_names:
        inst = schema.get("definitions", {}).get("Instrument")
        if inst is not None:
            prop = inst["properties"]["driver"]
            # A hint, not a restriction: the project may load plugins this machine lacks.
            prop["anyOf"] = [{"enum": sorted(set(driver_names))}, {"type": "string"}]
            prop["examples"] = sorted(set(driver_names))
            if isinstance(driver_names, Mapping):  # name -> class: each driver's settings too
                from litmus_seq.drivers.options import settings_schemas

                rules, defs = settings_schemas(driver_names, _rewrite)
                if rules:
                    inst["allOf"] = rules
                    schema["definitions"] = {**defs, **schema["definitions"]}
    return schema


def build_schemas(driver_names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every kind's schema, by kind, and the schema of a submitted run document (``submit``)."""
    from litmus_seq.submit import document_schema

    return {**{kind: build_schema(kind, driver_names) for kind in SCHEMA_KINDS}, "submit": document_schema()}


def installed_driver_names(project_root: Path | None = None) -> dict[str, type]:
    """Driver name -> class of the drivers the project's plugins register (the classes' options
    models go into the station schema).

    Raises :class:`litmus_seq.errors.LitmusError` when a plugin is broken, so the caller can
    say so instead of silently writing a schema without that plugin's drivers.
    """
    try:
        from litmus_seq.drivers.registry import collect_drivers
        from litmus_seq.plugins import get_plugin_manager
    except ImportError:  # pragma: no cover - plugin machinery not available
        return {}
    pm = get_plugin_manager(project_root=project_root)
    return {name: cls for name, cls, _ in collect_drivers(pm).items()}


def write_schemas(out_dir: Path, driver_names: list[str] | None = None) -> list[Path]:
    """Write ``<kind>.schema.json`` for every kind into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, schema in build_schemas(driver_names).items():
        path = out_dir / f"{kind}.schema.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(schema, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
