"""The project a file belongs to: its root, its ``litmus.yaml``, and how ids become files.

A sequence names its product and station by id (``product: power_board``) so that files move
together with the project; the project root is what those ids are relative to (DESIGN §3). Every
command resolves them through one :class:`ProjectContext` so that ``validate``, ``plan`` and
``run`` agree on which file an id means, and each file is parsed once per command.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from litmus_seq.errors import ConfigError, Location, Problem
from litmus_seq.suggest import suggest

__all__ = ["find_root", "detect_kind", "ProjectContext", "PROJECT_FILE"]

PROJECT_FILE = "litmus.yaml"

_FRAGMENT_KEYS = frozenset({"steps", "variables"})

#: How each kind is named in messages, and what a file of that kind looks like.
_KIND_WORDS: dict[str, tuple[str, str]] = {
    "sequence": ("a sequence", "a file with `sequence:` at the top, in sequences/"),
    "product": ("a product spec", "a file with `specs:`, in products/"),
    "station": ("a station", "a file with `instruments:`, in stations/"),
    "fragment": ("a fragment", "a file with only `steps:` and `variables:`"),
    "project": ("the project configuration (litmus.yaml)", "litmus.yaml"),
    "visa-sim": ("a pyvisa-sim definition file", "a file with `devices:` and `resources:`"),
}


def detect_kind(path: Path, data: dict[str, Any], *, by_folder: bool = True) -> str | None:
    """``sequence`` | ``product`` | ``station`` | ``fragment`` | ``project`` | ``visa-sim``
    (a pyvisa-sim definition file), or None if unclear.

    Keys decide first (a sequence says ``sequence:``); with ``by_folder`` the folder decides for
    files whose keys do not (a product with a typo in ``specs:`` is still a product if it lives
    in ``products/``). Without it, only the file's own keys count: what :meth:`ProjectContext.load`
    uses to say "this is a station, not a sequence" instead of a dozen "unknown key" lines.
    """
    path = Path(path)
    folder = path.parent.name
    keys = set(data)
    if path.name == PROJECT_FILE:
        return "project"
    if "sequence" in keys:
        return "sequence"
    if "devices" in keys and "resources" in keys and "instruments" not in keys:
        return "visa-sim"  # a pyvisa-sim definition file kept beside the stations
    if "specs" in keys or (by_folder and folder == "products"):
        return "product"
    if "instruments" in keys or (by_folder and folder == "stations"):
        return "station"
    if keys and keys <= _FRAGMENT_KEYS:
        return "fragment"
    if by_folder and "sequences" in path.parent.parts:
        return "sequence"
    return None


def find_root(start: Path) -> Path:
    """The project root for ``start`` (a folder or a file).

    The nearest folder upward holding ``litmus.yaml``; failing that, the nearest holding a
    ``products/`` or ``stations/`` folder; failing that, the current directory.
    """
    start = Path(start).resolve()
    if not start.is_dir():
        start = start.parent
    chain = [start, *start.parents]
    for folder in chain:
        if (folder / PROJECT_FILE).is_file():
            return folder
    for folder in chain:
        if (folder / "products").is_dir() or (folder / "stations").is_dir():
            return folder
    return Path.cwd().resolve()


class ProjectContext:
    """One project, as seen by one command: root, configuration and a cache of loaded files."""

    def __init__(self, root: Path, config: Any = None) -> None:
        from litmus_seq import models

        self.root: Path = Path(root).resolve()
        # loader.Document by resolved path: the plan builder locates nodes of product files here
        self.documents: dict[Path, Any] = {}
        self._models: dict[tuple[Path, type], Any] = {}
        if config is None:
            cfg_path = self.root / PROJECT_FILE
            config = self.load(cfg_path, models.Project) if cfg_path.is_file() else models.Project()
        self.config: models.Project = config

    @classmethod
    def for_path(cls, path: Path) -> ProjectContext:
        """The context of the project holding ``path`` (root searched from the file's folder)."""
        return cls(find_root(Path(path)))

    # -- paths ------------------------------------------------------------------------------

    def display(self, path: Path) -> str:
        """``path`` as messages show it: relative to the root (posix), else absolute."""
        p = Path(path)
        if not p.is_absolute():
            p = Path.cwd() / p
        p = Path(os.path.normpath(p))
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            try:
                return p.resolve().relative_to(self.root).as_posix()
            except ValueError:
                return p.as_posix()

    def resolve(self, ref: str, folder: str, where: Location | None = None) -> Path:
        """The file a ``product:``/``station:``/``include:`` value names; it must exist.

        A bare id is ``<root>/<folder>/<id>.yaml``; a value containing ``/`` or ending in
        ``.yaml``/``.yml`` is a path relative to the root (or absolute). ``where`` is the
        location of the reference, so the error points at the line that names the file.
        """
        ref = str(ref).strip()
        if "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml")):
            p = Path(ref)
            path = p if p.is_absolute() else self.root / p
        else:
            path = self.root / folder / f"{ref}.yaml"
        path = Path(os.path.normpath(path))
        if path.is_file():
            return path
        kind = {"products": "product", "stations": "station", "sequences": "fragment"}.get(folder, "file")
        hint = self._suggest(path)
        if path.parent == self.root / folder and path.name == f"{ref}.yaml":
            message = (f"{kind} {ref!r} not found: expected {self.display(path)} (bare ids are "
                       f"looked up in {folder}/ under the project root {self.root.as_posix()}){hint}")
        else:
            message = (f"{self.display(path)} does not exist (paths are relative to the project "
                       f"root {self.root.as_posix()}){hint}")
        raise ConfigError(problems=[Problem(where or Location(self.display(path)), message)])

    def _suggest(self, path: Path) -> str:
        """A "did you mean" among the YAML files next to where ``path`` was expected."""
        base = path.parent
        if not base.is_dir():
            return f"; there is no folder {self.display(base)}/"
        names = sorted(p.name for p in base.glob("*.y*ml"))
        guess = suggest(path.name, names)
        if guess:
            return f"; did you mean {self.display(base / guess)!r}?"
        if names:
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            return f"; {self.display(base)}/ holds: {shown}"
        return ""

    def include_roots(self) -> list[Path]:
        """The folders ``include:`` may read: the project root and litmus.yaml's
        ``include_roots`` (symlinks resolved, so a link cannot lead elsewhere)."""
        extra = [Path(r) if Path(r).is_absolute() else self.root / r for r in self.config.include_roots]
        return [self.root, *(Path(os.path.realpath(p)) for p in extra)]

    def outside_roots(self, path: Path) -> bool:
        """Whether ``path``, symlinks resolved, lies outside every :meth:`include_roots` folder."""
        real = Path(os.path.realpath(path))
        return not any(real == r or r in real.parents for r in self.include_roots())

    # -- loading ----------------------------------------------------------------------------

    def document(self, path: Path) -> Any:
        """The :class:`litmus_seq.loader.Document` of ``path``, parsed once per context."""
        from litmus_seq import loader

        key = Path(path).resolve()
        doc = self.documents.get(key)
        if doc is None:
            doc = loader.load_document(key, display=self.display(key))
            self.documents[key] = doc
        return doc

    def load(self, path: Path, model: type[Any]) -> Any:
        """``path`` validated as ``model`` (cached: the same file is validated once)."""
        from litmus_seq import loader

        key = (Path(path).resolve(), model)
        if key not in self._models:
            doc = self.document(path)
            self._check_kind(doc, model)
            self._models[key] = loader.validate_document(doc, model)
        return self._models[key]

    def _check_kind(self, doc: Any, model: type[Any]) -> None:
        """A station passed where a sequence is expected (and so on) is one clear error, not a
        list of every key the wrong model does not know."""
        from litmus_seq import models

        wanted = next((k for k, m in models.KINDS.items() if m is model), None)
        if wanted is None or not isinstance(doc.data, dict):
            return
        found = detect_kind(doc.path, doc.data, by_folder=False)
        if found is None or found == wanted:
            return
        what, _ = _KIND_WORDS[found]
        want_word, want_shape = _KIND_WORDS[wanted]
        raise ConfigError(problems=[Problem(
            doc.locate(()),
            f"this is {what}, not {want_word}; give {want_word} here ({want_shape})",
        )])

    def load_station(self, ref: str, where: Location | None = None) -> Any:
        """The station named by ``ref`` (an id from ``stations/`` or a path)."""
        from litmus_seq import models

        return self.load(self.resolve(ref, "stations", where), models.Station)

    def load_product(self, ref: str, where: Location | None = None) -> Any:
        """The product spec named by ``ref`` (an id from ``products/`` or a path)."""
        from litmus_seq import models

        return self.load(self.resolve(ref, "products", where), models.Product)

    # -- data -------------------------------------------------------------------------------

    def data_dir(self, cli_value: str | None = None) -> Path:
        """Where runs are stored: ``--data-dir``, ``LITMUS_DATA_DIR``, ``litmus.yaml``, ``./data``.

        A path that cannot be a folder (it, or a parent, is a file) is a :class:`ConfigError`
        naming where the value came from; whether it can be *written* is left to the writer
        (``runs`` and ``show`` only read it).
        """
        path, where = self.data_dir_source(cli_value)
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", path.as_posix()):  # s3://x became s3:/x as a Path
            uri = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*):/+", r"\1://", path.as_posix())
            raise ConfigError(problems=[Problem(where, (
                f"data folder {uri} is a URI; runs always seal in a local folder first: give a "
                f"local path here and send the runs to the lake with 'litmus-seq push --to {uri}' "
                "(or push_to: in litmus.yaml)"))])
        blocker = next((p for p in (path, *path.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            what = "is a file" if blocker == path else f"cannot be created: {blocker.as_posix()} is a file"
            raise ConfigError(problems=[Problem(where, (
                f"data folder {path.as_posix()} {what}; give a folder (existing or new) for the "
                "stores"))])
        return path

    def data_dir_source(self, cli_value: str | None = None) -> tuple[Path, Location]:
        """The data folder and where it was set: ``--data-dir``, ``LITMUS_DATA_DIR``, the
        ``data_dir:`` line of litmus.yaml, or the ``./data`` default (for error messages)."""
        if cli_value:
            return Path(cli_value), Location("--data-dir")
        env = os.environ.get("LITMUS_DATA_DIR")
        if env:
            return Path(env), Location("LITMUS_DATA_DIR")
        if self.config.data_dir:
            p = Path(self.config.data_dir)
            cfg = self.documents.get((self.root / PROJECT_FILE).resolve())
            where = cfg.locate(("data_dir",)) if cfg is not None else Location(PROJECT_FILE)
            return (p if p.is_absolute() else self.root / p), where
        return Path.cwd() / "data", Location("./data (the default data folder)")

    def __repr__(self) -> str:
        return f"ProjectContext(root={self.root.as_posix()!r})"
