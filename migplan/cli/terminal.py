"""The terminal: whether output is coloured, whether it is quiet, and the lines
every command prints the same way (errors, warnings, reports).

Colour only on a terminal: never when the stream is not a TTY, when NO_COLOR is
set to anything but the empty string (no-color.org), with --no-color, or in a
--json run; --color forces it (on a TTY or not, NO_COLOR or not), except in a
--json run. Renderers only name what a span is (migplan.render.style); the roles
get their colours here.

Quiet (-q): what migplan prints for people (plan tables, progress, notices,
closing lines, reports) is left out; errors and warnings stay, on stderr, and so
does what is asked for in a format for machines (--json, --sql, Markdown, the
graph as Mermaid, DOT or SVG).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING
from typing import Any

import click

if TYPE_CHECKING:
    from migplan.render.style import Style

JSON_MODE = "migplan.json"
"""ctx.meta key: the command was given --json."""
QUIET = "migplan.quiet"
"""ctx.meta key: -q/--quiet."""
COLOR = "migplan.color"
"""ctx.meta key: --color (True) or --no-color (False); absent: decide by the stream."""

COLOURS: dict[str, dict[str, Any]] = {
    "destructive": {"fg": "red", "bold": True},
    "locking": {"fg": "yellow", "bold": True},
    "irreversible": {"fg": "magenta"},
    "broken": {"fg": "red", "bold": True},
    "refusal": {"fg": "red"},
    "error": {"fg": "red", "bold": True},
    "warning": {"fg": "yellow", "bold": True},
    "failed": {"fg": "red", "bold": True},
    "current": {"fg": "green", "bold": True},
    "target": {"fg": "cyan", "bold": True},
}
"""click.style's arguments for each role of migplan.render.style.ROLES."""


def _meta() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return ctx.meta if ctx is not None else {}


def colour(*, err: bool = False) -> bool:
    """Whether to colour what goes to stdout (stderr with `err`)."""
    meta = _meta()
    if meta.get(JSON_MODE):
        return False
    forced = meta.get(COLOR)
    if forced is not None:
        return bool(forced)
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stderr if err else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def _styled(text: str, role: str) -> str:
    colours = COLOURS.get(role)
    return click.style(text, **colours) if colours else text


def style(*, err: bool = False) -> Style:
    """The `style` to hand a renderer whose text goes to stdout (stderr with
    `err`): colours when `colour` says so, else none. (Imported here: the
    renderers are not needed to start the CLI, `--help` included.)"""
    from migplan.render.style import plain

    return _styled if colour(err=err) else plain


def quiet() -> bool:
    """Whether -q/--quiet was given."""
    return bool(_meta().get(QUIET))


def report(message: str = "", *, nl: bool = True, err: bool = False) -> None:
    """Print what is for people: nothing when quiet."""
    if not quiet():
        click.echo(message, nl=nl, err=err)


def error(line: str) -> None:
    """Print ``Error: line`` on stderr, quiet or not."""
    click.echo(f"{style(err=True)('Error:', 'error')} {line}", err=True)


def warning(line: str) -> None:
    """Print ``Warning: line`` on stderr, quiet or not."""
    click.echo(f"{style(err=True)('Warning:', 'warning')} {line}", err=True)
