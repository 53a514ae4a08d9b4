"""The `migplan` command: click only; every command is glue over the library.

Heavy modules (SQLAlchemy, Alembic, Flask) are imported inside the commands that
need them, so that `migplan --help` stays instant.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import click

from migplan import __version__
from migplan.errors import ChangesPending
from migplan.errors import MigplanError
from migplan.errors import Problems
from migplan.errors import Refused
from migplan.errors import describe

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.fleet import MemberResult
    from migplan.core.planner import Plan
    from migplan.core.results import ApplyResult
    from migplan.core.results import Progress
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

EXIT_INTERNAL = 3


class MigplanGroup(click.Group):
    """Where exit codes are decided, from exceptions: a MigplanError prints its
    line(s) on stderr and exits with its code (1; 2 for changes pending); any
    other exception is a bug: one line and exit 3 (the traceback with
    MIGPLAN_DEBUG=1). Usage errors (2) and Ctrl-C stay click's own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except MigplanError as err:
            for line in err.lines():
                click.echo(f"Error: {line}", err=True)
            ctx.exit(err.exit_code)
        except Exception as err:
            if os.environ.get("MIGPLAN_DEBUG"):
                raise
            click.echo(f"Error: internal error: {describe(err)}", err=True)
            ctx.exit(EXIT_INTERNAL)


@dataclass
class State:
    """What every command shares: where migplan.yaml is, loaded on first use."""

    config_path: str | None = None
    _project: Project | None = field(default=None, repr=False)

    @property
    def project(self) -> Project:
        if self._project is None:
            from migplan.project import config

            self._project = config.load_config(self.config_path)
        return self._project


pass_state = click.make_pass_decorator(State, ensure=True)

env_argument = click.argument("env_name", metavar="[ENV]", required=False)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
yes_option = click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask for confirmation (needed for protected environments without a terminal).",
)
database_option = click.option(
    "--database",
    "database_name",
    metavar="NAME",
    default=None,
    help="In a fleet, the one database to work on (its name, or part of it).",
)
shard_option = click.option(
    "--shard",
    metavar="I/N",
    default=None,
    help="In a fleet, only the I-th of N shards of its databases (for parallel runners).",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="How long to wait for another migplan's lock (default: the environment's lock_timeout, 300).",
)


@click.group(cls=MigplanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    envvar="MIGPLAN_CONFIG",
    help="migplan.yaml to use (default: $MIGPLAN_CONFIG, else ./migplan.yaml).",
)
@click.version_option(__version__, prog_name="migplan")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Plan and apply Alembic migrations per environment, from migplan.yaml."""
    ctx.obj = State(config_path)


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

        fleet_plan = fleet.plan(project, env, shard=_shard(shard))
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
    shown, url = _one(env, database_name)
    plan = planning.plan(project, env, url=url)
    if out:
        _save_plan(plan, url, Path(out))
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


def _one(env: Environment, database_name: str | None) -> tuple[str, DatabaseURL]:
    """(name to show, URL) of the database a single-database command works on:
    the environment's, or in a fleet the one --database names."""
    if database_name is None:
        return env.url.display, env.url
    from migplan.service import membership

    member = membership.select(env, database_name)
    return member.name, member.url


def _shard(text: str | None) -> tuple[int, int] | None:
    from migplan.core.fleet import parse_shard

    return None if text is None else parse_shard(text)


