"""Loading a checkpoint into an empty database, on the run's session: its
statements, the version table at its revision and the audit record of the step,
in one transaction where DDL is transactional (PostgreSQL, SQLite). On MariaDB
the step is marked in the audit trail first, as any migration is there, so a
load that dies half-way leaves the database dirty, said, not silently wrong."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from migplan.core.results import StepResult
from migplan.errors import StalePlan
from migplan.errors import describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migplan.core.environment import Tables
    from migplan.core.planner import Step
    from migplan.db.audit import AuditTrail
    from migplan.db.session import Session

_BATCH = 200
"""PostgreSQL statements sent in one round trip (the simple query protocol
takes several)."""


def target_schema(connection: Connection) -> str | None:
    """The schema (PostgreSQL) or database (MySQL) a checkpoint loads into."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return str(connection.exec_driver_sql("SELECT current_schema()").scalar())
    if dialect == "mysql":
        return str(connection.exec_driver_sql("SELECT DATABASE()").scalar())
    return None


def user_tables(connection: Connection, tables: Tables) -> list[str]:
    """The tables and views of the database's default schema that are not the
    version table or migplan's own: a database with any is not empty."""
    import sqlalchemy as sa

    inspector = sa.inspect(connection)
    names = inspector.get_table_names() + inspector.get_view_names()
    own = {tables.version_table, *tables.own}
    return sorted(n for n in names if n not in own and not n.startswith("migplan_"))


def lock_room(connection: Connection) -> int | None:
    """PostgreSQL: how many relations one transaction may lock, leaving the
    others a quarter of the shared lock table (None elsewhere)."""
    if connection.dialect.name != "postgresql":
        return None
    try:
        slots = connection.exec_driver_sql(
            "SELECT current_setting('max_locks_per_transaction')::int * "
            "(current_setting('max_connections')::int + "
            "current_setting('max_prepared_transactions')::int)"
        ).scalar()
    finally:
        connection.rollback()
    return int(slots or 0) * 3 // 4


def is_empty(connection: Connection, tables: Tables) -> bool:
    """Whether a database holds nothing but migplan's and Alembic's tables."""
    try:
        return not user_tables(connection, tables)
    finally:
        if connection.in_transaction():
            connection.rollback()


def require_empty(connection: Connection, tables: Tables) -> None:
    """Refuse to load a checkpoint into a database with tables or views of its
    own (read on `connection`, left idle)."""
    if connection.in_transaction():
        connection.commit()
    try:
        found = user_tables(connection, tables)
    finally:
        connection.rollback()
    if found:
        raise StalePlan(
            f"the database is not empty ({', '.join(found[:3])}): a checkpoint "
            "loads only into an empty one; run the command again"
        )


def load(
    session: Session,
    step: Step,
    statements: Sequence[str],
    trail: AuditTrail | None,
    covers: dict[str, str],
) -> StepResult:
    """Load a checkpoint on the session's connection and stamp its revision;
    return the step's result (its error, if it failed: nothing of it is left
    where DDL is transactional)."""
    from sqlalchemy import exc as sa_exc

    connection = session.connection
    tables = session.tables
    require_empty(connection, tables)
    started = time.perf_counter()
    try:
        with connection.begin():
            if trail is not None:
                trail.step_started(connection, step, "apply", covers=covers)
            _execute(connection, statements)
            _stamp(connection, step.revision, tables)
            if trail is not None:
                trail.step_done(connection, time.perf_counter() - started)
    except sa_exc.SQLAlchemyError as err:
        seconds = time.perf_counter() - started
        if trail is not None:
            trail.step_failed(seconds)
        return StepResult(step, seconds, describe(err))
    return StepResult(step, time.perf_counter() - started)


def _execute(connection: Connection, statements: Sequence[str]) -> None:
    # no parameters: a `%` in a dumped row is a `%`, not a placeholder
    plain = {"no_parameters": True}
    # psycopg runs a string of statements in one round trip; the others, one
    batch = _BATCH if connection.dialect.name == "postgresql" else 1
    for start in range(0, len(statements), batch):
        connection.exec_driver_sql(
            ";\n".join(statements[start : start + batch]), execution_options=plain
        )


def _stamp(connection: Connection, revision: str, tables: Tables) -> None:
    """The version table, as Alembic creates it, at `revision`."""
    import sqlalchemy as sa

    table = sa.Table(
        tables.version_table,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name=f"{tables.version_table}_pkc"),
        schema=tables.schema,
    )
    table.create(connection, checkfirst=True)
    connection.execute(table.delete())
    connection.execute(table.insert().values(version_num=revision))
