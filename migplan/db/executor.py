"""Run a Plan through Alembic: the project's env.py, migplan's connection, exactly
the planned steps, one transaction per migration where the database allows it.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from alembic.runtime.environment import EnvironmentContext

from migplan import compat
from migplan.core.planner import Plan
from migplan.core.planner import Step
from migplan.core.policy import MULTIDB
from migplan.core.results import ProgressFn
from migplan.core.results import RunResult
from migplan.core.url import TRANSACTIONAL_DDL
from migplan.core.url import DatabaseURL
from migplan.db import appload
from migplan.db import database
from migplan.db import lending
from migplan.db import scripts
from migplan.db.audit import AuditTrail
from migplan.db.ddl import DdlGuard
from migplan.db.observer import StepObserver
from migplan.db.session import Session
from migplan.errors import ConfigError
from migplan.errors import MigplanError
from migplan.errors import RevisionGraphError
from migplan.errors import StalePlan
from migplan.errors import describe
from migplan.project import envpy

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.migration import RevisionStep
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

    from migplan.core.environment import Environment
    from migplan.core.graph import RevisionGraph
    from migplan.core.revisions import Heads
    from migplan.project.config import Project


class MigplanEnvironment(EnvironmentContext):
    """Alembic's EnvironmentContext, holding env.py to migplan's terms.

    Whatever env.py connects to, the migrations run on migplan's connection to
    the environment's URL, with one transaction per migration. Strict (apply,
    rollback, plan --sql): one database, in migplan.yaml's version table. Lenient
    (the `db` commands, Alembic's own behaviour): a multi-database env.py may
    configure several, and the first one is the environment's.
    """

    def __init__(
        self,
        config: Any,
        script: Any,
        *,
        engine: Engine,
        project: Project,
        connection: Connection | None = None,
        output_buffer: io.StringIO | None = None,
        on_step_end: Callable[..., None] | None = None,
        lenient: bool = False,
        observer: StepObserver | None = None,
        rehearsal: bool = False,
        **kw: Any,
    ) -> None:
        fn = kw.get("fn")
        if observer is not None and fn is not None:

            def observed(
                heads: Sequence[str], context: MigrationContext
            ) -> list[RevisionStep]:
                assert context.connection is not None
                return observer.watch(list(fn(heads, context)), context.connection)

            kw["fn"] = observed
            on_step_end = observer.version_applied
        super().__init__(config, script, **kw)
        self._lenient = lenient
        # a rehearsal runs in one transaction on the session's connection, which
        # env.py's own connections must not commit (they share it)
        self._rehearsal = rehearsal
        self._engine = engine
        self._project = project
        self._output_buffer = output_buffer
        self._on_step_end = on_step_end
        self._connection = connection
        self._configured = False
        self._lending: contextlib.ExitStack | None = None
        self._known: set[lending.Key] = set()

    def __enter__(self) -> MigplanEnvironment:
        entered = super().__enter__()
        if self._connection is not None:
            # env.py's engines for a database not migplan's borrow its connection
            self._known = lending.known_databases(self._engine.url, self.config)
            self._lending = contextlib.ExitStack()
            self._lending.enter_context(lending.lend(self._connection, self._known))
        return entered  # type: ignore[return-value]

    def __exit__(self, *exc: Any) -> None:
        if self._lending is not None:
            self._lending.close()
            self._lending = None
        super().__exit__(*exc)

    def configure(  # type: ignore[override]
        self,
        connection: Connection | None = None,
        url: Any = None,
        **kw: Any,
    ) -> None:
        connection = lending.unwrap(connection)
        if self._lenient and self._another_database(connection):
            # a multi-database env.py's bind or alembic.ini database: its own
            self._configured = True
            self._observe(kw)
            return super().configure(connection=connection, url=url, **kw)
        if self._configured:
            if self._lenient:
                # another database of a multi-database env.py: as env.py says
                self._observe(kw)
                return super().configure(connection=connection, url=url, **kw)
            raise ConfigError(MULTIDB)
        self._configured = True
        version_table = kw.get("version_table", "alembic_version")
        version_schema = kw.get("version_table_schema")
        if not self._lenient and (version_table, version_schema) != (
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
        elif (
            connection is None
            or connection.engine is not self._engine
            or self._rehearsal
        ):
            # env.py's own engine or URL: the environment's database wins, on the
            # session's connection, which holds the migration lock
            connection = self._connection
        kw["transaction_per_migration"] = True
        if self._engine.dialect.name in TRANSACTIONAL_DDL:
            kw["transactional_ddl"] = True
        self._observe(kw)
        if not self._lenient:
            # migplan reports each step itself; Alembic's INFO lines would repeat
            # it (the `db` commands keep Alembic's own output)
            logging.getLogger("alembic").setLevel(logging.WARNING)
        super().configure(connection=connection, url=url, **kw)

    def _another_database(self, connection: Connection | None) -> bool:
        """Whether env.py connected to a database it may migrate besides the
        environment's (the `db` commands: Alembic's behaviour)."""
        if connection is None or connection is self._connection:
            return False
        reached = lending.key(connection.engine.url)
        return reached in self._known and reached != lending.key(self._engine.url)

    def run_migrations(self, **kw: Any) -> None:
        if not self._lenient and "engine_name" in kw:
            # a multi-database env.py: refused before its first migration runs
            raise ConfigError(MULTIDB)
        super().run_migrations(**kw)

    def _observe(self, kw: dict[str, Any]) -> None:
        """Add migplan's on_version_apply callback after env.py's own."""
        if self._on_step_end is not None:
            callbacks = kw.get("on_version_apply") or []
            callbacks = (
                list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
            )
            kw["on_version_apply"] = [*callbacks, self._on_step_end]


# `alembic.context` proxies to the running EnvironmentContext; let it proxy to
# this subclass the same way
compat.share_proxy(MigplanEnvironment)


def _qualified(table: str, schema: str | None) -> str:
    return f"{schema}.{table}" if schema else table


def load_modules(graph: RevisionGraph, steps: Sequence[Step]) -> None:
    """Import every module a plan runs, so that a broken file fails before any runs
    (a checkpoint's are not run)."""
    for step in steps:
        if step.is_checkpoint:
            continue
        script = scripts.script_map(graph).get_revision(step.revision)
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
    graph: RevisionGraph,
    current: Heads,
    steps: Sequence[Step],
    *,
    session: Session,
    progress: ProgressFn | None = None,
    phase: Literal["apply", "revert"] = "apply",
    trail: AuditTrail | None = None,
    guard: DdlGuard | None = None,
    inspect: Callable[[Connection], tuple[tuple[str, str], ...]] | None = None,
) -> RunResult:
    """Run `steps` through the project's env.py, starting from `current`, on the
    session's connection (which holds the migration lock), each migration held to
    the `guard`'s ddl policy. With `inspect` (a rehearsal, inside the caller's
    transaction), each step's locks are what `inspect` finds after it.

    Every step is its own transaction (where DDL is transactional), recorded in
    the audit `trail` inside that transaction: a failure leaves the steps before
    it committed and recorded, and nothing of the failed one. Ctrl-C and SIGTERM
    (KeyboardInterrupt) stop the run the same way and are raised on.
    """
    if not steps:
        return RunResult()
    if any(step.is_checkpoint for step in steps):
        raise ValueError("a checkpoint is loaded by db.checkpoints, not run")
    load_modules(graph, steps)
    config = scripts.alembic_config(project, session.url)
    script = scripts.script_directory(config, graph)
    observer = StepObserver(
        graph,
        progress=progress,
        phase=phase,
        trail=trail,
        steps={(s.revision, s.is_upgrade): s for s in steps},
        guard=guard,
        inspect=inspect,
    )

    def fn(heads: Sequence[str], context: MigrationContext) -> list[RevisionStep]:
        # re-checked inside Alembic, on the connection that will run the steps
        if tuple(sorted(heads)) != tuple(sorted(current)):
            raise StalePlan(
                f"the database is at {_heads(heads)}, not {_heads(current)} as planned"
            )
        return [
            compat.revision_step(
                script.revision_map, step.revision, step.is_upgrade, runnable=True
            )
            for step in steps
        ]

    try:
        with _alembic_log_level_kept():
            with _app_if_needed(project, graph, steps, session.engine) as app:
                config.attributes["target_metadata"] = appload.target_metadata(
                    project, app
                )
                config.attributes["connection"] = session.connection
                with MigplanEnvironment(
                    config,
                    script,
                    engine=session.engine,
                    connection=session.connection,
                    project=project,
                    fn=fn,
                    observer=observer,
                    rehearsal=inspect is not None,
                ):
                    script.run_env()
    except Exception as err:
        observer.blame(err)
        if not observer.failed:
            if isinstance(err, MigplanError):
                raise
            # env.py itself failed, before any migration ran
            raise MigplanError(f"env.py failed: {describe(err)}") from err
    finally:
        settle(session.connection)
    failed = observer.failed
    return RunResult(tuple(observer.done), failed[0] if failed else None)


