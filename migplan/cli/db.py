"""`migplan db`: the Flask-Migrate command set, with the same names and options."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import click

from migplan.cli import complete
from migplan.cli import terminal
from migplan.cli.app import MigplanGroup
from migplan.cli.app import State
from migplan.cli.app import cli
from migplan.cli.app import pass_state
from migplan.cli.common import confirm
from migplan.cli.common import finish
from migplan.cli.common import say
from migplan.cli.options import lock_timeout_option
from migplan.cli.options import yes_option

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.project.config import Project

F = TypeVar("F", bound=Callable[..., Any])


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
    shell_complete=complete.environments,
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
    from migplan.db import commands as dbcommands

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
    from migplan.db import commands as dbcommands
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
        terminal.report(
            f"Wrote {config_file}: edit its environments, then run 'migplan plan'."
        )
    # Alembic's init just said to edit alembic.ini's connection settings
    terminal.report("With migplan, each environment's database URL is in migplan.yaml.")


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
    from migplan.db import commands as dbcommands

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
    from migplan.db import commands as dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.revision(
        project, env, autogenerate=True, x_arg=_x(x_arg), directory=directory, **options
    )


@db_group.command("edit")
@_db_options_decorator
@complete.revision_argument("head", "head")
@pass_state
def db_edit_command(
    state: State, env_name: str | None, directory: str | None, revision: str
) -> None:
    """Edit a revision file."""
    from migplan.db import commands as dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.edit(project, env, revision, directory=directory)


@db_group.command("merge")
@_db_options_decorator
@click.option("-m", "--message", default=None, help="Merge revision message")
@branch_label_option
@rev_id_option
@click.argument("revisions", nargs=-1, shell_complete=complete.revisions("heads"))
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
    from migplan.db import commands as dbcommands

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
@yes_option
@lock_timeout_option
@complete.revision_argument("head", "head", "heads")
@pass_state
def db_upgrade_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    sql: bool,
    tag: str | None,
    x_arg: tuple[str, ...],
    yes: bool,
    lock_timeout: float | None,
    revision: str,
) -> None:
    """Upgrade to a later version."""
    _migrate(
        state,
        "upgrade",
        env_name,
        directory,
        sql,
        tag,
        x_arg,
        yes,
        lock_timeout,
        revision,
    )


@db_group.command("downgrade")
@_db_options_decorator
@sql_option
@tag_option
@x_arg_option
@yes_option
@lock_timeout_option
@complete.revision_argument("-1", "base")
@pass_state
def db_downgrade_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    sql: bool,
    tag: str | None,
    x_arg: tuple[str, ...],
    yes: bool,
    lock_timeout: float | None,
    revision: str,
) -> None:
    """Revert to a previous version."""
    _migrate(
        state,
        "downgrade",
        env_name,
        directory,
        sql,
        tag,
        x_arg,
        yes,
        lock_timeout,
        revision,
    )


def _migrate(
    state: State,
    name: str,
    env_name: str | None,
    directory: str | None,
    sql: bool,
    tag: str | None,
    x_arg: tuple[str, ...],
    yes: bool,
    lock_timeout: float | None,
    revision: str,
) -> None:
    """`db upgrade` / `db downgrade`: Alembic's offline mode with --sql, else
    under the lock, recorded, as apply runs."""
    project, env, directory = _db(state, env_name, directory)
    if sql:
        from migplan.db import commands as dbcommands

        offline = dbcommands.upgrade if name == "upgrade" else dbcommands.downgrade
        offline(
            project,
            env,
            revision,
            sql=True,
            tag=tag,
            x_arg=_x(x_arg),
            directory=directory,
        )
        return
    from migplan.service import alembic_commands

    confirm(env, name, yes)
    run = alembic_commands.upgrade if name == "upgrade" else alembic_commands.downgrade
    finish(
        run(
            project,
            env,
            revision,
            tag=tag,
            x_arg=_x(x_arg),
            directory=directory,
            on_wait=say,
            lock_timeout=lock_timeout,
        ),
        quiet_when_done=True,
    )


@db_group.command("show")
@_db_options_decorator
@complete.revision_argument("head", "head", "base")
@pass_state
def db_show_command(
    state: State, env_name: str | None, directory: str | None, revision: str
) -> None:
    """Show the revision denoted by the given symbol."""
    from migplan.db import commands as dbcommands

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
    from migplan.db import commands as dbcommands

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
    from migplan.db import commands as dbcommands

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
    from migplan.db import commands as dbcommands

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
    from migplan.db import commands as dbcommands

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
@yes_option
@lock_timeout_option
@complete.revision_argument("head", "head", "heads", "base")
@pass_state
def db_stamp_command(
    state: State,
    env_name: str | None,
    directory: str | None,
    sql: bool,
    tag: str | None,
    purge: bool,
    yes: bool,
    lock_timeout: float | None,
    revision: str,
) -> None:
    """'stamp' the revision table with the given revision; don't run any migrations."""
    project, env, directory = _db(state, env_name, directory)
    if sql:
        from migplan.db import commands as dbcommands

        dbcommands.stamp(
            project, env, revision, sql=True, tag=tag, purge=purge, directory=directory
        )
        return
    from migplan import render
    from migplan.service import alembic_commands

    confirm(env, "stamp", yes)
    before, after = alembic_commands.stamp(
        project,
        env,
        revision,
        purge=purge,
        tag=tag,
        directory=directory,
        on_wait=say,
        lock_timeout=lock_timeout,
    )
    say(f"Stamped {env.name}: {render.heads(before)} -> {render.heads(after)}.")


@db_group.command("check")
@_db_options_decorator
@pass_state
def db_check_command(state: State, env_name: str | None, directory: str | None) -> None:
    """Check if there are any new operations to migrate."""
    from migplan.db import commands as dbcommands

    project, env, directory = _db(state, env_name, directory)
    dbcommands.check(project, env, directory=directory)
