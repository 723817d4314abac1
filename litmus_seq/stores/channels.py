"""The channel store: arrays and waveforms observed during a run, one Arrow IPC file each.

A waveform of 100k points does not belong in a parquet row; it goes here and the row carries a
``channel://<run_id>/<key>`` URI (``out_<key>`` columns). Files live beside the events at
``<data_dir>/channels/{YYYY-MM-DD}/{run_id}/{key}[_n].arrow`` (UTC date of the run's first
write; ``_2``, ``_3`` when the same key is written again, so every write has its own URI).

Each file is written to a temporary name and renamed into place: a reader never sees half an
array. The ``channel.started``/``channel.ended`` events are the engine's to emit, not ours.
"""

from __future__ import annotations

import array as _array
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq.errors import StoreError
from litmus_seq.hookspecs import hookimpl
from litmus_seq.stores.paths import SealTmp, os_reason, safe_name

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["ChannelStore", "SCHEME", "parse_uri"]

SCHEME = "channel://"

# array.array typecodes -> Arrow type names (zero-copy through the buffer protocol).
_TYPECODES = {
    "b": "int8", "B": "uint8", "h": "int16", "H": "uint16", "i": "int32", "I": "uint32",
    "l": "int64", "L": "uint64", "q": "int64", "Q": "uint64", "f": "float32", "d": "float64",
}


def parse_uri(uri: str) -> tuple[str, str]:
    """``channel://<run_id>/<name>`` -> ``(run_id, name)``; anything else is a StoreError."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise StoreError(f"{uri!r}: not a channel URI (expected 'channel://<run_id>/<key>')")
    rest = uri[len(SCHEME):]
    run_id, sep, name = rest.partition("/")
    if not sep or not run_id or not name or "/" in name:
        raise StoreError(f"{uri!r}: not a channel URI (expected 'channel://<run_id>/<key>')")
    return run_id, name


def _to_arrow(values: Any) -> pa.Array:
    """A 1-D numeric Arrow array from a list, an ``array.array`` or a numpy array."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        arr = values
    elif isinstance(values, _array.array):
        tname = _TYPECODES.get(values.typecode)
        if tname is None:
            raise StoreError(f"array('{values.typecode}') is not numeric: a channel holds numbers")
        typ = getattr(pa, tname)()
        # zero-copy view; the Arrow buffer keeps ``values`` alive until the file is written
        arr = pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(values)])
    else:
        ndim = getattr(values, "ndim", None)
        if ndim is not None and ndim != 1:
            raise StoreError(f"a channel holds a 1-D array, got {ndim} dimensions (flatten it or "
                             "write one channel per row)")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise StoreError(f"a channel holds a sequence of numbers, got {type(values).__name__}")
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise StoreError(f"channel values must be numbers: {exc}") from exc
    t = arr.type
    if pa.types.is_null(t) and len(arr) == 0:
        return pa.array([], pa.float64())
    if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
        raise StoreError(f"channel values must be numbers, got Arrow type {t}")
    return arr


class ChannelStore:
    """Writes and reads channel arrays; registered as a plugin it keeps what runs ``observe()``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._folders: dict[str, Path] = {}  # run_id -> folder (date fixed at the first write)
        self._paths: dict[str, Path] = {}  # uri -> file written by this store

    def write(self, run_id: str, key: str, values: Any, *, step_path: str | None = None,
              vector_index: int | None = None) -> str:
        """Store ``values`` (1-D, numeric) and return its ``channel://<run_id>/<key>`` URI.

        Writing the same key again in a run gives ``<key>_2``, ``<key>_3``: URIs are unique.
        """
        import pyarrow as pa

        arr = _to_arrow(values)
        folder = self._folders.get(run_id)
        if folder is None:
            date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
            folder = self._folders[run_id] = self.data_dir / "channels" / date / safe_name(str(run_id))
        stem = safe_name(str(key))
        name = stem
        n = 2
        while (folder / f"{name}.arrow").exists() or f"{SCHEME}{run_id}/{name}" in self._paths:
            name = f"{stem}_{n}"
            n += 1
        uri = f"{SCHEME}{run_id}/{name}"
        path = folder / f"{name}.arrow"
        meta = {
            b"run_id": str(run_id).encode(), b"key": str(key).encode(), b"uri": uri.encode(),
            b"step_path": (step_path or "").encode(),
            b"vector_index": b"" if vector_index is None else str(vector_index).encode(),
        }
        schema = pa.schema([pa.field("value", arr.type)], metadata=meta)
        tmp: SealTmp | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = SealTmp(folder, name, ".arrow.tmp")
            with pa.OSFile(str(tmp.path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
                writer.write_batch(pa.record_batch([arr], schema=schema))
            os.replace(tmp.path, path)
            tmp.release(remove=False)
        except OSError as exc:
            if tmp is not None:
                tmp.release(remove=True)
            raise StoreError(f"{path}: cannot write channel {key!r}: {os_reason(exc)}; free disk space or "
                             "make the data folder writable") from exc
        self._paths[uri] = path
        return uri

    @hookimpl
    def litmus_seq_write_channel(self, run_id: str, key: str, values: Any, step_path: str | None,
                                 vector_index: int | None) -> tuple[str, Path]:
        """The recorder's ``observe()`` of an array: :meth:`write` it, return ``(uri, path)``."""
        uri = self.write(run_id, key, values, step_path=step_path, vector_index=vector_index)
        return uri, self._paths[uri]

    def path_for(self, uri: str) -> Path:
        """The file holding ``uri`` (written by this store, or found under ``channels/``)."""
        path = self._paths.get(uri)
        if path is not None:
            return path
        run_id, name = parse_uri(uri)
        hits = sorted((self.data_dir / "channels").glob(f"*/{safe_name(run_id)}/{safe_name(name)}.arrow"))
        if not hits:
            raise StoreError(f"{uri}: no such channel under {self.data_dir / 'channels'} "
                             "(wrong --data-dir, or the run's channels were moved)")
        return hits[0]

    def read(self, uri: str) -> pa.Array:
        """The array stored under ``uri``."""
        import pyarrow as pa

        path = self.path_for(uri)
        try:
            with pa.OSFile(str(path), "rb") as source:  # copies: the array outlives the file
                table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(f"{path}: cannot read channel {uri}: {exc}") from exc
        return table.column("value").combine_chunks()
