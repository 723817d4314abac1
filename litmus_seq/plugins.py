"""Build the pluggy plugin manager: built-ins, entry points, local ``plugins/*.py`` and ``-p``.

A plugin manager is built per session by :func:`get_plugin_manager` (a factory, never a module
global, so tests and long-running processes get fresh ones). Where a plugin comes from decides how
a failure is reported, which is why every plugin's origin is recorded
(:class:`PluginSource`) and every failure becomes a :class:`~litmus_seq.errors.PluginError` naming
the plugin, where it comes from and what to do, never a traceback:

* ``builtin``    -- modules of litmus-seq itself (:data:`BUILTIN_PLUGINS`);
* ``entrypoint`` -- installed distributions declaring an entry point in group ``litmus_seq``;
  the entry point should be named after the distribution, because pluggy silently skips a second
  plugin with a name already used: two distributions using one name are reported here instead;
* ``local``      -- every ``*.py`` directly in ``<project_root>/plugins/`` (not ``_``-prefixed),
  imported by file path under a unique module name, like pytest's conftest files. Sub-folders are
  installable plugin packages and are found only through their entry points once installed;
* ``cmdline``    -- ``-p module`` (or ``-p path/to/file.py``); ``-p no:NAME`` blocks a plugin.

Hook implementations are functions decorated with ``@litmus_seq.hookimpl``; as in pytest, an
undecorated module-level function whose name starts with ``litmus_seq_`` is taken as one too, so a
misspelled hook name is always caught by the pending-hook check below.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from litmus_seq import hookspecs
from litmus_seq.errors import ConfigError, LitmusError, Location, PluginError, Problem
from litmus_seq.suggest import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from importlib.metadata import EntryPoint

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LitmusPluginManager",
    "PluginSource",
    "describe_plugin",
    "get_plugin_manager",
    "plugin_info",
    "plugin_options",
    "register_builtin",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
HOOK_PREFIX = hookspecs.PROJECT_NAME + "_"

#: Modules of litmus-seq registered as plugins in every plugin manager.
BUILTIN_PLUGINS: tuple[str, ...] = ("litmus_seq.drivers",)


@dataclass(frozen=True, slots=True)
class PluginSource:
    """Where a registered plugin came from (for ``litmus-seq plugins``, events and errors)."""

    name: str
    source: str  # builtin | entrypoint | local | cmdline
    module: str | None = None
    file: str | None = None
    dist: str | None = None
    version: str | None = None
    entry_point: str | None = None  # the entry point's value, "module:attr"
    display: str | None = None  # path shown in messages (relative to the project root)


class LitmusPluginManager(pluggy.PluginManager):
    """A :class:`pluggy.PluginManager` that remembers each plugin's :class:`PluginSource`."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.sources: dict[str, PluginSource] = {}

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX) and not inspect.isclass(plugin):
            if inspect.isroutine(getattr(plugin, name, None)):
                return {}  # undecorated litmus_seq_* function: a hook implementation (pytest-like)
        return opts


def get_plugin_manager(
    *,
    project_root: Path | None = None,
    extra: Sequence[str] = (),
    entry_points: bool = True,
) -> pluggy.PluginManager:
    """A fresh plugin manager with every plugin loaded and checked.

    ``extra`` are ``-p`` values: module names, ``.py`` paths, or ``no:NAME`` to block the plugin
    registered as NAME (an entry point name, ``plugins/file.py``, or a builtin module name).
    Raises :class:`PluginError` for anything wrong with any plugin.
    """
    pm = LitmusPluginManager()
    pm.add_hookspecs(hookspecs)
    wanted: list[str] = []
    for value in extra:
        value = value.strip()
        if value.startswith("no:"):
            pm.set_blocked(value[3:])
        elif value and value not in wanted:  # -p X plus X in litmus.yaml: load it once
            wanted.append(value)
    for module_name in BUILTIN_PLUGINS:
        if not pm.is_blocked(module_name):
            _register(pm, importlib.import_module(module_name), PluginSource(module_name, "builtin", module_name))
    if entry_points:
        _load_entry_points(pm)
    if project_root is not None:
        _load_local_plugins(pm, Path(project_root).resolve())
    for value in wanted:
        try:
            _load_cmdline(pm, value, project_root)
        except PluginError as exc:
            raise _from_config(exc, value, project_root) from exc.__cause__
    _check_pending(pm)
    return pm


