"""``submit``: a whole run as one JSON document, for tools that are not Python.

The document is the natural JSON of the results client's calls (``docs/submit.md``)::

    {"dut_serial": "SN001", "station_id": "ate_3", "product": "power_board",
     "steps": [{"name": "rail", "vectors": [{"params": {"vin": 5.0},
                "measurements": [{"name": "rail_3v3", "value": 3.31, "units": "V"}]}]},
               {"name": "firmware", "measurements": [{"name": "fw_version", "value": "1.4.2",
                                                      "equals": "1.4.2"}]}]}

Three promises:

* **Every mistake is reported at once**, each with its JSON path (``$.steps[1].measurements[0].hihg:
  unknown key (did you mean 'high'?)``), before anything is written.
* **Whole or not at all**: the run is recorded into a staging folder inside the data folder and
  moved into the stores only when sealed, run file last; a crash half-way leaves nothing a
  reader sees.
* **Idempotent**: a document whose ``run_id`` is already stored is not stored again. A document
  without a ``run_id`` gets one derived from its content, so sending the same document twice
  (a retry after a lost reply) stores it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from litmus_seq.errors import ConfigError, Location, Problem

__all__ = ["RunDocument", "SubmitResult", "document_schema", "load_document", "submit"]

Value = Union[bool, int, float, str, None]
_OUTCOMES = Literal["passed", "failed", "errored", "done", "skipped"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MeasurementDoc(_Strict):
    """One measurement: a value, and the limit it is judged against (any limit form), or the
    verdict your tool made (``outcome``), or ``"limit": "none"`` to record it unjudged."""

    name: str = Field(..., min_length=1)
    value: Value
    units: str | None = None
    low: float | None = None
    high: float | None = None
    nominal: float | None = None
    tolerance: float | None = Field(None, ge=0)
    tolerance_pct: float | None = Field(None, ge=0)
    equals: Union[bool, int, float, str, None] = None
    matches: str | None = None
    comparison: str | None = None
    marginal_low: float | None = None
    marginal_high: float | None = None
    limit: Literal["none"] | None = Field(None, description='"none": record the value unjudged')
    outcome: _OUTCOMES | None = Field(None, description="the verdict your tool made, recorded as given")
    dut_pin: str | None = None
    instrument: str | None = None

    def limit_fields(self) -> dict[str, Any]:
        from litmus_seq.client import LIMIT_KEYS

        return {k: getattr(self, k) for k in LIMIT_KEYS if getattr(self, k) is not None}


class _Level(_Strict):
    """What every level records besides its children: data, stimuli, observations, a verdict."""

    record: dict[str, Any] = Field(default_factory=dict, description="key -> value (test.record)")
    configure: dict[str, Value] = Field(default_factory=dict, description="key -> value (in_<key> columns)")
    observe: dict[str, Any] = Field(default_factory=dict, description="key -> value or array (out_<key>)")
    fail: str | None = Field(None, description="this level did not meet its test: the reason")
    error: str | None = Field(None, description="this level could not be tested: the reason")


class VectorDoc(_Level):
    params: dict[str, Value] = Field(default_factory=dict)
    measurements: list[MeasurementDoc] = Field(default_factory=list)


class StepDoc(_Level):
    name: str = Field(..., min_length=1)
    measurements: list[MeasurementDoc] = Field(default_factory=list)
    vectors: list[VectorDoc] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> StepDoc:
        if self.measurements and self.vectors:
            raise ValueError("give either measurements or vectors (each with its measurements), not both")
        return self


class RunDocument(_Level):
    """A whole run."""

    run_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                               description="your id for the run; stored once however often it is sent")
    dut_serial: str = Field(..., min_length=1)
    station_id: str = Field(..., min_length=1)
    product: str | None = Field(None, description="a product id of the project: its specs judge by name")
    sequence: str | None = Field(None, description="the name of the test program (sequence_name)")
    guardband_pct: float | None = Field(None, ge=0, lt=100)
    operator: str | None = None
    phase: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    custom: dict[str, Value] = Field(default_factory=dict, description="custom_<key> columns")
    steps: list[StepDoc] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_steps(self) -> RunDocument:
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(f"step name '{step.name}' appears twice; step names are unique in a run")
            seen.add(step.name)
        return self


def document_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a submitted run document."""
    schema = RunDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "litmus-seq run document"
    return schema


