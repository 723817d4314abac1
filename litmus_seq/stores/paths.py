"""Where the stores put things: safe file names, run file names, and the temporary files of a seal.

One home for the naming rules every store follows, so that a name a user chose (a DUT serial, an
observed key) can never make a write fail: anything outside ``[A-Za-z0-9._-]`` becomes ``_``, and
a name longer than :data:`MAX_NAME` is cut and given a short hash of the whole text (so that two
long serials that share their beginning still get different names; the full value stays in the
columns). Imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path

try:  # POSIX only; elsewhere a stale temporary file is recognised by its process id alone
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["MAX_NAME", "safe_name", "run_file_name", "TMP_SUFFIX", "SealTmp", "stale_tmp_files", "os_reason"]

#: The longest user-chosen part of a file name kept as it is. File systems refuse names over 255
#: bytes; a run file's name adds a timestamp, a ``_2`` counter and, while it is written, a process
#: id and ``.parquet.tmp``.
MAX_NAME = 64
_HASH = 12

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_ERRNO = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def safe_name(text: str) -> str:
    """``text`` as a file name part: ``[A-Za-z0-9._-]`` only, at most :data:`MAX_NAME` characters
    (a longer one ends in ``-`` and the first 12 hex digits of its SHA-256); never empty."""
    safe = _UNSAFE.sub("_", text) or "_"
    if len(safe) <= MAX_NAME:
        return safe
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH]
    return f"{safe[:MAX_NAME - _HASH - 1]}-{digest}"


def run_file_name(started_at_us: int | None, serial: object) -> tuple[str, str]:
    """``(date folder, file stem)`` of a run: ``2026-05-09``, ``20260509T101112.123456Z_SN1``."""
    dt = datetime.fromtimestamp((started_at_us if type(started_at_us) is int else 0) / 1e6, tz=timezone.utc)
    date, stamp = dt.strftime("%Y-%m-%d"), dt.strftime("%Y%m%dT%H%M%S.%fZ")
    if serial is None or serial == "":
        return date, stamp
    return date, f"{stamp}_{safe_name(str(serial))}"


TMP_SUFFIX = ".parquet.tmp"
_TMP_NAME = re.compile(r"^\.(.+)\.(\d+)\.(parquet|arrow)\.tmp$")


class SealTmp:
    """The temporary file a run file (or a channel, ``suffix=".arrow.tmp"``) is written to,
    ``.{stem}.{pid}{suffix}`` beside it, held under an advisory lock while it is written, so that
    ``recover`` can tell a writer that died (lock free, process gone) from one still at work."""

    def __init__(self, folder: Path, stem: str, suffix: str = TMP_SUFFIX) -> None:
        self.path = folder / f".{stem}.{os.getpid()}{suffix}"
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self, *, remove: bool) -> None:
        """Let go of the lock; ``remove`` also deletes the file (a failed write)."""
        if remove:
            self.path.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def stale_tmp_files(root: Path) -> list[Path]:
    """The temporary files of :class:`SealTmp` under ``root`` whose writer is gone (its lock is
    free and its process id no longer runs): what a write cut short by a crash leaves behind."""
    out = []
    for path in sorted(root.rglob(".*.tmp")):
        m = _TMP_NAME.match(path.name)
        if m is None or _alive(int(m.group(2))) or _locked(path):
            continue
        out.append(path)
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, as another user's process
        return True
    return True


def _locked(path: Path) -> bool:
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # gone already, or not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def move_new(src: Path, dst: Path) -> Path:
    """Move ``src`` to ``dst``, or to ``dst`` with ``_2``, ``_3``… before its suffix when that
    name is taken: a file is never overwritten, even by a writer racing for the same name (the
    hard link either creates the name or fails). Returns where the file went."""
    stem, suffix = dst.name.split(".", 1) if "." in dst.name else (dst.name, "")
    suffix = f".{suffix}" if suffix else ""
    target, n = dst, 2
    while True:
        try:
            os.link(src, target)
        except FileExistsError:
            target = dst.with_name(f"{stem}_{n}{suffix}")
            n += 1
            continue
        os.unlink(src)
        return target


def os_reason(exc: BaseException) -> str:
    """What the operating system said, in its words (``No space left on device``), also when
    pyarrow wrapped it (``Error writing bytes to file. Detail: [errno 28] ...``)."""
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return str(strerror)
    m = _ERRNO.search(str(exc))
    if m:
        return os.strerror(int(m.group(1)))
    return " ".join(str(exc).split()) or type(exc).__name__
