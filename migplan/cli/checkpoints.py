"""checkpoint: a project's history dumped at one revision, for fresh databases."""

from __future__ import annotations

import click

from migplan.cli import complete
from migplan.cli import terminal
from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import json_result
from migplan.cli.app import pass_state
from migplan.cli.options import json_option
from migplan.cli.options import settings_env_option


@cli.command("checkpoint")
@settings_env_option
@click.option(
    "--rev",
    "revision",
    default=None,
    shell_complete=complete.revisions("head"),
    help="The revision to checkpoint (default: the single head).",
)
@click.option(
    "--url",
    default=None,
    help="A scratch PostgreSQL or MariaDB database to replay on (SQLite: a "
    "temporary file).",
)
@json_option
@pass_state
def checkpoint_command(
    state: State,
    env_name: str | None,
    revision: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Replay the history to a revision on a scratch database and store its schema
    and rows, so that empty databases load them instead of replaying."""
    from migplan.service import checkpoints

    project = state.project
    env = project.environment(env_name)
    if not as_json:
        terminal.report(
            f"replaying to {revision or 'head'} on a scratch database ...", err=True
        )
    made = checkpoints.make(
        project,
        env,
        revision=revision,
        url=None if url is None else env.resolve_url(url),
    )
    if as_json:
        json_result(made.to_dict())
    else:
        terminal.report(
            f"Wrote {made.path}: {made.dialect} at {made.revision}, replaces "
            f"{made.revisions} revision{'s' if made.revisions != 1 else ''} "
            f"({made.size / 1024:.0f} KiB, {made.tool}, {made.seconds:.1f} s)."
        )
