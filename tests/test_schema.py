"""JSON Schemas for editors: draft-07, complete, and agreeing with the loader on real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from litmus_seq.cli.main import main
from litmus_seq.loader import load_document
from litmus_seq.schema import DRAFT_07, SCHEMA_KINDS, build_schema, build_schemas

DATA = Path(__file__).resolve().parent / "data"
VALID = DATA / "valid"
INVALID = DATA / "invalid"

VALID_FILES = {
    "sequence": [VALID / "sequences" / "full.yaml"],
    "fragment": [VALID / "sequences" / "common" / "part.yaml"],
    "product": [VALID / "products" / "widget.yaml"],
    "station": [VALID / "stations" / "bench.yaml", INVALID / "stations" / "bench.yaml"],
    "project": [VALID / "litmus.yaml"],
}


def walk(node: Any):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return build_schemas(["mock", "scpi.dmm"])


@pytest.mark.parametrize("kind", SCHEMA_KINDS)
def test_schema_is_draft_07_with_resolvable_refs(schemas: dict, kind: str) -> None:
    schema = schemas[kind]
    assert schema["$schema"] == DRAFT_07
    jsonschema.Draft7Validator.check_schema(schema)
    text = json.dumps(schema)
    assert "$defs" not in text and '"oneOf"' not in text and "discriminator" not in text
    for node in walk(schema):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/definitions/")
            assert ref.rsplit("/", 1)[-1] in schema["definitions"]


@pytest.mark.parametrize(("kind", "path"), [(k, p) for k, ps in VALID_FILES.items() for p in ps],
                         ids=lambda x: x if isinstance(x, str) else x.name)
def test_valid_files_validate(schemas: dict, kind: str, path: Path) -> None:
    data = load_document(path).data
    errors = list(jsonschema.Draft7Validator(schemas[kind]).iter_errors(data))
    assert errors == []


def errors_for(schema: dict, data: Any) -> list[tuple[list[Any], str]]:
    return [(list(e.absolute_path), e.message) for e in jsonschema.Draft7Validator(schema).iter_errors(data)]


def leaf_errors(schema: dict, data: Any) -> list[tuple[list[Any], str]]:
    """Errors with the branches of anyOf (Optional fields) opened up, as editors show them."""
    out = []
    stack = list(jsonschema.Draft7Validator(schema).iter_errors(data))
    while stack:
        e = stack.pop()
        if e.context:
            stack.extend(e.context)
        else:
            out.append((list(e.absolute_path), e.message))
    return out


def test_unknown_keys_are_rejected_where_they_stand(schemas: dict) -> None:
    data = load_document(VALID / "sequences" / "full.yaml").data
    data["steps"][0]["limitt"] = 1
    data["steps"][0]["do"][2]["fromm"] = "x.y"
    data["steps"][6]["steps"][0]["nam"] = "z"  # inside the group
    found = [(p, m) for p, m in leaf_errors(schemas["sequence"], data) if "Additional properties" in m]
    assert sorted((str(p), m.split("(")[1]) for p, m in found) == sorted([
        (str(["steps", 0]), "'limitt' was unexpected)"),
        (str(["steps", 0, "do", 2]), "'fromm' was unexpected)"),
        (str(["steps", 6, "steps", 0]), "'nam' was unexpected)"),
    ])


def test_tagged_unions_pick_the_member_like_the_loader(schemas: dict) -> None:
    seq = schemas["sequence"]
    base = {"sequence": "s"}
    # an include item is judged as an Include only: a bad include value is one precise error
    assert errors_for(seq, {**base, "steps": [{"include": 3}]}) == [
        (["steps", 0, "include"], "3 is not of type 'string'")
    ]
    # an action without any action key is rejected
    assert errors_for(seq, {**base, "steps": [{"name": "a", "do": [{"mesure": "x"}]}]})
    # a group must have a list of steps
    assert errors_for(seq, {**base, "steps": [{"group": "g", "steps": {"a": 1}}]})
    assert errors_for(seq, {**base, "steps": [{"group": "g", "steps": [{"wait": 1}]}]}) == []


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("station", INVALID / "stations" / "unknown_key_drivr.yaml"),
        ("station", INVALID / "stations" / "instruments_is_list.yaml"),
        ("product", INVALID / "products" / "unknown_comparison.yaml"),
        ("product", INVALID / "products" / "unknown_key_hihg.yaml"),
        ("sequence", INVALID / "sequences" / "bad_call_in_do.yaml"),
        ("sequence", INVALID / "sequences" / "unknown_action_key_mesure.yaml"),
        ("sequence", INVALID / "sequences" / "negative_guardband.yaml"),
        ("sequence", INVALID / "sequences" / "bad_on_fail.yaml"),
        ("project", INVALID / "badproject" / "litmus.yaml"),
    ],
    ids=lambda x: x if isinstance(x, str) else x.name,
)
def test_broken_files_are_rejected_by_the_schema_too(schemas: dict, kind: str, path: Path) -> None:
    assert errors_for(schemas[kind], load_document(path).data)


def test_driver_names_are_a_hint_not_a_restriction() -> None:
    schema = build_schema("station", ["scpi.dmm", "mock"])
    driver = schema["definitions"]["Instrument"]["properties"]["driver"]
    assert driver["examples"] == ["mock", "scpi.dmm"]
    assert {"enum": ["mock", "scpi.dmm"]} in driver["anyOf"]
    data = {"id": "s", "instruments": {"x": {"driver": "vendor.other"}}}
    assert errors_for(schema, data) == []
    assert "examples" not in build_schema("station")["definitions"]["Instrument"]["properties"]["driver"]


def test_cli_writes_all_schemas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["schema", "--out", str(out), "--no-plugins"]) == 0
    printed = capsys.readouterr().out.splitlines()
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{k}.schema.json" for k in SCHEMA_KINDS] + ["submit.schema.json"])
    assert len(printed) == len(names) and all(line.startswith("wrote: ") for line in printed)
    loaded = json.loads((out / "sequence.schema.json").read_text())
    assert loaded["$schema"] == DRAFT_07


def test_cli_defaults_to_project_schemas_folder_with_driver_hints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "proj"
    shutil.copytree(VALID, project)
    monkeypatch.chdir(project / "sequences")
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert "wrote: ../schemas/sequence.schema.json" in printed
    station = json.loads((project / "schemas" / "station.schema.json").read_text())
    assert "mock" in station["definitions"]["Instrument"]["properties"]["driver"]["examples"]
