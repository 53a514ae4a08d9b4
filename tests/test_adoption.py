"""Existing projects work unchanged: made by Flask-Migrate, by plain Alembic, or new.

Flask-Migrate's and Alembic's own commands run as subprocesses with the venv's
`flask` and `alembic`, exactly as a user would have run them before adopting
migplan; migplan then gets only a migplan.yaml.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FLASK_APP
from conftest import columns
from conftest import display_url
from conftest import query
from conftest import run
from conftest import run_process
from conftest import tables
from conftest import version_rows

BIN = Path(sys.executable).parent


def tool(root: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's `flask` or `alembic` in `root`; fail the test if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_APP", "FLASK_ENV")}
    result = subprocess.run(
        [str(BIN / name), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def generated(result: subprocess.CompletedProcess[str]) -> Path:
    """The revision file a `revision`/`migrate` command says it generated."""
    found = re.search(r"Generating (\S+\.py) \.\.\.  done", result.stdout)
    assert found, result.stdout
    return Path(found.group(1))


def rev_id(path: Path) -> str:
    return path.name.split("_", 1)[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes under `folder`, bytecode caches left out."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def state(url: str, table: str) -> tuple[set[str], set[str] | None, list[str]]:
    """(tables, columns of `table`, alembic_version rows) of a database."""
    found = tables(url)
    return found, columns(url, table) if table in found else None, version_rows(url)


def write_config(root: Path, text: str) -> Path:
    path = root / "migplan.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# -- a. made by Flask-Migrate ---------------------------------------------------------


def write_flask_app(root: Path, own_url: str, *model_columns: str) -> None:
    body = "\n".join(f"    {c}" for c in model_columns)
    (root / "flaskapp.py").write_text(FLASK_APP.format(columns=body, own_url=own_url))


def test_flask_migrate_project_is_applied_to_another_database(tmp_path, db_url):
    root = tmp_path / "flaskproject"
    root.mkdir()
    own = tmp_path / "own.db"
    own_url = f"sqlite:///{own}"
    name = "name = db.Column(db.String(128))"
    email = "email = db.Column(db.String(120))"

    # the project as Flask-Migrate's tutorial leaves it: the app's own database
    # at the first revision, a second revision not yet applied there
    write_flask_app(root, own_url, name)
    tool(root, "flask", "--app", "flaskapp", "db", "init")
    first = rev_id(
        generated(
            tool(
                root, "flask", "--app", "flaskapp", "db", "migrate", "-m", "create user"
            )
        )
    )
    tool(root, "flask", "--app", "flaskapp", "db", "upgrade")
    write_flask_app(root, own_url, name, email)
    second = rev_id(
        generated(
            tool(root, "flask", "--app", "flaskapp", "db", "migrate", "-m", "add email")
        )
    )
    assert state(own_url, "user") == (
        {"alembic_version", "user"},
        {"id", "name"},
        [first],
    )
    migrations_before = snapshot(root / "migrations")
    own_before = own.read_bytes()

    write_config(
        root,
        f"""
        migrations: migrations
        app: flaskapp:create_app
        environments:
          staging:
            url: {db_url}
        """,
    )

    result = run_process(root, "plan", "staging")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"Environment: staging ({display_url(db_url)})\n"
        "Current:     base\n"
        f"Target:      head -> {second}\n"
        "\n"
        "  #  Revision      Direction  Message      Flags\n"
        f"  1  {first}  upgrade    create user\n"
        f"  2  {second}  upgrade    add email\n"
        "\n"
        "Plan: 2 steps (2 upgrades).\n"
    )
    assert version_rows(db_url) == []

    result = run_process(root, "apply", "staging")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"Applied 2 steps; staging is at {second}.\n")
    assert state(db_url, "user") == (
        {"alembic_version", "migplan_audit", "migplan_audit_steps", "user"},
        {"id", "name", "email"},
        [second],
    )

    result = run_process(root, "plan", "staging")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\nstaging is up to date.\n")

    # Flask-Migrate's own env.py, run by `migplan db`, also lands on the env URL,
    # and its autogenerate leaves migplan's audit table alone
    result = run_process(root, "db", "current", "-e", "staging")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{second} (head)\n"
    result = run_process(root, "db", "check", "-e", "staging")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No new upgrade operations detected.\n"
    result = run_process(root, "db", "downgrade", "-e", "staging")
    assert result.returncode == 0, result.stderr
    assert state(db_url, "user") == (
        {"alembic_version", "migplan_audit", "migplan_audit_steps", "user"},
        {"id", "name"},
        [first],
    )

    # nothing of the project was rewritten, and the app's database was not used
    assert snapshot(root / "migrations") == migrations_before
    assert own.read_bytes() == own_before
    assert state(own_url, "user") == (
        {"alembic_version", "user"},
        {"id", "name"},
        [first],
    )


# -- b. made by plain Alembic -----------------------------------------------------------

ACCOUNT_UP = """\
    op.create_table(
        "account",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200), nullable=False),
    )
