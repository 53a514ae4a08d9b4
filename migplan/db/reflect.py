"""A database's schema as SQLAlchemy reflects it, for comparing two snapshots; and
the scratch databases verify works on."""

from __future__ import annotations

import sqlalchemy as sa

from migplan.core.environment import Tables
from migplan.core.url import DatabaseURL
from migplan.core.verify import Schema
from migplan.db import database
from migplan.errors import MigplanError
from migplan.errors import describe


def schema(connection: sa.Connection, ignore: set[str]) -> Schema:
    """Return the schema of the connected database, in a form two snapshots compare
    by (the connection is left idle). Each kind of object is reflected for every
    table at once: a handful of queries per snapshot, not a handful per table
    (verify takes four snapshots per revision)."""
    try:
        if connection.dialect.name == "postgresql":
            return _pg_schema(connection, ignore)
        inspector = sa.inspect(connection)
        names = [
            table
            for table in sorted(inspector.get_table_names())
            if table not in ignore and not table.startswith("migplan_")
        ]
        if not names:
            return {}
        columns = inspector.get_multi_columns(filter_names=names)
        keys = inspector.get_multi_pk_constraint(filter_names=names)
        indexes = inspector.get_multi_indexes(filter_names=names)
        foreign = inspector.get_multi_foreign_keys(filter_names=names)
        unique = inspector.get_multi_unique_constraints(filter_names=names)
        schema: Schema = {}
        for table in names:
            at = (None, table)
            schema[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in columns.get(at, [])
                ],
                "primary_key": sorted(
                    key["constrained_columns"] if (key := keys.get(at)) else []
                ),
                "indexes": sorted(
                    (
                        str(i["name"]),
                        tuple(str(c) for c in i["column_names"]),
                        bool(i["unique"]),
                    )
                    for i in indexes.get(at, [])
                ),
                "foreign_keys": sorted(
                    (
                        tuple(f["constrained_columns"]),
                        str(f["referred_table"]),
                        tuple(f["referred_columns"]),
                    )
                    for f in foreign.get(at, [])
                ),
                "unique": sorted(tuple(u["column_names"]) for u in unique.get(at, [])),
            }
        return schema
    finally:
        connection.rollback()


_PG_SCHEMA = """
SELECT c.relname, 'columns', (row_number() OVER (
           PARTITION BY a.attrelid ORDER BY a.attnum))::text || ' ' || a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT c.relname, 'indexes', i.relname, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relnamespace = current_schema()::regnamespace
UNION ALL
SELECT c.relname, 'constraints', k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = current_schema()::regnamespace
"""


def _pg_schema(connection: sa.Connection, ignore: set[str]) -> Schema:
    """PostgreSQL's own description of every table of the current schema, in one
    query: each column (position, type, NOT NULL, default), each index and each
    constraint as the server writes them (pg_get_indexdef, pg_get_constraintdef:
    keys, uniques, checks, foreign keys). The schema's name is left out, so two
    schemas compare."""
    here = str(connection.exec_driver_sql("SELECT current_schema()").scalar())
    prefixes = (f"{here}.", f'"{here}".')
    found: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for table, kind, name, definition in connection.exec_driver_sql(_PG_SCHEMA):
        if table in ignore or table.startswith("migplan_"):
            continue
        text = str(definition)
        for prefix in prefixes:
            text = text.replace(prefix, "")
        entry = found.setdefault(
            str(table), {"columns": [], "indexes": [], "constraints": []}
        )
        entry[str(kind)].append((str(name), text))
    return {
        table: {kind: sorted(rows) for kind, rows in entry.items()}
        for table, entry in sorted(found.items())
    }


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
        with engine.begin() as connection:
            inspector = sa.inspect(connection)
            preparer = connection.dialect.identifier_preparer
            for view in inspector.get_view_names():
                connection.exec_driver_sql(f"DROP VIEW {preparer.quote(view)}")
            metadata = sa.MetaData()
            metadata.reflect(connection)
            metadata.drop_all(connection)
            if connection.dialect.name == "postgresql":
                for enum in inspector.get_enums():  # type: ignore[attr-defined]
                    connection.exec_driver_sql(
                        f"DROP TYPE {preparer.quote(enum['name'])}"
                    )
    except sa.exc.SQLAlchemyError as err:
        raise MigplanError(
            f"{url}: cannot drop what verify created: {describe(err)}"
        ) from err
    finally:
        engine.dispose()