def _save_plan(plan: Plan, url: DatabaseURL, path: Path) -> None:
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
@database_option
@shard_option
@lock_timeout_option
@pass_state
def apply_command(
    state: State,
    env_name: str | None,
    yes: bool,
    plan_file: str | None,
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
        if plan_file:
            raise click.UsageError("--plan works on one database: add --database NAME")
        _apply_fleet(project, env, _shard(shard), yes, lock_timeout)
        return
    shown, url = _one(env, database_name)
    if plan_file:
        from migplan.service import saved

        plan = saved.load(Path(plan_file), project, env, url)
    else:
        from migplan.service import planning

        plan = planning.plan(project, env, url=url)
    click.echo(render.plan_text(plan, shown))
    if plan.up_to_date:
        return
    _confirm(env, "apply", yes)
    result = execution.apply(
        project,
        env,
        project.graph,
        plan,
        replan=plan_file is None,
        progress=_progress_printer(),
        on_wait=_say,
        lock_timeout=lock_timeout,
        url=url,
    )
    _finish(result)


def _apply_fleet(
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
    _confirm(env, "apply", yes)
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


def _finish(result: ApplyResult) -> None:
    from migplan import render

    if not result.ok:
        from migplan.errors import MigrationFailed

        raise MigrationFailed(result.failure_message())
    click.echo(render.apply_outcome(result))


def _confirm(env: Environment, action: str, yes: bool) -> None:
    if not env.protected or yes:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Refused(f"environment {env.name!r} is protected; pass --yes to {action}")
    typed = click.prompt(
        f"{env.name!r} is protected. Type its name to {action}",
        default="",
        show_default=False,
    )
    if typed != env.name:
        raise Refused(f"{action} cancelled: {typed!r} is not {env.name!r}")


def _say(message: str) -> None:
    click.echo(message, err=True)


def _progress_printer() -> Callable[[Progress], None]:
    """On a terminal, one line per step, rewritten as it ends; elsewhere (logs),
    a line as each step starts and a short one as it ends."""
    from migplan import render

    live = sys.stdout.isatty()

    def show(event: Progress) -> None:
        if event.event == "start":
            click.echo(render.progress_line(event), nl=not live)
        elif live:
            click.echo("\r\033[K" + render.progress_line(event))
        else:
            click.echo(render.progress_line(event, short=True))

    return show


# -- rollback --------------------------------------------------------------------


@cli.command("rollback")
@env_argument
@click.option("--to", "to", metavar="REV", help="Revision to go back to (or 'base').")
@click.option(
    "--steps", type=click.IntRange(min=1), help="Number of migrations to undo."
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

    if (to is None) == (steps is None):
        raise click.UsageError("give exactly one of --to REV or --steps N")
    project = state.project
    env = project.environment(env_name)
    graph = project.graph
    shown, url = _one(env, database_name)
    plan = planning.rollback_plan(project, env, to=to, steps=steps, url=url)
    click.echo(render.plan_json(plan) if as_json else render.plan_text(plan, shown))
    violations = policy.check_rollback(plan, env)
    if violations:
        raise PolicyViolation(policy.refusal(violations, "rollback"))
    if dry_run or plan.up_to_date:
        return
    _confirm(env, "roll back", yes)
    result = execution.apply(
        project,
        env,
        graph,
        plan,
        action="rollback",
        replan=False,
        progress=_progress_printer(),
        on_wait=_say,
        lock_timeout=lock_timeout,
        url=url,
    )
    _finish(result)


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

    project = state.project
    env = project.environment(env_name)
    targets = _databases(env, database_name)
    trails, failed = _each(
        targets,
        lambda url: audit.read_runs(url, project.tables, limit=limit),
    )
    if as_json:
        shaped = {name: [r.to_dict() for r in runs] for name, runs in trails.items()}
        many = env.is_fleet and database_name is None
        if shaped or not failed:
            click.echo(
                json.dumps(shaped if many else next(iter(shaped.values())), indent=2)
            )
    else:
        for name, runs in trails.items():
            if len(targets) > 1:
                click.echo(f"== {name}")
            click.echo(render.log_text(runs))
    _report_failures(failed, len(targets))


def _databases(
    env: Environment, database_name: str | None
) -> list[tuple[str, DatabaseURL]]:
    """(name, URL) of each database a per-database command looks at: every one of
    a fleet, unless --database picks one."""
    if env.is_fleet and database_name is None:
        from migplan.service import membership

        return [(m.name, m.url) for m in membership.members(env)]
    return [_one(env, database_name)]


def _each(
    databases: list[tuple[str, DatabaseURL]], read: Callable[[DatabaseURL], T]
) -> tuple[dict[str, T], dict[str, str]]:
    """Read each database; one that fails gives its error, the others go on."""
    found: dict[str, T] = {}
    failed: dict[str, str] = {}
    for name, url in databases:
        try:
            found[name] = read(url)
        except MigplanError as err:
            failed[name] = str(err)
    return found, failed


def _report_failures(failed: dict[str, str], total: int) -> None:
    if len(failed) == total == 1:
        raise MigplanError(next(iter(failed.values())))
    for name, error in failed.items():
        click.echo(f"Error: {name}: {error}", err=True)
    if failed:
        raise MigplanError(f"{len(failed)} of {total} databases could not be read")


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
    _confirm(env, "resolve", yes)
    run, heads = execution.resolve(
        project,
        env,
        project.graph,
        outcome,  # type: ignore[arg-type]
        on_wait=_say,
        lock_timeout=lock_timeout,
        url=_one(env, database_name)[1],
    )
    click.echo(
        f"Resolved {run.dirty_direction} {run.dirty_revision} as {outcome}; "
        f"{env.name} is at {render.heads(heads)}."
    )


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

    project = state.project
    env = project.environment(env_name)
    targets = _databases(env, database_name)
    found, failed = _each(targets, lambda url: drift.environment_drift(project, url))
    if as_json:
        shaped = {name: [d.to_dict() for d in diffs] for name, diffs in found.items()}
        many = env.is_fleet and database_name is None
        if shaped or not failed:
            click.echo(
                json.dumps(shaped if many else next(iter(shaped.values())), indent=2)
            )
    for name, differences in found.items() if not as_json else ():
        label = env.name if len(targets) == 1 and not env.is_fleet else name
        if differences:
            click.echo(f"{label}: the database differs from the models:")
            for difference in differences:
                click.echo(f"  {difference}")
        else:
            click.echo(f"{label}: the database matches the models.")
    _report_failures(failed, len(targets))
    if any(found.values()):
        raise ChangesPending()


@cli.command("verify")
@click.option(
    "--url",
    default=None,
    help="An empty throwaway database to use instead of a temporary SQLite file.",
)
@click.option(
    "--env",
    "-e",
    "env_name",
    default=None,
    help="Environment whose settings to use (default: default_env).",
)
@pass_state
def verify_command(state: State, url: str | None, env_name: str | None) -> None:
    """Prove every downgrade on a scratch database: upgrade, downgrade, upgrade again."""
    from migplan import render
    from migplan.service import verify

    project = state.project
    env = project.environment(env_name)
    report = verify.verify(
        project,
        env,
        url=None if url is None else env.resolve_url(url),
        progress=lambda what: click.echo(f"checking {what}", err=True),
    )
    click.echo(render.verify_text(report))
    if not report.ok:
        raise MigplanError(f"verify found {len(report.problems)} problem(s)")


# -- promote / graph -------------------------------------------------------------


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


@cli.command("graph")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ascii", "mermaid", "dot"]),
    default="ascii",
    show_default=True,
    help="A terminal drawing, Mermaid (pull requests, docs) or Graphviz DOT.",
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
@pass_state
def graph_command(state: State, fmt: str, collapse: int, no_databases: bool) -> None:
    """Draw the revision graph, with each environment's current and target marked."""
    from migplan.render import graphview
    from migplan.service import planning

    project = state.project
    markers, errors = ([], []) if no_databases else planning.positions(project)
    for error in errors:
        click.echo(f"warning: {error}", err=True)
    draw = {
        "ascii": graphview.ascii_graph,
        "mermaid": graphview.mermaid,
        "dot": graphview.dot,
    }
    click.echo(draw[fmt](project.graph, markers, collapse=collapse).rstrip("\n"))


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
    from migplan.service import status

    rows = status.collect(state.project, drift=with_drift)
    click.echo(
        json.dumps([r.to_dict() for r in rows], indent=2)
        if as_json
        else render.status_text(rows)
    )


@cli.command("validate")
@click.option(
    "--env",
    "-e",
    "env_name",
    help="Also check this environment's database (read-only).",
)
@pass_state
def validate_command(state: State, env_name: str | None) -> None:
    """Check migplan.yaml and that every target resolves, without touching databases."""
    from migplan.service import validate

    problems = validate.check(state.config_path, env_name)
    if problems:
        raise Problems(problems)
    click.echo("migplan.yaml is valid; every target resolves.")


# -- db: the Flask-Migrate command set ----------------------------------------------

directory_option = click.option(
    "-d",
    "--directory",
    default=None,
    help='Migration script directory (default: "migrations" in migplan.yaml).',
)
db_env_option = click.option(
    "-e",
    "--env",
    "env_name",
    default=None,
    help="Environment whose database to use (default: default_env).",
)


def _db_options_decorator(f: F) -> F:
    return db_env_option(directory_option(f))


x_arg_option = click.option(
    "-x",
    "--x-arg",
    multiple=True,
    help="Additional arguments consumed by custom env.py scripts.",
)
sql_option = click.option(
    "--sql",
    is_flag=True,
    help="Don't emit SQL to database - dump to standard output instead.",
)
tag_option = click.option(
    "--tag",
    default=None,
    help='Arbitrary "tag" name - can be used by custom env.py scripts.',
)
rev_id_option = click.option(
    "--rev-id",
    default=None,
    help="Specify a hardcoded revision id instead of generating one.",
)
branch_label_option = click.option(
    "--branch-label",
    default=None,
    help="Specify a branch label to apply to the new revision.",
)


@dataclass(frozen=True)
class DbOptions:
    """Options given to `migplan db` itself, before the subcommand."""

    env_name: str | None = None
    directory: str | None = None
    x_arg: tuple[str, ...] = ()


def _db_options() -> DbOptions:
    found = click.get_current_context().meta.get("migplan.db")
    return found if isinstance(found, DbOptions) else DbOptions()


def _db(
    state: State, env_name: str | None, directory: str | None
) -> tuple[Project, Environment, str | None]:
    """Return the project, the environment and the directory a db command runs on."""
    options = _db_options()
    project = state.project
    env = project.environment(env_name or options.env_name)
    return project, env, directory or options.directory


def _x(x_arg: tuple[str, ...]) -> tuple[str, ...]:
    return _db_options().x_arg + x_arg


@cli.group("db", cls=MigplanGroup)
@db_env_option
@directory_option
@x_arg_option
@click.pass_context
def db_group(
    ctx: click.Context,
    env_name: str | None,
    directory: str | None,
    x_arg: tuple[str, ...],
) -> None:
    """Perform database migrations (the Flask-Migrate `db` commands)."""
    ctx.meta["migplan.db"] = DbOptions(env_name, directory, x_arg)


@db_group.command("list-templates")
def db_list_templates_command() -> None:
    """List available templates."""
    from migplan.db import dbcommands

    click.echo("Available templates:\n")
    for name, synopsis in dbcommands.list_templates():
        click.echo(f"{name} - {synopsis}")


@db_group.command("init")
@directory_option
@click.option("--multidb", is_flag=True, help="Support multiple databases.")
@click.option(
    "-t",
    "--template",
    default=None,
    help='Repository template to use (default is "migplan").',
)
@click.option(
    "--package",
    is_flag=True,
    help="Write empty __init__.py files to the environment and version locations.",
)
@pass_state
def db_init_command(
    state: State,
    directory: str | None,
    multidb: bool,
    template: str | None,
    package: bool,
) -> None:
    """Creates a new migration repository (and a starter migplan.yaml if none exists)."""
    from migplan.db import dbcommands
    from migplan.project import config

    directory = directory or _db_options().directory
    config_file = Path(
        state.config_path or os.environ.get(config.CONFIG_ENV_VAR) or config.CONFIG_NAME
    )
    if config_file.is_dir():
        config_file = config_file / config.CONFIG_NAME
    if directory is not None:
        migrations = Path(directory)
    elif config_file.exists():
        migrations = state.project.migrations
    else:
        migrations = config_file.parent / "migrations"
    dbcommands.init(migrations, multidb=multidb, template=template, package=package)
    if dbcommands.write_starter_config(config_file, migrations):
        click.echo(
            f"Wrote {config_file}: edit its environments, then run 'migplan plan'."
        )
    # Alembic's init just said to edit alembic.ini's connection settings
    click.echo("With migplan, each environment's database URL is in migplan.yaml.")


def _revision_options(f: F) -> F:
    for option in reversed(
        [
            click.option("-m", "--message", default=None, help="Revision message"),
            sql_option,
            click.option(
                "--head",
                default="head",
                help="Specify head revision or <branchname>@head to base new revision on",
            ),
            click.option(
                "--splice",
                is_flag=True,
                help='Allow a non-head revision as the "head" to splice onto',
            ),
            branch_label_option,
            click.option(
                "--version-path",
                default=None,
                help="Specify specific path from config for version file",
            ),
            rev_id_option,
            click.option(
                "--depends-on",
                default=None,
                help="Specify one or more revision identifiers which this revision should depend on",
            ),
        ]
    ):
        f = option(f)
    return f


@db_group.command("revision")
@_db_options_decorator
@_revision_options
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Populate revision script with candidate migration operations, based on comparison of database to model",
)
@x_arg_option
@pass_state
def db_revision_command(
    state: State,
    /,
    env_name: str | None,
    directory: str | None,
    autogenerate: bool,
    x_arg: tuple[str, ...],
    **options: Any,
) -> None:
    """Create a new revision file."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.revision(
        project,
        env,
        autogenerate=autogenerate,
        x_arg=_x(x_arg),
        directory=directory,
        **options,
    )


@db_group.command("migrate")
@_db_options_decorator
@_revision_options
@x_arg_option
@pass_state
def db_migrate_command(
    state: State,
    /,
    env_name: str | None,
    directory: str | None,
    x_arg: tuple[str, ...],
    **options: Any,
) -> None:
    """Autogenerate a new revision file (Alias for 'revision --autogenerate')."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.revision(
        project, env, autogenerate=True, x_arg=_x(x_arg), directory=directory, **options
    )


@db_group.command("edit")
@_db_options_decorator
@click.argument("revision", default="head")
@pass_state
def db_edit_command(
    state: State, env_name: str | None, directory: str | None, revision: str
) -> None:
    """Edit a revision file."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.edit(project, env, revision, directory=directory)


@db_group.command("merge")
@_db_options_decorator
@click.option("-m", "--message", default=None, help="Merge revision message")
@branch_label_option
@rev_id_option
@click.argument("revisions", nargs=-1)
@pass_state
def db_merge_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    message: str | None,
    branch_label: str | None,
    rev_id: str | None,
    revisions: tuple[str, ...],
) -> None:
    """Merge two revisions together, creating a new revision file."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.merge(
        project,
        env,
        revisions,
        message=message,
        branch_label=branch_label,
        rev_id=rev_id,
        directory=directory,
    )


