"""Shell completion, click's own (``_MIGPLAN_COMPLETE=bash_source migplan``...):
commands and options come from click; environment names and revisions from
migplan.yaml and the revision files, through the `shell_complete=` of the
arguments and options that take them.

Completion runs on every Tab: whatever goes wrong (no migplan.yaml, a broken
one, a revision file that does not import) gives no completions, never an error
or a traceback in the middle of the command line.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from migplan.project.config import Project

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]
F = TypeVar("F", bound=Callable[..., Any])

KEYWORDS = {
    "head": "the newest revision",
    "heads": "every head",
    "base": "before the first revision",
}


def _project(ctx: click.Context) -> Project | None:
    """migplan.yaml as -c/--config (or $MIGPLAN_CONFIG) on the line says, or None."""
    path = ctx.find_root().params.get("config_path")
    try:
        from migplan.project import config

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return config.load_config(path)
    except Exception:  # no completions, whatever the cause
        return None


def environments(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The environments of migplan.yaml, each with its target as help."""
    project = _project(ctx)
    if project is None:
        return []
    items = []
    for name, env in project.environments.items():
        if not name.startswith(incomplete):
            continue
        try:
            target = env.target_text
        except Exception:
            target = ""
        help = f"target {target}" if target else None
        items.append(CompletionItem(name, help=help))
    return items


def revisions(*keywords: str) -> Completer:
    """Complete a revision: `keywords` (head, heads, base), the branch labels, and
    the revision ids, each with its message as help."""

    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        items = [
            CompletionItem(word, help=KEYWORDS.get(word))
            for word in keywords
            if word.startswith(incomplete)
        ]
        project = _project(ctx)
        if project is None:
            return items
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = project.graph
            labels = dict(graph.labels)
            found = [(rev, graph.message(rev)) for rev in graph.files]
        except Exception:
            return items
        items += [
            CompletionItem(label, help=f"branch label of {rev}")
            for label, rev in labels.items()
            if label.startswith(incomplete)
        ]
        items += [
            CompletionItem(rev, help=message or None)
            for rev, message in found
            if rev.startswith(incomplete)
        ]
        return items

    return complete


def revision_argument(default: str, *keywords: str) -> Callable[[F], F]:
    """REVISION of a `db` command, completed with `keywords` (head, heads, base),
    the branch labels and the revision ids."""
    return click.argument(
        "revision", default=default, shell_complete=revisions(*keywords)
    )
