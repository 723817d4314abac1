"""Project root discovery, id resolution, the document cache and data-dir precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from litmus_seq import models
from litmus_seq.errors import ConfigError, Location, ValidationError
from litmus_seq.project import ProjectContext, find_root

STATION = "id: bench\ninstruments:\n  dmm:\n    driver: mock\n"
PRODUCT = "id: board\nspecs:\n  rail: {low: 1, high: 2}\n"


def make_project(root: Path, config: str | None = "name: demo\n") -> Path:
    (root / "products").mkdir(parents=True)
    (root / "stations").mkdir()
    (root / "sequences" / "common").mkdir(parents=True)
    (root / "products" / "board.yaml").write_text(PRODUCT)
    (root / "stations" / "bench.yaml").write_text(STATION)
    (root / "sequences" / "s.yaml").write_text("sequence: s\n")
    if config is not None:
        (root / "litmus.yaml").write_text(config)
    return root


# --------------------------------------------------------------------------- find_root


def test_root_is_nearest_folder_with_litmus_yaml(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    assert find_root(root / "sequences" / "common" / "x.yaml") == root.resolve()
    assert find_root(root / "sequences") == root.resolve()


def test_litmus_yaml_wins_over_a_nearer_products_folder(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    inner = root / "sub"
    (inner / "products").mkdir(parents=True)
    assert find_root(inner / "x.yaml") == root.resolve()


def test_without_litmus_yaml_nearest_products_or_stations(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", config=None)
    assert find_root(root / "sequences" / "s.yaml") == root.resolve()
    only_stations = tmp_path / "other"
    (only_stations / "stations").mkdir(parents=True)
    (only_stations / "sequences").mkdir()
    assert find_root(only_stations / "sequences" / "x.yaml") == only_stations.resolve()


def test_no_markers_falls_back_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lonely = tmp_path / "lonely" / "deep"
    lonely.mkdir(parents=True)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert find_root(lonely / "x.yaml") == cwd.resolve()


# --------------------------------------------------------------------------- context


def test_for_path_loads_config_or_defaults(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", config="name: demo\nguardband_pct: 5\nplugins: [a.b]\n")
    ctx = ProjectContext.for_path(root / "sequences" / "s.yaml")
    assert ctx.root == root.resolve()
    assert ctx.config.name == "demo" and ctx.config.guardband_pct == 5 and ctx.config.plugins == ["a.b"]
    bare = ProjectContext.for_path(make_project(tmp_path / "q", config=None) / "sequences" / "s.yaml")
    assert bare.config == models.Project()


def test_bad_litmus_yaml_is_a_located_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", config="name: demo\ndata_dri: x\n")
    with pytest.raises(ValidationError) as exc:
        ProjectContext.for_path(root / "sequences" / "s.yaml")
    assert [str(p) for p in exc.value.problems] == [
        "litmus.yaml:2:1: data_dri: unknown key (did you mean 'data_dir'?)"
    ]


def test_display(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    ctx = ProjectContext(root)
    assert ctx.display(root / "sequences" / "s.yaml") == "sequences/s.yaml"
    assert ctx.display(root / "sequences" / ".." / "products" / "board.yaml") == "products/board.yaml"
    outside = tmp_path / "elsewhere.yaml"
    assert ctx.display(outside) == outside.as_posix()


def test_resolve_ids_and_paths(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "sequences" / "common" / "part.yaml").write_text("steps: []\n")
    ctx = ProjectContext(root)
    r = root.resolve()
    assert ctx.resolve("board", "products") == r / "products" / "board.yaml"
    assert ctx.resolve("stations/bench.yaml", "stations") == r / "stations" / "bench.yaml"
    assert ctx.resolve("sequences/common/part.yaml", "sequences") == r / "sequences" / "common" / "part.yaml"
    assert ctx.resolve("products/board.yaml", "stations") == r / "products" / "board.yaml"
    assert ctx.resolve(str(r / "stations" / "bench.yaml"), "stations") == r / "stations" / "bench.yaml"


def test_resolve_missing_id_points_at_the_reference_with_a_hint(tmp_path: Path) -> None:
    ctx = ProjectContext(make_project(tmp_path / "p"))
    where = Location("sequences/s.yaml", 3, 10)
    with pytest.raises(ConfigError) as exc:
        ctx.resolve("bord", "products", where=where)
    (problem,) = exc.value.problems
    assert problem.location == where
    assert "product 'bord' not found: expected products/bord.yaml" in problem.message
    assert "did you mean 'products/board.yaml'?" in problem.message


def test_resolve_missing_path_without_location_names_the_file(tmp_path: Path) -> None:
    ctx = ProjectContext(make_project(tmp_path / "p"))
    with pytest.raises(ConfigError) as exc:
        ctx.resolve("sequences/nope/x.yaml", "sequences")
    (problem,) = exc.value.problems
    assert str(problem.location) == "sequences/nope/x.yaml"
    assert "does not exist" in problem.message and "there is no folder sequences/nope/" in problem.message


def test_load_station_and_product_are_cached(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    ctx = ProjectContext(root)
    station = ctx.load_station("bench")
    assert isinstance(station, models.Station) and station.instruments["dmm"].driver == "mock"
    assert ctx.load_station("stations/bench.yaml") is station
    product = ctx.load_product("board")
    assert isinstance(product, models.Product) and product.specs["rail"].high == 2
    doc = ctx.documents[(root / "products" / "board.yaml").resolve()]
    assert doc.display == "products/board.yaml"
    assert doc.locate(("specs", "rail", "high")) == Location("products/board.yaml", 3, 24)


def test_load_product_error_is_located_in_the_product_file(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "products" / "bad.yaml").write_text("id: bad\nspecs:\n  rail: {hihg: 2}\n")
    with pytest.raises(ValidationError) as exc:
        ProjectContext(root).load_product("bad")
    assert [str(p) for p in exc.value.problems] == [
        "products/bad.yaml:3:10: specs.rail.hihg: unknown key (did you mean 'high'?)"
    ]


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path / "p", config="data_dir: results\n")
    ctx = ProjectContext(root)
    monkeypatch.setenv("LITMUS_DATA_DIR", str(tmp_path / "env"))
    assert ctx.data_dir("cli") == Path("cli")
    assert ctx.data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("LITMUS_DATA_DIR")
    assert ctx.data_dir(None) == root.resolve() / "results"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    plain = ProjectContext(make_project(tmp_path / "q", config=None))
    assert plain.data_dir() == cwd / "data"
