"""`migplan db ...`: one function per Alembic command, run against an environment.

Each builds the environment's Alembic Config (URL from migplan.yaml), pushes the
project's Flask app context when there is an app (its engine bound to that URL),
and calls `alembic.command.<name>`. Nothing more: the behaviour is Alembic's and
Flask-Migrate's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command

from migplan import compat
from migplan.db import appload
from migplan.db import database
from migplan.db import executor
from migplan.db import scripts
from migplan.errors import MigplanError
from migplan.errors import foreign

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

    from migplan.core.environment import Environment
    from migplan.db.observer import StepObserver
    from migplan.db.session import Session
    from migplan.project.config import Project

MIGPLAN_TEMPLATES = ("migplan", "migplan-multidb")


@contextmanager
def _environment(
    project: Project,
    env: Environment,
    *,
    online: bool = False,
    x_arg: Sequence[str] = (),
    autogenerate: bool = False,
    directory: str | None = None,
    session: Session | None = None,
    observer: StepObserver | None = None,
) -> Iterator[Config]:
    """Yield the Alembic Config of `env`, with app context and connection ready.

    env.py runs in migplan's EnvironmentContext (lenient: a multi-database env.py
    may configure several databases): whatever it connects to, the environment's
    database is the one it works on, on the `session`'s connection when the
    command changes the database (it holds the migration lock).
    """
    if directory is not None:
        project = replace(project, migrations=Path(directory).absolute())
    # migplan reads the revision files first: a duplicate id, a dangling
    # down_revision or an unreadable folder is one line, not Alembic's warning
    # and KeyError
    project.graph  # noqa: B018
    options = argparse.Namespace(x=list(x_arg), autogenerate=autogenerate)
    config = scripts.alembic_config(
        project, env.url, cmd_opts=options, stdout=sys.stdout
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(_translate_errors())
        connection: Connection | None
        if session is not None:
            engine, connection = session.engine, session.connection
        else:
            engine = database.create_engine(env.url, single=True)
            stack.callback(engine.dispose)
            connection = stack.enter_context(_connect(engine)) if online else None
        app = stack.enter_context(appload.app_context(project, engine, env.bind_urls()))
        config.attributes["target_metadata"] = appload.target_metadata(project, app)
        config.attributes["migplan.tables"] = project.tables.own
        if connection is not None:
            config.attributes["connection"] = connection
        stack.enter_context(
            compat.environment_class(
                functools.partial(
                    executor.MigplanEnvironment,
                    engine=engine,
                    connection=connection,
                    project=project,
                    lenient=True,
                    observer=observer,
                )
            )
        )
        yield config


@contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection
        executor.settle(connection)


@contextmanager
def _translate_errors() -> Iterator[None]:
    """What Alembic, the database or the project's own code raises, as one line."""
    try:
        yield
    except MigplanError:
        raise
    except Exception as err:
        raise foreign(err) from err


def list_templates() -> list[tuple[str, str]]:
    """Return (name, synopsis) of every template `init` accepts."""
    from alembic.config import Config

    found = []
    for folder in (scripts.TEMPLATES, Path(Config().get_template_directory())):
        for template in sorted(folder.iterdir()):
            readme = template / "README"
            if readme.is_file():
                found.append(
                    (template.name, readme.read_text().splitlines()[0].strip())
                )
    return found


def init(
    directory: Path,
    *,
    multidb: bool = False,
    template: str | None = None,
    package: bool = False,
) -> None:
    """Create a migrations folder from a template (default: migplan's)."""
    from alembic.config import Config

    template = template or ("migplan-multidb" if multidb else "migplan")
    config = scripts.MigplanConfig(stdout=sys.stdout)
    if template in MIGPLAN_TEMPLATES:
        config.attributes["migplan.templates"] = scripts.TEMPLATES
    elif not (Path(Config().get_template_directory()) / template).is_dir():
        names = ", ".join(name for name, _ in list_templates())
        raise MigplanError(f"unknown template {template!r} (known: {names})")
    config.set_main_option("script_location", str(directory))
    config.config_file_name = str(directory / "alembic.ini")
    with _translate_errors():
        command.init(config, str(directory), template=template, package=package)


STARTER_CONFIG = """\
# migplan.yaml: each environment's database, target revision and policies.
# Reference: schemas/migplan.schema.json in migplan's repository.
migrations: {migrations}
{app_line}
default_env: dev
environments:
  dev:
    url: sqlite:///dev.db
    target: head
  # prod:
  #   url: ${{PROD_DATABASE_URL}}      # read from the environment, never printed
  #   target: head
  #   protected: true
  #   on_failure: rollback
  #   rollback: {{allowed: true, max_steps: 1, allow_destructive: false}}
"""


def write_starter_config(path: Path, migrations: Path) -> bool:
    """Write a starter migplan.yaml unless one exists; return whether it wrote."""
    if path.exists():
        return False
    flask_app = os.environ.get("FLASK_APP")
    app_line = (
        f"app: {flask_app}"
        if flask_app
        else "# app: app:create_app   # your Flask app or factory"
    )
    try:
        relative = migrations.absolute().relative_to(path.absolute().parent).as_posix()
    except ValueError:
        relative = str(migrations.absolute())
    path.write_text(
        STARTER_CONFIG.format(migrations=relative, app_line=app_line), "utf-8"
    )
    return True