def _app_if_needed(
    project: Project, graph: RevisionGraph, steps: Sequence[Step], engine: Engine
) -> contextlib.AbstractContextManager[Any]:
    """The app's context, where env.py or a step's revision file may need it:
    running migrations needs no models, and an env.py and revisions that use only
    Alembic and SQLAlchemy (migplan's own template) run without loading Flask."""
    if project.app is not None and (
        project.env_uses_app
        or envpy.revisions_need_app(
            (Path(graph.files.path_text(step.revision)) for step in steps), project.root
        )
    ):
        return appload.app_context(project, engine)
    return contextlib.nullcontext(None)


def settle(connection: Connection) -> None:
    """Leave the session's connection idle, whatever env.py left behind."""
    from sqlalchemy import exc as sa_exc

    try:
        if connection.in_transaction():
            connection.rollback()
    except sa_exc.SQLAlchemyError:
        pass  # a dead connection: the caller finds out when it next uses it


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
    script = scripts.script_directory(config, graph)
    buffer = io.StringIO()
    ends: list[int] = []

    def fn(heads: Sequence[str], context: MigrationContext) -> list[RevisionStep]:
        return [
            compat.revision_step(
                script.revision_map, step.revision, step.is_upgrade, runnable=True
            )
            for step in plan.steps
        ]

    engine = database.create_engine(url)
    try:
        with _alembic_log_level_kept(), appload.app_context(project, engine) as app:
            config.attributes["target_metadata"] = appload.target_metadata(project, app)
            environment = MigplanEnvironment(
                config,
                script,
                engine=engine,
                project=project,
                fn=fn,
                as_sql=True,
                starting_rev=list(plan.current) or None,
                destination_rev=" ".join(plan.target),
                output_buffer=buffer,
                on_step_end=lambda **_: ends.append(buffer.tell()),
            )
            with environment:
                script.run_env()
    except MigplanError:
        raise
    except Exception as err:
        raise MigplanError(f"rendering SQL failed: {describe(err)}") from err
    finally:
        engine.dispose()
    text = buffer.getvalue()
    bounds = [0, *ends[:-1], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
