"""`migplan lint`'s findings, one line each as compilers print them. Pure."""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Sequence
from typing import TYPE_CHECKING

from migplan.render.style import Style
from migplan.render.style import plain

if TYPE_CHECKING:
    from migplan.core.lint import Finding


def lint_text(
    found: Sequence[tuple[str, Sequence[Finding]]],
    failing: Collection[str],
    *,
    style: Style = plain,
) -> str:
    """Return ``path:line: kind: operation`` for every finding, those of a kind
    not in `failing` marked as warnings, then a closing line (kinds through
    `style`)."""
    lines = [
        f"{path}{f':{f.line}' if f.line else ''}: {style(f.kind, f.kind)}: {f.operation}"
        + ("" if f.kind in failing else " (warning)")
        for path, findings in found
        for f in findings
    ]
    n = len(found)
    files = f"{n} revision file{'s' if n != 1 else ''}"
    failed = sum(1 for _, fs in found for f in fs if f.kind in failing)
    warned = len(lines) - failed
    if failed:
        closing = (
            f"{files} linted: {failed} finding{' fails' if failed == 1 else 's fail'}"
        )
    elif warned:
        closing = f"{files} linted: {warned} warning{'s' if warned != 1 else ''}"
    else:
        closing = f"{files} linted: nothing flagged"
    return "\n".join([*lines, closing + "."])