def _from_config(exc: PluginError, value: str, project_root: Path | None) -> PluginError:
    """Point a failing plugin listed in litmus.yaml's ``plugins:`` at that line, not at ``-p``.

    ``run`` passes litmus.yaml's list as extra ``-p`` values, so without this the user is told
    about a ``-p`` option they never typed. Only the error path reads litmus.yaml again.
    """
    if exc.problems or project_root is None:
        return exc  # already located (a plugin file's own line)
    cfg = Path(project_root) / "litmus.yaml"
    if not cfg.is_file():
        return exc
    try:
        from litmus_seq.loader import load_document

        doc = load_document(cfg, display="litmus.yaml")
        listed = doc.data.get("plugins") if isinstance(doc.data, dict) else None
        index = [str(v).strip() for v in listed].index(value) if isinstance(listed, list) else -1
    except Exception:  # noqa: BLE001 - not listed (ValueError) or litmus.yaml unreadable: keep exc
        return exc
    if index < 0:
        return exc
    detail = str(exc)
    for prefix in (f"plugin -p {value}: ", f"-p {value}: "):
        if detail.startswith(prefix):
            detail = detail[len(prefix):]
    return PluginError(problems=[Problem(
        doc.locate(("plugins", index)), f"plugin {value!r} (litmus.yaml plugins:): {detail}", f"plugins[{index}]")])


