"""Connect to an environment's database and read its current revisions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from migplan.errors import ConfigError
from migplan.errors import DatabaseError
from migplan.errors import mask

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

    from migplan.revisions import Heads

TRANSACTIONAL_DDL = frozenset({"postgresql", "sqlite", "mssql"})
"""Dialects whose DDL migplan runs inside one transaction per migration."""


def parse_url(url: str) -> URL:
    """Return the SQLAlchemy URL, or raise ConfigError without echoing it."""
    try:
        return make_url(url)
    except (sa_exc.ArgumentError, ValueError) as err:
        raise ConfigError(f"not a valid database URL: {mask(url)!r}") from err


def display_url(url: str) -> str:
    """Return the URL with its password replaced by ``***``."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except ConfigError:
        return mask(url)


def dialect_name(url: str) -> str:
    """Return the backend name of a URL: sqlite, postgresql, mysql, ..."""
    name = parse_url(url).get_backend_name()
    return "mysql" if name == "mariadb" else name


def create_engine(url: str) -> Engine:
    """Return an engine for `url`; SQLite gets real transactions around DDL."""
    parsed = parse_url(url)
    try:
        engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as err:
        raise DatabaseError(f"{display_url(url)}: {err}") from err
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


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """Open a connection to `url`; connection errors become DatabaseError."""
    engine = create_engine(url)
    try:
        try:
            connection = engine.connect()
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"{display_url(url)}: cannot connect: {reason(err)}"
            ) from err
        with connection:
            yield connection
    finally:
        engine.dispose()


def reason(err: BaseException) -> str:
    """Return the database's own message for an error, on one line, masked."""
    orig = getattr(err, "orig", None) or err
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        # MySQL drivers: (code, message)
        return mask(f"{args[1]} ({args[0]})")
    text = str(orig).strip().splitlines()
    first = text[0] if text else type(orig).__name__
    return mask(first.strip())


def sqlite_exists(url: str) -> bool:
    """False only for a SQLite URL whose file does not exist (yet)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    path = parsed.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return True
    return os.path.exists(path)


def current_heads(
    connection: Connection,
    version_table: str = "alembic_version",
    schema: str | None = None,
) -> Heads:
    """Return the revisions in the version table, sorted; ``()`` if there is none."""
    try:
        if not sa.inspect(connection).has_table(version_table, schema=schema):
            return ()
        table = sa.table(version_table, sa.column("version_num"), schema=schema)
        rows = connection.execute(sa.select(table.c.version_num)).scalars().all()
    except sa_exc.SQLAlchemyError as err:
        raise DatabaseError(f"cannot read {version_table}: {reason(err)}") from err
    finally:
        if connection.in_transaction():
            connection.rollback()
    return tuple(sorted(str(r) for r in rows))


def read_heads(
    url: str, version_table: str = "alembic_version", schema: str | None = None
) -> Heads:
    """Connect to `url` and return its current revisions.

    A SQLite file that does not exist yet is at base, and is not created.
    """
    if not sqlite_exists(url):
        return ()
    with connect(url) as connection:
        return current_heads(connection, version_table, schema)


def write_heads(
    url: str,
    heads: Heads,
    version_table: str = "alembic_version",
    schema: str | None = None,
) -> None:
    """Replace the version table's rows with `heads` (a stamp), in one transaction."""
    table = sa.Table(
        version_table,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), primary_key=True),
        schema=schema,
    )
    with connect(url) as connection:
        try:
            with connection.begin():
                table.create(connection, checkfirst=True)
                connection.execute(table.delete())
                for head in heads:
                    connection.execute(table.insert().values(version_num=head))
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(f"cannot write {version_table}: {reason(err)}") from err
