"""`migplan apply ENV --rehearse`: the whole plan run against the real database in
one transaction, then rolled back - how long each step takes and which locks it
takes, before the real deploy. Only where DDL is transactional (PostgreSQL,
SQLite): elsewhere each DDL statement commits, and a rehearsal would change the
database.

The version table, the schema and the rows are as they were afterwards; the audit
trail gets one row saying a rehearsal ran (outcome `rehearsed`), never an apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migplan.core import policy
from migplan.core.planner import Plan
from migplan.core.results import ProgressFn
from migplan.core.results import Rehearsal
from migplan.core.results import heads_text
from migplan.db import audit
from migplan.db import executor
from migplan.db import locking
from migplan.db.ddl import DdlGuard
from migplan.db.ddl import LockWatch
from migplan.errors import MigplanError
from migplan.errors import PolicyViolation
from migplan.errors import StalePlan
from migplan.service import execution
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.graph import RevisionGraph
    from migplan.core.url import DatabaseURL
    from migplan.db.session import Session
    from migplan.project.config import Project


def rehearse(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    *,
    progress: ProgressFn | None = None,
    on_wait: locking.WaitFn | None = None,
    lock_timeout: float | None = None,
    url: DatabaseURL | None = None,
) -> Rehearsal:
    """Run `plan` in one transaction on the database, under the migration lock, and
    roll it back; return what each step did."""
    url = url or env.url
    if any(step.is_checkpoint for step in plan.steps):
        raise MigplanError(
            "this plan loads a checkpoint, which a rehearsal cannot roll back "
            "step by step; rehearse the replay with --no-checkpoint"
        )
    if not url.transactional_ddl:
        raise MigplanError(
            f"a rehearsal needs transactional DDL (PostgreSQL, SQLite); on "
            f"{url.dialect} each DDL statement commits, so rehearsing would change "
            "the database"
        )
    with execution.session(
        project, env, url, lock_timeout=lock_timeout, on_wait=on_wait
    ) as session:
        heads = session.read_heads()
        if heads != plan.current:
            raise StalePlan(
                f"the database moved from {heads_text(plan.current)} to "
                f"{heads_text(heads)} since the plan was shown; run the command again"
            )
        verdict = planning.preflight(
            project,
            env,
            plan,
            url,
            locked=True,
            runs=audit.read_runs_on(session.connection, project.tables),
            imports=True,
        )
        if verdict.refusals:
            raise PolicyViolation(policy.refusal(list(verdict.refusals), "rehearsal"))
        guard = DdlGuard(session, env.ddl)
        inspect = LockWatch(url.dialect)
        connection = session.connection
        try:
            guard.prepare()
            outer = connection.begin()
            try:
                run = executor.run_steps(
                    project,
                    graph,
                    plan.current,
                    plan.steps,
                    session=session,
                    progress=progress,
                    guard=guard,
                    inspect=inspect,
                )
            finally:
                if outer.is_active:
                    outer.rollback()
        finally:
            guard.close()
        result = Rehearsal(plan, run.done, run.failed)
        _record(session, env, plan, result)
        return result


def _record(session: Session, env: Environment, plan: Plan, result: Rehearsal) -> None:
    """One audit row: a rehearsal ran, from and to where the database is."""
    trail = audit.AuditTrail(session, environment=env.name, action="rehearse")
    trail.prepare()
    trail.start(plan)
    trail.steps = [
        {
            "revision": r.step.revision,
            "direction": r.step.direction,
            "phase": "rehearse",
            "checksum": r.step.checksum,
            "outcome": "done",
            "seconds": round(r.seconds, 3),
            "locks": [list(lock) for lock in r.locks],
        }
        for r in result.done
    ]
    failed = result.failed
    trail.finish(
        "rehearsed" if failed is None else "rehearsal failed",
        plan.current,
        error=None if failed is None else failed.error,
    )
