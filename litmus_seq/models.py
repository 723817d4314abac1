"""Pydantic models of the three YAML file kinds (DESIGN §2): station, product spec, sequence.

These models are the single source of truth for validation *and* for the JSON Schemas handed to
editors (``litmus-seq schema``). They validate user input once, at load time; nothing on the run's
hot path touches pydantic.

Every model is declared with ``defer_build=True``: pydantic then builds a model's validator the
first time it is used (``model_validate``, construction, ``model_json_schema``), not when this
module is imported. ``litmus-seq validate`` builds only the models it meets (a sequence's
validator contains its steps, actions and limits): ~28 ms instead of ~76 ms building all 23 at
import. The forward reference ``StepItem`` (used by :class:`Group` before it is defined) is
resolved at build time from this module's namespace, so no ``model_rebuild()`` is needed; until
Group itself is built, ``Group.model_fields`` still holds the forward reference (the loader's
error mapping resolves it when it walks there, see ``loader._fields``).
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from litmus_seq.limits import Limit, LimitOrNone, condition_problem

Scalar = Union[bool, int, float, str]

# ``call:``/``from:`` name a station role and one of its driver's methods; ``python:`` a callable.
_ROLE_METHOD = r"^[A-Za-z_][\w]*\.[A-Za-z_][\w]*$"
_MODULE_FUNCTION = r"^[\w.]+:[\w]+$"


def _regex(value: str | None) -> str | None:
    """A regular expression that compiles (checked at load, so a bad one is a file:line error)."""
    if value is not None:
        import re

        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


SerialPattern = Annotated[Union[str, None], AfterValidator(_regex)]


def _new_dict() -> dict[str, Any]:
    """``default_factory`` for mapping fields: a plain function, not the ``dict`` builtin.

    Pydantic inspects a factory's signature (does it take the validated data?); for a builtin
    that means parsing ``__text_signature__`` with :mod:`tokenize`, whose regexes compile on first
    use (~4 ms of a cold ``validate``). A Python function's signature costs nothing.
    """
    return {}


def _new_list() -> list[Any]:
    """``default_factory`` for list fields (see :func:`_new_dict` for why not ``list``)."""
    return []


class Strict(BaseModel):
    """Base: unknown keys are errors (the loader adds the "did you mean" hint)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


# --------------------------------------------------------------------------- station


class Calibration(Strict):
    due: _dt.date | None = Field(None, description="Calibration due date (YYYY-MM-DD)")
    certificate: str | None = Field(None, description="Calibration certificate id")


class Instrument(Strict):
    driver: str = Field(..., description="Driver name registered by a plugin, e.g. scpi.dmm or mock")
    resource: str | None = Field(None, description="VISA resource string")
    settings: dict[str, Any] = Field(default_factory=_new_dict, description="Driver settings")
    calibration: Calibration | None = None
    allow_expired_cal: bool = Field(
        False, description="Run even if calibration.due is past (engineering benches); recorded on every row"
    )
    expect_idn: Union[str, dict[str, str], None] = Field(
        None,
        description="Expected identity: a regular expression on the whole *IDN? reply, or one per "
        "field (manufacturer, model, serial, firmware); a mismatch stops the run before any step",
    )
    mock: dict[str, Any] | None = Field(
        None,
        description="For driver 'mock' (or --mock ROLE): method -> return value; a list returns "
        "its items one call after another (the last repeats); null returns None",
    )
    timeout_s: float | None = Field(
        None, gt=0, description="Longest a call, connect() or close() of this instrument may take "
        "(default: the station's timeout_s); a call that overruns makes its step errored",
    )


class Station(Strict):
    id: str
    name: str | None = None
    fixture_id: str | None = None
    instruments: dict[str, Instrument] = Field(default_factory=_new_dict)
    visa_library: str | None = Field(
        None, description='pyvisa backend: "@py", "@ivi", a path, or "stations/sim.yaml@sim"'
    )
    calibration_warn_days: int = Field(
        30, ge=0, description="Warn when an instrument's calibration is due within this many days"
    )
    serial_pattern: SerialPattern = Field(
        None, description="Regular expression every DUT serial tested here must match (the product's wins)"
    )
    timeout_s: float | None = Field(
        None, gt=0, description="Longest an instrument call, connect() or close() may take unless the "
        "instrument says otherwise (default 30)",
    )


# --------------------------------------------------------------------------- product


