"""The use cases that change a database: apply a plan (lock, re-read, preflight,
audit, run, stop or revert on failure) and resolve a dirty database."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Literal

from migplan.core import planner
from migplan.core import policy
from migplan.core.planner import Plan
from migplan.core.planner import Step
from migplan.core.results import ApplyResult
from migplan.core.results import Progress
from migplan.core.results import ProgressFn
from migplan.core.results import heads_text
from migplan.core.runs import Run
from migplan.core.runs import dirty_run
from migplan.db import audit
from migplan.db import database
from migplan.db import executor
from migplan.db import locking
from migplan.errors import DirtyDatabase
from migplan.errors import MigplanError
from migplan.errors import PolicyViolation
from migplan.errors import StalePlan
from migplan.errors import describe
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.graph import RevisionGraph
    from migplan.core.revisions import Heads
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project


def apply_plan(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    *,
    progress: ProgressFn | None = None,
    url: DatabaseURL | None = None,
) -> ApplyResult:
    """Run a plan; on failure, stop or revert as the environment says.

    The caller holds the migration lock and has checked that the database is at
    `plan.current`.
    """
    url = url or env.url
    run = executor.run_steps(
        project, env, graph, plan.current, plan.steps, progress=progress, url=url
    )
    heads = database.read_heads(url, project.tables)
    if run.failed is None:
        return ApplyResult(plan, run.done, heads)
    dirty = not url.transactional_ddl
    if env.on_failure != "rollback" or not run.done or dirty:
        return ApplyResult(plan, run.done, heads, run.failed, dirty=dirty)
    undo = [r.step.inverse() for r in reversed(run.done)]
    revert = executor.run_steps(
        project, env, graph, heads, undo, progress=progress, phase="revert", url=url
    )
    heads = database.read_heads(url, project.tables)
    return ApplyResult(plan, run.done, heads, run.failed, revert.done, revert.failed)


def apply(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    *,
    action: Literal["apply", "rollback"] = "apply",
    replan: bool = True,
    progress: ProgressFn | None = None,
    on_wait: locking.WaitFn | None = None,
    lock_timeout: float | None = None,
    url: DatabaseURL | None = None,
) -> ApplyResult:
    """Take the migration lock, check the database is where `plan` starts, run it,
    and record the run in the audit trail.

    If another process moved the database meanwhile, a computed plan (`replan`)
    is made again, and runs only if it is what is left of the plan that was
    shown; a saved plan is refused. A dirty database is refused.
    """
    url = url or env.url
    with _migration_lock(project, env, url, lock_timeout, on_wait):
        # re-read under the lock: another deploy may have moved the heads
        heads = database.read_heads(url, project.tables)
        if heads != plan.current:
            moved = f"the database moved from {heads_text(plan.current)} to {heads_text(heads)}"
            if not replan:
                raise StalePlan(f"{moved} since the plan was made; make a new plan")
            fresh = planning.describe(
                project,
                planner.route(graph, heads, plan.target),
                plan.environment,
                url,
            )
            if not _is_suffix(fresh.steps, plan.steps):
                raise StalePlan(
                    f"{moved} since the plan was shown; run the command again"
                )
            plan = fresh
        if plan.up_to_date:
            return ApplyResult(plan, (), heads)
        verdict = planning.preflight(
            project, env, plan, url, action=action, locked=True
        )
        if verdict.refusals:
            first = verdict.refusals[0]
            error = DirtyDatabase if first.rule == "dirty" else PolicyViolation
            raise error(policy.refusal(list(verdict.refusals), action))
        transactional = url.transactional_ddl
        with audit.AuditTrail(
            url,
            project.tables,
            environment=env.name,
            action=action,
            track_steps=not transactional,
        ) as trail:
            trail.interrupted_runs()
            trail.start(plan)

            def observe(event: Progress) -> None:
                trail.observe(event)
                if progress:
                    progress(event)

            try:
                result = apply_plan(
                    project, env, graph, plan, progress=observe, url=url
                )
            except BaseException as err:
                # env.py or the connection failed outside any migration
                after = _safeheads_text(project, url)
                trail.finish("failed", after or heads, error=describe(err))
                raise
            trail.finish(
                result.outcome,
                result.heads,
                error=result.failed.error if result.failed else None,
                dirty=result.failed if result.dirty else None,
            )
        return result


def _migration_lock(
    project: Project,
    env: Environment,
    url: DatabaseURL,
    lock_timeout: float | None,
    on_wait: locking.WaitFn | None,
) -> contextlib.AbstractContextManager[None]:
    return locking.migration_lock(
        url,
        project.tables,
        timeout=env.lock_timeout if lock_timeout is None else lock_timeout,
        on_wait=on_wait,
    )


def _safeheads_text(project: Project, url: DatabaseURL) -> Heads | None:
    try:
        return database.read_heads(url, project.tables)
    except MigplanError:
        return None


def _is_suffix(steps: Sequence[Step], of: Sequence[Step]) -> bool:
    key = [(s.revision, s.direction) for s in steps]
    whole = [(s.revision, s.direction) for s in of]
    return not key or whole[len(whole) - len(key) :] == key


def resolve(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    outcome: Literal["applied", "reverted"],
    *,
    on_wait: locking.WaitFn | None = None,
    lock_timeout: float | None = None,
    url: DatabaseURL | None = None,
) -> tuple[Run, Heads]:
    """Settle a dirty database: the half-applied migration is now `outcome`.

    `applied`: the schema was completed by hand, so the version table moves past
    the migration. `reverted`: the schema was put back by hand, so the version
    table, which never moved, stays. Returns the dirty run and the heads now.
    """
    url = url or env.url
    with _migration_lock(project, env, url, lock_timeout, on_wait):
        runs = audit.read_runs(url, project.tables)
        heads = database.read_heads(url, project.tables)
        dirty = dirty_run(runs, graph, heads)
        if dirty is None or dirty.dirty_revision is None:
            raise MigplanError(
                f"{env.name}: the database is not dirty; nothing to resolve"
            )
        if outcome == "applied":
            planner.check_current(graph, heads)
            if dirty.dirty_revision not in graph:
                raise MigplanError(
                    f"revision {dirty.dirty_revision} no longer exists; resolve --as reverted"
                )
            step = (dirty.dirty_revision, dirty.dirty_direction == "upgrade")
            heads = graph.heads_after(heads, [step])
            database.write_heads(url, heads, project.tables)
        audit.mark_resolved(url, project.tables, dirty.id)
        return dirty, heads
