"""`migplan db upgrade`, `downgrade` and `stamp`: Alembic's own commands, run as
apply runs - under the migration lock, on its session, refused on a dirty
database and by the environment's policy, each step recorded in the audit trail.

Alembic decides which migrations run, exactly as `flask db upgrade` would; migplan
plans the same steps beforehand only to check them (the differential tests prove
the two orders equal). With `--sql` nothing touches the database: Alembic's
offline mode, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from migplan.core import planner
from migplan.core.results import ApplyResult
from migplan.core.results import ProgressFn
from migplan.core.results import RunResult
from migplan.core.runs import dirty_run
from migplan.db import audit
from migplan.db import commands as dbcommands
from migplan.db import database
from migplan.db.observer import StepObserver
from migplan.errors import DirtyDatabase
from migplan.errors import MigplanError
from migplan.service import execution
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.revisions import Heads
    from migplan.db import locking
    from migplan.db.audit import AuditTrail
    from migplan.db.session import Session
    from migplan.project.config import Project

Command = Callable[..., None]


def upgrade(
    project: Project,
    env: Environment,
    revision: str = "head",
    *,
    tag: str | None = None,
    x_arg: Sequence[str] = (),
    directory: str | None = None,
    progress: ProgressFn | None = None,
    on_wait: locking.WaitFn | None = None,
    lock_timeout: float | None = None,
) -> ApplyResult:
    """Upgrade to a later revision, as `flask db upgrade`, under migplan's terms."""
    project = _with_directory(project, directory)
    graph = project.graph
    current = database.read_heads(env.url, project.tables)
    moves = tuple((r, True) for r in graph.upgrade_revisions((revision,), current))
    return _migrate(
        project,
        env,
        planner.Route(current, (revision,), moves),
        "db upgrade",
        dbcommands.upgrade,
        revision,
        tag=tag,
        x_arg=x_arg,
        progress=progress,
        on_wait=on_wait,
        lock_timeout=lock_timeout,
    )


def downgrade(
    project: Project,
    env: Environment,
    revision: str = "-1",
    *,
    tag: str | None = None,
    x_arg: Sequence[str] = (),
    directory: str | None = None,
    progress: ProgressFn | None = None,
    on_wait: locking.WaitFn | None = None,
    lock_timeout: float | None = None,
) -> ApplyResult:
    """Revert to an earlier revision, as `flask db downgrade`, within the
    environment's rollback policy."""
    project = _with_directory(project, directory)
    graph = project.graph
    current = database.read_heads(env.url, project.tables)
    moves = tuple((r, False) for r in graph.downgrade_revisions((revision,), current))
    return _migrate(
        project,
        env,
        planner.Route(current, (revision,), moves),
        "db downgrade",
        dbcommands.downgrade,
        revision,
        tag=tag,
        x_arg=x_arg,
        progress=progress,
        on_wait=on_wait,
        lock_timeout=lock_timeout,
    )


def _migrate(
    project: Project,
    env: Environment,
    route: planner.Route,
    action: str,
    command: Command,
    revision: str,
    *,
    tag: str | None,
    x_arg: Sequence[str],
    progress: ProgressFn | None,
    on_wait: locking.WaitFn | None,
    lock_timeout: float | None,
) -> ApplyResult:
    graph = project.graph
    plan = planning.describe(project, route, env.name, env.url)

    def run_alembic(
        session: Session, trail: AuditTrail, progress: ProgressFn | None
    ) -> RunResult:
        observer = StepObserver(graph, progress=progress, trail=trail)
        try:
            command(
                project,
                env,
                revision,
                tag=tag,
                x_arg=x_arg,
                session=session,
                observer=observer,
            )
        except MigplanError:
            if not observer.failed:
                raise
        failed = observer.failed
        return RunResult(tuple(observer.done), failed[0] if failed else None)

    return execution.apply(
        project,
        env,
        graph,
        plan,
        action=action,
        progress=progress,
        on_wait=on_wait,
        lock_timeout=lock_timeout,
        on_failure="stop",
        runner=run_alembic,
    )


def stamp(
    project: Project,
    env: Environment,
    revision: str = "head",
    *,
    purge: bool = False,
    tag: str | None = None,
    directory: str | None = None,
    on_wait: locking.WaitFn | None = None,
    lock_timeout: float | None = None,
) -> tuple[Heads, Heads]:
    """Write `revision` into the version table without running migrations, as
    `flask db stamp`; refused on a dirty database (`migplan resolve` settles
    that). Returns the heads before and after."""
    project = _with_directory(project, directory)
    graph = project.graph
    with execution.session(
        project, env, env.url, lock_timeout=lock_timeout, on_wait=on_wait
    ) as session:
        before = session.read_heads()
        dirty = dirty_run(
            audit.read_runs_on(session.connection, project.tables), graph, before
        )
        if dirty is not None:
            raise DirtyDatabase(f"stamp refused: {dirty.dirty_message()}")
        trail = audit.AuditTrail(session, environment=env.name, action="db stamp")
        trail.prepare()
        trail.start(planner.Plan(env.name, before, (revision,), before))
        try:
            dbcommands.stamp(
                project, env, revision, tag=tag, purge=purge, session=session
            )
        except BaseException as err:
            trail.finish("failed", session.read_heads(), error=str(err))
            raise
        after = session.read_heads()
        trail.finish("success", after)
        return before, after


def _with_directory(project: Project, directory: str | None) -> Project:
    if directory is None:
        return project
    return replace(project, migrations=Path(directory).absolute())
