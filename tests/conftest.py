"""Shared fixtures: real databases (SQLite files, the PostgreSQL and MariaDB servers),
real Alembic projects written to tmp_path, and the CLI.

Server tests skip when a server is unreachable, except under CI=true, where an
unreachable server is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from click.testing import Result

from migplan.cli import cli
from migplan.core.url import DatabaseURL
from migplan.db import database

PG_ADMIN_URL = os.environ.get(
    "MIGPLAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_ADMIN_URL = os.environ.get(
    "MIGPLAN_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# migplan's cache of revision files: one of the test run's own, never the user's
os.environ["MIGPLAN_CACHE_DIR"] = tempfile.mkdtemp(prefix="migplan-test-cache-")


def driver_url(url: str) -> str:
    """The URL SQLAlchemy connects with, as migplan spells it for the driver."""
    return database.driver_url(DatabaseURL.parse(url))


def display_url(url: str) -> str:
    """The URL as migplan shows it, secrets hidden."""
    return DatabaseURL.parse(url).display


def _server_or_skip(admin_url: str, name: str) -> sa.Engine:
    engine = sa.create_engine(
        driver_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as err:
        if IN_CI:
            pytest.fail(f"{name} is not reachable at {admin_url} under CI: {err}")
        pytest.skip(f"{name} is not reachable at {admin_url}")
    return engine


@pytest.fixture(scope="session")
def pg_admin() -> sa.Engine:
    return _server_or_skip(PG_ADMIN_URL, "PostgreSQL")


@pytest.fixture(scope="session")
def mysql_admin() -> sa.Engine:
    return _server_or_skip(MYSQL_ADMIN_URL, "MariaDB")


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_url(pg_admin: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = _unique("migplan_test")
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    # spelled as a user writes it (postgresql://): migplan picks the driver
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    yield url
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mysql_url(mysql_admin: sa.Engine) -> Iterator[str]:
    """A fresh MariaDB database, dropped afterwards."""
    name = _unique("migplan_test")
    with mysql_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    url = sa.make_url(MYSQL_ADMIN_URL).set(database=name).render_as_string(False)
    yield url
    with mysql_admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on a SQLite file, PostgreSQL and MariaDB."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[
        request.param
    ]
    return str(request.getfixturevalue(fixture))


# -- what is in a database ----------------------------------------------------------


def tables(url: str) -> set[str]:
    """Names of the tables in the database, the version table included."""
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def version_rows(url: str, table: str = "alembic_version") -> list[str]:
    """The rows of the version table, sorted ([] when there is no table)."""
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    try:
        if not sa.inspect(engine).has_table(table):
            return []
        with engine.connect() as conn:
            return sorted(
                r[0] for r in conn.exec_driver_sql(f"SELECT version_num FROM {table}")
            )
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


# -- projects -------------------------------------------------------------------------

ENV_PY = (
    Path(__file__).parent.parent / "migplan" / "templates" / "migplan" / "env.py"
).read_text()


@dataclass
class Project:
    """A migplan project in a folder: migplan.yaml plus an Alembic migrations folder."""

    root: Path

    @property
    def versions(self) -> Path:
        return self.root / "migrations" / "versions"

    def write_config(self, text: str) -> Path:
        path = self.root / "migplan.yaml"
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def add_revision(
        self,
        rev: str,
        down: str | tuple[str, ...] | None,
        upgrade: str = "pass",
        downgrade: str = "pass",
        *,
        message: str | None = None,
        branch_labels: str | tuple[str, ...] | None = None,
        depends_on: str | tuple[str, ...] | None = None,
    ) -> Path:
        """Write a revision file whose upgrade/downgrade bodies are the given code."""
        path = self.versions / f"{rev}_{(message or rev).replace(' ', '_')}.py"
        body = f'''\
"""{message or rev}

Revision ID: {rev}
"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = {branch_labels!r}
depends_on = {depends_on!r}


def upgrade():
{textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")}


def downgrade():
{textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")}
'''
        path.write_text(body)
        return path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project using migplan's own env.py template."""
    root = tmp_path / "proj"
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text(
        (
            Path(__file__).parent.parent / "migplan/templates/migplan/script.py.mako"
        ).read_text()
    )
    return Project(root)


def create_table(name: str) -> tuple[str, str]:
    """(upgrade, downgrade) bodies that create and drop a one-column table."""
    return (
        f"op.create_table({name!r}, sa.Column('id', sa.Integer, primary_key=True))",
        f"op.drop_table({name!r})",
    )


def linear_project(project: Project, url: str, *revs: str, **env: str) -> Project:
    """Revisions rev[0] -> rev[1] -> ..., each creating table t_<rev>; env `dev` on `url`."""
    down = None
    for rev in revs:
        up, dn = create_table(f"t_{rev}")
        project.add_revision(rev, down, up, dn)
        down = rev
    lines = [
        "default_env: dev",
        "environments:",
        "  dev:",
        f"    url: {url}",
        "    target: head",
    ]
    lines += [f"    {key}: {value}" for key, value in env.items()]
    project.write_config("\n".join(lines) + "\n")
    return project


FLASK_APP = """\
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
{columns}


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = {own_url!r}
    db.init_app(app)
    migrate.init_app(app, db)
    return app
"""
"""The Flask-Migrate tutorial's app: `columns` of its User model, its own URL."""


# -- running migplan ------------------------------------------------------------------


def run(root: Path, *args: str, input: str | None = None) -> Result:
    """Run migplan in-process, from `root`, with stdout and stderr kept apart."""
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(root)
    try:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)
    finally:
        os.chdir(old)


def run_process(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run migplan as a separate process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MIGPLAN_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "migplan", *args],
        cwd=root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
