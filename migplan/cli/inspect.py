"""log, drift, graph, status: what the databases and the graph look like."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from migplan.cli import terminal
from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import json_result
from migplan.cli.app import pass_state
from migplan.cli.common import each_database
from migplan.cli.common import read_each
from migplan.cli.common import report_failures
from migplan.cli.options import database_option
from migplan.cli.options import env_argument
from migplan.cli.options import json_option
from migplan.errors import ChangesPending

if TYPE_CHECKING:
    pass

# -- log / resolve ---------------------------------------------------------------


@cli.command("log")
@env_argument
@json_option
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many runs to show.",
)
@database_option
@pass_state
def log_command(
    state: State,
    env_name: str | None,
    as_json: bool,
    limit: int,
    database_name: str | None,
) -> None:
    """Show the audit trail of ENV's database: every apply, rollback and resolve."""
    from migplan import render
    from migplan.db import audit
    from migplan.render import documents

    project = state.project
    env = project.environment(env_name)
    targets = each_database(env, database_name)
    trails, failed = read_each(
        targets,
        lambda url: audit.read_runs(url, project.tables, limit=limit),
    )
    if as_json:
        json_result(documents.log_body(env.name, trails, failed))
    else:
        for name, runs in trails.items():
            if len(targets) > 1:
                terminal.report(f"== {name}")
            terminal.report(render.log_text(runs))
    report_failures(failed, len(targets))


# -- drift / verify -------------------------------------------------------------


@cli.command("drift")
@env_argument
@json_option
@database_option
@pass_state
def drift_command(
    state: State, env_name: str | None, as_json: bool, database_name: str | None
) -> None:
    """Compare ENV's database with the models; exit 2 when they differ."""
    from migplan.db import drift
    from migplan.render import documents

    project = state.project
    env = project.environment(env_name)
    targets = each_database(env, database_name)
    found, failed = read_each(
        targets, lambda url: drift.environment_drift(project, url)
    )
    if as_json:
        json_result(documents.drift_body(env.name, found, failed))
    for name, differences in found.items() if not as_json else ():
        label = env.name if len(targets) == 1 and not env.is_fleet else name
        if differences:
            terminal.report(f"{label}: the database differs from the models:")
            for difference in differences:
                terminal.report(f"  {difference}")
        else:
            terminal.report(f"{label}: the database matches the models.")
    report_failures(failed, len(targets))
    if any(found.values()):
        raise ChangesPending()


@cli.command("graph")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ascii", "mermaid", "dot", "svg"]),
    default="ascii",
    show_default=True,
    help="A terminal drawing, Mermaid (pull requests, docs), Graphviz DOT, or SVG "
    "(drawn by Graphviz's dot, which must be installed).",
)
@click.option(
    "--collapse",
    type=click.IntRange(min=0),
    default=8,
    show_default=True,
    help="Collapse linear runs longer than this (0: draw every revision).",
)
@click.option(
    "--no-databases", is_flag=True, help="Do not read the databases: no markers."
)
@json_option
@pass_state
def graph_command(
    state: State, fmt: str, collapse: int, no_databases: bool, as_json: bool
) -> None:
    """Draw the revision graph, with each environment's current and target marked."""
    from migplan.render import documents
    from migplan.render import drawing
    from migplan.service import planning

    project = state.project
    markers, errors = ([], []) if no_databases else planning.positions(project)
    for error in errors:
        terminal.warning(error)
    if as_json:
        json_result(documents.graph_body(project.graph, markers, errors))
        return
    graph = project.graph
    if fmt == "ascii":
        drawn = drawing.ascii_graph(
            graph, markers, collapse=collapse, style=terminal.style()
        )
        terminal.report(drawn.rstrip("\n"))
    elif fmt == "svg":
        from migplan.service import graphviz

        click.echo(graphviz.svg(drawing.dot(graph, markers, collapse=collapse)))
    else:
        draw = drawing.mermaid if fmt == "mermaid" else drawing.dot
        click.echo(draw(graph, markers, collapse=collapse).rstrip("\n"))


# -- status / validate -----------------------------------------------------------


@cli.command("status")
@json_option
@click.option(
    "--drift",
    "with_drift",
    is_flag=True,
    help="Also compare each database with the models (loads the app).",
)
@pass_state
def status_command(state: State, as_json: bool, with_drift: bool) -> None:
    """Show every environment: current revision, target, pending steps."""
    from migplan import render
    from migplan.render import documents
    from migplan.service import status

    rows = status.collect(state.project, drift=with_drift)
    if as_json:
        json_result(documents.status_body(rows))
    else:
        terminal.report(render.status_text(rows))
