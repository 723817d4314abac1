"""The channel store: arrays in, the same arrays out, one file and one URI per write."""

from __future__ import annotations

import array
from pathlib import Path

import pyarrow as pa
import pytest

from litmus_seq.errors import StoreError
from litmus_seq.stores.channels import ChannelStore, parse_uri


def test_round_trip_list_array_and_numpy(tmp_path: Path) -> None:
    store = ChannelStore(tmp_path)
    u1 = store.write("run-1", "ripple", [0.1, 0.2, -0.3], step_path="main/a", vector_index=0)
    u2 = store.write("run-1", "counts", array.array("i", [1, 2, 3]))
    assert u1 == "channel://run-1/ripple"
    assert store.read(u1).to_pylist() == [0.1, 0.2, -0.3]
    assert store.read(u2).type == pa.int32() and store.read(u2).to_pylist() == [1, 2, 3]
    np = pytest.importorskip("numpy")
    u3 = store.write("run-1", "wave", np.linspace(0, 1, 1001))
    assert store.read(u3).to_pylist() == pytest.approx(list(np.linspace(0, 1, 1001)))


def test_layout_unique_uris_and_fresh_reader(tmp_path: Path) -> None:
    store = ChannelStore(tmp_path)
    uris = [store.write("run-1", "ripple", [float(i)]) for i in range(3)]
    assert uris == ["channel://run-1/ripple", "channel://run-1/ripple_2", "channel://run-1/ripple_3"]
    path = store.path_for(uris[1])
    assert path.name == "ripple_2.arrow" and path.parent.name == "run-1"
    assert path.parent.parent.parent == tmp_path / "channels"
    assert not [p for p in path.parent.iterdir() if p.suffix != ".arrow"]  # no temp files
    fresh = ChannelStore(tmp_path)  # another process reading later
    assert [fresh.read(u).to_pylist() for u in uris] == [[0.0], [1.0], [2.0]]
    assert fresh.write("run-1", "ripple", [9.0]) == "channel://run-1/ripple_4"


def test_bad_values_and_uris(tmp_path: Path) -> None:
    store = ChannelStore(tmp_path)
    with pytest.raises(StoreError, match="numbers"):
        store.write("r", "k", ["a", "b"])
    with pytest.raises(StoreError, match="sequence of numbers"):
        store.write("r", "k", 3.0)
    np = pytest.importorskip("numpy")
    with pytest.raises(StoreError, match="1-D"):
        store.write("r", "k", np.zeros((2, 2)))
    with pytest.raises(StoreError, match="not a channel URI"):
        parse_uri("file:///x")
    with pytest.raises(StoreError, match="no such channel"):
        store.read("channel://r/missing")
    assert store.read(store.write("r", "empty", [])).to_pylist() == []
