"""A database's schema as SQLAlchemy reflects it, for comparing two snapshots; and
the scratch databases verify works on."""

from __future__ import annotations

import sqlalchemy as sa

from migplan.core.url import DatabaseURL
from migplan.core.verify import Schema
from migplan.db import database
from migplan.errors import MigplanError
from migplan.errors import describe


def schema(connection: sa.Connection, ignore: set[str]) -> Schema:
    """Return the schema of the connected database, in a form two snapshots compare
    by (the connection is left idle)."""
    try:
        inspector = sa.inspect(connection)
        schema: Schema = {}
        for table in sorted(inspector.get_table_names()):
            if table in ignore or table.startswith("migplan_"):
                continue
            schema[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in inspector.get_columns(table)
                ],
                "primary_key": sorted(
                    inspector.get_pk_constraint(table)["constrained_columns"]
                ),
                "indexes": sorted(
                    (
                        str(i["name"]),
                        tuple(str(c) for c in i["column_names"]),
                        bool(i["unique"]),
                    )
                    for i in inspector.get_indexes(table)
                ),
                "foreign_keys": sorted(
                    (
                        tuple(f["constrained_columns"]),
                        str(f["referred_table"]),
                        tuple(f["referred_columns"]),
                    )
                    for f in inspector.get_foreign_keys(table)
                ),
                "unique": sorted(
                    tuple(u["column_names"])
                    for u in inspector.get_unique_constraints(table)
                ),
            }
        return schema
    finally:
        connection.rollback()


def require_empty(url: DatabaseURL) -> None:
    """Refuse a scratch database that is not empty: verify would change it."""
    if not database.exists(url):
        return
    engine = database.create_engine(url)
    try:
        found = sa.inspect(engine).get_table_names()
    except sa.exc.SQLAlchemyError as err:
        raise MigplanError(f"{url}: cannot connect: {describe(err)}") from err
    finally:
        engine.dispose()
    if found:
        raise MigplanError(
            f"{url} is not empty ({', '.join(sorted(found)[:5])}); "
            "verify needs a throwaway database"
        )


def empty(url: DatabaseURL) -> None:
    """Drop what verify created in a throwaway server database."""
    engine = database.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()
