"""The one way litmus-seq reads YAML: strict, YAML-1.2 scalars, and every node locatable.

Why not ``yaml.safe_load``: PyYAML resolves scalars by YAML 1.1, where ``5e-3`` is a *string*,
``on``/``no`` are booleans, ``010`` is 8 and ``12:30`` is 750 -- each a silent wrong limit on a
test station -- and a duplicate key silently keeps the last value. Here the C parser composes a
node graph (fast, and every node keeps its line/column), resolvers follow the YAML 1.2 core
schema, and a small constructor of our own builds plain Python data while rejecting duplicates.

Decisions (documented for authors):

* ``010`` is the integer 10 (YAML 1.2 core: decimal digits are decimal); ``0o10`` is 8, ``0x10``
  is 16. ``1_000`` is a string, as in YAML 1.2.
* ``true``/``True``/``TRUE`` and ``false``/``False``/``FALSE`` are booleans; ``yes``/``no``/
  ``on``/``off`` are strings. ``null``/``Null``/``NULL``/``~``/empty are ``None``.
* Dates such as ``2027-03-01`` stay strings (YAML 1.2 core has no timestamps); the models turn
  them into dates where a date is expected, so a bad date is reported by the model.
* Scalar keys that are not strings (``1:``, ``true:``) are turned into the string written in the
  file (``"1"``, ``"true"``): keys name things (roles, parameters, measurements). Mapping or list
  keys are errors.
* ``<<`` merge keys are honoured (authors use them with anchors to share settings).

Validation errors from pydantic are mapped back to the file with :meth:`Document.locate`; the
messages are rewritten for test engineers ("expected a number, got 'abc'"), and unknown keys get
a "did you mean" hint.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from litmus_seq.errors import ConfigError, Location, Problem, ValidationError
from litmus_seq.suggest import suggest

__all__ = ["MAX_ALIASED_VALUES", "MAX_DEPTH", "paused_gc", "Document", "load_document", "load_model", "validate_document", "describe_value"]

try:  # the C parser is ~10x faster; the pure-Python one behaves the same
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml not compiled in
    _BaseLoader = yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Composes nodes only; implicit resolvers per the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")

_Loader.add_implicit_resolver(_BOOL, _BOOL_RE, list("tTfF"))
_Loader.add_implicit_resolver(_NULL, _NULL_RE, ["~", "n", "N", ""])
_Loader.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))
_Loader.add_implicit_resolver(_MERGE, re.compile(r"^<<$"), ["<"])
_FIRST_CHAR = _Loader.yaml_implicit_resolvers


def _resolve(self: Any, kind: Any, value: Any, implicit: Any) -> str:
    """PyYAML's ``Resolver.resolve`` without path resolvers: called once per node, so it counts."""
    if kind is yaml.ScalarNode:
        if implicit[0]:
            if not value:
                return _NULL
            for tag, regexp in _FIRST_CHAR.get(value[0], ()):
                if regexp.match(value):
                    return tag
        return _STR
    return _SEQ if kind is yaml.SequenceNode else _MAP


_Loader.resolve = _resolve


def _construct_int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # "010" -> 10, by decision (module docstring)


def _construct_float(text: str) -> float:
    low = text.lower()
    if low.endswith(".inf"):
        return float("-inf") if low.startswith("-") else float("inf")
    if low == ".nan":
        return float("nan")
    return float(text)


