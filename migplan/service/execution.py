"""The use cases that change a database: apply a plan and resolve a dirty database.

Everything happens in one session (db.session): the lock, the re-read of the
version table, the preflight's audit runs, every migration and its audit record.
A run stops in one of four ways, each with a known outcome, recorded and said:
it finishes; a step fails (stop, or revert where `on_failure: rollback`); it is
interrupted (Ctrl-C, SIGTERM: the running migration is rolled back where DDL is
transactional, left dirty where not); its connection dies (the lock with it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migplan.core import planner
from migplan.core import policy
from migplan.core.planner import Plan
from migplan.core.planner import Step
from migplan.core.results import ApplyResult
from migplan.core.results import Progress
from migplan.core.results import ProgressFn
from migplan.core.results import RunResult
from migplan.core.results import StepResult
from migplan.core.results import heads_text
from migplan.core.runs import Run
from migplan.core.runs import dirty_run
from migplan.db import audit
from migplan.db import checkpoints as loading
from migplan.db import database
from migplan.db import locking
from migplan.db import session as sessions
from migplan.db.ddl import DdlGuard
from migplan.errors import DatabaseError
from migplan.errors import DirtyDatabase
from migplan.errors import Interrupted
from migplan.errors import MigplanError
from migplan.errors import PolicyViolation
from migplan.errors import StalePlan
from migplan.errors import describe
from migplan.service import checkpoints
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.graph import RevisionGraph
    from migplan.core.revisions import Heads
    from migplan.core.url import DatabaseURL
    from migplan.db.audit import AuditTrail
    from migplan.db.session import Session
    from migplan.project.config import Project


def apply(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    *,
    action: str = "apply",
    replan: bool = True,
    progress: ProgressFn | None = None,
    on_wait: locking.WaitFn | None = None,
    lock_timeout: float | None = None,
    url: DatabaseURL | None = None,
    on_failure: str | None = None,
    runner: Runner | None = None,
) -> ApplyResult:
    """Take the migration lock, check the database is where `plan` starts, run it,
    and record the run in the audit trail.

    If another process moved the database meanwhile, a computed plan (`replan`)
    is made again, and runs only if it is what is left of the plan that was
    shown; a saved plan is refused. A dirty database is refused. `runner` runs
    the plan instead of migplan's executor (Alembic's own commands, for `db`).

    :raises Interrupted: Ctrl-C or SIGTERM stopped the run; the message says where
        the database is.
    """
    url = url or env.url
    # revision files are imported before the lock is taken, so that no session
    # waits while they load; one that fails is the preflight's to refuse
    if not all(step.is_checkpoint for step in plan.steps):
        # Alembic: not loaded where only a checkpoint is
        from migplan.db import executor

        with contextlib.suppress(MigplanError):
            executor.load_modules(graph, plan.steps)
    with _session(project, env, url, lock_timeout, on_wait) as session:
        # re-read under the lock: another deploy may have moved the heads
        heads = session.read_heads()
        if heads != plan.current:
            moved = (
                f"the database moved from {heads_text(plan.current)} to "
                f"{heads_text(heads)}"
            )
            if not replan:
                raise StalePlan(f"{moved} since the plan was made; make a new plan")
            fresh = planning.describe(
                project, planner.route(graph, heads, plan.target), plan.environment, url
            )
            if not _is_suffix(fresh.steps, plan.steps):
                raise StalePlan(
                    f"{moved} since the plan was shown; run the command again"
                )
            plan = fresh
        if plan.up_to_date:
            return ApplyResult(plan, (), heads)
        verdict = planning.preflight(
            project,
            env,
            plan,
            url,
            action=action,
            locked=True,
            runs=audit.read_runs_on(session.connection, project.tables),
            imports=True,
        )
        if verdict.refusals:
            first = verdict.refusals[0]
            error = DirtyDatabase if first.rule == "dirty" else PolicyViolation
            raise error(policy.refusal(list(verdict.refusals), action))
        if runner is None and plan.steps[0].is_checkpoint:
            runner = _checkpoint_runner(project, env, graph, plan, session, on_wait)
        # nothing was written before this point: a refusal leaves the database as
        # it was
        trail = audit.AuditTrail(session, environment=env.name, action=action)
        trail.prepare()
        trail.start(plan)
        return _run(
            project,
            env,
            graph,
            plan,
            session,
            trail,
            progress,
            on_failure,
            runner,
            on_wait,
        )


def _run(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    session: Session,
    trail: AuditTrail,
    progress: ProgressFn | None,
    on_failure: str | None,
    runner: Runner | None,
    notify: locking.WaitFn | None = None,
) -> ApplyResult:
    """Run the plan in the session and close the audit row, whatever happens."""
    try:
        result = _apply_plan(
            project,
            env,
            graph,
            plan,
            session,
            trail,
            progress,
            on_failure,
            runner,
            notify,
        )
    except KeyboardInterrupt as err:
        raise _interrupted(env, plan, session, trail, err) from err
    except BaseException as err:
        # env.py or the connection failed outside any migration
        _close(trail, "failed", _heads_or(session, plan.current), describe(err))
        raise
    audit_error = _close(
        trail,
        result.outcome,
        result.heads,
        result.failed.error if result.failed else None,
    )
    if audit_error is not None:
        # every committed step is in the audit trail; only the row's end is not
        result = dataclasses.replace(
            result, heads=_heads_or(session, result.heads), audit_error=audit_error
        )
    return result


def _apply_plan(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    session: Session,
    trail: AuditTrail,
    progress: ProgressFn | None,
    on_failure: str | None,
    runner: Runner | None,
    notify: locking.WaitFn | None = None,
) -> ApplyResult:
    """Run a plan; on failure, stop or revert as the environment says."""
    if runner is not None:
        run = runner(session, trail, progress)
    else:
        run = _with_lock_retries(
            project, env, graph, plan, session, trail, progress, notify
        )
    heads = _heads_now(session)
    if heads is None:
        raise DatabaseError(
            f"{session.url}: the connection was lost and the database cannot be "
            "read again to say where it is"
        )
    if run.failed is None:
        return ApplyResult(plan, run.done, heads)
    if not session.url.transactional_ddl and trail.is_dirty():
        # half-applied: nothing more runs on top of it until it is resolved
        return ApplyResult(plan, run.done, heads, run.failed, dirty=True)
    if (on_failure or env.on_failure) != "rollback" or not run.done:
        return ApplyResult(plan, run.done, heads, run.failed)
    if run.done[0].step.is_checkpoint:
        # below a checkpoint, the real downgrades of what it loaded
        back = planner.route(graph, heads, plan.current or ("base",))
        undo = list(planning.describe(project, back, env.name, session.url).steps)
    else:
        undo = [r.step.inverse() for r in reversed(run.done)]
    from migplan.db import executor

    revert = executor.run_steps(
        project,
        graph,
        heads,
        undo,
        session=session,
        progress=progress,
        phase="revert",
        trail=trail,
    )
    heads = _heads_or(session, heads)
    return ApplyResult(plan, run.done, heads, run.failed, revert.done, revert.failed)


def _checkpoint_runner(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    session: Session,
    notify: locking.WaitFn | None,
) -> Runner:
    """Run a plan that starts from a checkpoint: its file read and the database
    found empty under the lock, before anything is written (else StalePlan)."""
    first = plan.steps[0]
    target = loading.target_schema(session.connection)
    found, statements = checkpoints.statements_for(
        project, first.path, first.checksum, target
    )
    loading.require_empty(session.connection, project.tables)

    covers = dict(found.covers)
    total = len(plan.steps)

    def run(
        session: Session, trail: AuditTrail, progress: ProgressFn | None
    ) -> RunResult:
        # one transaction: its schema and rows, the version table at its
        # revision, its audit record; then the rest of the plan
        if progress is not None:
            progress(Progress("start", 1, total, first))
        loaded = loading.load(session, first, statements, trail, covers)
        if progress is not None:
            ended = Progress("done", 1, total, first, loaded.seconds)
            if loaded.error:
                ended = dataclasses.replace(ended, event="failed")
            progress(ended)
        if loaded.error is not None:
            return RunResult((), loaded)
        if total == 1:
            return RunResult((loaded,))

        def numbered(event: Progress) -> None:
            # the steps after it, numbered as the plan shows them
            assert progress is not None
            progress(dataclasses.replace(event, index=event.index + 1, total=total))

        rest = dataclasses.replace(
            plan, current=(first.revision,), steps=plan.steps[1:]
        )
        done = _with_lock_retries(
            project,
            env,
            graph,
            rest,
            session,
            trail,
            numbered if progress is not None else None,
            notify,
        )
        return RunResult((loaded, *done.done), done.failed)

    return run


def _with_lock_retries(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    session: Session,
    trail: AuditTrail,
    progress: ProgressFn | None,
    notify: locking.WaitFn | None,
) -> RunResult:
    """Run the plan's steps; a migration whose lock wait timed out (ddl:
    lock_timeout) and left nothing behind is rolled back, waited for (growing,
    jittered) and tried again, up to ddl.retries times; the rest then go on."""
    from migplan.db import executor

    policy = env.ddl
    if policy.lock_timeout is None and policy.statement_timeout is None:
        return executor.run_steps(
            project,
            graph,
            plan.current,
            plan.steps,
            session=session,
            progress=progress,
            trail=trail,
        )
    guard = DdlGuard(session, policy)
    try:
        guard.prepare()
        done: list[StepResult] = []
        steps = list(plan.steps)
        heads = plan.current
        attempt = 0
        while True:
            run = executor.run_steps(
                project,
                graph,
                heads,
                steps,
                session=session,
                progress=progress,
                trail=trail,
                guard=guard,
            )
            done += run.done
            failed = run.failed
            if failed is None or not failed.retryable or attempt >= policy.retries:
                if failed is not None and failed.retryable:
                    trail.clear_mark()  # it changed nothing: not dirty
                return RunResult(tuple(done), failed)
            attempt += 1
            trail.clear_mark()
            wait = policy.wait(attempt, random.uniform(0.5, 1.5))
            if notify is not None:
                notify(
                    f"{failed.step.revision}: {failed.error}; retry "
                    f"{attempt}/{policy.retries} in {wait:.1f} s"
                )
            time.sleep(wait)
            steps = steps[len(run.done) :]
            heads = session.read_heads()
    finally:
        guard.close()


def _interrupted(
    env: Environment,
    plan: Plan,
    session: Session,
    trail: AuditTrail,
    err: KeyboardInterrupt,
) -> Interrupted:
    """Close the run as interrupted, and say where the database is."""
    name = Interrupted.signal_name(err)
    heads = _heads_now(session)
    where = heads_text(heads) if heads is not None else "unknown (cannot read it)"
    unfinished = trail.unfinished()
    _close(trail, "interrupted", heads or plan.current, f"interrupted by {name}")
    message = f"interrupted by {name}"
    if unfinished is not None:
        step = f"{unfinished['direction']} {unfinished['revision']}"
        message += f" during {step}"
        if session.url.transactional_ddl:
            message += f", which was rolled back; {env.name} is at {where}"
        elif trail.is_dirty():
            message += (
                f"; the database may be left half-way through {step} (its DDL is "
                f"not transactional) and the version table says {where}: fix the "
                f"schema, then run 'migplan resolve {env.name} --as applied' or "
                "'--as reverted'"
            )
        else:
            message += f", before it changed anything; {env.name} is at {where}"
    else:
        message += f"; {env.name} is at {where}"
    return Interrupted(message, terminated=name == "SIGTERM")


def _close(
    trail: AuditTrail, outcome: str, heads: Heads, error: str | None
) -> str | None:
    """Close the audit row; return why it could not be closed, if it could not."""
    try:
        trail.finish(outcome, heads, error=error)
    except MigplanError as err:
        return str(err)
    return None


def _heads_now(session: Session) -> Heads | None:
    """Where the database is: read on the session, else on a new connection (the
    session's may be dead), else None."""
    try:
        return session.read_heads()
    except MigplanError:
        pass
    try:
        return database.read_heads(session.url, session.tables)
    except MigplanError:
        return None


def _heads_or(session: Session, known: Heads) -> Heads:
    """Where the database is now, else the last heads known (base, (), is a place)."""
    now = _heads_now(session)
    return known if now is None else now


Runner = Callable[["Session", "AuditTrail", "ProgressFn | None"], RunResult]
"""Runs a plan in a session, recording each step in the trail."""


@contextmanager
def session(
    project: Project,
    env: Environment,
    url: DatabaseURL,
    *,
    lock_timeout: float | None = None,
    on_wait: locking.WaitFn | None = None,
) -> Iterator[Session]:
    """A session on `url` with the migration lock held (see db.session)."""
    with _session(project, env, url, lock_timeout, on_wait) as found:
        yield found


@contextmanager
def _session(
    project: Project,
    env: Environment,
    url: DatabaseURL,
    lock_timeout: float | None,
    on_wait: locking.WaitFn | None,
) -> Iterator[Session]:
    """The run's session; an interruption while it opens changes nothing."""
    try:
        with sessions.open_session(
            url,
            project.tables,
            timeout=env.lock_timeout if lock_timeout is None else lock_timeout,
            on_wait=on_wait,
        ) as session:
            yield session
    except KeyboardInterrupt as err:
        # while waiting for the lock or before the run started
        raise Interrupted(
            f"interrupted by {Interrupted.signal_name(err)} before any migration "
            "ran; nothing was changed",
            terminated=Interrupted.signal_name(err) == "SIGTERM",
        ) from err


def _is_suffix(steps: Sequence[Step], of: Sequence[Step]) -> bool:
    key = [(s.revision, s.direction) for s in steps]
    whole = [(s.revision, s.direction) for s in of]
    return not key or whole[len(whole) - len(key) :] == key


def resolve(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    outcome: str,
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
    with _session(project, env, url, lock_timeout, on_wait) as session:
        runs = audit.read_runs_on(session.connection, project.tables)
        heads = session.read_heads()
        dirty = dirty_run(runs, graph, heads)
        if dirty is None or dirty.dirty_revision is None:
            raise MigplanError(
                f"{env.name}: the database is not dirty; nothing to resolve"
            )
        if outcome == "applied":
            planner.check_current(graph, heads)
            if dirty.dirty_revision not in graph:
                raise MigplanError(
                    f"revision {dirty.dirty_revision} no longer exists; resolve --as "
                    "reverted"
                )
            # a half-loaded checkpoint, completed by hand, is at its revision
            step = (dirty.dirty_revision, dirty.dirty_direction != "downgrade")
            heads = graph.heads_after(heads, [step])
            session.write_heads(heads)
        audit.mark_resolved(session.connection, project.tables, dirty.id)
        return dirty, heads
