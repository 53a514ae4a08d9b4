"""What a terminal may colour. Pure: renderers name what a span of text is (its
role), the cli decides whether and how it is coloured.

A renderer that can colour takes a `style` callable, ``style(text, role)``, and
passes each span that has a role through it; the default, `plain`, returns the
text as it is, so output is the same bytes unless the cli hands a colouring one.
Documents (JSON, Markdown, Mermaid, DOT, SVG) never take one.
"""

from __future__ import annotations

from collections.abc import Callable

Style = Callable[[str, str], str]
"""``style(text, role) -> text``: the text, coloured for its role or not."""

ROLES = (
    "destructive",
    "locking",
    "irreversible",
    "broken",
    "refusal",
    "error",
    "warning",
    "failed",
    "current",
    "target",
)
"""The roles renderers give: the lint kinds (a plan's flags), a note that apply
refuses the plan, an ``Error:`` or ``Warning:`` prefix, a step that failed, and
the graph's markers (an environment's current revision and its target)."""


def plain(text: str, role: str) -> str:
    """Return `text` as it is: no colour."""
    return text