def snapshot(connection: sa.Connection, tables: Tables) -> dict[str, object]:
    """Everything a checkpoint must reproduce of the connected database's default
    schema: each table's columns, types, defaults, nullability, keys, indexes,
    unique and check constraints; views, sequences (and where they are), enum
    types; every row. The version table and migplan's own are left out; the
    schema's own name is written as ``<schema>``, so two schemas compare."""
    ignore = {tables.version_table, *tables.own}
    try:
        inspector = sa.inspect(connection)
        reflected = schema(connection, ignore)
        found: dict[str, object] = {"tables": reflected}
        here = inspector.default_schema_name or ""
        names = sorted(reflected)

        def local(text: object) -> str:
            out = str(text)
            return (
                out.replace(f"`{here}`.", "").replace(f"{here}.", "") if here else out
            )

        checks = (
            inspector.get_multi_check_constraints(filter_names=names) if names else {}
        )
        found["checks"] = {
            table: sorted(
                (str(c.get("name")), " ".join(local(c["sqltext"]).split()))
                for c in checks.get((None, table), [])
            )
            for table in names
        }
        found["views"] = {
            view: " ".join(local(inspector.get_view_definition(view)).split())
            for view in sorted(inspector.get_view_names())
        }
        dialect = connection.dialect.name
        if dialect == "postgresql":
            found["enums"] = sorted(
                (e["name"], tuple(e["labels"]))
                for e in inspector.get_enums()  # type: ignore[attr-defined]
            )
            preparer = connection.dialect.identifier_preparer
            found["sequences"] = {
                name: tuple(
                    connection.exec_driver_sql(
                        f"SELECT last_value, is_called FROM {preparer.quote(name)}"
                    ).one()
                )
                for name in sorted(inspector.get_sequence_names())
            }
        elif dialect == "mysql":
            # where each table's AUTO_INCREMENT stands
            counters = connection.exec_driver_sql(
                "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND AUTO_INCREMENT IS NOT NULL"
            ).all()
            found["sequences"] = {
                str(name): int(value) for name, value in counters if name in reflected
            }
        elif inspector.has_table("sqlite_sequence"):
            counters = connection.exec_driver_sql(
                "SELECT name, seq FROM sqlite_sequence"
            ).all()
            found["sequences"] = {
                str(name): int(value) for name, value in counters if name in reflected
            }
        found["rows"] = {table: _rows(connection, table) for table in names}
        return found
    finally:
        connection.rollback()


def _rows(connection: sa.Connection, table: str) -> list[str]:
    name = connection.dialect.identifier_preparer.quote(table)
    rows = connection.exec_driver_sql(f"SELECT * FROM {name}").all()
    return sorted(repr(tuple(row)) for row in rows)


def compare(expected: dict[str, object], got: dict[str, object]) -> list[str]:
    """What differs between two snapshots, one phrase each."""
    from migplan.core.verify import difference

    out = []
    tables = difference(expected["tables"], got["tables"])  # type: ignore[arg-type]
    if tables:
        out.append(tables)
    for key in ("checks", "views", "enums", "sequences", "rows"):
        want, have = expected.get(key), got.get(key)
        if want == have:
            continue
        if isinstance(want, dict) and isinstance(have, dict):
            for name in sorted(set(want) | set(have)):
                if name not in have:
                    out.append(f"{key[:-1]} {name} missing")
                elif name not in want:
                    out.append(f"{key[:-1]} {name} not in the replay")
                elif want[name] != have[name]:
                    out.append(f"{key} of {name} differ")
        else:
            out.append(f"{key} differ")
    return out
