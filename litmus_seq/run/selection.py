"""Which main steps a run runs: ``-k EXPR``, ``--from STEP``, ``--only STEP``, ``--maxfail N``.

Selection is for bench debugging, like pytest's. It never hides anything from the record: a
step left out is a step row with outcome ``skipped`` and the reason, and a run that left steps
out says so in its ``run_selection`` column (the options, e.g. ``-k 'rail and not hot'``), so
yield queries never count it as a full pass. Setup and cleanup always run.

``-k`` matches words against a step's path without its phase (``thermal/soak``), case-blind
and by substring, joined with ``and``, ``or``, ``not`` and parentheses; a group is run when any
step inside it is. ``--from`` and ``--only`` name a step by its path (``main/rails``,
``rails``) or its name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litmus_seq.errors import ConfigError

__all__ = ["Selection", "parse_keyword"]

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def parse_keyword(expr: str) -> Callable[[str], bool]:
    """A predicate on step paths for a ``-k`` expression; :class:`ConfigError` if malformed."""
    tokens = _TOKEN.findall(expr)
    if not tokens or "".join(tokens).strip() == "":
        raise ConfigError(f"-k {expr!r}: empty expression; give words to match step paths, e.g. -k 'rail and not hot'")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def bad(what: str) -> ConfigError:
        return ConfigError(f"-k {expr!r}: {what}; write words joined by and, or, not and parentheses, "
                           "e.g. -k 'rail and not hot'")

    def either() -> Callable[[str], bool]:
        left = both()
        while peek() == "or":
            take()
            left = _either_of(left, both())
        return left

    def both() -> Callable[[str], bool]:
        left = negation()
        while peek() == "and":
            take()
            left = _both_of(left, negation())
        return left

    def negation() -> Callable[[str], bool]:
        token = peek()
        if token is None:
            raise bad("it ends too early")
        if token == "not":
            take()
            inner = negation()
            return lambda p: not inner(p)
        if token == "(":
            take()
            inner = either()
            if peek() != ")":
                raise bad("a '(' is not closed")
            take()
            return inner
        if token in (")", "and", "or"):
            raise bad(f"unexpected {token!r}")
        word = take().lower()
        return lambda p: word in p

    predicate = either()
    if peek() is not None:
        raise bad(f"unexpected {peek()!r}")
    return lambda path: predicate(path.lower())


def _either_of(a: Callable[[str], bool], b: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda path: a(path) or b(path)


def _both_of(a: Callable[[str], bool], b: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda path: a(path) and b(path)


@dataclass(frozen=True)
class Selection:
    """The selection options of one ``litmus-seq run`` (all empty: the whole plan runs)."""

    keyword: str | None = None
    start: str | None = None
    only: tuple[str, ...] = ()
    maxfail: int | None = None

    def describe(self) -> str | None:
        """The options that leave steps out, as typed (``run_selection``); None for none."""
        import shlex

        parts = []
        if self.keyword is not None:
            parts.append(f"-k {shlex.quote(self.keyword)}")
        if self.start is not None:
            parts.append(f"--from {shlex.quote(self.start)}")
        parts += [f"--only {shlex.quote(s)}" for s in self.only]
        return " ".join(parts) or None

    def deselected(self, plan: Any) -> dict[str, str]:
        """Main steps (and groups) left out -> the reason recorded on their step rows.

        Raises :class:`ConfigError` (exit 4, nothing ran) for a malformed ``-k`` and for a
        ``--from``/``--only`` that names no step, or a selection that leaves no main step.
        """
        main = [s for s in plan.steps if s.phase == "main"]
        if self.describe() is None or not main:
            return {}
        keep: set[str] = set()
        for step in main:
            if step.kind != "group" or _is_empty(plan, step):
                keep.add(step.step_path)
        if self.keyword is not None:
            match = parse_keyword(self.keyword)
            keep = {p for p in keep if match(p.split("/", 1)[1])}
        if self.start is not None:
            first = self._find(main, self.start, "--from")
            keep = {s.step_path for s in main if s.step_path in keep and s.step_index >= first.step_index}
        if self.only:
            wanted = [self._find(main, ref, "--only") for ref in self.only]
            keep &= {s.step_path for w in wanted for s in plan.steps[w.step_index:max(w.subtree_end, w.step_index + 1)]}
        for step in main:  # a group runs when a step inside it runs
            if step.kind == "group" and any(s.step_path in keep for s in plan.steps[step.step_index + 1:step.subtree_end]):
                keep.add(step.step_path)
        if not keep:
            raise ConfigError(f"{self.describe()}: selects no step of {plan.sequence_name}; "
                              f"its steps are: {', '.join(s.step_path for s in main[:12])}"
                              f"{' ...' if len(main) > 12 else ''}")
        reason = f"deselected ({self.describe()})"
        return {s.step_path: reason for s in main if s.step_path not in keep}

    @staticmethod
    def _find(main: list[Any], ref: str, option: str) -> Any:
        """The step ``ref`` names: its path, its path without ``main/``, or its (unique) name."""
        ref = ref.strip().strip("/")
        for step in main:
            if ref in (step.step_path, step.step_path.split("/", 1)[1]):
                return step
        named = [s for s in main if s.name == ref]
        if len(named) == 1:
            return named[0]
        if named:
            raise ConfigError(f"{option} {ref}: several steps have this name "
                              f"({', '.join(s.step_path for s in named)}); give the path")
        from litmus_seq.suggest import did_you_mean

        paths = [s.step_path for s in main]
        raise ConfigError(f"{option} {ref}: no such step{did_you_mean(ref, paths + [s.name for s in main])}; "
                          f"give a step path such as {paths[0]}")


def _is_empty(plan: Any, step: Any) -> bool:
    return step.subtree_end <= step.step_index + 1
