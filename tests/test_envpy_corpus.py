"""Every env.py real projects run works unchanged under migplan.

The corpus (tests/envpy_corpus.py): Flask-Migrate's templates from 2.0 to today,
made by each release's own `flask db init`/`migrate`; Alembic's templates; env.py
patterns of hand-written projects. Each project gets only a migplan.yaml; its
environment's URL must win over the app's own database, which is never touched.

Run: `.venv/bin/python -m pytest -q -m corpus tests/test_envpy_corpus.py`.
The first run builds venvs and folders under $MIGPLAN_CORPUS_CACHE
(~/.cache/migplan-corpus); later runs reuse them.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from envpy_corpus import CASES
from envpy_corpus import ENV
from envpy_corpus import Case
from envpy_corpus import CorpusProject
from envpy_corpus import Database
from envpy_corpus import make_project
from envpy_corpus import password_url
from envpy_corpus import table_names
from envpy_corpus import table_owner

pytestmark = pytest.mark.corpus

PASSWORD = "p%@:/w"
ENCODED_PASSWORD = "p%25%40%3A%2Fw"


def _params(select: Callable[[Case, str], bool]) -> list[object]:
    return [
        pytest.param(case, backend, id=f"{case.id}-{backend}")
        for case in CASES
        for backend in case.backends
        if select(case, backend)
    ]


SINGLE = _params(lambda case, backend: not case.multidb)
MULTI = _params(lambda case, backend: case.multidb)
SINGLE_POSTGRESQL = _params(
    lambda case, backend: not case.multidb and backend == "postgresql"
)


# -- databases -------------------------------------------------------------------


def _server_url(request: pytest.FixtureRequest, backend: str) -> str:
    """A fresh database of `backend` (conftest's fixtures: dropped afterwards)."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}
    return str(request.getfixturevalue(fixture[backend]))


@pytest.fixture
def extra_databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str, int], tuple[str, ...]]]:
    """Make `n` more fresh databases of a backend, for multi-database projects."""
    made: list[str] = []

    def make(backend: str, n: int) -> tuple[str, ...]:
        if backend == "sqlite":
            return tuple(f"sqlite:///{tmp_path / f'other{i}.db'}" for i in range(n))
        admin: sa.Engine = request.getfixturevalue("pg_admin")
        urls = []
        for _ in range(n):
            name = f"migplan_corpus_{uuid.uuid4().hex[:12]}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            made.append(name)
            urls.append(admin.url.set(database=name).render_as_string(False))
        return tuple(u.replace("postgresql+psycopg://", "postgresql://") for u in urls)

    yield make
    if made:
        admin = request.getfixturevalue("pg_admin")
        with admin.connect() as conn:
            for name in made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def password_role(pg_admin: sa.Engine, pg_url: str) -> Iterator[tuple[str, str]]:
    """A role whose password has %, @, : and /, owning pg_url's database:
    (its name, pg_url as that role, the password percent-encoded)."""
    role = f"mig_{uuid.uuid4().hex[:10]}"
    database = sa.make_url(pg_url).database
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{PASSWORD.replace('%', '%%')}'"
        )
        conn.exec_driver_sql(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
    yield role, password_url(pg_url, role, PASSWORD)
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


# -- what a user checks -----------------------------------------------------------


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """The command, its exit code and its last line of error, for a failed assert."""
    args = list(result.args)
    if args[1:3] == ["-m", "migplan"]:
        command = " ".join(["migplan", *args[3:]])
    else:
        command = " ".join([Path(args[0]).name, *args[1:]])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error = next(
        (line for line in reversed(lines) if line.startswith("Error:")),
        lines[-1] if lines else "(no stderr)",
    )
    return f"`{command}` exited {result.returncode}: {error}\n{result.stderr}"


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, failed(result)


def assert_at_head(project: CorpusProject, database: Database) -> None:
    found = table_names(database.check_url)
    assert database.tables <= found, f"tables {sorted(found)} in {database.url}"
    assert project.version_rows(database) == [project.head]


def assert_at_base(project: CorpusProject, database: Database) -> None:
    found = table_names(database.check_url)
    assert not database.tables & found, f"tables {sorted(found)} in {database.url}"
    assert project.version_rows(database) == []


def assert_own_untouched(project: CorpusProject) -> None:
    """The app's own databases (its config, alembic.ini, DATABASE_URL) were never
    opened: SQLite creates the file on connecting."""
    assert [str(path) for path in project.own if path.exists()] == []


def migrated(project: CorpusProject) -> tuple[Database, ...]:
    """The databases the revision creates tables in."""
    main = (project.database,) if project.database.tables else ()
    return main + project.binds


def create_table_sql(table: str) -> re.Pattern[str]:
    return re.compile(rf"CREATE TABLE [`\"]?{table}[`\"]? \(")


# -- the control: the project's own tool ---------------------------------------


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_control_own_tool_migrates_own_database(
    case, request, tmp_path, extra_databases
):
    """Without migplan, `flask db upgrade` (Flask-Migrate 4.1) or `alembic upgrade
    head` of migplan's venv runs the project on its own databases: a case that
    fails here cannot work on today's stack, with or without migplan."""
    backend = case.backends[0]
    own_url = _server_url(request, backend)
    binds = extra_databases(backend, 2) if case.multidb else ()
    project = make_project(
        case, tmp_path, f"sqlite:///{tmp_path / 'unused.db'}", binds, own_url=own_url
    )

    result = project.run_own_tool()

    assert_ok(result)
    tables = project.database.tables
    own = (Database(own_url, own_url, tables),) if tables else ()
    for database in own + project.binds:
        assert_at_head(project, database)


# -- single-database env.py -------------------------------------------------------


@pytest.mark.parametrize(("case", "backend"), SINGLE)
def test_plan_sql_renders_the_revision(case, backend, request, tmp_path):
    project = make_project(case, tmp_path, _server_url(request, backend))

    result = project.migplan("plan", ENV, "--sql")

    assert_ok(result)
    for table in project.database.tables:
        assert create_table_sql(table).search(result.stdout), result.stdout
    assert project.head in result.stdout
    assert table_names(project.database.check_url) == set()
    assert_own_untouched(project)


@pytest.mark.parametrize(("case", "backend"), SINGLE)
def test_apply_drift_and_rollback(case, backend, request, tmp_path):
    project = make_project(case, tmp_path, _server_url(request, backend))
    database = project.database

    result = project.migplan("apply", ENV, "--yes")
    assert_ok(result)
    assert result.stdout.endswith(f"Applied 1 step; {ENV} is at {project.head}.\n")
    assert_at_head(project, database)
    if case.version_table != "alembic_version" or case.version_table_schema:
        assert "alembic_version" not in table_names(database.check_url)

    if case.has_models:
        result = project.migplan("drift", ENV)
        assert_ok(result)
        assert result.stdout == f"{ENV}: the database matches the models.\n"

    result = project.migplan("rollback", ENV, "--steps", "1", "--yes")
    assert_ok(result)
    assert result.stdout.endswith(f"Rolled back 1 step; {ENV} is at base.\n")
    assert_at_base(project, database)
    assert_own_untouched(project)


ALEMBIC_MULTIDB_DOWNGRADE = (
    "migplan plans `db downgrade -1` from the version table of the environment's "
    "database; Alembic's multidb template versions only the databases alembic.ini "
    "names, so the relative target does not resolve: refused, nothing changed"
)


def _db_commands_params() -> list[object]:
    params = []
    for param in SINGLE + MULTI:
        case = param.values[0]  # type: ignore[attr-defined]
        if case.template == "multidb":
            param = pytest.param(
                *param.values,  # type: ignore[attr-defined]
                id=param.id,  # type: ignore[attr-defined]
                marks=pytest.mark.xfail(strict=True, reason=ALEMBIC_MULTIDB_DOWNGRADE),
            )
        params.append(param)
    return params


@pytest.mark.parametrize(("case", "backend"), _db_commands_params())
def test_db_commands(case, backend, request, tmp_path, extra_databases):
    binds = extra_databases(backend, 2) if case.multidb else ()
    project = make_project(case, tmp_path, _server_url(request, backend), binds)
    databases = migrated(project)

    result = project.migplan("db", "history", "-e", ENV)
    assert_ok(result)
    assert f"<base> -> {project.head} (head), {project.message}" in result.stdout

    result = project.migplan("db", "upgrade", "-e", ENV)
    assert_ok(result)
    for database in databases:
        assert_at_head(project, database)

    result = project.migplan("db", "current", "-e", ENV)
    assert_ok(result)
    assert result.stdout == f"{project.head} (head)\n" * len(databases)

    result = project.migplan("db", "downgrade", "-e", ENV)
    assert_ok(result)
    for database in databases:
        assert_at_base(project, database)
    assert_own_untouched(project)


@pytest.mark.parametrize(("case", "backend"), SINGLE_POSTGRESQL)
def test_password_with_special_characters(case, backend, password_role, tmp_path):
    role, url = password_role
    assert ENCODED_PASSWORD in url
    project = make_project(case, tmp_path, url)
    table = sorted(project.database.tables)[0]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = project.migplan(*args)
        for secret in (PASSWORD, ENCODED_PASSWORD):
            assert secret not in result.stdout + result.stderr, failed(result)
        return result

    result = run("apply", ENV, "--yes")
    assert_ok(result)
    assert_at_head(project, project.database)
    assert table_owner(project.database.check_url, table) == role

    result = run("db", "current", "-e", ENV)
    assert_ok(result)
    assert result.stdout == f"{project.head} (head)\n"

    result = run("rollback", ENV, "--steps", "1", "--yes")
    assert_ok(result)
    assert_at_base(project, project.database)

    result = run("db", "upgrade", "-e", ENV)
    assert_ok(result)
    assert_at_head(project, project.database)
    assert table_owner(project.database.check_url, table) == role
    assert_own_untouched(project)


# -- multi-database env.py --------------------------------------------------------


@pytest.mark.parametrize(("case", "backend"), MULTI)
def test_apply_refuses_multidb_before_anything_changes(
    case, backend, request, tmp_path, extra_databases
):
    binds = extra_databases(backend, 2)
    project = make_project(case, tmp_path, _server_url(request, backend), binds)

    result = project.migplan("apply", ENV, "--yes")

    assert result.returncode == 1, failed(result)
    last_line = (result.stderr.strip().splitlines() or [""])[-1]
    assert last_line.startswith("Error: "), result.stderr
    assert "migplan db upgrade" in last_line, result.stderr
    for database in (project.database, *project.binds):
        assert table_names(database.check_url) == set(), database.url
    assert_own_untouched(project)
