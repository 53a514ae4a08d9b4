"""promote: one environment's target from another's current revision."""

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

if TYPE_CHECKING:
    pass


@cli.command("promote")
@click.argument("source", shell_complete=complete.environments)
@click.argument("destination", shell_complete=complete.environments)
@json_option
@pass_state
def promote_command(state: State, source: str, destination: str, as_json: bool) -> None:
    """Set DESTINATION's target to SOURCE's current revision, and show its plan."""
    from migplan import render
    from migplan.project import config
    from migplan.project import edit
    from migplan.render import documents
    from migplan.service import planning
    from migplan.service import promote

    project = state.project
    heads = promote.current_target(project, project.environment(source))
    env = project.environment(destination)
    before = env.target
    edit.set_target(project.path, env.name, heads)
    if as_json:
        json_result(
            documents.promote_body(project.path.name, source, env.name, before, heads)
        )
    else:
        terminal.report(
            f"{project.path.name}: {env.name}.target: {env.target_text} -> {' '.join(heads)}"
        )
    project = config.load_config(project.path)
    env = project.environment(destination)
    if env.is_fleet:
        from migplan.service import fleet

        fleet_plan = fleet.plan(project, env)
        if as_json:
            json_result(
                documents.promote_body(
                    project.path.name, source, env.name, before, heads, fleet_plan
                )
            )
        else:
            terminal.report(render.fleet_plan_text(fleet_plan, style=terminal.style()))
        return
    plan = planning.plan(project, env)
    if as_json:
        json_result(
            documents.promote_body(
                project.path.name, source, env.name, before, heads, plan
            )
        )
    else:
        terminal.report(render.plan_text(plan, env.url.display, style=terminal.style()))
