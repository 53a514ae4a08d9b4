"""promote: one environment's target from another's current revision."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import pass_state

if TYPE_CHECKING:
    pass


@cli.command("promote")
@click.argument("source")
@click.argument("destination")
@pass_state
def promote_command(state: State, source: str, destination: str) -> None:
    """Set DESTINATION's target to SOURCE's current revision, and show its plan."""
    from migplan import render
    from migplan.project import config
    from migplan.project import edit
    from migplan.service import planning
    from migplan.service import promote

    project = state.project
    heads = promote.current_target(project, project.environment(source))
    env = project.environment(destination)
    edit.set_target(project.path, env.name, heads)
    click.echo(
        f"{project.path.name}: {env.name}.target: {env.target_text} -> {' '.join(heads)}"
    )
    project = config.load_config(project.path)
    env = project.environment(destination)
    if env.is_fleet:
        from migplan.service import fleet

        click.echo(render.fleet_plan_text(fleet.plan(project, env)))
    else:
        click.echo(render.plan_text(planning.plan(project, env), env.url.display))
