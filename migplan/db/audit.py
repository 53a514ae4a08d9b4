"""The audit trail: every apply, rollback and resolve, recorded in a table of
migplan's own in the target database (never Alembic's version table).

Where DDL is not transactional (MySQL/MariaDB), the row also says which
migration is running before it runs: if the process dies or the migration fails
half-way, the database is *dirty* until `migplan resolve` settles it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
import uuid
from typing import TYPE_CHECKING

from migplan import __version__
from migplan.core.runs import Run
from migplan.core.runs import run_from_row
from migplan.db import database
from migplan.errors import DatabaseError
from migplan.errors import describe

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

    from migplan.core.environment import Tables
    from migplan.core.planner import Plan
    from migplan.core.results import Progress
    from migplan.core.results import StepResult
    from migplan.core.revisions import Heads
    from migplan.core.url import DatabaseURL


def actor() -> str:
    """Who runs migplan: $MIGPLAN_ACTOR, else the OS user."""
    name = os.environ.get("MIGPLAN_ACTOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def now() -> str:
    """The current UTC time, ISO 8601 to the second (sortable as text)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def audit_table(name: str, schema: str | None = None) -> sa.Table:
    """The audit table's definition."""
    import sqlalchemy as sa

    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("environment", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("migplan_version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(20), nullable=False),
        sa.Column("finished_at", sa.String(20)),
        sa.Column("from_heads", sa.Text, nullable=False),
        sa.Column("to_heads", sa.Text),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("steps", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("dirty_revision", sa.String(64)),
        sa.Column("dirty_direction", sa.String(16)),
        sa.Column("resolved_at", sa.String(20)),
        schema=schema,
    )


class AuditTrail:
    """Records one run in the audit table, on a connection of its own."""

    def __init__(
        self,
        url: DatabaseURL,
        tables: Tables,
        *,
        environment: str,
        action: str,
        track_steps: bool,
    ) -> None:
        self.table = audit_table(tables.audit_table, tables.schema)
        self.environment = environment
        self.action = action
        # per-step writes cost a commit each: only where a half-applied migration
        # is possible (non-transactional DDL) are they worth it
        self.track_steps = track_steps
        self.run_id = str(uuid.uuid4())
        self.steps: list[dict[str, object]] = []
        self._engine: Engine = database.shared_engine(url).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        self._connection: Connection | None = None
        self._row_id: int | None = None

    def __enter__(self) -> AuditTrail:
        from sqlalchemy import exc as sa_exc

        try:
            self._connection = self._engine.connect()
            self.table.create(self._connection, checkfirst=True)
        except sa_exc.SQLAlchemyError as err:
            self.close()
            raise DatabaseError(
                f"cannot create the audit table {self.table.name}: {describe(err)}"
            ) from err
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the audit connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _execute(self, statement: sa.Executable) -> sa.CursorResult[tuple[object, ...]]:
        from sqlalchemy import exc as sa_exc

        assert self._connection is not None, "use AuditTrail as a context manager"
        try:
            return self._connection.execute(statement)
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"cannot write the audit table {self.table.name}: {describe(err)}"
            ) from err

    def interrupted_runs(self) -> list[Run]:
        """Mark runs that never finished as interrupted (call under the lock)."""
        import sqlalchemy as sa

        table = self.table
        rows = self._execute(
            sa.select(table).where(
                table.c.environment == self.environment, table.c.outcome == "running"
            )
        ).all()
        runs = [run_from_row(dict(r._mapping)) for r in rows]
        if runs:
            self._execute(
                table.update()
                .where(table.c.id.in_([r.id for r in runs]))
                .values(outcome="interrupted", finished_at=now())
            )
        return runs

    def start(self, plan: Plan) -> None:
        """Record that the run starts, from the plan's current heads."""
        result = self._execute(
            self.table.insert().values(
                run_id=self.run_id,
                environment=self.environment,
                action=self.action,
                actor=actor(),
                host=socket.gethostname(),
                pid=os.getpid(),
                migplan_version=__version__,
                started_at=now(),
                from_heads=",".join(plan.current),
                outcome="running",
                steps="[]",
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        self._row_id = int(key[0])

    def observe(self, event: Progress) -> None:
        """Follow the executor's progress; with track_steps, write it as it goes."""
        step = event.step
        if event.event == "start":
            self.steps.append(
                {
                    "revision": step.revision,
                    "direction": step.direction,
                    "phase": event.phase,
                    "checksum": step.checksum,
                    "outcome": "started",
                }
            )
            if self.track_steps:
                # written before the migration runs: if it dies half-way, this says so
                self._update(
                    dirty_revision=step.revision,
                    dirty_direction=step.direction,
                    steps=json.dumps(self.steps),
                )
            return
        entry = self.steps[-1]
        entry["outcome"] = "done" if event.event == "done" else "failed"
        entry["seconds"] = round(event.seconds, 3)

    def finish(
        self,
        outcome: str,
        heads: Heads,
        *,
        error: str | None = None,
        dirty: StepResult | None = None,
    ) -> None:
        """Record how the run ended, and whether it left the database dirty."""
        self._update(
            finished_at=now(),
            to_heads=",".join(heads),
            outcome=outcome,
            steps=json.dumps(self.steps),
            error=error,
            dirty_revision=dirty.step.revision if dirty else None,
            dirty_direction=dirty.step.direction if dirty else None,
        )

    def _update(self, **values: object) -> None:
        assert self._row_id is not None
        self._execute(
            self.table.update().where(self.table.c.id == self._row_id).values(**values)
        )


def read_runs(
    url: DatabaseURL,
    tables: Tables,
    *,
    environment: str | None = None,
    limit: int | None = None,
) -> list[Run]:
    """Return recorded runs, newest first ([] when the table does not exist)."""
    rows = database.read_table(url, tables.audit_table, tables.schema) or []
    runs = sorted((run_from_row(r) for r in rows), key=lambda run: run.id, reverse=True)
    if environment is not None:
        runs = [r for r in runs if r.environment == environment]
    return runs[:limit] if limit is not None else runs


def mark_resolved(url: DatabaseURL, tables: Tables, run_id: int) -> None:
    """Record that the dirty state left by a run is settled."""
    definition = audit_table(tables.audit_table, tables.schema)
    with database.connect(url) as connection:
        connection.execute(
            definition.update()
            .where(definition.c.id == run_id)
            .values(resolved_at=now())
        )
        connection.commit()
