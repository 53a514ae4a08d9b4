"""A scratch schema to replay a history in, and the database's own dump of it.

PostgreSQL and MariaDB know more of a schema than SQLAlchemy's reflection does
(views, triggers, functions, enum types, sequences' positions, check constraints
exactly as written), so a checkpoint is their own dump: `pg_dump` (plain SQL,
INSERTs) and `mariadb-dump`; SQLite's is `iterdump`. The password goes to the
tool in its environment or a private option file, never on its command line.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from migplan.core.url import DatabaseURL
from migplan.db import database
from migplan.errors import MigplanError
from migplan.errors import describe
from migplan.errors import mask

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from migplan.core.environment import Tables

_PSQL_META = re.compile(r"^\\(?:restrict|unrestrict)\b.*$\n?", re.M)
_DEFINER = re.compile(r"\s*DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*`")


@contextmanager
def scratch(url: DatabaseURL | None, dialect: str) -> Iterator[tuple[DatabaseURL, str]]:
    """A place to replay in, and its name as the dump writes it: a temporary
    SQLite file; a schema of its own in the PostgreSQL database `url`; a
    database of its own on `url`'s MariaDB server. Dropped afterwards."""
    name = f"mp_ckpt_{secrets.token_hex(6)}"
    if url is None:
        if dialect != "sqlite":
            raise MigplanError(
                f"a {dialect} checkpoint is made on a scratch database: give one "
                "with --url (an empty database migplan may create a schema in)"
            )
        with tempfile.TemporaryDirectory(prefix="migplan-checkpoint-") as folder:
            yield DatabaseURL.parse(f"sqlite:///{Path(folder) / 'scratch.db'}"), ""
        return
    if url.dialect not in ("postgresql", "mysql"):
        raise MigplanError(f"{url}: checkpoints are made on SQLite, PostgreSQL, MySQL")
    import sqlalchemy as sa

    engine = database.create_engine(url)
    create = "CREATE SCHEMA" if url.dialect == "postgresql" else "CREATE DATABASE"
    drop = (
        "DROP SCHEMA {} CASCADE" if url.dialect == "postgresql" else "DROP DATABASE {}"
    )
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"{create} {name}")
    except sa.exc.SQLAlchemyError as err:
        engine.dispose()
        raise MigplanError(
            f"{url}: cannot create the scratch {name}: {describe(err)}"
        ) from err
    try:
        if url.dialect == "postgresql":
            yield url.with_search_path(name), name
        else:
            made = sa.engine.make_url(database.sync_url(url)).set(database=name)
            yield DatabaseURL.parse(made.render_as_string(hide_password=False)), name
    finally:
        try:
            _drop(engine, url.dialect, name, drop)
        finally:
            engine.dispose()


def _drop(engine: Engine, dialect: str, name: str, drop: str) -> None:
    """Drop the scratch schema: on PostgreSQL its tables a few hundred per
    transaction first, since one transaction can lock only so many relations
    (max_locks_per_transaction), and a long history has thousands."""
    import sqlalchemy as sa

    try:
        if dialect == "postgresql":
            with engine.connect() as connection:
                tables = (
                    connection.exec_driver_sql(
                        "SELECT tablename FROM pg_tables WHERE schemaname = %(s)s",
                        {"s": name},
                    )
                    .scalars()
                    .all()
                )
            for start in range(0, len(tables), 200):
                names = ", ".join(
                    f'{name}."{t.replace(chr(34), chr(34) * 2)}"'
                    for t in tables[start : start + 200]
                )
                with engine.begin() as connection:
                    connection.exec_driver_sql(f"DROP TABLE {names} CASCADE")
        with engine.begin() as connection:
            connection.exec_driver_sql(drop.format(name))
    except sa.exc.SQLAlchemyError as err:
        raise MigplanError(
            f"cannot drop the scratch {name}: {describe(err)}; drop it by hand"
        ) from err


def relations(url: DatabaseURL, name: str) -> int:
    """How many relations (tables, indexes, sequences, views, TOAST tables and
    their indexes) the replayed scratch schema holds: what one transaction that
    loads it must lock, on PostgreSQL."""
    import sqlalchemy as sa

    engine = database.create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT count(*) + 2 * count(NULLIF(c.reltoastrelid, 0)) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %(s)s",
                {"s": name},
            ).scalar()
    except sa.exc.SQLAlchemyError as err:
        raise MigplanError(f"{url}: {describe(err)}") from err
    finally:
        engine.dispose()
    return int(found or 0)