class SpecBand(Limit):
    """A condition-dependent band: used when every ``when`` condition holds (first match wins)."""

    when: dict[str, Union[list[float], Scalar]] = Field(
        ...,
        description="vector parameter -> [min, max] (inclusive range) or a value (equality)",
    )

    @model_validator(mode="after")
    def _conditions(self) -> SpecBand:
        for key, cond in self.when.items():
            problem = condition_problem(key, cond)
            if problem is not None:
                raise ValueError(problem)
        return self


class Spec(Limit):
    """A product characteristic: its limit, and optional condition-dependent bands."""

    description: str | None = None
    bands: list[SpecBand] = Field(default_factory=_new_list)

    def _empty_problem(self) -> str | None:
        if self.bands:
            return None  # a spec may be only its condition-dependent bands
        return ("the spec has no limit: give low/high, nominal with a tolerance, equals, "
                "matches, comparison: LOG, or bands")


class Product(Strict):
    id: str
    name: str | None = None
    revision: str | None = None
    part_number: str | None = None
    specs: dict[str, Spec] = Field(default_factory=_new_dict)
    pins: dict[str, str] = Field(default_factory=_new_dict, description="measurement -> DUT pin")
    fixture_connections: dict[str, str] = Field(
        default_factory=_new_dict, description="measurement -> fixture connection"
    )
    serial_pattern: SerialPattern = Field(
        None, description="Regular expression every DUT serial must match, e.g. ^SN[0-9]{6}$"
    )


# --------------------------------------------------------------------------- sequence actions


class Call(Strict):
    """Call an instrument method: ``call: role.method`` with ``args``."""

    call: str = Field(..., pattern=_ROLE_METHOD, description="role.method")
    args: dict[str, Any] = Field(default_factory=_new_dict)
    save_as: str | None = Field(None, description="store the return value as a variable")


class Measure(Strict):
    """Take a measurement from an instrument method (``from:``) or a Python callable."""

    measure: str = Field(..., description="measurement name (product spec name if any)")
    from_: str | None = Field(None, alias="from", pattern=_ROLE_METHOD, description="role.method")
    python: str | None = Field(None, pattern=_MODULE_FUNCTION, description="module:function")
    args: dict[str, Any] = Field(default_factory=_new_dict)
    limit: LimitOrNone | None = Field(None, description="a limit, or none to record the value unjudged")
    units: str | None = None
    channel: str | None = None


#: The longest ``wait:`` (a day). Longer is a typo (a unit slip, 1e10) that would hang a station.
MAX_WAIT_S = 86_400.0
#: The longest delay between retries (an hour).
MAX_RETRY_DELAY_S = 3_600.0

Seconds = Annotated[float, Field(ge=0, le=MAX_WAIT_S, allow_inf_nan=False)]


class Wait(Strict):
    wait: Union[Seconds, str] = Field(..., description="seconds (at most a day), or a ${...} expression")


class Python(Strict):
    """Run a Python callable ``module:function`` receiving the step context."""

    python: str = Field(..., pattern=_MODULE_FUNCTION, description="module:function")
    args: dict[str, Any] = Field(default_factory=_new_dict)


class Prompt(Strict):
    prompt: str
    type: Literal["confirm", "choice", "input"] = "confirm"
    choices: list[str] = Field(default_factory=_new_list)
    timeout_s: float | None = Field(None, gt=0, le=MAX_WAIT_S, allow_inf_nan=False)
    save_as: str | None = None


def _action_tag(v: Any) -> str | None:
    if isinstance(v, dict):
        keys = v.keys()
    else:
        keys = {k for k in ("measure", "call", "wait", "prompt", "python") if getattr(v, k, None) is not None}
    for k in ("measure", "call", "wait", "prompt", "python"):
        if k in keys:
            return k
    return None


Action = Annotated[
    Union[
        Annotated[Measure, Tag("measure")],
        Annotated[Call, Tag("call")],
        Annotated[Wait, Tag("wait")],
        Annotated[Prompt, Tag("prompt")],
        Annotated[Python, Tag("python")],
    ],
    Discriminator(
        _action_tag,
        custom_error_type="unknown_action",
        custom_error_message="not an action: expected one of the keys measure, call, wait, prompt, python",
    ),
]

# --------------------------------------------------------------------------- sequence steps


class Retry(Strict):
    max_retries: int = Field(0, ge=0, le=1000)
    delay_s: float = Field(0.0, ge=0, le=MAX_RETRY_DELAY_S, allow_inf_nan=False,
                           description="seconds between attempts (at most an hour)")


