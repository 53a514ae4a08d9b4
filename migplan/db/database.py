"""Connect to an environment's database and read its current revisions.

Reading a SQLite database (current revisions, the audit trail) uses Python's own
sqlite3, read-only: `plan` and `status` need not load SQLAlchemy for it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any

from migplan.core.environment import Tables
from migplan.errors import ConfigError
from migplan.errors import DatabaseError
from migplan.errors import describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

    from migplan.core.revisions import Heads
    from migplan.core.url import DatabaseURL


def _sqlalchemy_before_2_1() -> bool:
    from importlib.metadata import version

    major, minor = (int(part) for part in version("sqlalchemy").split(".")[:2])
    return (major, minor) < (2, 1)


def driver_url(url: DatabaseURL) -> str:
    """The URL as env.py gets it (`sqlalchemy.url`): as written in migplan.yaml,
    async driver included, but SQLAlchemy 2.0 reads postgresql:// as psycopg2
    and 2.1 as psycopg 3: migplan spells psycopg 3 on every version."""
    text = url.text
    if text.startswith("postgresql://") and _sqlalchemy_before_2_1():
        return "postgresql+psycopg://" + text[len("postgresql://") :]
    return text


_SYNC_DRIVERS = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
    "mysql+aiomysql": "mysql+pymysql",
    "mysql+asyncmy": "mysql+pymysql",
    "mariadb+aiomysql": "mariadb+pymysql",
    "mariadb+asyncmy": "mariadb+pymysql",
}
"""An async driver, and the synchronous one migplan connects with instead: an
async project's env.py keeps its own driver, migplan's own connections (the lock,
the version table, the audit trail) need a synchronous one."""


def sync_url(url: DatabaseURL) -> str:
    """The URL migplan's own engines connect with (a synchronous driver)."""
    text = driver_url(url)
    scheme, sep, rest = text.partition("://")
    return _SYNC_DRIVERS.get(scheme.lower(), scheme) + sep + rest


QUERY_CACHE_SIZE = 64
"""Statements each engine keeps compiled (SQLAlchemy's default is 500). Alembic
writes every version-table update with the revision ids as literals, so each step
of a run brings a statement the cache never sees again: at the default, a run of
1,000 steps held some 5 MB of compiled SQL nobody reused. migplan's own statements
are a dozen shapes, and a migration's loop reuses one: 64 keeps them all."""


def create_engine(url: DatabaseURL, *, single: bool = False) -> Engine:
    """Return an engine for `url`; SQLite gets real transactions around DDL.

    A `single` engine holds exactly one database connection and hands it to every
    `connect()` (a run's session: see db.session); others open one per use.
    """
    import sqlalchemy as sa
    from sqlalchemy import event
    from sqlalchemy import exc as sa_exc

    try:
        if single:
            # migplan commits and rolls back itself; a Connection closed by env.py
            # must not roll back the one connection everything runs on
            engine = sa.create_engine(
                sync_url(url),
                poolclass=sa.pool.StaticPool,
                pool_reset_on_return=None,
                query_cache_size=QUERY_CACHE_SIZE,
            )
        else:
            engine = sa.create_engine(
                sync_url(url),
                poolclass=sa.pool.NullPool,
                query_cache_size=QUERY_CACHE_SIZE,
            )
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as err:
        raise DatabaseError(f"{url}: {err}") from err
    if engine.dialect.name == "postgresql":
        # a killed migplan's session would otherwise run its statement to the end,
        # holding its locks: have the server notice the client is gone
        @event.listens_for(engine, "connect")
        def _check_client(dbapi_connection: Any, record: object) -> None:
            version = getattr(
                getattr(dbapi_connection, "info", None), "server_version", 0
            )
            if version >= 140000:
                with dbapi_connection.cursor() as cursor:
                    cursor.execute("SET client_connection_check_interval = 1000")
                dbapi_connection.commit()

    if engine.dialect.name == "sqlite":
        # sqlite3 does not BEGIN before DDL, so each CREATE/ALTER would commit on
        # its own; take over BEGIN so a failed migration rolls back entirely
        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: object, record: object) -> None:
            dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            if (
                connection.get_execution_options().get("isolation_level")
                != "AUTOCOMMIT"
            ):
                connection.exec_driver_sql("BEGIN")

    return engine


_shared: dict[str, Engine] = {}
_shared_lock = threading.Lock()


def shared_engine(url: DatabaseURL) -> Engine:
    """One engine per URL for this process's short reads and bookkeeping (heads,
    the audit trail, the lock): SQLAlchemy learns the server's dialect once, not
    per connection. Migrations run on engines of their own (`create_engine`)."""
    with _shared_lock:
        engine = _shared.get(url.text)
        if engine is None:
            engine = _shared[url.text] = create_engine(url)
        return engine