# -- validation --------------------------------------------------------------------------------


def _json_path(loc: tuple[Any, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _problems(exc: Any, source: str) -> list[Problem]:
    from litmus_seq.suggest import did_you_mean

    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            msg = "unknown key" + did_you_mean(str(loc[-1]), list(model.model_fields) if model else [])
        problems.append(Problem(Location(source), msg, _json_path(loc)))
    return problems


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The document model at ``loc`` (for the keys a "did you mean" chooses from)."""
    model: Any = RunDocument
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = {"steps": StepDoc, "vectors": VectorDoc, "measurements": MeasurementDoc}.get(part, model)
    return model


def load_document(text: str | bytes, source: str = "<document>") -> RunDocument:
    """Parse and validate a run document; every mistake is one :class:`Problem` (JSON path)."""
    import pydantic

    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f"{source}:{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else source
        raise ConfigError(f"{where}: not valid JSON ({getattr(exc, 'msg', exc)}); a run document is one "
                          "JSON object (see `litmus-seq schema` for its schema)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: $: a run document is a JSON object, not {type(data).__name__}")
    try:
        doc = RunDocument.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(problems=_problems(exc, source)) from None
    return doc


def _check_limits(doc: RunDocument, product: Any, source: str) -> None:
    """Every explicit limit must resolve, and with a product every other measurement must have a
    spec: all before anything is recorded (whole or not at all)."""
    from litmus_seq.limits import Limit, resolve_limit
    from litmus_seq.suggest import did_you_mean

    problems: list[Problem] = []
    specs = list(getattr(product, "specs", None) or {})
    for si, step in enumerate(doc.steps):
        shapes = [(f"$.steps[{si}].measurements", step.measurements)] + [
            (f"$.steps[{si}].vectors[{vi}].measurements", v.measurements) for vi, v in enumerate(step.vectors)]
        for base, measurements in shapes:
            for mi, m in enumerate(measurements):
                path = f"{base}[{mi}]"
                fields = m.limit_fields()
                try:
                    if fields:
                        resolve_limit(Limit.model_validate(fields), source="step")
                except Exception as exc:  # noqa: BLE001 - a pydantic or limit error, told as one line
                    problems.append(Problem(Location(source), " ".join(str(exc).split()), path))
                    continue
                if product is not None and not fields and m.limit is None and m.outcome is None \
                        and m.name not in specs:
                    problems.append(Problem(Location(source), (
                        f"no limit for '{m.name}': product '{product.id}' has no spec of that name"
                        + did_you_mean(m.name, specs)
                        + '; give a limit, an "outcome", or "limit": "none" to record it unjudged'), path))
    if problems:
        raise ConfigError(problems=problems)


# -- recording ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What :func:`submit` did: the run's id and sealed outcome, its run file, and whether this
    call stored it (``False``: it was stored before, nothing was written)."""

    run_id: str
    outcome: str | None
    parquet: Path | None
    stored: bool


def _run_id(doc: RunDocument, text: str | bytes) -> str:
    if doc.run_id is not None:
        return doc.run_id
    canonical = json.dumps(doc.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _ns(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1_000_000) * 1000


class _Clock:
    """The submitted times stamp the events: the run's and each step's start and end where the
    document gives them, else the time the document was received."""

    def __init__(self, start: datetime | None) -> None:
        self.now_ns = _ns(start) if start is not None else _ns(datetime.now(timezone.utc))

    def set(self, t: datetime | None) -> None:
        if t is not None:
            self.now_ns = _ns(t)

    def __call__(self) -> int:
        return self.now_ns


def _stored(data_dir: Path, run_id: str) -> tuple[str | None, Path | None] | None:
    """``(outcome, file)`` of a stored run with ``run_id``, or ``None``."""
    from litmus_seq.results import Results

    if not (data_dir / "runs").is_dir():
        return None
    try:
        row = Results(data_dir).get_run(run_id)
    except Exception:  # noqa: BLE001 - no readable run files yet: nothing stored
        return None
    if row is None:
        return None
    where = row.get("file_path") or row.get("file")
    return row.get("run_outcome"), Path(where) if where else None


@contextlib.contextmanager
def _lock(data_dir: Path) -> Iterator[None]:
    """One submission at a time per data folder: the "already stored?" check and the move into
    the stores must not interleave with another submission of the same run."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(data_dir / ".submit.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no lock
            pass
        yield
    finally:
        os.close(fd)


def _publish(staging: Path, data_dir: Path, parquet: Path | None) -> Path | None:
    """Move what the staged run wrote into the stores: events and channels first, the run file
    last (a reader takes a run as stored once its run file is there). Returns the run file."""
    from litmus_seq.stores.paths import move_new

    files = sorted(p for p in staging.rglob("*") if p.is_file() and not p.name.startswith("."))
    files.sort(key=lambda p: p.suffix == ".parquet")
    final: Path | None = None
    for f in files:
        target = data_dir / f.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        moved = move_new(f, target)
        if parquet is not None and f.resolve() == Path(parquet).resolve():
            final = moved
    return final


def _replay(run: Any, doc: RunDocument, clock: _Clock) -> None:
    """Record the document's steps through the client's builders."""
    _apply_level(run, doc)
    for step_doc in doc.steps:
        clock.set(step_doc.started_at)
        step = run.step(step_doc.name)
        for m in step_doc.measurements:
            _measure(step, m)
        for v in step_doc.vectors:
            vector = step.vector(**v.params)
            for m in v.measurements:
                _measure(vector, m)
            _apply_level(vector, v)
            vector.finish()
        _apply_level(step, step_doc)
        clock.set(step_doc.ended_at)
        step.finish()


def _measure(level: Any, m: MeasurementDoc) -> None:
    level.measure(m.name, m.value, m.units, limit=m.limit, outcome=m.outcome, dut_pin=m.dut_pin,
                  instrument=m.instrument, **m.limit_fields())


def _apply_level(level: Any, doc: _Level) -> None:
    for key, value in doc.configure.items():
        level.configure(key, value)
    for key, value in doc.record.items():
        level.record(key, value)
    for key, value in doc.observe.items():
        level.observe(key, value)
    if doc.fail is not None:
        level.fail(doc.fail)
    if doc.error is not None:
        level.error(doc.error)


def submit(text: str | bytes, *, data_dir: Path, project: Any, source: str = "<document>",
           plugins: tuple[str, ...] = ()) -> SubmitResult:
    """Validate a run document and store it whole (see the module docstring). Raises
    :class:`~litmus_seq.errors.ConfigError` with one problem per mistake; writes nothing then."""
    from litmus_seq.client import RunBuilder
    from litmus_seq.run.recording import open_recording, resolve_product

    doc = load_document(text, source)
    product = resolve_product(project, doc.product) if doc.product else None
    _check_limits(doc, product, source)
    run_id = _run_id(doc, text)
    data_dir = Path(data_dir)
    with _lock(data_dir):
        found = _stored(data_dir, run_id)
        if found is not None:
            return SubmitResult(run_id, found[0], found[1], stored=False)
        staging = data_dir / ".staging" / uuid.uuid4().hex
        try:
            clock = _Clock(doc.started_at)
            recording = open_recording(
                project, data_dir=staging, station=doc.station_id, product=product, station_optional=True,
                plugins=plugins, dut_serial=doc.dut_serial, operator=doc.operator, phase=doc.phase,
                custom=dict(doc.custom), guardband_pct=doc.guardband_pct, run_id=run_id, clock=clock,
                sequence={"name": doc.sequence},
                steps=[{"step_path": f"main/{s.name}", "name": s.name, "kind": "test", "phase": "main",
                        "step_index": i, "vector_count": len(s.vectors) or 1} for i, s in enumerate(doc.steps)])
            run = RunBuilder(recording)
            try:
                _replay(run, doc, clock)
            finally:
                clock.set(doc.ended_at)
                run.finish()
            parquet = _publish(staging, data_dir, run.result.parquet)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return SubmitResult(run_id, run.result.outcome, parquet, stored=True)


def read_source(path: str, stdin: Callable[[], bytes]) -> tuple[bytes, str]:
    """The document's bytes and how messages name it (``-`` is standard input)."""
    if path == "-":
        return stdin(), "<stdin>"
    p = Path(path)
    try:
        return p.read_bytes(), path
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the run document ({exc.strerror or exc})") from None