class SweepRange(Strict):
    """``start``/``stop``/``step`` (stop inclusive), or ``points`` (a list), or a log sweep."""

    start: float | None = None
    stop: float | None = None
    step: float | None = None
    points: list[Scalar] | None = None
    log: int | None = Field(None, gt=0, description="points per decade between start and stop")


class ExplicitVector(BaseModel):
    """One explicit vector: parameters, plus optional per-vector limits."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    limits: dict[str, LimitOrNone] = Field(default_factory=_new_dict)


class StepBase(Strict):
    when: str | None = Field(None, description="safe expression; false -> skipped")
    description: str | None = None


class Step(StepBase):
    """A named step: ``do:`` actions, or one action inline (``measure:``/``call:``/...)."""

    name: str | None = None
    vectors: dict[str, Any] | list[ExplicitVector] | None = Field(
        None, description="{expand: product|zip, param: [values], ...} or a list of vectors"
    )
    sweep: dict[str, SweepRange] | None = None
    retry: Retry | None = None
    limit: LimitOrNone | None = Field(
        None, description="the limit of the step's measurements, or none to record them unjudged")
    limits: dict[str, LimitOrNone] = Field(
        default_factory=_new_dict, description="measurement -> limit (or none: unjudged)")
    do: list[Action] | None = None
    # inline single action (the step *is* the action)
    measure: str | None = None
    # (no patterns on the inline forms: the plan builder checks them with every other step
    # problem at once, see plan._FORMATS)
    from_: str | None = Field(None, alias="from", description="role.method")
    call: str | None = Field(None, description="role.method")
    args: dict[str, Any] | None = None
    wait: Union[Seconds, str, None] = None
    python: str | None = Field(None, description="module:function")
    prompt: str | None = None
    type: Literal["confirm", "choice", "input"] | None = None
    choices: list[str] | None = None
    timeout_s: float | None = Field(None, gt=0, le=MAX_WAIT_S, allow_inf_nan=False)
    units: str | None = None
    save_as: str | None = None
    channel: str | None = None


class Group(StepBase):
    group: str
    steps: list[StepItem] = Field(default_factory=_new_list)


class Include(StepBase):
    include: str = Field(..., description="a sequence fragment file: bare id or path from the project root")


def _step_tag(v: Any) -> str:
    if isinstance(v, dict):
        if "group" in v:
            return "group"
        if "include" in v:
            return "include"
        return "step"
    if isinstance(v, Group):
        return "group"
    if isinstance(v, Include):
        return "include"
    return "step"


StepItem = Annotated[
    Union[
        Annotated[Step, Tag("step")],
        Annotated[Group, Tag("group")],
        Annotated[Include, Tag("include")],
    ],
    Discriminator(_step_tag),
]


class Sequence(Strict):
    sequence: str = Field(..., description="sequence name")
    version: Union[int, str] = 1
    description: str | None = None
    product: str | None = Field(None, description="product id or path")
    station: str | None = Field(None, description="default station id or path")
    guardband_pct: float | None = Field(None, ge=0, lt=100)
    variables: dict[str, Any] = Field(default_factory=_new_dict)
    setup: list[StepItem] = Field(default_factory=_new_list)
    steps: list[StepItem] = Field(default_factory=_new_list)
    cleanup: list[StepItem] = Field(default_factory=_new_list)
    on_fail: Literal["continue", "stop"] = "continue"


class Fragment(Strict):
    """An ``include:``d file: steps (and variables) spliced in where the include stands."""

    variables: dict[str, Any] = Field(default_factory=_new_dict)
    steps: list[StepItem] = Field(default_factory=_new_list)


class Project(Strict):
    """``litmus.yaml``: optional project configuration."""

    name: str | None = None
    data_dir: str | None = None
    push_to: str | None = None
    station: str | None = None
    plugins: list[str] = Field(default_factory=_new_list)
    guardband_pct: float | None = Field(None, ge=0, lt=100)
    include_roots: list[str] = Field(
        default_factory=_new_list,
        description="folders outside the project root that include: may read (relative to the "
        "project root, or absolute); the project root itself is always allowed",
    )


KINDS: dict[str, type[Strict]] = {
    "station": Station,
    "product": Product,
    "sequence": Sequence,
    "fragment": Fragment,
    "project": Project,
}
