"""The plan: a sequence tree flattened into planned steps, vectors and resolved limits.

The plan is the contract between authoring and execution: ``litmus-seq plan`` prints it,
``test.steps_discovered`` carries its step identities, and the engine runs it without touching
pydantic or YAML again. Everything that can be decided before hardware is touched is decided
here (vector expansion, limit resolution and guardband, expression parsing and name checks), and
every mistake found is reported at its file:line:col, all of them at once.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litmus_seq.errors import ConfigError, ExpressionError, LimitError, LitmusError, Location, Problem
from litmus_seq.limits import UNJUDGED, ResolvedLimit, resolve_limit, spec_band
from litmus_seq.loader import path_str, paused_gc
from litmus_seq.suggest import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from litmus_seq.project import ProjectContext

__all__ = ["Plan", "PlannedAction", "PlannedStep", "PlannedVector", "build_plan", "load_plan"]


@dataclass(slots=True)
class PlannedVector:
    """One vector of a step: parameters (already expanded) and the limits resolved for them."""

    index: int
    params: dict[str, Any]
    limits: dict[str, ResolvedLimit]  # measurement name -> limit (only names known statically)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "params": self.params,
            "limits": {name: lim.to_json() for name, lim in self.limits.items()},
        }


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
    # 1-based column of ``line``; with ``line`` it points at the ``call:``/``from:``/``python:``
    # value, so run-time preflight errors (unknown role/method/callable) say file:line:col.
    column: int | None = None

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

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "step_path": self.step_path,
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "vectors": [v.to_json() for v in self.vectors],
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
    # run-time limit resolution for names only known when measured (python steps)
    _resolver: Any = field(default=None, repr=False, compare=False)
    # Built on first use and kept: a station runs the same plan unit after unit, and encoding a
    # 10,000-step plan costs ~10 µs a step (bench/RESULTS.md). A plan is not changed once built.
    _items: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    _json_text: str | None = field(default=None, repr=False, compare=False)

    def discovered_items(self) -> list[dict[str, Any]]:
        """The ``test.steps_discovered`` items: one list shared by every run (read-only)."""
        if self._items is None:
            self._items = [s.identity() for s in self.steps]
        return self._items

    def to_json(self) -> dict[str, Any]:
        """DESIGN §3: ``{"sequence", "steps": [{node_id, step_path, name, file, line, vectors}]}``."""
        return {"sequence": self.sequence_name, "steps": [s.to_json() for s in self.steps]}

    def json_text(self) -> str:
        """:meth:`to_json` as JSON text (the ``plan`` of ``run.started`` and of the run file).

        Written out step by step rather than through ``json.dumps(self.to_json())``: that builds
        and walks a dict per step, vector and limit, ~13 µs a step, paid by every
        ``litmus-seq run`` (one DUT per process). Limits are shared objects: each is encoded once.
        """
        if self._json_text is None:
            enc = _encode_str
            lims: dict[int, str] = {}
            steps = []
            for s in self.steps:
                vecs = []
                for v in s.vectors:
                    parts = []
                    for name, lim in v.limits.items():
                        text = lims.get(id(lim))
                        if text is None:
                            text = lims[id(lim)] = _dumps(lim.to_json())
                        parts.append(f"{enc(str(name))}:{text}")
                    params = _dumps(v.params) if v.params else "{}"
                    vecs.append(f'{{"index":{v.index:d},"params":{params},"limits":{{{",".join(parts)}}}}}')
                steps.append(f'{{"node_id":{enc(s.node_id)},"step_path":{enc(s.step_path)},"name":{enc(s.name)},'
                             f'"file":{enc(s.file)},"line":{_dumps(s.line)},"vectors":[{",".join(vecs)}]}}')
            self._json_text = f'{{"sequence":{_dumps(self.sequence_name)},"steps":[{",".join(steps)}]}}'
        return self._json_text

    def resolve_limit(self, step: PlannedStep, params: dict[str, Any], name: str) -> ResolvedLimit | None:
        """The limit for measurement ``name`` of ``step`` under ``params``, for measurements only
        known at run time (``ctx.measure()`` in a ``python:`` step). Same order as at plan time:
        vector → step → product spec → None. A :class:`LimitError` here (no spec band matches)
        is a run-time error of that measurement."""
        for v in step.vectors:
            if v.params == params and name in v.limits:
                return v.limits[name]
        if self._resolver is None:
            return None
        return self._resolver.resolve_runtime(step, params, name)


def _dumps(value: Any) -> str:
    """Compact JSON of a value (numbers, params, a limit's dict)."""
    if type(value) is int:
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


_encode_str = json.encoder.encode_basestring_ascii  # C: a JSON string literal, as json.dumps writes it


def build_plan(sequence_path: Path | str, *, project: ProjectContext | None = None) -> Plan:
    """Load ``sequence_path`` (and its product and includes) and build the plan.

    Every mistake is collected and raised together as one :class:`LitmusError` whose problems
    carry file:line:col (the class is the first problem's: ``ExpressionError``, ``LimitError``,
    else ``ConfigError``).
    """
    with paused_gc():
        return _Planner(Path(sequence_path), project).build()


load_plan = build_plan


# =========================================================================== the builder

_PHASES = (("setup", "setup"), ("main", "steps"), ("cleanup", "cleanup"))
_INLINE = ("measure", "from_", "call", "args", "wait", "python", "prompt", "type", "choices",
           "timeout_s", "units", "save_as", "channel")
_ALIASES = {"from_": "from"}
_FORMATS = {
    "python": "module:function (e.g. checks.power:efficiency)",
    "call": "role.method (e.g. psu.set_voltage)",
    "from": "role.method (e.g. dmm.measure_dc_voltage)",
}
_INLINE_ALLOWED = {
    "measure": {"measure", "from_", "python", "args", "units", "channel"},
    "call": {"call", "args", "save_as"},
    "wait": {"wait"},
    "prompt": {"prompt", "type", "choices", "timeout_s", "save_as"},
    "python": {"python", "args"},
}


@dataclass(slots=True)
class _Node:
    """A sequence item after includes are spliced: where it lives and what it is."""

    model: Any  # models.Step | models.Group
    doc: Any  # loader.Document of the file holding it
    path: tuple[Any, ...]  # path of the item inside doc
    children: list[_Node] = field(default_factory=list)
    extra_when: list[tuple[str, Any, tuple[Any, ...]]] = field(default_factory=list)  # from includes


class _Scope:
    """The names an expression may use at one point of the plan: layers looked up in turn, so
    a step does not copy the names declared by every earlier step (planning stays linear)."""

    __slots__ = ("layers",)

    def __init__(self, *layers: Collection[str]) -> None:
        self.layers = layers

    def __contains__(self, name: object) -> bool:
        return any(name in layer for layer in self.layers)

    def names(self) -> set[str]:
        """Every name (for a "did you mean" on the error path)."""
        return set().union(*self.layers)


@dataclass(slots=True)
class _StepLimits:
    """What run-time resolution needs of one step (``Plan.resolve_limit``)."""

    step_limit: Any  # models Limit | None
    limits: dict[str, Any]  # step-level name -> Limit (incl. action limits)
    vector_limits: list[dict[str, Any]]  # per vector index
    units: dict[str, str | None]


class _Resolver:
    """Resolves limits (vector → step → spec) and shares identical results between vectors."""

    def __init__(self, product: Any, guardband_pct: float) -> None:
        self.product = product
        self.guardband_pct = guardband_pct
        self.cache: dict[Any, ResolvedLimit] = {}
        # equal limits written in many places become one object: the engine and the stores key
        # their per-limit work by identity, so sharing makes that work once per distinct limit
        self.interned: dict[Any, ResolvedLimit] = {}
        self.steps: dict[int, _StepLimits] = {}
        self._conditions: dict[str, tuple[str, ...]] = {}

    def explicit(self, source: str, limit: Any, name: str, units: str | None) -> ResolvedLimit:
        key = (source, id(limit), units)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self.intern(resolve_limit(limit, source=source, units=units))
        return hit

    def intern(self, lim: ResolvedLimit) -> ResolvedLimit:
        # type(equals) keeps `equals: true` and `equals: 1` apart (True == 1 in Python)
        return self.interned.setdefault((lim, type(lim.equals)), lim)

    def spec(self, name: str, params: dict[str, Any], units: str | None) -> ResolvedLimit | None:
        product = self.product
        if product is None:
            return None
        spec = product.specs.get(name)
        if spec is None:
            return None
        # fast path: the band depends only on the values of the condition parameters
        conds = self._conditions.get(name)
        if conds is None:
            conds = self._conditions[name] = tuple(dict.fromkeys(k for b in spec.bands for k in b.when))
        try:
            fast: Any = (name, units, tuple(params.get(k) for k in conds))
            hit = self.cache.get(fast)
        except TypeError:
            fast, hit = None, None
        if hit is not None:
            return hit
        choice = spec_band(spec, params, name=f"products.{product.id}.{name}")
        u = choice.limit.units or spec.units or units
        try:
            key: Any = ("spec", name, choice.band, choice.conditions, u)
            hit = self.cache.get(key)
        except TypeError:  # unhashable parameter values: no sharing
            key, hit = None, None
        if hit is None:
            hit = resolve_limit(
                choice.limit,
                source="spec",
                guardband_pct=self.guardband_pct,
                spec_ref=choice.ref(f"products.{product.id}.{name}"),
                characteristic_id=name,
                units=u,
            )
            hit = self.intern(hit)
            if key is not None:
                self.cache[key] = hit
        if fast is not None:
            self.cache[fast] = hit
        return hit

    def spec_units(self, name: str) -> str | None:
        spec = self.product.specs.get(name) if self.product is not None else None
        return spec.units if spec is not None else None

    def resolve_runtime(self, step: PlannedStep, params: dict[str, Any], name: str) -> ResolvedLimit | None:
        info = self.steps.get(step.step_index)
        units = None
        if info is not None:
            units = info.units.get(name) or self.spec_units(name)
            for v in step.vectors:
                if v.params is params or v.params == params:
                    lim = info.vector_limits[v.index].get(name) if v.index < len(info.vector_limits) else None
                    if lim == UNJUDGED:
                        return None
                    if lim is not None:
                        return self.explicit("vector", lim, name, units)
                    break
            lim = info.limits.get(name) or info.step_limit
            if lim == UNJUDGED:
                return None
            if lim is not None:
                return self.explicit("step", lim, name, units)
        found = self.spec(name, params, units)
        if found is None and self.product is not None:
            raise LimitError(unlimited(name, self.product, in_code=True))
        return found


class _Planner:
    """One plan build: loads files, walks the tree, collects every problem."""

    def __init__(self, path: Path, project: ProjectContext | None) -> None:
        if project is None:
            from litmus_seq.project import ProjectContext

            project = ProjectContext.for_path(path)
        self.ctx = project
        self.path = path
        self.problems: list[tuple[type[LitmusError], Problem]] = []
        self._seen: set[tuple[str, str]] = set()
        self.steps: list[PlannedStep] = []
        self.declared: set[str] = set()
        self.variables: dict[str, Any] = {}

    # -- problems -----------------------------------------------------------------------------

    def _loc(self, doc: Any, path: tuple[Any, ...]) -> Location:
        try:
            return doc.locate(path)  # type: ignore[no-any-return]
        except Exception:  # pragma: no cover - a locator never should fail; degrade to the file
            return Location(getattr(doc, "display", str(getattr(doc, "path", "?"))))

    def problem(self, cls: type[LitmusError], doc: Any, path: tuple[Any, ...], message: str) -> None:
        loc = self._loc(doc, path)
        key = (str(loc), message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.problems.append((cls, Problem(loc, message, path_str(path))))

    def absorb(self, exc: LitmusError, doc: Any, path: tuple[Any, ...]) -> None:
        """Record ``exc``: its own problems if it has located ones, else its message here."""
        if exc.problems:
            for p in exc.problems:
                key = (str(p.location), p.message)
                if key not in self._seen:
                    self._seen.add(key)
                    self.problems.append((type(exc), p))
        else:
            self.problem(type(exc), doc, path, str(exc))

    # -- build --------------------------------------------------------------------------------

    def build(self) -> Plan:
        from litmus_seq import models

        ctx = self.ctx
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no such sequence file: check the path")
        display = ctx.display(self.path)
        seq = ctx.load(self.path, models.Sequence)
        doc = ctx.document(self.path)
        self.doc = doc
        self.seq_file = display
        product = None
        product_doc = None
        if seq.product:
            product = ctx.load_product(seq.product, where=doc.locate(("product",)))
            product_doc = self._product_doc(seq.product, doc)
        gb = seq.guardband_pct
        if gb is None:
            gb = getattr(ctx.config, "guardband_pct", None) or 0.0
        self.resolver = _Resolver(product, float(gb))
        self.product = product
        self.product_doc = product_doc
        self.variables = dict(seq.variables)

        trees = []
        for phase, key in _PHASES:
            nodes = self._splice(getattr(seq, key), doc, (key,), [self.path.resolve()])
            trees.append((phase, nodes))
        for phase, nodes in trees:
            self._walk(nodes, phase, "")

        if self.problems:
            cls = self.problems[0][0]
            if not issubclass(cls, ConfigError):
                cls = ConfigError
            raise cls(problems=[p for _, p in self.problems])
        for i, step in enumerate(self.steps):
            if step.kind != "group":
                step.subtree_end = i + 1
        return Plan(
            sequence_name=seq.sequence,
            sequence_version=str(seq.version),
            sequence_file=display,
            root=ctx.root,
            steps=self.steps,
            variables=self.variables,
            guardband_pct=float(gb),
            on_fail=seq.on_fail,
            product=product,
            station_ref=seq.station,
            _resolver=self.resolver,
        )

    def _product_doc(self, ref: str, doc: Any) -> Any:
        try:
            path = self.ctx.resolve(ref, "products", where=doc.locate(("product",)))
        except LitmusError:  # pragma: no cover - load_product already succeeded
            return None
        docs = getattr(self.ctx, "documents", {}) or {}
        found = docs.get(path)
        if found is None:
            try:
                found = docs.get(Path(path).resolve())
            except OSError:  # pragma: no cover
                found = None
        return found

    # -- includes -----------------------------------------------------------------------------

    def _splice(self, items: list[Any], doc: Any, base: tuple[Any, ...], chain: list[Path]) -> list[_Node]:
        from litmus_seq import models

        out: list[_Node] = []
        for i, item in enumerate(items):
            path = base + (i,)
            if isinstance(item, models.Include):
                where = self._loc(doc, path + ("include",))
                try:
                    target = Path(self.ctx.resolve(item.include, "sequences", where=where))
                except LitmusError as exc:
                    self.absorb(exc, doc, path + ("include",))
                    continue
                real = target.resolve()
                if self.ctx.outside_roots(target):
                    self.problem(ConfigError, doc, path + ("include",), (
                        f"the included file resolves outside the project root "
                        f"{self.ctx.root.as_posix()} (a path or a symlink leading elsewhere); "
                        "include files from inside the project, or list their folder under "
                        "include_roots: in litmus.yaml"))
                    continue
                if real in chain:
                    names = " -> ".join(self.ctx.display(p) for p in [*chain, real])
                    self.problem(ConfigError, doc, path + ("include",),
                                 f"include cycle: {names}; remove one of these includes")
                    continue
                if not real.is_file():
                    self.problem(ConfigError, doc, path + ("include",),
                                 f"included file {self.ctx.display(target)} does not exist: "
                                 "check the path (bare ids are looked up as sequences/<id>.yaml)")
                    continue
                try:
                    frag = self.ctx.load(real, models.Fragment)
                    fdoc = self.ctx.document(real)
                except LitmusError as exc:
                    self.absorb(exc, doc, path + ("include",))
                    continue
                for k, v in frag.variables.items():
                    self.variables.setdefault(k, v)
                spliced = self._splice(frag.steps, fdoc, ("steps",), [*chain, real])
                if item.when:
                    for node in spliced:
                        node.extra_when.insert(0, (item.when, doc, path + ("when",)))
                out.extend(spliced)
            elif isinstance(item, models.Group):
                node = _Node(item, doc, path)
                node.children = self._splice(item.steps, doc, path + ("steps",), chain)
                out.append(node)
            else:
                out.append(_Node(item, doc, path))
        return out

    # -- naming -------------------------------------------------------------------------------

    def _names(self, nodes: list[_Node], phase: str) -> list[tuple[str, str]]:
        """``(path segment, display name)`` per sibling. Unnamed setup/cleanup items are
        numbered in the path (``setup/2``) but keep a readable name (``psu.output_on``)."""
        from litmus_seq import models

        explicit: dict[str, _Node] = {}
        names: list[str | None] = []
        for node in nodes:
            m = node.model
            name = m.group if isinstance(m, models.Group) else m.name
            if name is not None:
                key = ("group",) if isinstance(m, models.Group) else ("name",)
                bad = [c for c in ("/", "::") if c in name]
                if not name.strip() or bad:
                    self.problem(ConfigError, node.doc, node.path + key,
                                 f"step name {name!r} cannot be empty or contain '/' or '::'")
                if name in explicit:
                    other = explicit[name]
                    self.problem(
                        ConfigError, node.doc, node.path + key,
                        f"duplicate step name '{name}' (also at {self._loc(other.doc, other.path)}): "
                        "sibling steps need distinct names",
                    )
                else:
                    explicit[name] = node
            names.append(name)
        taken = set(explicit)
        suffix: dict[str, int] = {}  # next number to try per base: linear in unnamed siblings
        out: list[tuple[str, str]] = []
        for pos, (node, name) in enumerate(zip(nodes, names), start=1):
            if name is not None:
                out.append((name, name))
                continue
            label = self._derived_name(node.model, pos)
            base = str(pos) if phase != "main" else label
            segment = base
            n = suffix.get(base, 2)
            while segment in taken:
                segment = f"{base}_{n}"
                n += 1
            suffix[base] = n
            taken.add(segment)
            out.append((segment, label if phase != "main" else segment))
        return out

    @staticmethod
    def _derived_name(step: Any, pos: int) -> str:
        """An unnamed main step takes its measurement name, else role.method, else kind_pos."""
        if step.measure:
            return str(step.measure)
        if step.call:
            return str(step.call)
        for action in step.do or ():
            if getattr(action, "measure", None):
                return str(action.measure)
        for action in step.do or ():
            if getattr(action, "call", None):
                return str(action.call)
        kind = "step"
        for k in ("wait", "prompt", "python"):
            if getattr(step, k, None) is not None:
                kind = k
                break
        else:
            if step.do:
                kind = _action_kind(step.do[0])
        return f"{kind}_{pos}"

    # -- walking ------------------------------------------------------------------------------

    def _walk(self, nodes: list[_Node], phase: str, parent_path: str) -> None:
        from litmus_seq import models

        names = self._names(nodes, phase)
        for node, (segment, name) in zip(nodes, names):
            step_path = f"{parent_path}/{segment}" if parent_path else f"{phase}/{segment}"
            if isinstance(node.model, models.Group):
                self._plan_group(node, name, phase, step_path, parent_path)
            else:
                self._plan_step(node, name, phase, step_path, parent_path)

    def _when(self, node: _Node, known: _Scope) -> Any:
        from litmus_seq.expressions import compile_expr

        sources: list[tuple[str, Any, tuple[Any, ...]]] = list(node.extra_when)
        if node.model.when is not None:
            sources.append((node.model.when, node.doc, node.path + ("when",)))
        if not sources:
            return None
        ok = True
        for src, doc, path in sources:
            try:
                expr = compile_expr(src)
            except ExpressionError as exc:
                self.problem(ExpressionError, doc, path, f"when: {exc}")
                ok = False
                continue
            self._check_names(expr.names, known, doc, path)
        if not ok:
            return None
        if len(sources) == 1:
            return compile_expr(sources[0][0])
        return compile_expr(" and ".join(f"({s})" for s, _, _ in sources))

    def _check_names(self, used: frozenset[str], known: _Scope, doc: Any, path: tuple[Any, ...]) -> None:
        for n in sorted(n for n in used if n not in known):
            self.problem(
                ExpressionError, doc, path,
                f"unknown name '{n}'{did_you_mean(n, known.names())}: an expression can use variables, the "
                "step's vector parameters, and measurements or save_as values from earlier steps",
            )

    def _plan_group(self, node: _Node, name: str, phase: str, step_path: str, parent_path: str) -> None:
        loc = self._loc(node.doc, node.path)
        when = self._when(node, _Scope(self.variables, self.declared))
        index = len(self.steps)
        step = PlannedStep(
            node_id=f"{self.seq_file}::{step_path}",
            step_path=step_path,
            parent_path=parent_path,
            step_index=index,
            name=name,
            kind="group",
            phase=phase,
            file=str(loc.file),
            line=loc.line or 0,
            vectors=[PlannedVector(0, {}, {})],
            actions=[],
            when=when,
        )
        self.steps.append(step)
        self._walk(node.children, phase, step_path)
        step.subtree_end = len(self.steps)
        if not node.children:
            self.problem(ConfigError, node.doc, node.path + ("steps",),
                         f"group '{name}' has no steps: add steps or remove the group")

    def _plan_step(self, node: _Node, name: str, phase: str, step_path: str, parent_path: str) -> None:
        from litmus_seq.vectors import VectorError, expand_vectors

        m, doc, path = node.model, node.doc, node.path
        loc = self._loc(doc, path)
        actions = self._actions(m, doc, path)
        if actions is None:
            return
        kind = next((a.kind for a, _ in actions if a.kind == "measure"), None) or (
            actions[0][0].kind if actions else "call"
        )
        try:
            expanded = expand_vectors(m)
        except VectorError as exc:
            self.problem(ConfigError, doc, path + exc.rel_path, str(exc))
            expanded = [({}, {})]
        except LitmusError as exc:
            self.absorb(exc, doc, path)
            expanded = [({}, {})]

        params_known: set[str] = set()
        for params, _ in expanded:
            params_known.update(params)
        when = self._when(node, _Scope(self.variables, params_known, self.declared))

        # actions: names known grow with each earlier action of the step
        added: set[str] = set()
        local = _Scope(self.variables, params_known, self.declared, added)
        measurements: dict[str, None] = {}  # an ordered set: planning stays linear in names
        has_python = False
        for action, apath in actions:
            if action.args is not None:
                self._check_names(action.args.names, local, doc, apath + ("args",))
            if action.kind == "wait" and action.args is not None:
                self._check_names(action.args.names, local, doc, apath + ("wait",))
            if action.python is not None:
                has_python = True
            if action.measurement is not None:
                measurements[action.measurement] = None
                added.add(action.measurement)
            if action.save_as:
                added.add(action.save_as)
            if action.kind == "prompt":
                added.add(action.save_as or name)

        limits, where = self._step_limits(m, doc, path, actions, measurements, has_python)
        vectors = self._vectors(m, doc, path, expanded, measurements, limits, where, has_python)

        retry = m.retry
        index = len(self.steps)
        self.steps.append(PlannedStep(
            node_id=f"{self.seq_file}::{step_path}",
            step_path=step_path,
            parent_path=parent_path,
            step_index=index,
            name=name,
            kind=kind,
            phase=phase,
            file=str(loc.file),
            line=loc.line or 0,
            vectors=vectors,
            actions=[a for a, _ in actions],
            retry_max=retry.max_retries if retry else 0,
            retry_delay_s=retry.delay_s if retry else 0.0,
            when=when,
            subtree_end=index + 1,
            measurements=tuple(measurements),
        ))
        if has_python:  # only ctx.measure() resolves limits at run time (Plan.resolve_limit)
            self.resolver.steps[index] = limits
            limits.vector_limits = [vl for _, vl in expanded]
        self.declared |= added

    # -- actions ------------------------------------------------------------------------------

    def _actions(self, m: Any, doc: Any, path: tuple[Any, ...]) -> list[tuple[PlannedAction, tuple[Any, ...]]] | None:
        """The step's actions with their document paths; None if the step is unusable."""
        inline = [f for f in _INLINE if getattr(m, f) is not None]
        if m.do is not None:
            if inline:
                self.problem(
                    ConfigError, doc, path + (_ALIASES.get(inline[0], inline[0]),),
                    f"'{_ALIASES.get(inline[0], inline[0])}' cannot be combined with 'do:': put it "
                    "inside do: as an action, or drop do: for a single-action step",
                )
                return None
            if not m.do:
                self.problem(ConfigError, doc, path + ("do",), "do: is empty: list at least one action")
                return None
            out = []
            for i, action in enumerate(m.do):
                planned = self._action(action, doc, path + ("do", i))
                if planned is not None:
                    out.append((planned, path + ("do", i)))
            return out if len(out) == len(m.do) else None
        model = self._inline_model(m, inline, doc, path)
        if model is None:
            return None
        planned = self._action(model, doc, path)
        return None if planned is None else [(planned, path)]

    def _inline_model(self, m: Any, inline: list[str], doc: Any, path: tuple[Any, ...]) -> Any:
        import pydantic

        from litmus_seq import models

        kind = next((k for k in ("measure", "call", "wait", "prompt", "python") if getattr(m, k) is not None), None)
        if kind is None:
            self.problem(
                ConfigError, doc, path,
                "the step does nothing: add do: with actions, or one of measure:, call:, wait:, "
                "prompt:, python:",
            )
            return None
        allowed = _INLINE_ALLOWED[kind]
        extra = [f for f in inline if f not in allowed]
        if extra:
            for f in extra:
                key = _ALIASES.get(f, f)
                self.problem(ConfigError, doc, path + (key,),
                             f"'{key}' does not apply to a {kind} step"
                             + (f" (allowed: {', '.join(sorted(_ALIASES.get(a, a) for a in allowed))})"))
            return None
        data = {_ALIASES.get(f, f): getattr(m, f) for f in inline}
        cls = {"measure": models.Measure, "call": models.Call, "wait": models.Wait,
               "prompt": models.Prompt, "python": models.Python}[kind]
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err.get("loc", ()))
                field_name = str(loc[0]) if loc else ""
                msg = err.get("msg", "invalid")
                if err.get("type") == "string_pattern_mismatch" and field_name in _FORMATS:
                    msg = f"{err.get('input')!r} is not {_FORMATS[field_name]}"
                self.problem(ConfigError, doc, path + loc[:1], msg)
            return None

    def _action(self, a: Any, doc: Any, path: tuple[Any, ...]) -> PlannedAction | None:
        from litmus_seq import models
        from litmus_seq.expressions import compile_args, compile_value

        loc = self._loc(doc, path)
        file, line = str(loc.file), loc.line or 0
        # where the instrument or callable is named (preflight errors point there)
        source_key = next((k for k in ("call", "from_", "python") if getattr(a, k, None) is not None), None)
        if source_key is not None:
            loc = self._loc(doc, path + (_ALIASES.get(source_key, source_key),))
            line = loc.line or line
        column = loc.column

        def args_of(d: dict[str, Any] | None) -> Any:
            try:
                return compile_args(d)
            except ExpressionError as exc:
                self.problem(ExpressionError, doc, path + ("args",), str(exc))
                return None

        if isinstance(a, models.Measure):
            if (a.from_ is None) == (a.python is None):
                self.problem(
                    ConfigError, doc, path + ("measure",),
                    f"measure '{a.measure}' needs exactly one source: from: role.method (an "
                    "instrument) or python: module:function",
                )
                return None
            role = method = None
            if a.from_ is not None:
                role, method = a.from_.split(".", 1)
            return PlannedAction("measure", a, file, line, column=column, role=role, method=method, python=a.python,
                                 measurement=a.measure, args=args_of(a.args))
        if isinstance(a, models.Call):
            role, method = a.call.split(".", 1)
            return PlannedAction("call", a, file, line, column=column, role=role, method=method, save_as=a.save_as,
                                 args=args_of(a.args))
        if isinstance(a, models.Wait):
            w = a.wait
            compiled = None
            if isinstance(w, str):
                try:
                    compiled = compile_value(w)
                except ExpressionError as exc:
                    self.problem(ExpressionError, doc, path + ("wait",), str(exc))
                    return None
                if isinstance(compiled, str):
                    try:
                        w = float(compiled)
                        compiled = None
                    except ValueError:
                        self.problem(ConfigError, doc, path + ("wait",),
                                     f"wait: {w!r} is neither seconds nor a ${{...}} expression")
                        return None
            if compiled is None and float(w) < 0:
                self.problem(ConfigError, doc, path + ("wait",), f"wait: {w} is negative: give seconds >= 0")
                return None
            return PlannedAction("wait", a, file, line, column=column, args=compiled)
        if isinstance(a, models.Prompt):
            if a.type == "choice" and not a.choices:
                self.problem(ConfigError, doc, path + ("type",),
                             "a choice prompt needs choices: [..]: list the answers")
                return None
            return PlannedAction("prompt", a, file, line, column=column, save_as=a.save_as)
        if isinstance(a, models.Python):
            return PlannedAction("python", a, file, line, column=column, python=a.python, args=args_of(a.args))
        self.problem(ConfigError, doc, path, f"not an action: {type(a).__name__}")  # pragma: no cover
        return None

    # -- limits -------------------------------------------------------------------------------

    def _step_limits(self, m: Any, doc: Any, path: tuple[Any, ...],
                     actions: list[tuple[PlannedAction, tuple[Any, ...]]],
                     measurements: dict[str, None], has_python: bool
                     ) -> tuple[_StepLimits, dict[str, tuple[Any, ...]]]:
        step_level: dict[str, Any] = {}
        units: dict[str, str | None] = {}
        where: dict[str, tuple[Any, ...]] = {}
        for action, apath in actions:
            if action.kind == "measure":
                name = action.measurement
                assert name is not None
                units.setdefault(name, getattr(action.model, "units", None))
                where.setdefault(f"measure:{name}", apath + ("measure",))
                if action.model.limit is not None and name not in step_level:
                    step_level[name] = action.model.limit
                    where[name] = apath + ("limit",)
        for name, lim in m.limits.items():
            if name not in measurements and not has_python:
                self.problem(
                    ConfigError, doc, path + ("limits", name),
                    f"limits: '{name}' is not measured by this step{did_you_mean(name, measurements)}",
                )
                continue
            step_level.setdefault(name, lim)
            where.setdefault(name, path + ("limits", name))
        if m.limit is not None and not measurements and not has_python:
            self.problem(ConfigError, doc, path + ("limit",),
                         "limit: this step measures nothing: add measure:, or remove the limit")
        for name in (*measurements, *step_level):
            if units.get(name) is None:
                units[name] = self.resolver.spec_units(name)
        return _StepLimits(m.limit, step_level, [], units), where

    def _vectors(self, m: Any, doc: Any, path: tuple[Any, ...],
                 expanded: list[tuple[dict[str, Any], dict[str, Any]]], measurements: dict[str, None],
                 info: _StepLimits, where: dict[str, tuple[Any, ...]],
                 has_python: bool) -> list[PlannedVector]:
        resolver = self.resolver
        step_limit_path = path + ("limit",)
        vectors: list[PlannedVector] = []
        extra_names = [n for n in info.limits if n not in measurements]
        vpath = path + (("vectors",) if m.vectors is not None else ("sweep",) if m.sweep else ())
        missing: dict[str, None] = {}  # measured, but no limit anywhere and none written
        for index, (params, vlimits) in enumerate(expanded):
            resolved: dict[str, ResolvedLimit] = {}
            unjudged: set[str] = set()
            for name, lim in vlimits.items():
                lpath = path + ("vectors", index, "limits", name)
                if name not in measurements and not has_python:
                    self.problem(ConfigError, doc, lpath,
                                 f"vector limit for '{name}', which this step does not measure"
                                 f"{did_you_mean(name, measurements)}")
                    continue
                if lim == UNJUDGED:
                    unjudged.add(name)
                    continue
                try:
                    resolved[name] = resolver.explicit("vector", lim, name, info.units.get(name))
                except LimitError as exc:
                    self.problem(LimitError, doc, lpath, str(exc))
            for name in (*measurements, *extra_names):
                if name in resolved or name in unjudged:
                    continue
                lim = info.limits.get(name) or (info.step_limit if name in measurements else None)
                if lim == UNJUDGED:
                    continue
                try:
                    if lim is not None:
                        resolved[name] = resolver.explicit("step", lim, name, info.units.get(name))
                        continue
                    spec = resolver.spec(name, params, info.units.get(name))
                except LimitError as exc:
                    lpath = where.get(name, step_limit_path) if lim is not None else vpath
                    msg = str(exc)
                    if lim is None and self.product_doc is not None:
                        msg += f" (spec at {self._loc(self.product_doc, ('specs', name))})"
                    self.problem(LimitError, doc, lpath, msg)
                    continue
                if spec is not None:
                    resolved[name] = spec
                elif self.product is not None and name in measurements:
                    missing[name] = None
            vectors.append(PlannedVector(index, params, resolved))
        for name in missing:
            self.problem(LimitError, doc, where[f"measure:{name}"], unlimited(name, self.product))
        return vectors


def unlimited(name: str, product: Any, *, in_code: bool = False) -> str:
    """The message for a measurement that no limit judges in a sequence naming a product
    (``in_code``: measured by ``ctx.measure()`` in a ``python:`` step)."""
    fix = ("pass limit= to ctx.measure(), or limit=\"none\" to record the value unjudged" if in_code
           else "give the step or action a limit:, or write `limit: none` to record the value unjudged")
    return (f"measurement '{name}' has no limit: product '{product.id}' has no spec "
            f"'{name}'{did_you_mean(name, product.specs)}; add the spec, or {fix}")


def _action_kind(action: Any) -> str:
    for k in ("measure", "call", "wait", "prompt", "python"):
        if getattr(action, k, None) is not None:
            return k
    return "step"  # pragma: no cover
