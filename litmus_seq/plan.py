"""The plan: a sequence tree flattened into planned steps, vectors and resolved limits.

The plan is the contract between authoring and execution: ``litmus-seq plan`` prints it,
``test.steps_discovered`` carries its step identities, and the engine runs it without touching
pydantic or YAML again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litmus_seq.limits import ResolvedLimit  # noqa: F401  (part of the plan's interface)


@dataclass(slots=True)
class PlannedVector:
    """One vector of a step: parameters (already expanded) and the limits resolved for them."""

    index: int
    params: dict[str, Any]
    limits: dict[str, ResolvedLimit]  # measurement name -> limit (only names known statically)


@dataclass(slots=True)
class PlannedAction:
    """One action of a step, with its ``${...}`` arguments compiled once at plan time.

    ``kind`` is ``measure`` | ``call`` | ``wait`` | ``prompt`` | ``python``. For ``call`` and
    ``measure ... from:`` ``role``/``method`` name the instrument call; ``python`` is
    ``module:function``; ``measurement`` the measurement name. The engine calls
    :meth:`render_args` / :meth:`wait_seconds` with the current names (variables, earlier
    results, saved values, vector parameters) and never re-parses an expression.
    """

    kind: str
    model: Any  # the pydantic action (read-only; prompt text, choices, units, channel, ...)
    file: str
    line: int
    role: str | None = None
    method: str | None = None
    python: str | None = None
    measurement: str | None = None
    save_as: str | None = None
    args: Any = None  # compiled args (see litmus_seq.expressions); None = no args

    def render_args(self, names: dict[str, Any]) -> dict[str, Any]:
        """The call's keyword arguments with every ``${...}`` evaluated over ``names``."""
        if self.args is None:
            return {}
        return self.args.render(names)

    def wait_seconds(self, names: dict[str, Any]) -> float:
        """Seconds to wait (``wait:`` actions); expressions evaluated over ``names``."""
        if self.args is None:
            return float(self.model.wait)
        return float(self.args.render(names))


@dataclass(slots=True)
class PlannedStep:
    """One executable node of the plan, in execution order.

    ``kind`` is ``measure`` | ``call`` | ``python`` | ``prompt`` | ``wait`` | ``group`` (a step
    whose ``do:`` mixes actions takes the kind of its first measurement, else of its first action).
    Groups are steps too: their children follow them in the flat list up to ``subtree_end``.
    """

    node_id: str  # sequences/x.yaml::main/output_voltage
    step_path: str  # main/output_voltage, setup/1, main/thermal/soak
    parent_path: str  # "" at the top of a phase, main/thermal inside a group
    step_index: int  # position in the whole flat plan
    name: str
    kind: str
    phase: str  # setup | main | cleanup
    file: str  # file defining the step (relative to the project root)
    line: int
    vectors: list[PlannedVector]
    actions: list[PlannedAction]  # in order; a group has none
    retry_max: int = 0
    retry_delay_s: float = 0.0
    when: Any = None  # compiled expression (litmus_seq.expressions) or None
    subtree_end: int = 0  # for groups: index after the last descendant; else step_index + 1
    measurements: tuple[str, ...] = ()  # measurement names declared by the actions

    def identity(self) -> dict[str, Any]:
        """The ``test.steps_discovered`` item for this step."""
        return {
            "node_id": self.node_id,
            "step_path": self.step_path,
            "parent_path": self.parent_path,
            "step_index": self.step_index,
            "name": self.name,
            "kind": self.kind,
            "phase": self.phase,
            "file": self.file,
            "line": self.line,
            "vector_count": len(self.vectors),
        }


@dataclass(slots=True)
class Plan:
    """The whole expanded, resolved sequence."""

    sequence_name: str
    sequence_version: str
    sequence_file: str  # relative to the project root
    root: Path
    steps: list[PlannedStep]
    variables: dict[str, Any] = field(default_factory=dict)
    guardband_pct: float = 0.0
    on_fail: str = "continue"
    product: Any = None  # models.Product | None
    station_ref: str | None = None  # the sequence's default station (id or path)

    def discovered_items(self) -> list[dict[str, Any]]:
        return [s.identity() for s in self.steps]