def revision(
    project: Project,
    env: Environment,
    *,
    message: str | None = None,
    autogenerate: bool = False,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    depends_on: str | None = None,
    x_arg: Sequence[str] = (),
    directory: str | None = None,
) -> None:
    """Create a new revision file (compared with the database if `autogenerate`)."""
    with _environment(
        project,
        env,
        online=autogenerate and not sql,
        x_arg=x_arg,
        autogenerate=autogenerate,
        directory=directory,
    ) as config:
        command.revision(
            config,
            message,
            autogenerate=autogenerate,
            sql=sql,
            head=head,
            splice=splice,
            branch_label=branch_label,
            version_path=version_path,
            rev_id=rev_id,
            depends_on=depends_on,
        )


def edit(
    project: Project, env: Environment, rev: str = "head", directory: str | None = None
) -> None:
    """Open a revision file in $EDITOR."""
    with _environment(project, env, directory=directory) as config:
        command.edit(config, rev)


def merge(
    project: Project,
    env: Environment,
    revs: Sequence[str],
    *,
    message: str | None = None,
    branch_label: str | None = None,
    rev_id: str | None = None,
    directory: str | None = None,
) -> None:
    """Write a revision that merges `revs` (default: all heads)."""
    with _environment(project, env, directory=directory) as config:
        command.merge(
            config,
            list(revs) or "heads",
            message=message,
            branch_label=branch_label,
            rev_id=rev_id,
        )


def upgrade(
    project: Project,
    env: Environment,
    rev: str = "head",
    *,
    sql: bool = False,
    tag: str | None = None,
    x_arg: Sequence[str] = (),
    directory: str | None = None,
    session: Session | None = None,
    observer: StepObserver | None = None,
) -> None:
    """Upgrade to a later revision, as `flask db upgrade` (online: in `session`)."""
    with _environment(
        project,
        env,
        online=not sql,
        x_arg=x_arg,
        directory=directory,
        session=session,
        observer=observer,
    ) as config:
        command.upgrade(config, rev, sql=sql, tag=tag)


def downgrade(
    project: Project,
    env: Environment,
    rev: str = "-1",
    *,
    sql: bool = False,
    tag: str | None = None,
    x_arg: Sequence[str] = (),
    directory: str | None = None,
    session: Session | None = None,
    observer: StepObserver | None = None,
) -> None:
    """Revert to an earlier revision, as `flask db downgrade` (online: in
    `session`)."""
    if sql and rev == "-1":
        rev = "head:-1"
    with _environment(
        project,
        env,
        online=not sql,
        x_arg=x_arg,
        directory=directory,
        session=session,
        observer=observer,
    ) as config:
        command.downgrade(config, rev, sql=sql, tag=tag)


def show(
    project: Project, env: Environment, rev: str = "head", directory: str | None = None
) -> None:
    """Show a revision."""
    with _environment(project, env, directory=directory) as config:
        command.show(config, rev)


def history(
    project: Project,
    env: Environment,
    *,
    rev_range: str | None = None,
    verbose: bool = False,
    indicate_current: bool = False,
    directory: str | None = None,
) -> None:
    """List revisions, newest first."""
    with _environment(
        project, env, online=indicate_current, directory=directory
    ) as config:
        command.history(
            config, rev_range, verbose=verbose, indicate_current=indicate_current
        )


def heads(
    project: Project,
    env: Environment,
    *,
    verbose: bool = False,
    resolve_dependencies: bool = False,
    directory: str | None = None,
) -> None:
    """Show the heads of the revision graph."""
    with _environment(project, env, directory=directory) as config:
        command.heads(
            config, verbose=verbose, resolve_dependencies=resolve_dependencies
        )


def branches(
    project: Project,
    env: Environment,
    *,
    verbose: bool = False,
    directory: str | None = None,
) -> None:
    """Show the branch points of the revision graph."""
    with _environment(project, env, directory=directory) as config:
        command.branches(config, verbose=verbose)


def current(
    project: Project,
    env: Environment,
    *,
    verbose: bool = False,
    directory: str | None = None,
) -> None:
    """Show the database's current revision(s)."""
    with _environment(project, env, online=True, directory=directory) as config:
        command.current(config, verbose=verbose)


def stamp(
    project: Project,
    env: Environment,
    rev: str = "head",
    *,
    sql: bool = False,
    tag: str | None = None,
    purge: bool = False,
    directory: str | None = None,
    session: Session | None = None,
) -> None:
    """Write `rev` into the version table without running migrations (online: in
    `session`)."""
    with _environment(
        project, env, online=not sql, directory=directory, session=session
    ) as config:
        command.stamp(config, rev, sql=sql, tag=tag, purge=purge)


def check(project: Project, env: Environment, directory: str | None = None) -> None:
    """Fail if autogenerate would write a new revision."""
    with _environment(project, env, online=True, directory=directory) as config:
        command.check(config)