def dump(url: DatabaseURL, name: str, tables: Tables) -> tuple[str, str]:
    """The dump of the replayed scratch (`name`: its schema or database) without
    the version table and migplan's own, and what made it."""
    skip = [tables.version_table, *tables.own]
    if url.dialect == "sqlite":
        return _sqlite(url, skip), "sqlite3"
    if url.dialect == "postgresql":
        return _pg_dump(url, name, skip)
    return _mariadb_dump(url, name, skip)


def _sqlite(url: DatabaseURL, skip: list[str]) -> str:
    assert url.sqlite_file is not None
    connection = sqlite3.connect(url.sqlite_file)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        for table in names:
            if table in skip or table.startswith("migplan_"):
                connection.execute(f'DROP TABLE "{table}"')
        connection.commit()
        lines = [
            line
            for line in connection.iterdump()
            if line not in ("BEGIN TRANSACTION;", "COMMIT;")
            and not line.startswith("PRAGMA ")
        ]
    finally:
        connection.close()
    return "\n".join(lines) + "\n"


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise MigplanError(
        f"{names[0]} is not installed: a checkpoint is the database's own dump "
        f"(install the {names[0]} client)"
    )


def _run(command: list[str], env: dict[str, str], what: str) -> str:
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False
        )
    except OSError as err:
        raise MigplanError(f"cannot run {what}: {err.strerror}") from err
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        # the error and its hint, not the query it was running
        wanted = [line for line in lines if re.search(r"error|hint", line, re.I)]
        said = " ".join((wanted or lines)[:2]) or "(no message)"
        raise MigplanError(f"{what} failed: {mask(said)}")
    return done.stdout


def _version(tool: str) -> str:
    found = subprocess.run([tool, "--version"], capture_output=True, text=True)
    words = found.stdout.split()
    number = next((w for w in words if re.match(r"\d+\.\d+", w)), "")
    return f"{Path(tool).name} {number.rstrip(',')}".strip()


def _pg_dump(url: DatabaseURL, name: str, skip: list[str]) -> tuple[str, str]:
    import sqlalchemy as sa

    tool = _tool("pg_dump")
    parts = sa.engine.make_url(database.sync_url(url))
    env = dict(os.environ)
    for key, value in {
        "PGHOST": parts.host,
        "PGPORT": parts.port,
        "PGUSER": parts.username,
        "PGPASSWORD": parts.password,
        "PGDATABASE": parts.database,
    }.items():
        if value is not None:
            env[key] = str(value)
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if key in parts.query:
            env[f"PG{key.upper()}"] = str(parts.query[key])
    command = [
        tool,
        f"--schema={name}",
        "--no-owner",
        "--no-privileges",
        "--inserts",
        "--rows-per-insert=100",
    ]
    command += [f"--exclude-table={name}.{table}" for table in skip]
    command.append(f"--exclude-table={name}.migplan_*")
    text = _run(command, env, "pg_dump")
    return _PSQL_META.sub("", text), _version(tool)


def _mariadb_dump(url: DatabaseURL, name: str, skip: list[str]) -> tuple[str, str]:
    import sqlalchemy as sa

    tool = _tool("mariadb-dump", "mysqldump")
    parts = sa.engine.make_url(database.sync_url(url))
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as options:
        os.chmod(options.name, 0o600)
        options.write("[client]\n")
        if parts.password is not None:
            escaped = str(parts.password).replace("\\", "\\\\").replace('"', '\\"')
            options.write(f'password="{escaped}"\n')
    try:
        command = [
            tool,
            f"--defaults-extra-file={options.name}",
            f"--host={parts.host or 'localhost'}",
            f"--port={parts.port or 3306}",
            f"--user={parts.username or ''}",
            "--protocol=TCP",
            # the dump's own header turns foreign key checks off while tables
            # load in name order, and its footer puts the session back
            "--skip-comments",
            "--skip-add-drop-table",
            "--skip-add-locks",
            "--skip-dump-date",
            "--single-transaction",
            "--routines",
            "--triggers",
            "--no-create-db",
            "--default-character-set=utf8mb4",
        ]
        command += [f"--ignore-table={name}.{table}" for table in skip]
        command.append(name)
        text = _run(command, dict(os.environ), Path(tool).name)
    finally:
        os.unlink(options.name)
    return _DEFINER.sub("", text), _version(tool)
