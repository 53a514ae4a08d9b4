"""A session: the one database connection a run that changes a database works on.

It holds the migration lock (on PostgreSQL and MySQL the lock is a property of the
connection itself), re-reads the version table, writes the audit trail and runs
every migration. The engine handed to env.py and to the Flask app has this
connection and no other. So a run whose connection dies (a terminated backend, a
server's idle or wait timeout, a network drop) loses its lock and its ability to
commit at the same moment: it can never commit a step while another migrator runs,
and no second migrator can start while it still could. Nothing else stays open
beside it, so no side connection of migplan's sits idle long enough for a server's
idle timeout to kill it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migplan.db import database
from migplan.db import locking
from migplan.errors import DatabaseError
from migplan.errors import describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

    from migplan.core.environment import Tables
    from migplan.core.revisions import Heads
    from migplan.core.url import DatabaseURL


@dataclass
class Session:
    """The connection a run works on, with the migration lock held."""

    url: DatabaseURL
    tables: Tables
    engine: Engine
    """Every `connect()` of this engine is the session's connection."""
    connection: Connection
    """migplan's own handle on it, idle (committed) whenever env.py runs."""

    def read_heads(self) -> Heads:
        """The version table's rows, read on the session's connection."""
        import sqlalchemy as sa
        from sqlalchemy import exc as sa_exc

        tables = self.tables
        try:
            connection = self.connection
            if not sa.inspect(connection).has_table(
                tables.version_table, schema=tables.schema
            ):
                connection.commit()
                return ()
            name = connection.dialect.identifier_preparer.format_table(
                sa.table(tables.version_table, schema=tables.schema)
            )
            rows = connection.exec_driver_sql(f"SELECT version_num FROM {name}")
            heads = tuple(sorted(str(row[0]) for row in rows))
            connection.commit()
            return heads
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"cannot read {tables.version_table}: {describe(err)}"
            ) from err

    def write_heads(self, heads: Heads) -> None:
        """Replace the version table's rows with `heads` (a stamp), in one
        transaction on the session's connection."""
        database.write_heads_on(self.connection, heads, self.tables)


@contextmanager
def open_session(
    url: DatabaseURL,
    tables: Tables,
    *,
    timeout: float,
    on_wait: locking.WaitFn | None = None,
) -> Iterator[Session]:
    """Connect, take the migration lock on that connection (waiting up to
    `timeout`), and yield the session; closing it releases the lock."""
    from sqlalchemy import exc as sa_exc

    engine = database.create_engine(url, single=True)
    try:
        try:
            connection = engine.connect()
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(f"{url}: cannot connect: {describe(err)}") from err
        with connection:
            try:
                with locking.hold(
                    connection, url, tables, timeout=timeout, on_wait=on_wait
                ):
                    _never_idle_out(connection)
                    if url.dialect == "postgresql":
                        _commit_without_waiting(connection)
                    yield Session(url, tables, engine, connection)
            except sa_exc.SQLAlchemyError as err:
                raise DatabaseError(f"{url}: {describe(err)}") from err
    finally:
        engine.dispose()


def _never_idle_out(connection: Connection) -> None:
    """Keep the server's idle timeouts off this session: between two statements it
    may sit idle for as long as a migration computes (or a revision file takes to
    import), and a server that ended it would end the lock and the run with it.
    A session whose client is gone still ends: PostgreSQL checks the client
    (client_connection_check_interval), and a closed socket ends any session."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        version = connection.exec_driver_sql("SHOW server_version_num").scalar()
        connection.exec_driver_sql("SET idle_in_transaction_session_timeout = 0")
        if int(str(version)) >= 140000:
            connection.exec_driver_sql("SET idle_session_timeout = 0")
    elif dialect == "mysql":
        connection.exec_driver_sql("SET SESSION wait_timeout = 31536000")
    connection.commit()


def _commit_without_waiting(connection: Connection) -> None:
    """Let each migration's COMMIT return before its WAL reaches the disk.

    Every migration is still one transaction, atomic and consistent with the
    version table and its audit record; a server crash during the run can only
    lose the last few migrations whole, as if they had not run yet. The audit
    trail's last commit is synchronous (`durable`) and so makes every migration of
    the run durable: WAL is flushed in order. One fsync per run, not per migration.
    """
    connection.exec_driver_sql("SET synchronous_commit TO off")
    connection.commit()


def durable(connection: Connection) -> None:
    """Make the transaction open on `connection` commit synchronously (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO on")
