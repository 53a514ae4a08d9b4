"""The audit trail: every apply, rollback and resolve, recorded in a table of
migplan's own in the target database (never Alembic's version table).

Where DDL is not transactional (MySQL/MariaDB), the row also says which
migration is running before it runs: if the process dies or the migration fails
half-way, the database is *dirty* until `migplan resolve` settles it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import uuid
from dataclasses import dataclass
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

    from migplan.core.environment import Tables
    from migplan.core.planner import Plan
    from migplan.core.planner import Step
    from migplan.core.revisions import Heads
    from migplan.core.url import DatabaseURL
    from migplan.db.session import Session


def actor() -> str:
    """Who runs migplan: $MIGPLAN_ACTOR, else the OS user."""
    name = os.environ.get("MIGPLAN_ACTOR")
    if name:
        return name
    import getpass  # a run that writes the trail only, not every command

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _hostname() -> str:
    import socket  # a run that writes the trail only, not every command

    return socket.gethostname()


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


def steps_table(name: str, schema: str | None = None) -> sa.Table:
    """The audit trail's steps: one row per migration, written inside the
    migration's own transaction (constant work per step, however long the run).
    The run's row gets the whole list once, when the run ends."""
    import sqlalchemy as sa

    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("run", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("step", sa.Text, nullable=False),
        schema=schema,
    )