@db_group.command("upgrade")
@_db_options_decorator
@sql_option
@tag_option
@x_arg_option
@click.argument("revision", default="head")
@pass_state
def db_upgrade_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    sql: bool,
    tag: str | None,
    x_arg: tuple[str, ...],
    revision: str,
) -> None:
    """Upgrade to a later version."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.upgrade(
        project, env, revision, sql=sql, tag=tag, x_arg=_x(x_arg), directory=directory
    )


@db_group.command("downgrade")
@_db_options_decorator
@sql_option
@tag_option
@x_arg_option
@click.argument("revision", default="-1")
@pass_state
def db_downgrade_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    sql: bool,
    tag: str | None,
    x_arg: tuple[str, ...],
    revision: str,
) -> None:
    """Revert to a previous version."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.downgrade(
        project, env, revision, sql=sql, tag=tag, x_arg=_x(x_arg), directory=directory
    )


@db_group.command("show")
@_db_options_decorator
@click.argument("revision", default="head")
@pass_state
def db_show_command(
    state: State, env_name: str | None, directory: str | None, revision: str
) -> None:
    """Show the revision denoted by the given symbol."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.show(project, env, revision, directory=directory)


@db_group.command("history")
@_db_options_decorator
@click.option(
    "-r",
    "--rev-range",
    default=None,
    help="Specify a revision range; format is [start]:[end]",
)
@click.option("-v", "--verbose", is_flag=True, help="Use more verbose output")
@click.option("-i", "--indicate-current", is_flag=True, help="Indicate current version")
@pass_state
def db_history_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    rev_range: str | None,
    verbose: bool,
    indicate_current: bool,
) -> None:
    """List changeset scripts in chronological order."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.history(
        project,
        env,
        rev_range=rev_range,
        verbose=verbose,
        indicate_current=indicate_current,
        directory=directory,
    )


