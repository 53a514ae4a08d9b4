"""plan, apply, rollback, resolve: the commands that change a database, and its plan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from migplan.cli import complete
from migplan.cli import terminal
from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import json_result
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
from migplan.cli.options import no_checkpoint_option
from migplan.cli.options import shard_option
from migplan.cli.options import yes_option
from migplan.cli.terminal import JSON_MODE
from migplan.errors import ChangesPending
from migplan.errors import MigplanError

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.fleet import MemberResult
    from migplan.core.planner import Plan
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project

# -- plan ----------------------------------------------------------------------


PLAN_FORMATS = ("table", "text", "markdown", "json")


@cli.command("plan")
@click.argument(
    "env_names",
    metavar="[ENV]...",
    nargs=-1,
    shell_complete=complete.environments,
)
@click.option(
    "--all",
    "all_envs",
    is_flag=True,
    help="Plan every environment of migplan.yaml, one section each.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(PLAN_FORMATS),
    default=None,
    help="table (default): the steps in columns; text: a line per step, for logs; "
    "markdown: a pull request comment; json: as --json.",
)
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
@no_checkpoint_option
@pass_state
def plan_command(
    state: State,
    env_names: tuple[str, ...],
    all_envs: bool,
    output: str | None,
    as_json: bool,
    as_sql: bool,
    out: str | None,
    detailed_exitcode: bool,
    database_name: str | None,
    shard: str | None,
    no_checkpoint: bool,
) -> None:
    """Show the steps that would bring ENV to its target (several ENVs, or --all:
    a section each; one that cannot be planned gives its error, and exit 1)."""
    from migplan import render
    from migplan.service import planning

    if as_json and output not in (None, "json"):
        raise click.UsageError(
            f"--json is --format json: give one, not --format {output}"
        )
    output = "json" if as_json else output or "table"
    if output == "json":  # one document, whatever the outcome (cli.app)
        click.get_current_context().meta[JSON_MODE] = True
    if all_envs and env_names:
        raise click.UsageError("give environment names or --all, not both")
    project = state.project
    names: list[str | None] = [
        *(project.environments if all_envs else dict.fromkeys(env_names))
    ]
    # every name checked before any database is read: a typo fails alone
    envs = [project.environment(name) for name in names or [None]]
    if len(envs) > 1 or output == "markdown":
        plan_review(
            project, envs, output, as_sql, out, detailed_exitcode, database_name, shard
        )
        return
    env = envs[0]
    if env.is_fleet and database_name is None:
        if as_sql or out:
            raise click.UsageError(
                "--sql and -o work on one database: add --database NAME"
            )
        from migplan.service import fleet

        fleet_plan = fleet.plan(
            project, env, shard=shard_of(shard), checkpoint=not no_checkpoint
        )
        if output == "json":
            json_result(fleet_plan.to_dict())
        else:
            terminal.report(render.fleet_plan_text(fleet_plan, style=terminal.style()))
        if fleet_plan.errors:
            raise MigplanError(
                f"{len(fleet_plan.errors)} database(s) could not be planned"
            )
        if detailed_exitcode and not fleet_plan.up_to_date:
            raise ChangesPending()
        return
    shown, url = one_database(env, database_name)
    # --sql is Alembic's offline SQL of each revision: the replay
    plan = planning.plan(
        project, env, url=url, checkpoint=not (no_checkpoint or as_sql)
    )
    if out:
        save_plan(plan, url, Path(out))
    if output == "json":
        json_result(plan.to_dict())
    elif as_sql:
        from migplan.db import executor

        chunks = executor.render_sql(project, env, project.graph, plan, url=url)
        click.echo(render.plan_sql(plan, chunks), nl=False)
    else:
        show = render.plan_lines if output == "text" else render.plan_text
        terminal.report(show(plan, shown, style=terminal.style()))
        if out:
            pick = f" --database {database_name}" if database_name else ""
            terminal.report(
                f"Saved to {out}; apply it with: migplan apply {env.name}{pick} --plan {out}"
            )
    if detailed_exitcode and not plan.up_to_date:
        raise ChangesPending()


def plan_review(
    project: Project,
    envs: list[Environment],
    output: str,
    as_sql: bool,
    out: str | None,
    detailed_exitcode: bool,
    database_name: str | None,
    shard: str | None,
) -> None:
    """`plan` of several environments, or as Markdown: a section each, in order.
    Those that cannot be planned give their error (in their section, and on
    stderr), the others go on, and the command exits 1 at the end."""
    from migplan import render
    from migplan.service import review

    if output == "json":
        raise click.UsageError("--json plans one environment: run it once for each")
    if as_sql or out:
        raise click.UsageError("--sql and -o plan one environment, as a table")
    if database_name and len(envs) > 1:
        raise click.UsageError("--database picks a database of one environment")
    plans = review.plan_environments(
        project, envs, shard=shard_of(shard), database=database_name
    )
    if output == "markdown":
        click.echo(render.plan_markdown(plans), nl=False)
    else:
        style = terminal.style()
        sections = []
        for item in plans:
            if item.fleet is not None:
                sections.append(render.fleet_plan_text(item.fleet, style=style))
            elif item.plan is not None:
                show = render.plan_lines if output == "text" else render.plan_text
                sections.append(show(item.plan, item.url, style=style))
        if sections:
            terminal.report("\n\n".join(sections))
    failed = [item for item in plans if item.failed]
    if len(plans) == 1 and failed:
        error = failed[0].error
        if error is None:
            fleet_plan = failed[0].fleet
            assert fleet_plan is not None
            error = f"{len(fleet_plan.errors)} database(s) could not be planned"
        raise MigplanError(error)
    for item in failed:
        if item.error is not None:
            terminal.error(f"{item.environment}: {item.error}")
    if failed:
        raise MigplanError(
            f"{len(failed)} of {len(plans)} environments could not be planned: "
            + ", ".join(item.environment for item in failed)
        )
    if detailed_exitcode and not all(item.up_to_date for item in plans):
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
@json_option
@database_option
@shard_option
@lock_timeout_option
@no_checkpoint_option
@pass_state
def apply_command(
    state: State,
    env_name: str | None,
    yes: bool,
    plan_file: str | None,
    rehearse: bool,
    as_json: bool,
    database_name: str | None,
    shard: str | None,
    lock_timeout: float | None,
    no_checkpoint: bool,
) -> None:
    """Bring ENV to its target: show the plan, then run it."""
    from migplan import render
    from migplan.service import execution

    if as_json:
        from migplan.render import documents

    project = state.project
    env = project.environment(env_name)
    if env.is_fleet and database_name is None:
        if plan_file or rehearse:
            raise click.UsageError(
                "--plan and --rehearse work on one database: add --database NAME"
            )
        apply_fleet(
            project, env, shard_of(shard), yes, lock_timeout, as_json, not no_checkpoint
        )
        return
    shown, url = one_database(env, database_name)
    if plan_file:
        from migplan.service import saved

        plan = saved.load(Path(plan_file), project, env, url)
    else:
        from migplan.service import planning

        plan = planning.plan(project, env, url=url, checkpoint=not no_checkpoint)
    if as_json:
        json_result(documents.apply_body(env.name, shown, plan, rehearse=rehearse))
    else:
        terminal.report(render.plan_text(plan, shown, style=terminal.style()))
    if plan.up_to_date:
        return
    if rehearse:
        rehearse_plan(project, env, plan, url, yes, lock_timeout, shown, as_json)
        return
    confirm(env, "apply", yes, as_json=as_json)
    result = execution.apply(
        project,
        env,
        project.graph,
        plan,
        replan=plan_file is None,
        progress=progress_printer(err=as_json),
        on_wait=say,
        lock_timeout=lock_timeout,
        url=url,
    )
    if as_json:
        json_result(documents.apply_body(env.name, shown, plan, result))
    finish(result, quiet_when_done=as_json)


def rehearse_plan(
    project: Project,
    env: Environment,
    plan: Plan,
    url: DatabaseURL,
    yes: bool,
    lock_timeout: float | None,
    shown: str,
    as_json: bool,
) -> None:
    """`apply --rehearse`: the plan run and rolled back. It takes the real locks
    (bounded by `ddl.lock_timeout`), so a protected environment asks first."""
    from migplan import render
    from migplan.render import documents
    from migplan.service import rehearsal

    confirm(env, "rehearse on it", yes, as_json=as_json)
    result = rehearsal.rehearse(
        project,
        env,
        project.graph,
        plan,
        progress=progress_printer(err=as_json),
        on_wait=say,
        lock_timeout=lock_timeout,
        url=url,
    )
    if as_json:
        json_result(documents.apply_body(env.name, shown, plan, result, rehearse=True))
    else:
        terminal.report(render.rehearsal_text(result))
    if not result.ok:
        raise MigplanError(render.rehearsal_failure(result))


def apply_fleet(
    project: Project,
    env: Environment,
    shard: tuple[int, int] | None,
    yes: bool,
    lock_timeout: float | None,
    as_json: bool,
    checkpoint: bool = True,
) -> None:
    from migplan import render
    from migplan.render import documents
    from migplan.service import fleet

    fleet_plan = fleet.plan(project, env, shard=shard, checkpoint=checkpoint)
    if as_json:
        json_result(documents.fleet_apply_body(fleet_plan))
    else:
        terminal.report(render.fleet_plan_text(fleet_plan, style=terminal.style()))
    if fleet_plan.up_to_date:
        return
    confirm(env, "apply", yes, as_json=as_json)
    live = (sys.stderr if as_json else sys.stdout).isatty()
    quiet = terminal.quiet()

    def show(result: MemberResult, done: int, total: int) -> None:
        if quiet:
            return
        line = render.fleet_progress(result, done, total)
        click.echo(("\r\033[K" + line) if live else line, nl=not live, err=as_json)

    outcome = fleet.apply(
        project,
        env,
        shard=shard,
        on_result=show,
        lock_timeout=lock_timeout,
        checkpoint=checkpoint,
    )
    if live:
        terminal.report(err=as_json)
    if as_json:
        json_result(documents.fleet_apply_body(fleet_plan, outcome))
    else:
        terminal.report(render.fleet_summary(outcome))
    if not outcome.ok:
        raise MigplanError(outcome.failure_message())


# -- rollback --------------------------------------------------------------------


@cli.command("rollback")
@env_argument
@click.option(
    "--to",
    "to",
    metavar="REV",
    shell_complete=complete.revisions("base"),
    help="Revision to go back to (or 'base').",
)
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
    from migplan.render import documents
    from migplan.service import execution
    from migplan.service import planning

    if [to is not None, steps is not None, last].count(True) != 1:
        raise click.UsageError("give exactly one of --to REV, --steps N and --last")
    project = state.project
    env = project.environment(env_name)
    graph = project.graph
    shown, url = one_database(env, database_name)
    plan = planning.rollback_plan(project, env, to=to, steps=steps, last=last, url=url)
    if as_json:
        json_result(documents.rollback_body(env.name, shown, plan, dry_run=dry_run))
    else:
        terminal.report(render.plan_text(plan, shown, style=terminal.style()))
    violations = policy.check_rollback(plan, env)
    if violations:
        raise PolicyViolation(policy.refusal(violations, "rollback"))
    if dry_run or plan.up_to_date:
        return
    confirm(env, "roll back", yes, as_json=as_json)
    result = execution.apply(
        project,
        env,
        graph,
        plan,
        action="rollback",
        replan=False,
        progress=progress_printer(err=as_json),
        on_wait=say,
        lock_timeout=lock_timeout,
        url=url,
    )
    if as_json:
        json_result(documents.rollback_body(env.name, shown, plan, result))
    finish(result, quiet_when_done=as_json)


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
@json_option
@database_option
@lock_timeout_option
@pass_state
def resolve_command(
    state: State,
    env_name: str | None,
    outcome: str,
    yes: bool,
    as_json: bool,
    database_name: str | None,
    lock_timeout: float | None,
) -> None:
    """Settle a database left dirty by a migration that stopped half-way."""
    from migplan import render
    from migplan.render import documents
    from migplan.service import execution

    project = state.project
    env = project.environment(env_name)
    shown, url = one_database(env, database_name)
    if as_json:
        json_result(documents.resolve_body(env.name, shown, outcome))
    confirm(env, "resolve", yes, as_json=as_json)
    run, heads = execution.resolve(
        project,
        env,
        project.graph,
        outcome,
        on_wait=say,
        lock_timeout=lock_timeout,
        url=url,
    )
    if as_json:
        json_result(documents.resolve_body(env.name, shown, outcome, run, heads))
        return
    terminal.report(
        f"Resolved {run.dirty_direction} {run.dirty_revision} as {outcome}; "
        f"{env.name} is at {render.heads(heads)}."
    )