@contextmanager
def connect(url: DatabaseURL) -> Iterator[Connection]:
    """Open a connection to `url`; connection errors become DatabaseError."""
    from sqlalchemy import exc as sa_exc

    try:
        connection = shared_engine(url).connect()
    except sa_exc.SQLAlchemyError as err:
        raise DatabaseError(f"{url}: cannot connect: {describe(err)}") from err
    with connection:
        yield connection


def exists(url: DatabaseURL) -> bool:
    """False only for a SQLite file that does not exist (yet)."""
    return url.sqlite_file is None or os.path.exists(url.sqlite_file)


@contextmanager
def _sqlite_reader(path: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an existing SQLite file, with stdlib sqlite3."""
    uri = f"file:{urllib.parse.quote(path)}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=30)
    except sqlite3.Error as err:
        raise DatabaseError(f"sqlite:///{path}: cannot open: {err}") from err
    try:
        yield connection
    finally:
        connection.close()


def read_table(
    url: DatabaseURL, table: str, schema: str | None = None
) -> list[dict[str, Any]] | None:
    """Return every row of a table as dicts, or None if there is no such table."""
    path = url.sqlite_file
    if path and schema is None:
        if not os.path.exists(path):
            return None
        with _sqlite_reader(path) as connection:
            try:
                found = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (table,),
                ).fetchone()
                if found is None:
                    return None
                cursor = connection.execute(
                    f'SELECT * FROM "{table.replace(chr(34), chr(34) * 2)}"'
                )
                names = [column[0] for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.Error as err:
                raise DatabaseError(f"cannot read {table}: {err}") from err
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    with connect(url) as connection:
        try:
            if not sa.inspect(connection).has_table(table, schema=schema):
                return None
            name = connection.dialect.identifier_preparer.format_table(
                sa.table(table, schema=schema)
            )
            result = connection.exec_driver_sql(f"SELECT * FROM {name}")
            return [dict(row._mapping) for row in result]
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(f"cannot read {table}: {describe(err)}") from err


def read_heads(url: DatabaseURL, tables: Tables) -> Heads:
    """Connect to `url` and return its current revisions.

    A SQLite file that does not exist yet is at base, and is not created.
    """
    rows = read_table(url, tables.version_table, tables.schema)
    if rows is None and exists(url) and _no_other_version_table(url, tables):
        # another migrator created the version table meanwhile: read it
        rows = read_table(url, tables.version_table, tables.schema)
    return tuple(sorted(str(row["version_num"]) for row in rows or ()))


def _no_other_version_table(url: DatabaseURL, tables: Tables) -> bool:
    """The version table is not there: refuse to call the database `base` when a
    table of Alembic's shape is there under another name (env.py may name its own
    version table in a way migplan cannot read without running it). Return
    whether the version table itself has appeared since it was looked for."""
    own = tables.version_table.lower()
    shaped = version_tables(url, tables.schema)
    found = [name for name in shaped if name.lower() != own]
    if found:
        raise ConfigError(
            f"{url}: there is no version table {tables.version_table!r}, but "
            f"{found[0]!r} has Alembic's version_num column: if env.py keeps its "
            f"revisions there, set version_table: {found[0]} in migplan.yaml"
        )
    return len(found) < len(shaped)


def version_tables(url: DatabaseURL, schema: str | None = None) -> list[str]:
    """The tables of Alembic's version table's shape (a version_num column)."""
    path = url.sqlite_file
    if path and schema is None:
        with _sqlite_reader(path) as connection:
            try:
                rows = connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND sql LIKE '%version_num%'"
                ).fetchall()
            except sqlite3.Error as err:
                raise DatabaseError(f"cannot list the tables: {err}") from err
        return sorted(str(name) for (name,) in rows)
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    with connect(url) as connection:
        try:
            inspector = sa.inspect(connection)
            return sorted(
                name
                for name in inspector.get_table_names(schema=schema)
                if any(
                    c["name"] == "version_num"
                    for c in inspector.get_columns(name, schema=schema)
                )
            )
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(f"cannot list the tables: {describe(err)}") from err


def write_heads_on(connection: Connection, heads: Heads, tables: Tables) -> None:
    """Replace the version table's rows with `heads` (a stamp), in one transaction."""
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    version_table = tables.version_table
    table = sa.Table(
        version_table,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), primary_key=True),
        schema=tables.schema,
    )
    try:
        if connection.in_transaction():
            connection.commit()
        with connection.begin():
            table.create(connection, checkfirst=True)
            connection.execute(table.delete())
            for head in heads:
                connection.execute(table.insert().values(version_num=head))
    except sa_exc.SQLAlchemyError as err:
        raise DatabaseError(f"cannot write {version_table}: {describe(err)}") from err