"""


def test_plain_alembic_project_is_applied_to_the_env_url(tmp_path, db_url):
    root = tmp_path / "alembicproject"
    root.mkdir()
    ini_db = tmp_path / "ini.db"
    tool(root, "alembic", "init", "alembic")
    ini = root / "alembic.ini"
    text = ini.read_text()
    placeholder = "sqlalchemy.url = driver://user:pass@localhost/dbname\n"
    assert placeholder in text
    ini.write_text(text.replace(placeholder, f"sqlalchemy.url = sqlite:///{ini_db}\n"))
    path = generated(tool(root, "alembic", "revision", "-m", "create account"))
    body = path.read_text()
    for old, new in [
        ('    """Upgrade schema."""\n    pass\n', ACCOUNT_UP),
        ('    """Downgrade schema."""\n    pass\n', '    op.drop_table("account")\n'),
    ]:
        assert old in body
        body = body.replace(old, new)
    path.write_text(body)
    rev = rev_id(path)
    before = snapshot(root / "alembic"), ini.read_bytes()

    write_config(
        root,
        f"""
        migrations: alembic
        environments:
          dev:
            url: {db_url}
        """,
    )

    result = run_process(root, "plan", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE account" in result.stdout
    assert version_rows(db_url) == []

    result = run_process(root, "apply")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"Applied 1 step; dev is at {rev}.\n")
    assert state(db_url, "account") == (
        {"alembic_version", "migplan_audit", "migplan_audit_steps", "account"},
        {"id", "email"},
        [rev],
    )
    assert (snapshot(root / "alembic"), ini.read_bytes()) == before
    assert not ini_db.exists()


def test_env_py_with_its_own_url_never_opens_the_apps_database(tmp_path, db_url):
    """env.py builds its engine from $DATABASE_URL (as on Heroku) and connects
    before `configure`: the migrations run on the environment's database, and the
    app's own database is never opened (SQLite would create the file)."""
    root = tmp_path / "alembicproject"
    root.mkdir()
    own_db = tmp_path / "own.db"
    tool(root, "alembic", "init", "alembic")
    env_py = root / "alembic" / "env.py"
    text = env_py.read_text()
    section = "config.get_section(config.config_ini_section, {})"
    assert section in text
    env_py.write_text(
        "import os\n"
        + text.replace(section, '{"sqlalchemy.url": os.environ["DATABASE_URL"]}')
    )
    path = generated(tool(root, "alembic", "revision", "-m", "create account"))
    body = path.read_text()
    body = body.replace('    """Upgrade schema."""\n    pass\n', ACCOUNT_UP)
    body = body.replace(
        '    """Downgrade schema."""\n    pass\n', '    op.drop_table("account")\n'
    )
    path.write_text(body)
    rev = rev_id(path)
    write_config(
        root,
        f"""
        migrations: alembic
        environments:
          dev:
            url: {db_url}
        """,
    )
    own = {"DATABASE_URL": f"sqlite:///{own_db}"}

    for args in (("apply",), ("db", "downgrade"), ("db", "upgrade")):
        result = run_process(root, *args, env=own)
        assert result.returncode == 0, (args, result.stderr)
        assert not own_db.exists(), args
    assert state(db_url, "account") == (
        {"alembic_version", "migplan_audit", "migplan_audit_steps", "account"},
        {"id", "email"},
        [rev],
    )


# -- c. new: `migplan db init` ------------------------------------------------------------

