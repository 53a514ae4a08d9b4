"""Names the user typed, measured against the names that exist."""

from __future__ import annotations

from collections.abc import Iterable


def did_you_mean(
    name: str, known: Iterable[str], n: int = 1, cutoff: float = 0.6
) -> str:
    """Return ``; did you mean 'x'?`` for the closest known names, or ""."""
    import difflib  # only when a name is wrong

    close = difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def unknown(
    what: str, name: str, known: Iterable[str], *, ordered: bool = False
) -> str:
    """Return ``unknown WHAT (known: a, b); did you mean 'a'?``; known names are
    listed sorted, unless `ordered` keeps their order."""
    names = list(known) if ordered else sorted(known)
    return f"unknown {what} (known: {', '.join(names)}){did_you_mean(name, names)}"
