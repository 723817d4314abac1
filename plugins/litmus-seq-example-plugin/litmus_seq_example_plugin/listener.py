"""A result listener: one JSON line per finished run, appended to ``<data dir>/example_results.jsonl``.

It shows the two listener hooks a plugin uses: ``litmus_seq_session_start`` (to learn where the
session writes) and ``litmus_seq_events`` (a batch of events at every step boundary, shared by
every subscriber: read them, never change them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_FILE = "example_results.jsonl"


class ResultListener:
    """Counts measurements per run; writes the run's line when ``run.ended`` arrives."""

    def __init__(self) -> None:
        self._folders: dict[str, Path] = {}  # session id -> data dir
        self._counts: dict[str, dict[str, int]] = {}  # run id -> outcome -> measurements

    def session_start(self, session: Any) -> None:
        self._folders[session.session_id] = Path(session.data_dir)

    def events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            kind = event["event_type"]
            if kind == "test.measurement":
                counts = self._counts.setdefault(event["run_id"], {})
                counts[event["outcome"]] = counts.get(event["outcome"], 0) + 1
            elif kind == "run.ended":
                self._write(event)

    def _write(self, event: dict[str, Any]) -> None:
        folder = self._folders.get(event["session_id"])
        counts = self._counts.pop(event["run_id"], {})
        if folder is None:
            return
        line = {"run_id": event["run_id"], "outcome": event["outcome"], "measurements": counts}
        with open(folder / RESULTS_FILE, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