def _mark(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


#: Values that aliases (``*name``) may repeat in one file. An alias costs nothing to build (the
#: builder shares the object), but pydantic, the plan and JSON dumps walk the expanded tree: nine
#: nested levels of ten aliases ("billion laughs") are 10**9 values from a 1 KB file. Sharing a
#: settings block or a limit, even on every step of a 2,000-step file, stays far below this; a
#: bomb is refused in milliseconds, before any validation.
MAX_ALIASED_VALUES = 100_000

#: Mappings and lists nested in one another. Groups nested ten deep are about 25 levels; every
#: tool that walks the data (pydantic, the planner, JSON) recurses, so a deeper file is refused
#: here, at its line, before anything walks it.
MAX_DEPTH = 200

# A location tree mirrors the data: a scalar is ``(line, col)``; a mapping is ``(line, col,
# {key: (key line, key col, child)})``; a list is ``(line, col, (child, ...))``. Plain tuples
# and dicts: far fewer (and, once collected, untracked) objects than PyYAML's node graph with
# two marks per node, which the garbage collector would walk for as long as the plan lives.
Loc = tuple[Any, ...]


class _Frame:
    """A mapping or list being built: its value, its locations, and where it started."""

    __slots__ = ("value", "locs", "line", "col", "anchor", "size", "key", "merges")

    def __init__(self, value: Any, locs: Any, line: int, col: int, anchor: str | None) -> None:
        self.value = value
        self.locs = locs
        self.line = line
        self.col = col
        self.anchor = anchor
        self.size = 1  # values once aliases are expanded (alias-bomb accounting)
        self.key: tuple[str, int, int] | None = None  # a mapping's pending key (text, line, col)
        self.merges: list[tuple[Any, Loc]] | None = None  # '<<' sources, applied at the end


_MERGE_KEY = "<<"


class _Builder:
    """Builds plain Python data and its location tree straight from the parser's events.

    Iterative (an explicit stack, so depth is a checked number, not recursion) and without a
    node graph: libyaml's composer recurses in C (a 50,000-deep file crashes the process) and
    builds a node and two marks per value.
    """

    def __init__(self, display: str) -> None:
        self.display = display
        #: anchor -> (value, location, expanded size, scalar text or None); None while open
        self.anchors: dict[str, tuple[Any, Loc, int, str | None] | None] = {}
        self.expanded = 0  # values expanded so far through aliases

    def fail(self, mark: Any, message: str) -> ConfigError:
        line, col = _mark(mark)
        return ConfigError(problems=[Problem(Location(self.display, line, col), message)])

    def build(self, get_event: Any) -> tuple[Any, Loc]:
        """The document's data and location tree (the stream's events after DocumentStart)."""
        stack: list[_Frame] = []
        while True:
            event = get_event()
            cls = event.__class__
            if cls is yaml.ScalarEvent:
                mark = event.start_mark
                text = event.value
                tag = event.tag
                if tag is None or tag == "!":
                    tag = _resolve(None, yaml.ScalarNode, text, event.implicit)
                loc: Loc = (mark.line + 1, mark.column + 1)
                if stack and stack[-1].key is None and stack[-1].locs.__class__ is dict:
                    self._key(stack[-1], text, tag, loc, event)
                    continue
                value = self.scalar(tag, text, mark)
                if event.anchor is not None:
                    self._anchor(event, (value, loc, 1, text))
                size = 1
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                mark = event.start_mark
                is_map = cls is yaml.MappingStartEvent
                tag = event.tag
                if tag is not None and tag != "!" and tag != (_MAP if is_map else _SEQ):
                    raise self.fail(mark, "unsupported tag on this collection; remove the tag")
                if stack and stack[-1].key is None and stack[-1].locs.__class__ is dict:
                    kind = "a mapping" if is_map else "a list"
                    raise self.fail(mark, f"a key cannot be {kind}; keys are names (write `name: value`)")
                if len(stack) >= MAX_DEPTH:
                    raise self.fail(mark, (
                        f"mappings and lists nested more than {MAX_DEPTH} levels deep; a "
                        "litmus-seq file needs far fewer: flatten the data or split the file"))
                if event.anchor is not None:
                    self.anchors[event.anchor] = None  # open: an alias to it is recursive data
                frame = _Frame({} if is_map else [], {} if is_map else [],
                               mark.line + 1, mark.column + 1, event.anchor)
                stack.append(frame)
                continue
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                frame = stack.pop()
                value, loc, size = self._close(frame)
            elif cls is yaml.AliasEvent:
                value, loc, size = self._alias(event, stack)
                if value is _KEY_DONE:
                    continue
            else:  # pragma: no cover - the parser sends only node events inside a document
                raise self.fail(event.start_mark, "unexpected YAML event; check the file's syntax")
            if not stack:
                return value, loc
            self._add(stack[-1], value, loc, size, event.start_mark)

    def _key(self, frame: _Frame, text: str, tag: str, loc: Loc, event: Any) -> None:
        """A scalar in key position: keys are the text written (module docstring)."""
        if tag == _MERGE and text == _MERGE_KEY:
            frame.key = (_MERGE_KEY, loc[0], -loc[1])  # a negative column marks the merge key
        else:
            frame.key = (str(text), loc[0], loc[1])
        if event.anchor is not None:
            self._anchor(event, (text, loc, 1, text))
        frame.size += 1

    def _anchor(self, event: Any, entry: tuple[Any, Loc, int, str | None]) -> None:
        self.anchors[event.anchor] = entry

    def _alias(self, event: Any, stack: list[_Frame]) -> tuple[Any, Loc, int]:
        name = event.anchor
        if name not in self.anchors:
            raise self.fail(event.start_mark, (
                "undefined alias: this alias (*name) names no anchor (&name) defined before it; define the anchor "
                "first or fix the name"))
        entry = self.anchors[name]
        if entry is None:
            raise self.fail(event.start_mark, (
                "an alias refers to a node that contains it (recursive data); remove the "
                "self-reference"))
        value, loc, size, text = entry
        self.expanded += size
        if self.expanded > MAX_ALIASED_VALUES:
            raise self.fail(event.start_mark, (
                f"the aliases (*name) of this file repeat more than {MAX_ALIASED_VALUES:,} values: "
                "this alias expands an anchor through nested aliases (a 'billion laughs' YAML "
                "bomb?); write the data out or nest fewer aliases"))
        if stack and stack[-1].key is None and stack[-1].locs.__class__ is dict:
            if text is None:
                raise self.fail(event.start_mark, (
                    "a key cannot be a mapping or a list; keys are names (write `name: value`)"))
            line, col = _mark(event.start_mark)
            self._key(stack[-1], text, _STR, (line, col), _NoAnchor)
            return _KEY_DONE, (), 0
        return value, loc, size

    def _add(self, frame: _Frame, value: Any, loc: Loc, size: int, mark: Any) -> None:
        frame.size += size
        if frame.locs.__class__ is list:
            frame.value.append(value)
            frame.locs.append(loc)
            return
        key = frame.key
        assert key is not None
        frame.key = None
        k, kline, kcol = key
        if kcol < 0:  # '<<': merge a mapping, or a list of mappings, into this one
            sources = zip(value, loc[2]) if value.__class__ is list else [(value, loc)]
            for src, src_loc in sources:
                if src.__class__ is not dict:
                    raise self.fail(_At(src_loc), (
                        "'<<' merges a mapping (or a list of mappings) into this one; give an "
                        "alias of a mapping"))
                if frame.merges is None:
                    frame.merges = []
                frame.merges.append((src, src_loc))
            return
        first = frame.locs.get(k)
        if first is not None:
            raise self.fail(_At((kline, kcol)), (
                f"duplicate key {k!r} (first defined on line {first[0]}); YAML keeps only one: "
                "remove or rename one of them"))
        frame.value[k] = value
        frame.locs[k] = (kline, kcol, loc)

    def _close(self, frame: _Frame) -> tuple[Any, Loc, int]:
        value, locs = frame.value, frame.locs
        if frame.merges:
            for src, src_loc in frame.merges:
                for k, v in src.items():
                    if k not in value:
                        value[k] = v
                        locs[k] = src_loc[2][k]
        loc = (frame.line, frame.col, locs if locs.__class__ is dict else tuple(locs))
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (value, loc, frame.size, None)
        return value, loc, frame.size

    def scalar(self, tag: str, text: str, mark: Any) -> Any:
        try:
            if tag == _STR:
                return text
            if tag == _INT:
                return _construct_int(text)
            if tag == _FLOAT:
                return _construct_float(text)
            if tag == _BOOL:
                return text[0] in "tT"
            if tag == _NULL:
                return None
        except ValueError:
            if tag == _INT and _INT_RE.match(text):  # Python refuses to parse > 4300 digits
                raise self.fail(mark, f"number with {len(text):,} digits is too long to be a "
                                      "value; check for a paste error") from None
            raise self.fail(mark, f"this value is not a valid {tag.rsplit(':', 1)[-1]}; "
                                  "fix the value or remove the explicit tag") from None
        raise self.fail(mark, "unsupported tag on this value; write a plain value (or quote it)")


class _At:
    """A mark for a location already converted to 1-based ``(line, col)``."""

    __slots__ = ("line", "column")

    def __init__(self, loc: Loc) -> None:
        self.line, self.column = loc[0] - 1, loc[1] - 1


class _NoAnchor:
    anchor = None


_KEY_DONE = object()  # an alias used as a key: consumed, nothing to add


@dataclass(slots=True)
class Document:
    """One loaded YAML file: its plain data plus the location of every value in it."""

    path: Path
    display: str
    data: Any
    locs: Loc = field(repr=False, default=(1, 1))  # the location tree (see ``Loc``)

    def node(self, path: tuple[str | int, ...], key: bool = False) -> Loc:
        """The location tree of the value at ``path`` (or of its nearest existing parent); with
        ``key``, the location of the last key itself. A part of a document located on its own
        is ``Document(path=..., display=..., data=part, locs=doc.node(prefix))``."""
        loc = self.locs
        last = len(path) - 1
        for i, part in enumerate(path):
            if len(loc) < 3:
                break
            children = loc[2]
            if children.__class__ is dict:
                entry = children.get(str(part))
                if entry is None:
                    break
                if key and i == last:
                    return (entry[0], abs(entry[1]))
                loc = entry[2]
            elif part.__class__ is int and 0 <= part < len(children):  # type: ignore[operator]
                loc = children[part]
            else:
                break
        return loc

    def locate(self, path: tuple[str | int, ...] = (), key: bool = False) -> Location:
        """File:line:col of the value at ``path``, or of its nearest existing parent.

        ``key=True`` points at the last key itself rather than at its value (unknown keys).
        """
        loc = self.node(path, key)
        return Location(self.display, loc[0], loc[1])


_QUOTED = re.compile(r"""\s*(?:'(?!<)[^']*'|"[^"]*")""")


def _no_content(text: str) -> str:
    """A parser message without the text it quotes from the file: a file that does not parse
    is not YAML we accepted, and may be anything (a key, a password file)."""
    return _QUOTED.sub("", text).strip()


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, display: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:  # pragma: no cover - PyYAML always marks scanner/parser errors
        return ConfigError(problems=[Problem(Location(display), "invalid YAML; check the file")])
    line, col = mark.line + 1, mark.column + 1
    lines = text.splitlines()
    src = lines[mark.line] if mark.line < len(lines) else ""
    indent = src[: len(src) - len(src.lstrip(" \t"))]
    problem = _no_content(exc.problem or "")
    if "\t" in indent or "tab" in problem:
        tab_col = (indent.index("\t") + 1) if "\t" in indent else col
        return ConfigError(problems=[Problem(
            Location(display, line, tab_col),
            "tab character used for indentation; YAML indents with spaces only: "
            "replace the tab with spaces",
        )])
    if "expected a single document" in f"{problem} {exc.context or ''}":
        message = ("more than one YAML document (a second '---'); a litmus-seq file holds one "
                   "document: remove the extra '---'")
    else:
        context = f" {_no_content(exc.context)}" if exc.context else ""
        cm = exc.context_mark
        if exc.context and cm is not None and cm.line != mark.line:
            context += f" started on line {cm.line + 1}, column {cm.column + 1}"
        message = (f"invalid YAML: {problem}{context}; check indentation, quotes and brackets "
                   "near here (quote values that contain ': ' or start with '{', '[', '*', '&')")
    return ConfigError(problems=[Problem(Location(display, line, col), message)])


@contextmanager
def paused_gc() -> Iterator[None]:
    """No garbage collection while a file is built or planned, the previous state restored.

    Loading and planning create hundreds of thousands of objects, none of them cyclic garbage:
    every automatic collection on the way would only walk them (about 40 % of planning a
    100,000-step file). Nothing is frozen or left changed: the collector runs again after.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def load_document(path: Path, display: str | None = None) -> Document:
    """Read, parse and construct one YAML file whose top level must be a mapping.

    Every failure is a :class:`ConfigError` with a ``file:line:col`` problem and a fix.
    """
    path = Path(path)
    shown = display if display is not None else str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(problems=[Problem(Location(shown), "file not found; check the path")]) from None
    except IsADirectoryError:
        raise ConfigError(problems=[Problem(Location(shown), "is a folder, not a YAML file")]) from None
    except OSError as exc:
        raise ConfigError(problems=[Problem(Location(shown), f"cannot read the file: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(problems=[Problem(
            Location(shown, line),
            "not UTF-8 text (is this a binary file?); save the file as UTF-8",
        )]) from None
    try:
        with paused_gc():
            locs, data = _compose_and_build(text, shown)
    except ConfigError as exc:
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml") or not exc.problems:
            raise
        # `validate checks/power.py`: say "wrong file" rather than explain YAML syntax
        first = exc.problems[0]
        kind = f"a {suffix} file" if suffix else "a file without the .yaml extension"
        raise ConfigError(problems=[Problem(first.location, (
            f"not a YAML file ({kind}); litmus-seq reads .yaml files: give a sequence, product, "
            f"station or fragment file. The YAML parser said: {first.message.split(';')[0]}"))]) from None
    if not isinstance(data, dict):
        # (what the file holds is not echoed: it is not YAML we accepted, maybe not ours at all)
        got = "a list" if isinstance(data, list) else "a single value"
        raise ConfigError(problems=[Problem(
            Location(shown, locs[0], locs[1]),
            f"the top level must be a mapping of keys (`key: value` lines), got {got}",
        )])
    return Document(path=path, display=shown, data=data, locs=locs)


def _compose_and_build(text: str, shown: str) -> tuple[Loc, Any]:
    loader = _Loader(text)
    try:
        get = loader.get_event
        get()  # StreamStart
        if get().__class__ is yaml.StreamEndEvent:  # not even a DocumentStart: no content
            data, locs = None, (1, 1)
        else:
            data, locs = _Builder(shown).build(get)
            get()  # DocumentEnd
            extra = get()
            if extra.__class__ is not yaml.StreamEndEvent:
                line, col = _mark(extra.start_mark)
                raise ConfigError(problems=[Problem(Location(shown, line, col), (
                    "more than one YAML document (a second '---'); a litmus-seq file holds one "
                    "document: remove the extra '---'"))])
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, shown) from None
    except yaml.YAMLError:  # a reader error: a character YAML does not allow
        raise _bad_character(text, shown) from None
    finally:
        loader.dispose()
    if data is None:
        raise ConfigError(problems=[Problem(
            Location(shown, 1, 1),
            "the file is empty; it should hold a mapping such as `id: ...` (station, product) "
            "or `sequence: ...` (sequence)",
        )])
    return locs, data


#: What YAML 1.2 accepts in a stream (tab, line breaks, printable Unicode): anything else is
#: a control character (a NUL from a binary paste, an escape sequence from a terminal).
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _bad_character(text: str, shown: str) -> ConfigError:
    """A control character, at its line:col (never echoed: it may be binary data)."""
    found = _NOT_PRINTABLE.search(text)
    if found is None:  # pragma: no cover - libyaml refuses only what the pattern finds
        return ConfigError(problems=[Problem(Location(shown), (
            "a character YAML does not allow; save the file as plain UTF-8 text"))])
    pos = found.start()
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    code = ord(found.group())
    return ConfigError(problems=[Problem(Location(shown, line, col), (
        f"control character U+{code:04X} is not allowed in YAML; remove it (write it as an "
        "escape such as \\x07 inside a double-quoted string if it is meant)"))])


def load_model(path: Path, model: type[Any], display: str | None = None) -> tuple[Any, Document]:
    """Load ``path`` and validate it as ``model``; errors carry file:line:col per mistake."""
    doc = load_document(path, display)
    return validate_document(doc, model), doc


def validate_document(doc: Document, model: type[Any]) -> Any:
    """Validate an already loaded document as ``model`` (a pydantic model class)."""
    import pydantic

    try:
        return model.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        problems = _problems(doc, model, exc.errors(include_url=False))
        raise ValidationError(problems=problems) from None


# --------------------------------------------------------------------------- error mapping

_TAGS = frozenset({"step", "group", "include", "measure", "call", "wait", "prompt", "python"})

_TYPE_WORDS = {
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "int_parsing_size": "an integer",
    "string_type": "a string", "string_unicode": "a string",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "none_required": "nothing (null)",
    "date_type": "a date (YYYY-MM-DD)", "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date (YYYY-MM-DD)",
    "datetime_type": "a date and time", "datetime_parsing": "a date and time",
    "datetime_from_date_parsing": "a date and time",
}

_PATTERN_HINTS = {
    "call": "expected role.method (a station role and one of its methods, e.g. psu.set_voltage)",
    "from": "expected role.method (a station role and one of its methods, e.g. dmm.measure_dc_voltage)",
    "python": "expected module:function (e.g. checks.power:efficiency)",
}

_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def describe_value(value: Any) -> str:
    """A value as a test engineer would name it in a message."""
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        short = value if len(value) <= 60 else value[:57] + "..."
        return repr(short)
    text = repr(value)
    if len(text) > 60:  # a pasted 300-digit number must not fill the terminal
        return f"{text[:20]}...{text[-6:]} ({len(text)} characters)"
    return text


def path_str(path: tuple[str | int, ...]) -> str:
    """``("steps", 1, "limit", "high")`` -> ``steps[1].limit.high`` (the path in a Problem)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(slots=True)
class _Mapped:
    path: tuple[str | int, ...]  # data path (tags and union markers removed)
    etype: str
    error: dict[str, Any]
    union_at: int | None  # data-path length where a union member marker was skipped
    at_key: bool = False


def _map_loc(data: Any, loc: tuple[Any, ...], etype: str) -> _Mapped:
    """Walk ``loc`` over the data, dropping tagged-union tags and union member markers."""
    path: list[str | int] = []
    cur: Any = data
    union_at: int | None = None
    prev_int = False
    last = len(loc) - 1
    for i, part in enumerate(loc):
        if part == "from_":
            part = "from"
        if prev_int and isinstance(part, str) and part in _TAGS:
            prev_int = False
            continue  # the discriminator tag pydantic inserts after a list index
        prev_int = False
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:
            path.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            path.append(part)
            cur = cur[part]
            prev_int = True
        elif i == last and etype == "missing":
            path.append(part)  # the missing key itself
            cur = None
        else:  # a union member marker ('float', 'list[float]', 'ExplicitVector', ...)
            if isinstance(part, str) and union_at is None:
                union_at = len(path)
    return _Mapped(tuple(path), etype, {}, union_at, at_key=etype == "extra_forbidden")


# ---- the model at a location, for "did you mean" and "a mapping with keys ..." hints


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> list[tuple[Any, str | None]]:
    """``(member type, Tag or None)`` of a union annotation; ``[]`` if not a union."""
    raw = tp
    if typing.get_origin(raw) is typing.Annotated:
        raw = typing.get_args(raw)[0]
    origin = typing.get_origin(raw)
    if origin is not Union and origin is not types.UnionType:
        return []
    out: list[tuple[Any, str | None]] = []
    for m in typing.get_args(raw):
        if m is type(None):
            continue
        nested = _union_members(m)  # Optional[a tagged union]: its members
        if nested:
            out += nested
            continue
        tag = None
        if typing.get_origin(m) is typing.Annotated:
            for meta in typing.get_args(m)[1:]:
                tag = getattr(meta, "tag", tag)
        out.append((_unwrap(m), tag))
    return out


def _member_name(tp: Any) -> str:
    """How pydantic names a union member in ``loc``: ``list[float]`` -> ``list``, ``Foo``."""
    origin = typing.get_origin(tp)
    return getattr(origin or tp, "__name__", "")


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_fields")


def _fields(model: Any) -> dict[str, Any]:
    """``model.model_fields`` with every annotation resolved.

    The models are built lazily (``defer_build``, see :mod:`litmus_seq.models`), so a model
    whose annotation names a type defined after it (``Group.steps: list[StepItem]``) still
    holds a forward reference until it is built itself; building it here (error path only)
    resolves it.
    """
    if not getattr(model, "__pydantic_fields_complete__", True):
        model.model_rebuild()
    return model.model_fields  # type: ignore[no-any-return]


def _field(model: Any, name: str) -> Any:
    for fname, info in _fields(model).items():
        if name == fname or name == info.alias:
            return info.annotation
    return None


def _keys_of(model: Any) -> list[str]:
    return [info.alias or fname for fname, info in _fields(model).items()]


def _types_at(root: Any, loc: tuple[Any, ...]) -> tuple[Any, list[Any]]:
    """The type at ``loc`` below ``root`` and, if reached through a tagged union, its siblings."""
    tp: Any = root
    siblings: list[Any] = []
    for part in loc:
        tp = _unwrap(tp)
        members = _union_members(tp)
        if members:
            tagged = [m for m, t in members if t is not None and t == part]
            if tagged:
                siblings = [m for m, _ in members]
                tp = tagged[0]
                continue
            named = [m for m, _ in members if isinstance(part, str) and _member_name(m) == part.split("[")[0]]
            if named:
                tp = named[0]
                continue
            pick = None
            for m, _ in members:
                om = typing.get_origin(m)
                if isinstance(part, int) and om is list:
                    pick = m
                    break
                if isinstance(part, str) and (om is dict or (_is_model(m) and _field(m, part) is not None)):
                    pick = m
                    break
            if pick is None:
                return None, []
            tp = _unwrap(pick)
        if part in ("from_",):
            part = "from"
        if _is_model(tp):
            if not isinstance(part, str):
                return None, []
            nxt = _field(tp, part)
            if nxt is None:
                return None, []
            tp, siblings = nxt, []
            continue
        origin = typing.get_origin(tp)
        if origin is list and isinstance(part, int):
            tp, siblings = typing.get_args(tp)[0], []
        elif origin is dict and isinstance(part, str):
            tp, siblings = typing.get_args(tp)[1], []
        else:
            return None, []
    tp = _unwrap(tp)
    members = _union_members(tp)
    if members:
        models_ = [m for m, _ in members if _is_model(m)]
        if len(models_) == 1:
            tp = models_[0]
    return tp, siblings


def _message(model: Any, m: _Mapped, err: dict[str, Any]) -> str:
    etype = m.etype
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if etype == "extra_forbidden":
        key = str(m.path[-1]) if m.path else "?"
        parent, siblings = _types_at(model, tuple(err["loc"][:-1]))
        hint = ""
        if _is_model(parent):
            keys = _keys_of(parent)
            guess = suggest(key, keys)
            if guess is None and siblings:
                others = [k for s in siblings if _is_model(s) for k in _keys_of(s) if k not in keys]
                guess = suggest(key, others)
            if guess is not None:
                hint = f" (did you mean {guess!r}?)"
            else:
                hint = f"; allowed keys: {', '.join(keys)}"
        return f"unknown key{hint}"
    if etype == "missing":
        key = m.path[-1] if m.path else "?"
        return f"missing required key {key!r}; add `{key}: ...`"
    if etype == "unknown_action":
        keys = list(value) if isinstance(value, dict) else []
        actions = ["measure", "call", "wait", "prompt", "python"]
        for k in keys:
            guess = suggest(str(k), actions)
            if guess is not None:
                return f"unknown action key {k!r} (did you mean {guess!r}?)"
        if isinstance(value, dict):
            shown = ", ".join(repr(k) for k in keys) or "no keys"
            return f"not an action ({shown}): an action has one of the keys {', '.join(actions)}"
        return (f"expected an action (a mapping with one of the keys {', '.join(actions)}), "
                f"got {describe_value(value)}")
    if etype == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = ""
        if isinstance(value, str):
            guess = suggest(value, expected)
            if guess is not None:
                hint = f" (did you mean {guess!r}?)"
        return f"expected one of {', '.join(expected)}; got {describe_value(value)}{hint}"
    if etype == "string_pattern_mismatch":
        last = m.path[-1] if m.path else ""
        what = _PATTERN_HINTS.get(str(last), f"expected text matching {ctx.get('pattern')!r}")
        return f"{what}, got {describe_value(value)}"
    for key, sym in _BOUNDS:
        if key in ctx and etype.startswith(("greater", "less")):
            return f"must be {sym} {ctx[key]:g}, got {describe_value(value)}" if isinstance(
                ctx[key], (int, float)) else f"must be {sym} {ctx[key]}, got {describe_value(value)}"
    if etype in ("float_type", "float_parsing", "finite_number") and isinstance(value, int) \
            and not isinstance(value, bool) and abs(value) > 1e308:
        return f"number too large (a value must be below about 1.8e308), got {describe_value(value)}"
    if etype in _TYPE_WORDS:
        want = _TYPE_WORDS[etype]
        if want == "a mapping":
            tp, _ = _types_at(model, tuple(err["loc"]))
            if _is_model(tp):
                want = f"a mapping (keys: {', '.join(_keys_of(tp))})"
        return f"expected {want}, got {describe_value(value)}"
    if etype in ("too_short", "too_long"):
        return f"{err.get('msg', 'wrong length')}; got {describe_value(value)}"
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg[:1].lower() + msg[1:]


def _problems(doc: Document, model: Any, errors: list[dict[str, Any]]) -> list[Problem]:
    mapped: list[tuple[_Mapped, dict[str, Any]]] = []
    for err in errors:
        m = _map_loc(doc.data, tuple(err["loc"]), err["type"])
        mapped.append((m, err))
    # A union reports every member's error. When one member got deeper into the data (the data
    # had its shape), drop the other members' shallow "expected X, got a list" errors.
    deep_unions = {m.path[: m.union_at] for m, _ in mapped
                   if m.union_at is not None and len(m.path) > m.union_at}
    # A member whose type fitted but whose value did not (``wait: -1``: a number, below 0) says
    # what is wrong; the other members' "expected a string" would only confuse.
    fitted = {m.path for m, _ in mapped if m.union_at is not None and m.etype not in _TYPE_WORDS
              and m.etype != "extra_forbidden"}
    kept = [(m, e) for m, e in mapped
            if not (m.union_at is not None and m.etype in _TYPE_WORDS
                    and ((len(m.path) == m.union_at and m.path in deep_unions) or m.path in fitted))]
    # Same path, several "expected X" from union members: one message "expected X or Y, got Z".
    out: list[Problem] = []
    merged: dict[tuple[Any, ...], list[tuple[_Mapped, dict[str, Any]]]] = {}
    order: list[tuple[Any, ...]] = []
    for m, e in kept:
        key = (m.path, m.union_at is not None and m.etype in _TYPE_WORDS)
        if key not in merged:
            order.append(key)
            merged[key] = []
        merged[key].append((m, e))
    seen: set[str] = set()
    rendered: list[tuple[_Mapped, dict[str, Any], str]] = []
    for key in order:
        group = merged[key]
        m, e = group[0]
        if key[1] and len(group) > 1:
            wants: list[str] = []
            for gm, _ in group:
                w = _TYPE_WORDS[gm.etype]
                if w not in wants:
                    wants.append(w)
            wanted = ", ".join(wants[:-1]) + " or " + wants[-1] if len(wants) > 1 else wants[0]
            message = f"expected {wanted}, got {describe_value(e.get('input'))}"
        else:
            message = _message(model, m, e)
        rendered.append((m, e, message))
    # "missing 'driver'" next to "unknown key 'drivr' (did you mean 'driver'?)" is one mistake.
    suggested = {(m.path[:-1], g) for m, _, msg in rendered if m.etype == "extra_forbidden"
                 for g in re.findall(r"did you mean '([^']*)'", msg)}
    for m, e, message in rendered:
        if m.etype == "missing" and (m.path[:-1], str(m.path[-1])) in suggested:
            continue
        if m.etype == "missing":
            loc = doc.locate(m.path[:-1])
            path = path_str(m.path[:-1])
        elif m.etype == "unknown_action" and isinstance(e.get("input"), dict) and e["input"]:
            first = next(iter(e["input"]))
            loc = doc.locate(m.path + (first,), key=True)
            path = path_str(m.path)
        else:
            loc = doc.locate(m.path, key=m.at_key)
            path = path_str(m.path)
        problem = Problem(loc, message, path)
        text = str(problem)
        if text not in seen:
            seen.add(text)
            out.append(problem)
    out.sort(key=lambda p: (p.location.line or 0, p.location.column or 0))
    return out
