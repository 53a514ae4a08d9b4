"""plan, apply, rollback, resolve: the commands that change a database, and its plan."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import pass_state
from migplan.cli.common import confirm
from migplan.cli.common import finish
from migplan.cli.common import one_database
from migplan.cli.common import progress_printer
from migplan.cli.common import say
from migplan.cli.common import shard_of
from migplan.cli.options import database_option
from migplan.cli.options import env_argument
from migplan.cli.options import json_option
from migplan.cli.options import lock_timeout_option
from migplan.cli.options import shard_option
from migplan.cli.options import yes_option
from migplan.errors import ChangesPending
from migplan.errors import MigplanError

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.fleet import MemberResult
    from migplan.core.planner import Plan
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project

# -- plan ----------------------------------------------------------------------


@cli.command("plan")
@env_argument
@json_option
@click.option(
    "--sql",
    "as_sql",
    is_flag=True,
    help="Print the SQL of each step (Alembic offline mode).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Save the plan to a file for `apply --plan`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when up to date, 2 when changes are pending, 1 on error.",
)
@database_option
@shard_option
@pass_state
def plan_command(
    state: State,
    env_name: str | None,
    as_json: bool,
    as_sql: bool,
    out: str | None,
    detailed_exitcode: bool,
    database_name: str | None,
    shard: str | None,
) -> None:
    """Show the steps that would bring ENV to its target."""
    from migplan import render
    from migplan.service import planning

    project = state.project
    env = project.environment(env_name)
    if env.is_fleet and database_name is None:
        if as_sql or out:
            raise click.UsageError(
                "--sql and -o work on one database: add --database NAME"
            )
        from migplan.service import fleet

        fleet_plan = fleet.plan(project, env, shard=shard_of(shard))
        click.echo(
            json.dumps(fleet_plan.to_dict(), indent=2)
            if as_json
            else render.fleet_plan_text(fleet_plan)
        )
        if fleet_plan.errors:
            raise MigplanError(
                f"{len(fleet_plan.errors)} database(s) could not be planned"
            )
        if detailed_exitcode and not fleet_plan.up_to_date:
            raise ChangesPending()
        return
    shown, url = one_database(env, database_name)
    plan = planning.plan(project, env, url=url)
    if out:
        save_plan(plan, url, Path(out))
    if as_json:
        click.echo(render.plan_json(plan))
    elif as_sql:
        from migplan.db import executor

        chunks = executor.render_sql(project, env, project.graph, plan, url=url)
        click.echo(render.plan_sql(plan, chunks), nl=False)
    else:
        click.echo(render.plan_text(plan, shown))
        if out:
            pick = f" --database {database_name}" if database_name else ""
            click.echo(
                f"Saved to {out}; apply it with: migplan apply {env.name}{pick} --plan {out}"
            )
    if detailed_exitcode and not plan.up_to_date:
        raise ChangesPending()


def save_plan(plan: Plan, url: DatabaseURL, path: Path) -> None:
    from migplan.service import saved

    try:
        path.write_text(saved.dumps(plan, url), encoding="utf-8")
    except OSError as err:
        raise MigplanError(f"cannot write {path}: {err.strerror}") from err


# -- apply ---------------------------------------------------------------------


@cli.command("apply")
@env_argument
@yes_option
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    help="Apply exactly this saved plan (from `plan -o`).",
)
@click.option(
    "--rehearse",
    is_flag=True,
    help="Run the plan in one transaction and roll it back: each step's time and "
    "locks, nothing changed (PostgreSQL, SQLite).",
)
@database_option
@shard_option
@lock_timeout_option
@pass_state
def apply_command(
    state: State,
    env_name: str | None,
    yes: bool,
    plan_file: str | None,
    rehearse: bool,
    database_name: str | None,
    shard: str | None,
    lock_timeout: float | None,
) -> None:
    """Bring ENV to its target: show the plan, then run it."""
    from migplan import render
    from migplan.service import execution

    project = state.project
    env = project.environment(env_name)
    if env.is_fleet and database_name is None:
        if plan_file or rehearse:
            raise click.UsageError(
                "--plan and --rehearse work on one database: add --database NAME"
            )
        apply_fleet(project, env, shard_of(shard), yes, lock_timeout)
        return
    shown, url = one_database(env, database_name)
    if plan_file:
        from migplan.service import saved

        plan = saved.load(Path(plan_file), project, env, url)
    else:
        from migplan.service import planning

        plan = planning.plan(project, env, url=url)
    click.echo(render.plan_text(plan, shown))
    if plan.up_to_date:
        return
    if rehearse:
        rehearse_plan(project, env, plan, url, yes, lock_timeout)
        return
    confirm(env, "apply", yes)
    result = execution.apply(
        project,
        env,
        project.graph,
        plan,
        replan=plan_file is None,
        progress=progress_printer(),
        on_wait=say,
        lock_timeout=lock_timeout,
        url=url,
    )
    finish(result)


def rehearse_plan(
    project: Project,
    env: Environment,
    plan: Plan,
    url: DatabaseURL,
    yes: bool,
    lock_timeout: float | None,
) -> None:
    """`apply --rehearse`: the plan run and rolled back. It takes the real locks
    (bounded by `ddl.lock_timeout`), so a protected environment asks first."""
    from migplan import render
    from migplan.service import rehearsal

    confirm(env, "rehearse on it", yes)
    result = rehearsal.rehearse(
        project,
        env,
        project.graph,
        plan,
        progress=progress_printer(),
        on_wait=say,
        lock_timeout=lock_timeout,
        url=url,
    )
    click.echo(render.rehearsal_text(result))
    if not result.ok:
        raise MigplanError(render.rehearsal_failure(result))


def apply_fleet(
    project: Project,
    env: Environment,
    shard: tuple[int, int] | None,
    yes: bool,
    lock_timeout: float | None,
) -> None:
    from migplan import render
    from migplan.service import fleet

    fleet_plan = fleet.plan(project, env, shard=shard)
    click.echo(render.fleet_plan_text(fleet_plan))
    if fleet_plan.up_to_date:
        return
    confirm(env, "apply", yes)
    live = sys.stdout.isatty()

    def show(result: MemberResult, done: int, total: int) -> None:
        line = render.fleet_progress(result, done, total)
        click.echo(("\r\033[K" + line) if live else line, nl=not live)

    outcome = fleet.apply(
        project, env, shard=shard, on_result=show, lock_timeout=lock_timeout
    )
    if live:
        click.echo()
    click.echo(render.fleet_summary(outcome))
    if not outcome.ok:
        raise MigplanError(outcome.failure_message())


# -- rollback --------------------------------------------------------------------


@cli.command("rollback")
@env_argument
@click.option("--to", "to", metavar="REV", help="Revision to go back to (or 'base').")
@click.option(
    "--steps", type=click.IntRange(min=1), help="Number of migrations to undo."
)
@click.option(
    "--last",
    is_flag=True,
    help="Undo the last successful apply the audit trail records.",
)
@click.option("--dry-run", is_flag=True, help="Show the rollback plan and stop.")
@json_option
@yes_option
@database_option
@lock_timeout_option
@pass_state
def rollback_command(
    state: State,
    env_name: str | None,
    to: str | None,
    steps: int | None,
    last: bool,
    dry_run: bool,
    as_json: bool,
    yes: bool,
    database_name: str | None,
    lock_timeout: float | None,
) -> None:
    """Downgrade ENV, within its rollback policy."""
    from migplan import render
    from migplan.core import policy
    from migplan.errors import PolicyViolation
    from migplan.service import execution
    from migplan.service import planning

    if [to is not None, steps is not None, last].count(True) != 1:
        raise click.UsageError("give exactly one of --to REV, --steps N and --last")
    project = state.project
    env = project.environment(env_name)
    graph = project.graph
    shown, url = one_database(env, database_name)
    plan = planning.rollback_plan(project, env, to=to, steps=steps, last=last, url=url)
    click.echo(render.plan_json(plan) if as_json else render.plan_text(plan, shown))
    violations = policy.check_rollback(plan, env)
    if violations:
        raise PolicyViolation(policy.refusal(violations, "rollback"))
    if dry_run or plan.up_to_date:
        return
    confirm(env, "roll back", yes)
    result = execution.apply(
        project,
        env,
        graph,
        plan,
        action="rollback",
        replan=False,
        progress=progress_printer(),
        on_wait=say,
        lock_timeout=lock_timeout,
        url=url,
    )
    finish(result)


@cli.command("resolve")
@env_argument
@click.option(
    "--as",
    "outcome",
    type=click.Choice(["applied", "reverted"]),
    required=True,
    help="applied: you completed the half-applied migration by hand; reverted: you undid it.",
)
@yes_option
@database_option
@lock_timeout_option
@pass_state
def resolve_command(
    state: State,
    env_name: str | None,
    outcome: str,
    yes: bool,
    database_name: str | None,
    lock_timeout: float | None,
) -> None:
    """Settle a database left dirty by a migration that stopped half-way."""
    from migplan import render
    from migplan.service import execution

    project = state.project
    env = project.environment(env_name)
    confirm(env, "resolve", yes)
    run, heads = execution.resolve(
        project,
        env,
        project.graph,
        outcome,
        on_wait=say,
        lock_timeout=lock_timeout,
        url=one_database(env, database_name)[1],
    )
    click.echo(
        f"Resolved {run.dirty_direction} {run.dirty_revision} as {outcome}; "
        f"{env.name} is at {render.heads(heads)}."
    )