def register_builtin(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register an in-process plugin object of litmus-seq (event store, console, ...).

    It is recorded as ``builtin`` so ``plugin_info`` and ``session.started`` show it correctly.
    """
    module = getattr(plugin, "__module__", None) or getattr(plugin, "__name__", None)
    _register(pm, plugin, PluginSource(name, "builtin", module))


def direct_caller(hook: Any) -> Any:
    """A callable ``(**kwargs)`` equivalent to calling ``hook`` for a hook without results.

    The event bus delivers a batch at every step boundary; pluggy's dispatch costs ~2 µs a call
    there, calling the implementations' functions directly ~0.2 µs. The implementations are
    re-read whenever their number changes (a plugin registered or unregistered), and the plain
    hook call is used whenever an implementation is a wrapper (whose semantics need pluggy).
    """
    state: dict[str, Any] = {"impls": None, "calls": None}

    def call(**kwargs: Any) -> None:
        impls = hook.get_hookimpls()
        if impls != state["impls"]:  # HookImpl compares by identity: a plugin came or went
            state["impls"] = impls
            if any(i.hookwrapper or i.wrapper for i in impls):
                state["calls"] = None
            else:  # pluggy's call order: last registered first (tryfirst/trylast already sorted in)
                state["calls"] = [(i.function, tuple(i.argnames)) for i in reversed(impls)]
        calls = state["calls"]
        if calls is None:
            hook(**kwargs)
            return
        for fn, argnames in calls:
            fn(*[kwargs[a] for a in argnames])

    return call


def plugin_info(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """One JSON-ready dict per registered plugin: name, source, module, file, dist, version,
    entry_point and the sorted hook names it implements."""
    sources: dict[str, PluginSource] = getattr(pm, "sources", {})
    rows: list[dict[str, Any]] = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        src = sources.get(name) or PluginSource(name, "api", getattr(plugin, "__name__", None))
        row = asdict(src)
        row.pop("display")
        if row["file"] is None:
            row["file"] = _module_file(plugin)
        callers = pm.get_hookcallers(plugin) or []
        row["hooks"] = sorted(caller.name for caller in callers)
        rows.append(row)
    order = {"builtin": 0, "entrypoint": 1, "local": 2, "cmdline": 3}
    rows.sort(key=lambda r: (order.get(r["source"], 4), r["name"]))
    return rows


def describe_plugin(pm: pluggy.PluginManager, name: str, exc: BaseException | None = None) -> str:
    """``plugin 'NAME' (where it comes from)`` for error messages; with ``exc``, a local file's
    line is taken from the traceback."""
    src: PluginSource | None = getattr(pm, "sources", {}).get(name)
    if src is None:
        return f"plugin {name!r}"
    if src.source == "entrypoint":
        return f"plugin {name!r} (entry point {src.entry_point} of distribution {src.dist} {src.version})"
    if src.file and src.source in ("local", "cmdline"):
        line = _line_in(exc, src.file) if exc is not None else None
        where = f"{src.display or src.file}:{line}" if line else (src.display or src.file)
        return f"plugin {name!r} ({where})"
    return f"plugin {name!r} ({src.source} module {src.module})"


# --------------------------------------------------------------------------- loading


def _register(pm: LitmusPluginManager, plugin: object, src: PluginSource) -> None:
    """Register with the source recorded first, so errors raised here can describe it."""
    previous = pm.get_plugin(src.name)
    if previous is not None:
        other = pm.sources.get(src.name)
        raise PluginError(
            f"two plugins are named {src.name!r}: {_origin(other) if other else 'an existing plugin'} "
            f"and {_origin(src)}; rename one (entry points should be named after their distribution)"
        )
    pm.sources[src.name] = src
    try:
        pm.register(plugin, name=src.name)
    except pluggy.PluginValidationError as exc:
        pm.sources.pop(src.name, None)
        problems = _signature_problems(pm, plugin, src)
        if problems:
            raise PluginError(problems=problems) from exc
        detail = " ".join(str(exc).split())
        raise PluginError(f"{_describe_src(src)}: invalid hook implementation: {detail}") from exc
    except ValueError as exc:  # the same object registered twice under another name
        pm.sources.pop(src.name, None)
        if pm.is_registered(plugin):
            return
        raise PluginError(f"{_describe_src(src)}: cannot register: {exc}") from exc


def _signature_problems(pm: LitmusPluginManager, plugin: object, src: PluginSource) -> list[Problem]:
    """One problem per hook implementation asking for arguments its specification does not have."""
    problems: list[Problem] = []
    for attr in sorted(dir(plugin)):
        if not attr.startswith(HOOK_PREFIX):
            continue
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        hook_name = opts.get("specname") or attr
        spec = getattr(hookspecs, hook_name, None)
        func = getattr(plugin, attr)
        if spec is None:
            continue  # unknown hooks are reported by the pending check
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
            continue
        wanted = [p.name for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL and p.kind is not p.VAR_KEYWORD]
        allowed = list(inspect.signature(spec).parameters)
        extra = [a for a in wanted if a not in allowed]
        if not extra:
            continue
        file, line = _function_location(func)
        in_file = bool(src.display) and file == src.file
        where = Location((src.display if in_file else None) or file or src.name, line)
        who = "" if in_file else f"{_describe_src(src)}: "
        problems.append(Problem(where, (
            f"{who}hook {hook_name}({', '.join(wanted)}) asks for "
            f"{', '.join(repr(a) for a in extra)}, which the hook does not provide; its arguments "
            f"are ({', '.join(allowed)}): rename the parameter(s)"
        )))
    return problems


def _describe_src(src: PluginSource) -> str:
    return f"plugin {src.name!r} ({_origin(src)})"


def _origin(src: PluginSource) -> str:
    if src.source == "entrypoint":
        return f"entry point {src.entry_point} of distribution {src.dist} {src.version}"
    if src.source in ("local", "cmdline") and src.file:
        return f"{src.source} file {src.display or src.file}"
    return f"{src.source} module {src.module}"


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown distribution", "")
    name = dist.metadata["Name"] or getattr(dist, "name", "") or "unknown distribution"
    return (str(name), str(dist.version or ""))


def _normalize(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-").replace(".", "-")


_entry_points_seen: tuple[tuple[tuple[str, int], ...], list[EntryPoint]] | None = None


def _group_entry_points() -> list[EntryPoint]:
    """The ``litmus_seq`` entry points of the installed distributions.

    Finding them reads every distribution's metadata (~3 ms with ~130 installed, each session);
    a process opening session after session (the Robot library, the harness) reads them again
    only when ``sys.path`` or one of its folders changed (installing or removing a distribution
    changes its folder's modification time).
    """
    global _entry_points_seen
    from importlib.metadata import entry_points

    key = tuple((p, _mtime_ns(p)) for p in sys.path)
    if _entry_points_seen is None or _entry_points_seen[0] != key:
        _entry_points_seen = (key, list(entry_points(group=ENTRY_POINT_GROUP)))
    return _entry_points_seen[1]


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return -1


def _load_entry_points(pm: LitmusPluginManager) -> None:
    """Load group ``litmus_seq``; two distributions with one entry-point name is an error."""
    chosen: dict[str, EntryPoint] = {}
    for ep in _group_entry_points():
        first = chosen.get(ep.name)
        if first is None:
            chosen[ep.name] = ep
            continue
        (d1, v1), (d2, v2) = _dist_of(first), _dist_of(ep)
        if _normalize(d1) == _normalize(d2):
            continue  # the same distribution seen twice on sys.path: the first one wins, as in pip
        raise PluginError(
            f"entry point name {ep.name!r} (group {ENTRY_POINT_GROUP}) is used by two distributions: "
            f"{d1} {v1} ({first.value}) and {d2} {v2} ({ep.value}); pluggy would silently load only "
            f"one. Uninstall one of them, or block both with -p no:{ep.name} and load the one you "
            f"want with -p MODULE (entry points should be named after their distribution)"
        )
    for name, ep in chosen.items():
        if pm.is_blocked(name):
            continue
        dist, version = _dist_of(ep)
        src = PluginSource(
            name, "entrypoint", ep.module, None, dist, version, ep.value
        )
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is reported
            raise PluginError(
                f"{_describe_src(src)} failed to load: {type(exc).__name__}: {exc}{_where(exc)}. "
                f"Fix or reinstall it (pip install -U {dist}), uninstall it, or skip it with "
                f"-p no:{name}"
            ) from exc
        src = PluginSource(name, "entrypoint", ep.module, _module_file(plugin), dist, version, ep.value)
        _register(pm, plugin, src)


def _load_local_plugins(pm: LitmusPluginManager, root: Path) -> None:
    """Import ``<root>/plugins/*.py`` by path; ``root`` goes on ``sys.path`` for helper imports."""
    folder = root / "plugins"
    if not folder.is_dir():
        return
    root_str = str(root)
    if root_str not in sys.path:
        sys.path.insert(0, root_str)
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        display = _display(path, root)
        name = display
        if pm.is_blocked(name) or pm.is_blocked(path.stem):
            continue
        module = _import_file(path, display, "local")
        _register(pm, module, PluginSource(name, "local", module.__name__, str(path), display=display))


def _load_cmdline(pm: LitmusPluginManager, value: str, project_root: Path | None) -> None:
    """``-p module.name`` or ``-p path/to/plugin.py`` (relative to the project root or CWD)."""
    if value.endswith(".py"):
        path = Path(value)
        if not path.is_absolute() and project_root is not None and (Path(project_root) / path).is_file():
            path = Path(project_root) / path
        path = path.resolve()
        if not path.is_file():
            raise PluginError(f"-p {value}: file not found; give a module name or an existing .py file")
        if pm.is_blocked(str(path)):
            return
        module = _import_file(path, value, "cmdline")
        _register(pm, module, PluginSource(value, "cmdline", module.__name__, str(path), display=value))
        return
    if pm.is_blocked(value):
        return
    if project_root is not None:  # a module kept in the project (like `python:` callables)
        root_str = str(Path(project_root).resolve())
        if root_str not in sys.path:
            sys.path.insert(0, root_str)
    try:
        module = importlib.import_module(value)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is reported
        if isinstance(exc, ModuleNotFoundError) and exc.name == value.split(".")[0]:
            hint = "check the spelling, install the package, or keep the module under the project root"
        else:
            hint = "fix the plugin module"
        raise PluginError(
            f"plugin -p {value}: cannot import: {type(exc).__name__}: {exc}{_where(exc)}; {hint}"
        ) from exc
    if pm.is_registered(module):  # already loaded, e.g. through its entry point
        return
    _register(pm, module, PluginSource(value, "cmdline", value, _module_file(module)))


def _import_file(path: Path, display: str, kind: str) -> ModuleType:
    """Import one plugin file under a module name unique to its absolute path (cached by mtime)."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    module_name = f"_litmus_seq_{kind}_{stem}_{digest}"
    mtime = path.stat().st_mtime_ns
    cached = sys.modules.get(module_name)
    if cached is not None and getattr(cached, "__litmus_mtime__", None) == mtime:
        return cached
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd file systems
        raise PluginError(f"{display}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    module.__litmus_mtime__ = mtime  # type: ignore[attr-defined]
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure in a plugin file is reported
        sys.modules.pop(module_name, None)
        line, column = _mark_in(exc, str(path))
        if isinstance(exc, SyntaxError):
            what = f"syntax error: {exc.msg}"
            fix = "fix the Python syntax"
        elif isinstance(exc, ImportError):
            what = f"{type(exc).__name__}: {exc}"
            fix = "install the missing package or fix the import"
        else:
            what = f"{type(exc).__name__}: {exc}"
            fix = "fix the error raised while importing it"
        where = Location(display, line, column)
        message = (
            f"{kind} plugin failed to import: {what}; {fix} "
            f"(or move the file out of plugins/, or skip it with -p no:{display})"
        )
        raise PluginError(problems=[Problem(where, message)]) from exc
    return module


def _check_pending(pm: LitmusPluginManager) -> None:
    """Every ``litmus_seq_*`` implementation must match a spec (pluggy accepts typos silently)."""
    known = sorted(n for n in dir(hookspecs) if n.startswith(HOOK_PREFIX))
    problems: list[Problem] = []
    for name in sorted(vars(pm.hook)):
        hook = getattr(pm.hook, name)
        if not isinstance(hook, pluggy.HookCaller) or hook.has_spec():
            continue
        for impl in hook.get_hookimpls():
            if impl.optionalhook:
                continue
            hint = did_you_mean(name, known)
            src = pm.sources.get(impl.plugin_name)
            file, line = _function_location(impl.function)
            display = src.display if src and src.display and file == src.file else file
            who = "" if display and src and display == src.display else f"{describe_plugin(pm, impl.plugin_name)}: "
            message = f"{who}unknown hook {name!r}{hint}; rename it to one of: {', '.join(known)}"
            problems.append(Problem(Location(display or impl.plugin_name, line), message))
    if problems:
        raise PluginError(problems=problems)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - the loop above is stricter
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from exc


# --------------------------------------------------------------------------- helpers


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _module_file(plugin: object) -> str | None:
    module = plugin if isinstance(plugin, ModuleType) else inspect.getmodule(plugin)
    file = getattr(module, "__file__", None)
    return str(file) if file else None


def _function_location(func: Any) -> tuple[str | None, int | None]:
    try:
        file = inspect.getsourcefile(func)
        code = getattr(func, "__code__", None)
        return (str(Path(file).resolve()) if file else None, code.co_firstlineno if code else None)
    except TypeError:
        return (None, None)


def _mark_in(exc: BaseException, file: str) -> tuple[int | None, int | None]:
    """Line and column of ``exc`` inside ``file``: the syntax error's mark, or the deepest
    traceback frame in that file."""
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() == Path(file).resolve():
        return exc.lineno, exc.offset
    return _line_in(exc, file), None


def _line_in(exc: BaseException | None, file: str) -> int | None:
    if exc is None:
        return None
    target = str(Path(file).resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return line


def _where(exc: BaseException) -> str:
    """`` at file:line`` of the deepest frame of an import failure outside importlib itself."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" at {exc.filename}:{exc.lineno}"
    here = str(Path(__file__).resolve())
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in f.filename and str(Path(f.filename).resolve()) != here
    ]
    if not frames:
        return ""
    last = frames[-1]
    return f" at {last.filename}:{last.lineno}"


# --------------------------------------------------------------------------- run options


class _OptionParser:
    """What ``litmus_seq_add_options(parser)`` receives: ``addoption`` takes the arguments of
    :meth:`argparse.ArgumentParser.add_argument`; a mistake is a user error, never an exit."""

    def __init__(self) -> None:
        import argparse

        class Parser(argparse.ArgumentParser):
            def error(self, message: str) -> Any:  # argparse would print usage and exit(2)
                raise ConfigError(f"run: {message}")

        self._parser = Parser(prog="litmus-seq run", add_help=False, allow_abbrev=False)
        self.names: list[str] = []
        self.plugin: str | None = None

    def addoption(self, *names: str, **kwargs: Any) -> None:
        import argparse

        try:
            action = self._parser.add_argument(*names, **kwargs)
        except (argparse.ArgumentError, TypeError, ValueError) as exc:
            raise PluginError(f"plugin {self.plugin!r}: litmus_seq_add_options: cannot add {names}: {exc}") from exc
        self.names += action.option_strings


def plugin_options(pm: pluggy.PluginManager, args: Sequence[str], known: Sequence[str] = ()) -> dict[str, Any]:
    """Parse ``args`` (what ``run`` did not recognise) with the options plugins add through
    ``litmus_seq_add_options``; the values by destination. An unknown option is a
    :class:`~litmus_seq.errors.ConfigError` with a "did you mean" among ``known`` (``run``'s own
    options) and the plugins' options.
    """
    from litmus_seq.suggest import did_you_mean

    parser = _OptionParser()
    for impl in reversed(pm.hook.litmus_seq_add_options.get_hookimpls()):
        parser.plugin = impl.plugin_name
        try:
            impl.function(**({"parser": parser} if "parser" in impl.argnames else {}))
        except LitmusError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's fault, reported with its name
            raise PluginError(f"{describe_plugin(pm, impl.plugin_name, exc)}: litmus_seq_add_options failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    values, rest = parser._parser.parse_known_args(list(args))
    if rest:
        word = rest[0].split("=", 1)[0]
        if word.startswith("-"):
            raise ConfigError(f"run: unknown option {word!r}{did_you_mean(word, [*known, *parser.names])}; "
                              f"`litmus-seq run --help` lists run's options, `litmus-seq plugins` the plugins")
        raise ConfigError(f"run: unexpected argument {word!r}: give one sequence file")
    return vars(values)