@db_group.command("heads")
@_db_options_decorator
@click.option("-v", "--verbose", is_flag=True, help="Use more verbose output")
@click.option(
    "--resolve-dependencies",
    is_flag=True,
    help="Treat dependency versions as down revisions",
)
@pass_state
def db_heads_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    verbose: bool,
    resolve_dependencies: bool,
) -> None:
    """Show current available heads in the script directory."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.heads(
        project,
        env,
        verbose=verbose,
        resolve_dependencies=resolve_dependencies,
        directory=directory,
    )


@db_group.command("branches")
@_db_options_decorator
@click.option("-v", "--verbose", is_flag=True, help="Use more verbose output")
@pass_state
def db_branches_command(
    state: State, env_name: str | None, directory: str | None, verbose: bool
) -> None:
    """Show current branch points."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.branches(project, env, verbose=verbose, directory=directory)


@db_group.command("current")
@_db_options_decorator
@click.option("-v", "--verbose", is_flag=True, help="Use more verbose output")
@pass_state
def db_current_command(
    state: State, env_name: str | None, directory: str | None, verbose: bool
) -> None:
    """Display the current revision for each database."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.current(project, env, verbose=verbose, directory=directory)


@db_group.command("stamp")
@_db_options_decorator
@sql_option
@tag_option
@click.option(
    "--purge",
    is_flag=True,
    help="Delete the version in the alembic_version table before stamping",
)
@click.argument("revision", default="head")
@pass_state
def db_stamp_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    sql: bool,
    tag: str | None,
    purge: bool,
    revision: str,
) -> None:
    """'stamp' the revision table with the given revision; don't run any migrations."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.stamp(
        project, env, revision, sql=sql, tag=tag, purge=purge, directory=directory
    )


@db_group.command("check")
@_db_options_decorator
@pass_state
def db_check_command(state: State, env_name: str | None, directory: str | None) -> None:
    """Check if there are any new operations to migrate."""
    from migplan.db import dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.check(project, env, directory=directory)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="migplan")
