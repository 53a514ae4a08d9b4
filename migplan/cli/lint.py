"""lint: revision files checked for destructive and locking operations, for
pre-commit and CI."""

from __future__ import annotations

from pathlib import Path

import click

from migplan.cli import terminal
from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import pass_state
from migplan.errors import MigplanError

LINT_KINDS = ("destructive", "locking", "irreversible")
DEFAULT_FAIL_ON = ("destructive", "locking")


@cli.command("lint")
@click.argument("paths", metavar="[PATH]...", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(LINT_KINDS),
    multiple=True,
    help="A kind of finding that fails (repeatable; default: destructive and "
    "locking). Others are warnings; a file that cannot run always fails.",
)
@pass_state
def lint_command(
    state: State, paths: tuple[Path, ...], fail_on: tuple[str, ...]
) -> None:
    """Flag destructive and locking operations in the upgrade() of revision files
    (default: every revision file of the project); exit 1 if any fails."""
    from migplan import render
    from migplan.service import lint

    failing = {"broken", *(fail_on or DEFAULT_FAIL_ON)}
    files = list(paths) or lint.project_paths(state.project)
    found = lint.lint_paths(files)
    terminal.report(render.lint_text(found, failing, style=terminal.style()))
    failed = [f for _, fs in found for f in fs if f.kind in failing]
    if failed:
        kinds = ", ".join(sorted({f.kind for f in failed}))
        raise MigplanError(
            f"lint: {len(failed)} finding{' fails' if len(failed) == 1 else 's fail'}"
            f" ({kinds}); --fail-on chooses the kinds that fail"
        )