STARTER = """\
# migplan.yaml: each environment's database, target revision and policies.
# Reference: schemas/migplan.schema.json in migplan's repository.
migrations: migrations
{app_line}
default_env: dev
environments:
  dev:
    url: sqlite:///dev.db
    target: head
  # prod:
  #   url: ${{PROD_DATABASE_URL}}      # read from the environment, never printed
  #   target: head
  #   protected: true
  #   on_failure: rollback
  #   rollback: {{allowed: true, max_steps: 1, allow_destructive: false}}
"""


@pytest.fixture
def no_flask_app(monkeypatch):
    monkeypatch.delenv("FLASK_APP", raising=False)
    monkeypatch.delenv("MIGPLAN_CONFIG", raising=False)


def test_db_init_in_an_empty_folder_writes_a_starter_config(tmp_path, no_flask_app):
    result = run(tmp_path, "db", "init")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(
        "Wrote migplan.yaml: edit its environments, then run 'migplan plan'.\n"
        "With migplan, each environment's database URL is in migplan.yaml.\n"
    )
    assert (tmp_path / "migplan.yaml").read_text() == STARTER.format(
        app_line="# app: app:create_app   # your Flask app or factory"
    )
    assert (tmp_path / "migrations" / "env.py").is_file()
    result = run(tmp_path, "validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "migplan.yaml is valid; every target resolves.\n"
    result = run(tmp_path, "plan")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("\ndev is up to date.\n")


def test_db_init_names_the_flask_app_of_flask_app(tmp_path, no_flask_app, monkeypatch):
    monkeypatch.setenv("FLASK_APP", "myapp:create_app")
    result = run(tmp_path, "db", "init")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "migplan.yaml").read_text() == STARTER.format(
        app_line="app: myapp:create_app"
    )


def test_db_init_keeps_an_existing_config(tmp_path, no_flask_app):
    config = write_config(
        tmp_path,
        """
        migrations: db/migrations
        environments:
          dev:
            url: sqlite:///dev.db
        """,
    )
    before = config.read_bytes()

    result = run(tmp_path, "db", "init")

    assert result.exit_code == 0, result.stderr
    assert "Wrote" not in result.stdout
    assert config.read_bytes() == before
    assert (tmp_path / "db" / "migrations" / "env.py").is_file()
    assert not (tmp_path / "migrations").exists()

    result = run(tmp_path, "db", "init")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Directory {tmp_path / 'db' / 'migrations'} already exists and "
        "is not empty\n"
    )
    assert config.read_bytes() == before


def test_db_init_with_config_option_writes_beside_it(tmp_path, no_flask_app):
    (tmp_path / "sub").mkdir()
    result = run(tmp_path, "-c", "sub/migplan.yaml", "db", "init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(
        "Wrote sub/migplan.yaml: edit its environments, then run 'migplan plan'.\n"
        "With migplan, each environment's database URL is in migplan.yaml.\n"
    )
    assert (tmp_path / "sub" / "migrations" / "env.py").is_file()
    assert "migrations: migrations\n" in (tmp_path / "sub" / "migplan.yaml").read_text()


MARKING_APP = """\
import pathlib

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


def create_app():
    pathlib.Path(__file__).with_name("app-loaded").touch()
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db.init_app(app)
    return app
"""


def test_apply_loads_the_app_only_where_a_revision_may_need_it(project, sqlite_url):
    """migplan's own env.py needs no models to run migrations: apply leaves the
    app unloaded, until a revision file uses Flask's `current_app`."""
    from conftest import linear_project

    linear_project(project, sqlite_url, "a1")
    config = project.root / "migplan.yaml"
    config.write_text("app: markapp:create_app\n" + config.read_text())
    (project.root / "markapp.py").write_text(MARKING_APP)
    marker = project.root / "app-loaded"

    result = run_process(project.root, "apply", "dev")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()

    project.add_revision(
        "b2",
        "a1",
        "from flask import current_app\n"
        'op.execute("CREATE TABLE seen (name TEXT)")\n'
        "op.execute(f\"INSERT INTO seen VALUES ('{current_app.name}')\")",
    )
    result = run_process(project.root, "apply", "dev")
    assert result.returncode == 0, result.stderr
    assert marker.exists()
    assert query(sqlite_url, "SELECT name FROM seen") == [("markapp",)]
