"""The one "did you mean" of litmus-seq: every hint for a misspelt name comes from here.

A key, a role, a driver, a measurement, a hook or a file name: the same rule everywhere, so the
same typo gets the same hint whichever command finds it. ``difflib`` is imported on first use
(this module is imported by error paths only on cold paths such as ``validate``).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean", "suggest"]

#: difflib's similarity ratio a candidate needs (difflib's own default).
CUTOFF = 0.6


def suggest(word: str, candidates: Iterable[object]) -> str | None:
    """The candidate closest to ``word``, or None when none is close enough.

    A candidate differing only in letter case is always found (``VREF`` for ``vref``), even
    when it is too short for difflib's ratio to call it close.
    """
    import difflib

    names = [str(c) for c in candidates]
    found = difflib.get_close_matches(str(word), names, n=1, cutoff=CUTOFF)
    if found:
        return found[0]
    lowered = str(word).lower()
    return next((c for c in names if c.lower() == lowered), None)


def did_you_mean(word: str, candidates: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` to append to a message, or ``""``."""
    guess = suggest(word, candidates)
    return "" if guess is None else f" (did you mean {guess!r}?)"
