"""``runs``/``show``/``query``/``columns --lake URI``: the read side of :mod:`litmus_seq.results`
over a lake instead of a data folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litmus_seq.lake.read import connect
from litmus_seq.lake.store import Store
from litmus_seq.results import Results

__all__ = ["LakeResults"]


class LakeResults(Results):
    """:class:`litmus_seq.results.Results` over a lake (a folder or an object store): the same
    listing, lookup and SQL as over a data folder. The run index is kept in the user's cache
    folder, not in the lake (whose objects only push and compact write); a lake's objects never
    change, so a file's path and size identify it."""

    def __init__(self, store: Store) -> None:
        import hashlib
        import os

        super().__init__(store.root if store.local else ".")
        self.store = store
        self.root = store.display("runs")  # type: ignore[assignment]  # (only shown in messages)
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "litmus-seq"
        self.index_path = cache / f"lake-{hashlib.sha256(store.uri.encode()).hexdigest()[:16]}.parquet"

    def _check_folder(self) -> None:
        pass  # open_lake checked it

    def files(self) -> dict[str, tuple[int, int]]:
        return {rel: (rf.size, 0) for rel, rf in self.store.run_files().items()}

    def _parquet_file(self, file: str) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.store.path(file), filesystem=self.store.fs)

    def logs(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        return []  # the event store stays on the station

    def _public(self, r: dict[str, Any]) -> dict[str, Any]:
        out = super()._public(r)
        out["file_path"] = self.store.display(r["file"])
        return out

    def _rows_connection(self) -> Any:
        return connect(self.store, view="rows", warn=self.warnings.append)
