"""Run a Plan through Alembic: the project's env.py, migplan's connection, exactly
the planned steps, one transaction per migration where the database allows it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError

from migplan.core import planner
from migplan.core import policy
from migplan.core.planner import Plan
from migplan.core.planner import Step
from migplan.core.results import ApplyResult
from migplan.core.results import Progress
from migplan.core.results import ProgressFn
from migplan.core.results import RunResult
from migplan.core.results import StepResult
from migplan.core.runs import Run
from migplan.core.runs import dirty_run
from migplan.core.url import TRANSACTIONAL_DDL
from migplan.core.url import DatabaseURL
from migplan.db import appload
from migplan.db import audit
from migplan.db import database
from migplan.db import locking
from migplan.db import scripts
from migplan.errors import ConfigError
from migplan.errors import DirtyDatabase
from migplan.errors import MigplanError
from migplan.errors import PolicyViolation
from migplan.errors import RevisionGraphError
from migplan.errors import StalePlan
from migplan.errors import mask

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.migration import RevisionStep
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

    from migplan.core.environment import Environment
    from migplan.core.revisions import Heads
    from migplan.core.revisions import RevisionGraph
    from migplan.project.config import Project


class _MigplanEnvironment(EnvironmentContext):
    """Alembic's EnvironmentContext, holding env.py to migplan's terms.

    Whatever env.py connects to, the migrations run on migplan's connection to
    the environment's URL, with one transaction per migration.
    """

    def __init__(
        self,
        config: Any,
        script: Any,
        *,
        engine: Engine,
        project: Project,
        output_buffer: io.StringIO | None = None,
        on_step_end: Callable[[], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(config, script, **kw)
        self._engine = engine
        self._project = project
        self._output_buffer = output_buffer
        self._on_step_end = on_step_end
        self._connection: Connection | None = None
        self._configured = False

    def configure(  # type: ignore[override]
        self,
        connection: Connection | None = None,
        url: Any = None,
        **kw: Any,
    ) -> None:
        if self._configured:
            raise ConfigError(
                "env.py configures more than one database (a multi-database "
                "template); run it with 'migplan db upgrade' instead"
            )
        self._configured = True
        version_table = kw.get("version_table", "alembic_version")
        version_schema = kw.get("version_table_schema")
        if (version_table, version_schema) != (
            self._project.version_table,
            self._project.version_table_schema,
        ):
            raise ConfigError(
                f"env.py uses version table {_qualified(version_table, version_schema)!r} "
                f"but migplan.yaml says {_qualified(self._project.version_table, self._project.version_table_schema)!r}; "
                "set version_table (and version_table_schema) in migplan.yaml"
            )
        if self.is_offline_mode():
            connection, url = None, self._engine.url
            kw["output_buffer"] = self._output_buffer
        elif connection is None or connection.engine is not self._engine:
            connection = self._connect()
        kw["transaction_per_migration"] = True
        if self._engine.dialect.name in TRANSACTIONAL_DDL:
            kw["transactional_ddl"] = True
        if self._on_step_end is not None:
            callbacks = kw.get("on_version_apply") or []
            callbacks = (
                list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
            )
            on_step_end = self._on_step_end
            kw["on_version_apply"] = [*callbacks, lambda **_: on_step_end()]
        # migplan reports each step itself; Alembic's INFO lines would repeat it
        logging.getLogger("alembic").setLevel(logging.WARNING)
        super().configure(connection=connection, url=url, **kw)

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# `alembic.context` proxies to the running EnvironmentContext; let it proxy to
# this subclass the same way (the proxy set-up is keyed by class)
_MigplanEnvironment._setups[_MigplanEnvironment] = EnvironmentContext._setups[
    EnvironmentContext
]


def _qualified(table: str, schema: str | None) -> str:
    return f"{schema}.{table}" if schema else table


def load_modules(graph: RevisionGraph, steps: Sequence[Step]) -> None:
    """Import every module a plan runs, so that a broken file fails before any runs."""
    for step in steps:
        script = graph.map.get_revision(step.revision)
        try:
            module = script.module  # type: ignore[union-attr]
        except Exception as err:  # a revision file may raise anything on import
            raise RevisionGraphError(
                f"{graph.relative_path(step.revision)}: cannot import: "
                f"{type(err).__name__}: {err}"
            ) from err
        if not callable(getattr(module, step.direction, None)):
            raise RevisionGraphError(
                f"{graph.relative_path(step.revision)}: has no {step.direction}() function"
            )


def run_steps(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    current: Heads,
    steps: Sequence[Step],
    *,
    progress: ProgressFn | None = None,
    phase: Literal["apply", "revert"] = "apply",
    url: DatabaseURL | None = None,
) -> RunResult:
    """Run `steps` through the project's env.py, starting from `current`.

    Every step is its own transaction (where DDL is transactional): a failure
    leaves the steps before it committed and nothing of the failed one.
    """
    if not steps:
        return RunResult()
    load_modules(graph, steps)
    url = url or env.url
    config = scripts.alembic_config(project, url)
    script = graph.script_directory(config)
    done: list[StepResult] = []
    failed: list[StepResult] = []
    total = len(steps)

    def timed(
        index: int, step: Step, migration_fn: Callable[..., None]
    ) -> Callable[..., None]:
        def run(*args: Any, **kw: Any) -> None:
            if progress:
                progress(Progress("start", index, total, step, phase=phase))
            started = time.perf_counter()
            try:
                migration_fn(*args, **kw)
            except BaseException as err:
                seconds = time.perf_counter() - started
                failed.append(StepResult(step, seconds, _describe(err)))
                if progress:
                    progress(Progress("failed", index, total, step, seconds, phase))
                raise
            seconds = time.perf_counter() - started
            done.append(StepResult(step, seconds))
            if progress:
                progress(Progress("done", index, total, step, seconds, phase))

        return run

    def fn(heads: Sequence[str], context: MigrationContext) -> list[RevisionStep]:
        # re-checked inside Alembic, on the connection that will run the steps
        if tuple(sorted(heads)) != tuple(sorted(current)):
            raise StalePlan(
                f"the database is at {_heads(heads)}, not {_heads(current)} as planned"
            )
        out = []
        for index, step in enumerate(steps, start=1):
            migration = graph.migration_step(
                step.revision, step.is_upgrade, runnable=True
            )
            migration.migration_fn = timed(index, step, migration.migration_fn)
            out.append(migration)
        return out

    engine = database.create_engine(url)
    if engine.dialect.name == "postgresql":
        _commit_without_waiting(engine)
    try:
        with _alembic_log_level_kept():
            with appload.app_context(project, engine) as app:
                config.attributes["target_metadata"] = appload.target_metadata(
                    project, app
                )
                environment = _MigplanEnvironment(
                    config, script, engine=engine, project=project, fn=fn
                )
                config.attributes["connection"] = environment._connect()
                try:
                    with environment:
                        script.run_env()
                finally:
                    environment.close()
    except Exception as err:
        if not failed and done:
            # the last migration ran, then its version update or COMMIT failed
            last = done.pop()
            failed.append(StepResult(last.step, last.seconds, _describe(err)))
        if not failed:
            if isinstance(err, MigplanError):
                raise
            # env.py itself failed, before any migration ran
            raise MigplanError(f"env.py failed: {_describe(err)}") from err
    finally:
        engine.dispose()
    return RunResult(tuple(done), failed[0] if failed else None)


def _commit_without_waiting(engine: Engine) -> None:
    """Let each migration's COMMIT return before its WAL reaches the disk.

    Every migration is still one transaction, atomic and consistent with the
    version table; a server crash during the run can only lose the last few
    migrations whole, as if they had not run yet. The audit trail's final
    (synchronous) commit then makes every migration of the run durable: WAL is
    flushed in order. One fsync per run, not one per migration.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _asynchronous_commit(dbapi_connection: Any, record: object) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
        dbapi_connection.commit()


