"""A result listener: one JSON line per finished run, appended to the file named by the
environment variable ``LITMUS_EXAMPLE_RESULTS`` (nothing is written when it is not set).

It shows the listener hook a plugin uses: ``litmus_seq_events``, a batch of events at every step
boundary, shared by every subscriber (read them, never change them). A real listener would post
to a MES or a dashboard instead of a file.
"""

from __future__ import annotations

import json
import os
from typing import Any

RESULTS_ENV = "LITMUS_EXAMPLE_RESULTS"


class ResultListener:
    """Counts measurements per run by outcome; writes the run's line when ``run.ended`` arrives."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}  # run id -> outcome -> measurements

    def events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            kind = event["event_type"]
            if kind == "test.measurement":
                counts = self._counts.setdefault(event["run_id"], {})
                counts[event["outcome"]] = counts.get(event["outcome"], 0) + 1
            elif kind == "run.ended":
                self._write(event)

    def _write(self, event: dict[str, Any]) -> None:
        counts = self._counts.pop(event["run_id"], {})
        target = os.environ.get(RESULTS_ENV)
        if not target:
            return
        line = {"run_id": event["run_id"], "outcome": event["outcome"], "measurements": counts}
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
