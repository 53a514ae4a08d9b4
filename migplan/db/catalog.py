"""A fleet's catalog query, and the schema a new tenant needs."""

from __future__ import annotations

from migplan.core.url import DatabaseURL
from migplan.db import database
from migplan.errors import DatabaseError
from migplan.errors import describe


def query_column(url: DatabaseURL, query: str) -> list[str]:
    """Run a query on a catalog database; return its first column's non-empty values."""
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    with database.connect(url) as connection:
        try:
            rows = connection.execute(sa.text(query)).all()
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(describe(err)) from err
    return [str(row[0]) for row in rows if row and row[0]]


def ensure_schema(url: DatabaseURL, schema: str) -> None:
    """Create a tenant's schema if it does not exist yet."""
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    with database.connect(url) as connection:
        try:
            name = connection.dialect.identifier_preparer.quote_schema(schema)
            connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {name}"))
            connection.commit()
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"cannot create schema {schema}: {describe(err)}"
            ) from err
