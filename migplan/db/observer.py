"""Watching the migrations Alembic runs: each one timed, reported, and recorded in
the audit trail - marked before it runs where DDL is not transactional, recorded
as done inside its own transaction once its version update is made.

The same observer watches migplan's planned steps (`executor.run_steps`) and the
steps Alembic's own commands compute (`migplan db upgrade` and friends): whichever
path a migration takes, it is recorded the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from migplan.core import planner
from migplan.core.results import Progress
from migplan.core.results import ProgressFn
from migplan.core.results import StepResult
from migplan.db.ddl import is_lock_timeout
from migplan.errors import describe

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.migration import RevisionStep
    from sqlalchemy.engine import Connection

    from migplan.core.graph import RevisionGraph
    from migplan.core.planner import Step
    from migplan.db.audit import AuditTrail
    from migplan.db.ddl import DdlGuard


class StepAborted(Exception):
    """A migration raised SystemExit or another BaseException: a failed step."""


class StepObserver:
    """Times, reports and records the migrations of one run."""

    def __init__(
        self,
        graph: RevisionGraph,
        *,
        progress: ProgressFn | None = None,
        phase: Literal["apply", "revert"] = "apply",
        trail: AuditTrail | None = None,
        steps: dict[tuple[str, bool], Step] | None = None,
        guard: DdlGuard | None = None,
        inspect: Callable[[Connection], tuple[tuple[str, str], ...]] | None = None,
    ) -> None:
        self.graph = graph
        self.guard = guard
        self.inspect = inspect
        self.progress = progress
        self.phase = phase
        self.trail = trail
        self._steps = steps or {}
        self.done: list[StepResult] = []
        self.failed: list[StepResult] = []
        self.running: list[tuple[int, int, Step, float, AuditTrail | None]] = []
        """(index, total, step, started, trail) of the migration running now."""

    def step(self, revision: str, is_upgrade: bool) -> Step:
        """migplan's Step for a revision run in one direction."""
        found = self._steps.get((revision, is_upgrade))
        return found or planner.step(self.graph, revision, is_upgrade)

    def watch(
        self, migrations: list[RevisionStep], connection: Connection
    ) -> list[RevisionStep]:
        """Wrap each migration of a run (as Alembic's `fn` returns them), run on
        `connection`; return them."""
        runnable = [m for m in migrations if not getattr(m, "is_stamp", False)]
        # another database of a multi-database env.py has no audit trail of ours
        recorded = (
            self.trail is not None and connection.engine is self.trail.session.engine
        )
        for index, migration in enumerate(runnable, start=1):
            step = self.step(migration.revision.revision, migration.is_upgrade)
            migration.migration_fn = _Timed(
                self,
                index,
                len(runnable),
                step,
                migration.migration_fn,
                connection,
                recorded,
            )
        return migrations

    def run_timed(self, timed: _Timed, *args: Any, **kw: Any) -> None:
        """Run one migration's function: timed, reported, recorded."""
        guard, trail, step = self.guard, timed.trail, timed.step
        index, total, connection = timed.index, timed.total, timed.connection
        if trail is not None:
            trail.step_started(connection, step, self.phase)
        if guard is not None:
            guard.migration_started(connection)
        self._report(Progress("start", index, total, step, phase=self.phase))
        started = time.perf_counter()
        self.running.append((index, total, step, started, trail))
        try:
            timed.migration_fn(*args, **kw)
        except BaseException as err:
            self.running.pop()
            seconds = time.perf_counter() - started
            error = describe(err)
            retryable = False
            if guard is not None and is_lock_timeout(err):
                retryable = guard.safe_to_retry
                if guard.blockers:
                    first = guard.blockers[0]
                    error += (
                        f" (waiting for a lock on {first.relation or 'a table'} "
                        f"held by {', '.join(map(str, guard.blockers[:3]))})"
                    )
            self.failed.append(StepResult(step, seconds, error, retryable))
            if trail is not None:
                trail.step_failed(seconds, "lock timeout" if retryable else "failed")
            self._report(Progress("failed", index, total, step, seconds, self.phase))
            if isinstance(err, (Exception, KeyboardInterrupt)):
                raise
            # SystemExit and the like: a failed step, rolled back as any other
            raise StepAborted(describe(err)) from err
        finally:
            if guard is not None:
                guard.migration_ended()

    def version_applied(self, ctx: MigrationContext, **_: Any) -> None:
        """Alembic's on_version_apply: the version table is updated and the
        migration's transaction not yet committed; record the step in it."""
        if not self.running:
            return  # a stamp: nothing ran
        index, total, step, started, trail = self.running.pop()
        seconds = time.perf_counter() - started
        assert ctx.connection is not None
        if trail is not None:
            trail.step_done(ctx.connection, seconds)
        locks = self.inspect(ctx.connection) if self.inspect is not None else ()
        self.done.append(StepResult(step, seconds, locks=locks))
        self._report(Progress("done", index, total, step, seconds, self.phase))

    def blame(self, err: BaseException) -> None:
        """Alembic raised outside a migration function: charge it to the step it
        happened in, if one (its version update or its COMMIT failed)."""
        if self.failed:
            return
        if self.running:
            # the migration ran, then its version update failed
            _, _, step, started, _ = self.running.pop()
            seconds = time.perf_counter() - started
            self.failed.append(StepResult(step, seconds, describe(err)))
        elif self.done:
            # the last migration was recorded, then its COMMIT failed
            last = self.done.pop()
            self.failed.append(StepResult(last.step, last.seconds, describe(err)))

    def _report(self, event: Progress) -> None:
        if self.progress is not None:
            self.progress(event)


class _Timed:
    """A migration's function as the observer runs it. One per migration of a
    run, all made before the first runs: a few slots each, not a closure. Alembic
    names the step by the function's ``__name__`` (upgrade, downgrade)."""

    __slots__ = (
        "__name__",
        "connection",
        "index",
        "migration_fn",
        "observer",
        "step",
        "total",
        "trail",
    )

    def __init__(
        self,
        observer: StepObserver,
        index: int,
        total: int,
        step: Step,
        migration_fn: Callable[..., None],
        connection: Connection,
        recorded: bool,
    ) -> None:
        self.observer = observer
        self.index = index
        self.total = total
        self.step = step
        self.migration_fn = migration_fn
        self.connection = connection
        self.trail = observer.trail if recorded else None
        self.__name__ = migration_fn.__name__

    def __call__(self, *args: Any, **kw: Any) -> None:
        self.observer.run_timed(self, *args, **kw)
