"""The compaction manifest, and which files a reader reads so that it sees every run once.

A compacted part is visible only through its manifest entry
(``compacted/_manifest/<stamp>.json``, written after the part and never changed)::

    {"part": "compacted/date=2026-12-05/station=st-1/part-<stamp>.parquet",
     "date": "2026-12-05", "station": "st-1", "rows": 1234,
     "files": {"runs/2026-12-05/20261205T101112.123456Z_SN1.parquet": 40213, ...}}

The run files stay the source of truth. A reader lists them, then takes from each part only the
runs whose file it listed with the recorded size and that no earlier entry holds; every listed
run file no part holds is read as it is. So each listed run file is read exactly once -- while a
compaction runs (a part without its entry is invisible), after it, if two compactions overlapped,
or if a run file was deleted after compaction (its rows in the part are left out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litmus_seq.lake.store import NO_STATION, RunFile, Store

__all__ = ["MANIFEST", "Part", "ReadPlan", "read_parts", "plan_reads"]

#: Where the manifest entries are (relative to the store's root).
MANIFEST = "compacted/_manifest"


@dataclass(frozen=True, slots=True)
class Part:
    """One compacted file and the run files (relative path -> size) it holds."""

    entry: str  # manifest entry name: entries apply in name (= time) order
    path: str
    date: str
    station: str | None
    rows: int
    files: dict[str, int]


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What to read: run files as they are, and parts minus the run files to leave out of them."""

    store: Store
    raw: list[RunFile]
    parts: list[tuple[Part, frozenset[str]]]

    @property
    def empty(self) -> bool:
        return not self.raw and not self.parts

    def runs(self) -> int:
        """How many run files the plan reads (each exactly once)."""
        return len(self.raw) + sum(len(p.files) - len(skip) for p, skip in self.parts)


def read_parts(store: Store) -> list[Part]:
    """Every committed part, oldest entry first."""
    parts = []
    for name, doc in store.read_json_entries(MANIFEST):
        part = _part(name, doc)
        if part is not None:
            parts.append(part)
    return parts


def _part(name: str, doc: Any) -> Part | None:
    try:
        files = {str(k): int(v) for k, v in doc["files"].items()}
        station = doc.get("station")
        return Part(name, str(doc["part"]), str(doc["date"]),
                    None if station in (None, NO_STATION) else str(station), int(doc["rows"]), files)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # not an entry compaction wrote: ignored, as any foreign file


def plan_reads(store: Store, *, since: str | None = None, station: str | None = None) -> ReadPlan:
    """The read plan of ``store``, pruned to dates from ``since`` (``YYYY-MM-DD``) and, where the
    layout says (a lake), to ``station``. Pruning is by partition only: queries still filter rows."""
    listed = store.run_files()
    keep_station = station if store.hive else None

    def wanted(date: str, st: str | None) -> bool:
        return (since is None or date >= since) and (keep_station is None or st == keep_station)

    seen: set[str] = set()
    parts: list[tuple[Part, frozenset[str]]] = []
    for part in read_parts(store):
        if not wanted(part.date, part.station):
            continue
        skip = frozenset(f for f, size in part.files.items()
                         if f in seen or f not in listed or listed[f].size != size)
        if len(skip) == len(part.files):
            continue
        seen.update(part.files.keys() - skip)
        parts.append((part, skip))
    raw = [rf for rel, rf in sorted(listed.items())
           if rel not in seen and wanted(rf.date, rf.station)]
    return ReadPlan(store, raw, parts)