class AuditTrail:
    """Records one run in the audit table, on the run's session connection.

    The run's row is written when the run starts and when it ends; each step is
    recorded in the very transaction that commits the migration and its version
    update, so the record and the database cannot disagree, even if the process
    is killed. Where DDL is not transactional (MySQL/MariaDB), the step is also
    marked as started before it runs: the first DDL statement commits the mark,
    and if the migration dies half-way the database is *dirty*.
    """

    def __init__(self, session: Session, *, environment: str, action: str) -> None:
        self.session = session
        tables = session.tables
        self.table = audit_table(tables.audit_table, tables.schema)
        self.step_rows = steps_table(tables.steps_table, tables.schema)
        self.environment = environment
        self.action = action
        self.marks_steps = not session.url.transactional_ddl
        self.run_id = str(uuid.uuid4())
        self.steps: list[dict[str, object] | str] = []
        """The run's steps: the one running (or failed) as a dict, each done one
        as the JSON text its row was given (a long run holds text, not dicts)."""
        self._row_id: int | None = None

    def _execute(
        self,
        statement: sa.Executable,
        connection: Connection | None = None,
        parameters: dict[str, object] | None = None,
    ) -> sa.CursorResult[tuple[object, ...]]:
        """Run a statement; on the session's connection it commits at once, on a
        migration's connection it belongs to that migration's transaction."""
        from sqlalchemy import exc as sa_exc

        try:
            if connection is not None:
                return connection.execute(statement, parameters)
            own = self.session.connection
            result = own.execute(statement, parameters)
            own.commit()
            return result
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"cannot write the audit table {self.table.name}: {describe(err)}"
            ) from err

    def _ensure_schema(self, own: Connection) -> None:
        """The version table's schema, created where it is missing (PostgreSQL):
        the audit trail lives beside the version table, and an env.py that names
        the schema may create it only when it runs, after the audit trail has
        recorded the run's start. Alembic's version table needs it all the same."""
        import sqlalchemy as sa

        schema = self.table.schema
        if schema is None or own.dialect.name != "postgresql":
            return
        if not sa.inspect(own).has_schema(schema):
            name = own.dialect.identifier_preparer.quote_schema(schema)
            own.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {name}"))

    def prepare(self) -> list[Run]:
        """Create the table if needed; mark this environment's runs that never
        finished as interrupted; return every recorded run, newest first."""
        import sqlalchemy as sa
        from sqlalchemy import exc as sa_exc

        own = self.session.connection
        try:
            self._ensure_schema(own)
            self.table.create(own, checkfirst=True)
            self.step_rows.create(own, checkfirst=True)
            own.commit()
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"cannot create the audit table {self.table.name}: {describe(err)}"
            ) from err
        table = self.table
        self._execute(
            table.update()
            .where(
                table.c.environment == self.environment, table.c.outcome == "running"
            )
            .values(outcome="interrupted", finished_at=now())
        )
        rows = self._execute(sa.select(table)).all()
        runs = [run_from_row(dict(r._mapping)) for r in rows]
        return sorted(runs, key=lambda run: run.id, reverse=True)

    def start(self, plan: Plan) -> None:
        """Record that the run starts, from the plan's current heads."""
        result = self._execute(
            self.table.insert().values(
                run_id=self.run_id,
                environment=self.environment,
                action=self.action,
                actor=actor(),
                host=_hostname(),
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

    def step_started(
        self,
        connection: Connection,
        step: Step,
        phase: str,
        *,
        covers: dict[str, str] | None = None,
    ) -> None:
        """A migration is about to run, inside its transaction on `connection`
        (a checkpoint: with the revisions it `covers`, and their checksums)."""
        entry: dict[str, object] = {
            "revision": step.revision,
            "direction": step.direction,
            "phase": phase,
            "checksum": step.checksum,
            "outcome": "started",
        }
        if covers is not None:
            entry["covers"] = covers
        self.steps.append(entry)
        if self.marks_steps:
            # committed by the migration's first DDL statement: if it dies
            # half-way, this says so; if it changed nothing, this rolls back too
            self._mark(connection, step.revision, step.direction)
            self._write_step(connection)

    def step_done(self, connection: Connection, seconds: float) -> None:
        """The running migration and its version update are done; record it in the
        same transaction, which commits next."""
        self._last().update(outcome="done", seconds=round(seconds, 3))
        if self.marks_steps:
            self._mark(connection, None, None)
        self.steps[-1] = self._write_step(connection, again=self.marks_steps)

    def _last(self) -> dict[str, object]:
        last = self.steps[-1]
        assert isinstance(last, dict), "the last step is done already"
        return last

    def _write_step(self, connection: Connection, *, again: bool = False) -> str:
        """The last step's row, in the migration's transaction (`again`: its
        started row, written before it ran, is brought up to date); its text."""
        text = json.dumps(self._last())
        statements = self._per_step
        self._execute(
            statements.update_step if again else statements.insert_step,
            connection,
            {"b_run": self._row_id, "b_seq": len(self.steps), "b_step": text},
        )
        return text

    def _mark(
        self, connection: Connection | None, revision: str | None, direction: str | None
    ) -> None:
        """Say in the run's row which migration is running (None: none is)."""
        self._execute(
            self._per_step.mark,
            connection,
            {"b_id": self._row_id, "b_revision": revision, "b_direction": direction},
        )

    @functools.cached_property
    def _per_step(self) -> _PerStep:
        return _PerStep.of(self.table, self.step_rows)

    def step_failed(self, seconds: float, outcome: str = "failed") -> None:
        """The running migration failed (or timed out on a lock, to be retried):
        its transaction, and this mark, roll back; the run's row says so when it
        is written next."""
        last = self.steps[-1] if self.steps else None
        if isinstance(last, dict) and last["outcome"] == "started":
            last.update(outcome=outcome, seconds=round(seconds, 3))

    def clear_mark(self) -> None:
        """Take back the started mark of a migration that changed nothing (its
        lock wait timed out on MariaDB, whose DDL statement committed the mark)."""
        if self.marks_steps:
            self._mark(None, None, None)

    def is_dirty(self) -> bool:
        """Whether this run's row says a migration was left half-applied (read on
        the session, else on a new connection: the session's may be dead)."""
        import sqlalchemy as sa

        query = sa.select(self.table.c.dirty_revision).where(
            self.table.c.id == self._row_id
        )
        for connection in (self.session.connection, None):
            try:
                if connection is not None:
                    found = connection.execute(query).scalar()
                    connection.commit()
                    return found is not None
                with database.connect(self.session.url) as fresh:
                    return fresh.execute(query).scalar() is not None
            except Exception:  # noqa: BLE001 - a dead connection: try the next
                continue
        return True  # cannot tell: say dirty, so that nobody runs it again blindly

    def unfinished(self) -> dict[str, object] | None:
        """The step the run stopped in (started, or failed as it was stopped), if
        it stopped in one rather than between two."""
        last = self.steps[-1] if self.steps else None
        if isinstance(last, dict) and last["outcome"] in (
            "started",
            "failed",
            "lock timeout",
        ):
            return last
        return None

    def finish(self, outcome: str, heads: Heads, *, error: str | None = None) -> None:
        """Record how the run ended (synchronously: this commit makes the whole
        run durable). The dirty mark stays as the steps' own commits left it."""
        from migplan.db.session import durable

        own = self.session.connection
        if own.in_transaction():
            own.rollback()
        durable(own)
        self._update(
            None,
            finished_at=now(),
            to_heads=",".join(heads),
            outcome=outcome,
            # once per run (each step has its row), a step at a time: the same
            # text as json.dumps of the list, without its pieces of every step
            steps="["
            + ", ".join(s if isinstance(s, str) else json.dumps(s) for s in self.steps)
            + "]",
            error=error,
        )

    def _update(self, connection: Connection | None, **values: object) -> None:
        assert self._row_id is not None, "start the run first"
        self._execute(
            self.table.update().where(self.table.c.id == self._row_id).values(**values),
            connection,
        )


@dataclass(frozen=True, slots=True)
class _PerStep:
    """The statements a run executes for each of its steps, built once and run
    with parameters: a step costs their execution, not the building and cache
    lookup of new statements."""

    insert_step: sa.Insert
    update_step: sa.Update
    mark: sa.Update

    @classmethod
    def of(cls, table: sa.Table, rows: sa.Table) -> _PerStep:
        import sqlalchemy as sa

        step = rows.c.run == sa.bindparam("b_run"), rows.c.seq == sa.bindparam("b_seq")
        return cls(
            insert_step=rows.insert().values(
                run=sa.bindparam("b_run"),
                seq=sa.bindparam("b_seq"),
                step=sa.bindparam("b_step"),
            ),
            update_step=rows.update().where(*step).values(step=sa.bindparam("b_step")),
            mark=table.update()
            .where(table.c.id == sa.bindparam("b_id"))
            .values(
                dirty_revision=sa.bindparam("b_revision"),
                dirty_direction=sa.bindparam("b_direction"),
            ),
        )


def read_runs_on(connection: Connection, tables: Tables) -> list[Run]:
    """Return recorded runs, newest first, read on `connection` (commits)."""
    import sqlalchemy as sa

    table = audit_table(tables.audit_table, tables.schema)
    if not sa.inspect(connection).has_table(table.name, schema=tables.schema):
        connection.commit()
        return []
    rows = [dict(r._mapping) for r in connection.execute(sa.select(table)).all()]
    steps: list[dict[str, object]] | None = None
    if any(row["outcome"] in UNFINISHED for row in rows):
        found = steps_table(tables.steps_table, tables.schema)
        if sa.inspect(connection).has_table(found.name, schema=tables.schema):
            steps = [dict(r._mapping) for r in connection.execute(sa.select(found))]
    connection.commit()
    return _runs(rows, steps)


UNFINISHED = ("running", "interrupted")
"""Runs whose row may not list every step they recorded (the process was
killed before the run's end was written): their steps table rows do."""


def _runs(
    rows: list[dict[str, object]], steps: list[dict[str, object]] | None
) -> list[Run]:
    """The runs of the audit table's rows, newest first, each unfinished one with
    the steps its rows in the steps table record."""
    by_run: dict[int, list[tuple[int, str]]] = {}
    for step in steps or ():
        by_run.setdefault(int(str(step["run"])), []).append(
            (int(str(step["seq"])), str(step["step"]))
        )
    runs = []
    for row in rows:
        recorded = by_run.get(int(str(row["id"])))
        if recorded and row["outcome"] in UNFINISHED:
            listed = json.loads(str(row["steps"] or "[]"))
            if len(recorded) > len(listed):
                row = {
                    **row,
                    "steps": "[" + ", ".join(t for _, t in sorted(recorded)) + "]",
                }
        runs.append(run_from_row(row))
    return sorted(runs, key=lambda run: run.id, reverse=True)


def read_runs(
    url: DatabaseURL,
    tables: Tables,
    *,
    environment: str | None = None,
    limit: int | None = None,
) -> list[Run]:
    """Return recorded runs, newest first ([] when the table does not exist)."""
    rows = database.read_table(url, tables.audit_table, tables.schema) or []
    steps = None
    if any(row["outcome"] in UNFINISHED for row in rows):
        steps = database.read_table(url, tables.steps_table, tables.schema)
    runs = _runs(rows, steps)
    if environment is not None:
        runs = [r for r in runs if r.environment == environment]
    return runs[:limit] if limit is not None else runs


def mark_resolved(connection: Connection, tables: Tables, run_id: int) -> None:
    """Record that the dirty state left by a run is settled (commits)."""
    definition = audit_table(tables.audit_table, tables.schema)
    connection.execute(
        definition.update().where(definition.c.id == run_id).values(resolved_at=now())
    )
    connection.commit()
