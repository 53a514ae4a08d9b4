"""verify and validate: checks for CI, before anything is deployed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from migplan.cli import complete
from migplan.cli import terminal
from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import json_result
from migplan.cli.app import pass_state
from migplan.cli.options import json_option
from migplan.cli.options import settings_env_option
from migplan.errors import MigplanError
from migplan.errors import Problems

if TYPE_CHECKING:
    pass


@cli.command("verify")
@click.option(
    "--url",
    default=None,
    help="An empty throwaway database to use instead of a temporary SQLite file.",
)
@settings_env_option
@json_option
@pass_state
def verify_command(
    state: State, url: str | None, env_name: str | None, as_json: bool
) -> None:
    """Prove every downgrade on a scratch database: upgrade, downgrade, upgrade again."""
    from migplan import render
    from migplan.render import documents
    from migplan.service import verify

    project = state.project
    env = project.environment(env_name)
    report = verify.verify(
        project,
        env,
        url=None if url is None else env.resolve_url(url),
        progress=lambda what: terminal.report(f"checking {what}", err=True),
    )
    if as_json:
        json_result(documents.verify_body(report))
    else:
        terminal.report(render.verify_text(report))
    if not report.ok:
        raise MigplanError(f"verify found {len(report.problems)} problem(s)")


# -- promote / graph -------------------------------------------------------------


@cli.command("validate")
@click.option(
    "--env",
    "-e",
    "env_name",
    shell_complete=complete.environments,
    help="Also check this environment's database (read-only).",
)
@json_option
@pass_state
def validate_command(state: State, env_name: str | None, as_json: bool) -> None:
    """Check migplan.yaml and that every target resolves, without touching databases."""
    from migplan.render import documents
    from migplan.service import validate

    problems = validate.check(state.config_path, env_name)
    if as_json:
        json_result(documents.validate_body(problems))
    if problems:
        raise Problems(problems)
    if not as_json:
        terminal.report("migplan.yaml is valid; every target resolves.")