def _describe(err: BaseException) -> str:
    orig = getattr(err, "orig", None)
    if orig is not None:
        return database.reason(err)
    if isinstance(err, CommandError):
        return mask(str(err))
    text = str(err).strip().splitlines()
    return mask(f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": "))


def _heads(heads: Sequence[str]) -> str:
    return ", ".join(sorted(heads)) or "base"


@contextmanager
def _alembic_log_level_kept() -> Iterator[None]:
    """Put Alembic's log level back after a run: migplan's environment quiets it
    while env.py runs (and env.py's fileConfig may have changed it)."""
    logger = logging.getLogger("alembic")
    level = logger.level
    try:
        yield
    finally:
        logger.setLevel(level)


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
    run = run_steps(
        project, env, graph, plan.current, plan.steps, progress=progress, url=url
    )
    heads = database.read_heads(url, project.tables)
    if run.failed is None:
        return ApplyResult(plan, run.done, heads)
    dirty = not url.transactional_ddl
    if env.on_failure != "rollback" or not run.done or dirty:
        return ApplyResult(plan, run.done, heads, run.failed, dirty=dirty)
    undo = [r.step.inverse() for r in reversed(run.done)]
    revert = run_steps(
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
            moved = f"the database moved from {_heads(plan.current)} to {_heads(heads)}"
            if not replan:
                raise StalePlan(f"{moved} since the plan was made; make a new plan")
            fresh = planner.make_plan(
                graph,
                heads,
                plan.target,
                environment=plan.environment,
                dialect=url.dialect,
            )
            if not _is_suffix(fresh.steps, plan.steps):
                raise StalePlan(
                    f"{moved} since the plan was shown; run the command again"
                )
            plan = fresh
        if plan.up_to_date:
            return ApplyResult(plan, (), heads)
        verdict = audit.verdict(project, env, plan, url, action=action, locked=True)
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
                after = _safe_heads(project, url)
                trail.finish("failed", after or heads, error=_describe(err))
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


def _safe_heads(project: Project, url: DatabaseURL) -> Heads | None:
    try:
        return database.read_heads(url, project.tables)
    except MigplanError:
        return None


def _is_suffix(steps: Sequence[Step], of: Sequence[Step]) -> bool:
    key = [(s.revision, s.direction) for s in steps]
    whole = [(s.revision, s.direction) for s in of]
    return not key or whole[len(whole) - len(key) :] == key


def render_sql(
    project: Project,
    env: Environment,
    graph: RevisionGraph,
    plan: Plan,
    *,
    url: DatabaseURL | None = None,
) -> list[str]:
    """Return the SQL of each step, as Alembic's offline (--sql) mode writes it."""
    if not plan.steps:
        return []
    load_modules(graph, plan.steps)
    url = url or env.url
    config = scripts.alembic_config(project, url)
    script = graph.script_directory(config)
    buffer = io.StringIO()
    ends: list[int] = []

    def fn(heads: Sequence[str], context: MigrationContext) -> list[RevisionStep]:
        return [
            graph.migration_step(step.revision, step.is_upgrade, runnable=True)
            for step in plan.steps
        ]

    engine = database.create_engine(url)
    try:
        with _alembic_log_level_kept(), appload.app_context(project, engine) as app:
            config.attributes["target_metadata"] = appload.target_metadata(project, app)
            environment = _MigplanEnvironment(
                config,
                script,
                engine=engine,
                project=project,
                fn=fn,
                as_sql=True,
                starting_rev=list(plan.current) or None,
                destination_rev=" ".join(plan.target),
                output_buffer=buffer,
                on_step_end=lambda: ends.append(buffer.tell()),
            )
            with environment:
                script.run_env()
    except MigplanError:
        raise
    except Exception as err:
        raise MigplanError(f"rendering SQL failed: {_describe(err)}") from err
    finally:
        engine.dispose()
    text = buffer.getvalue()
    bounds = [0, *ends[:-1], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


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
