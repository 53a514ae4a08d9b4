"""`migplan db ...`: the Flask-Migrate command set, on SQLite, PostgreSQL, MariaDB.

Commands that import a Flask app run as a subprocess (a module once imported stays
in sys.modules, and the tutorial edits its models between commands); the others
run in-process.
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import ENV_PY
from conftest import FLASK_APP
from conftest import columns
from conftest import query
from conftest import run
from conftest import run_process
from conftest import tables
from conftest import version_rows

from migplan.db.commands import list_templates

NAME = "name = db.Column(db.String(128))"
EMAIL = "email = db.Column(db.String(120))"
AGE = "age = db.Column(db.Integer)"


def write_app(root: Path, module: str, own_url: str, *model_columns: str) -> Path:
    """Write the tutorial's Flask app, its User model having `model_columns`."""
    path = root / f"{module}.py"
    body = "\n".join(f"    {c}" for c in model_columns)
    path.write_text(FLASK_APP.format(columns=body, own_url=own_url))
    return path


def write_config(root: Path, text: str) -> Path:
    path = root / "migplan.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def flask_root(tmp_path: Path) -> Path:
    root = tmp_path / "tutorial"
    root.mkdir()
    return root


def own_database(root: Path) -> Path:
    """The SQLite file the app's own SQLALCHEMY_DATABASE_URI names."""
    return root.parent / "app_own.db"


def tutorial_project(root: Path, url: str, module: str = "tutorial") -> None:
    """A Flask-SQLAlchemy app on its own database, and migplan.yaml's `dev` on `url`."""
    write_app(root, module, f"sqlite:///{own_database(root)}", NAME)
    write_config(
        root,
        f"""
        app: {module}:create_app
        default_env: dev
        environments:
          dev:
            url: {url}
        """,
    )


def state(url: str) -> tuple[set[str], set[str] | None, list[str]]:
    """(tables, columns of user, alembic_version rows) of a database; migplan's
    audit trail, which the migrating db commands write, is not counted (see
    `audit_actions`)."""
    found = tables(url) - {"migplan_audit", "migplan_audit_steps"}
    return found, columns(url, "user") if "user" in found else None, version_rows(url)


def audit_actions(url: str) -> list[tuple[str, str, str]]:
    """(action, from, to) of each run the audit trail recorded, oldest first."""
    if "migplan_audit" not in tables(url):
        return []
    return [
        (str(a), str(f), str(t))
        for a, f, t in query(
            url, "SELECT action, from_heads, to_heads FROM migplan_audit ORDER BY id"
        )
    ]


def revision_files(root: Path) -> list[Path]:
    return sorted((root / "migrations" / "versions").glob("*.py"))


def only_new(before: list[Path], after: list[Path]) -> Path:
    (new,) = set(after) - set(before)
    return new


def rev_id(path: Path) -> str:
    return path.name.split("_", 1)[0]


def migplan(root: Path, *args: str) -> tuple[int, str, str]:
    result = run_process(root, *args)
    return result.returncode, result.stdout, result.stderr


# -- the tutorial -------------------------------------------------------------------


def test_flask_migrate_tutorial(flask_root, db_url):
    root = flask_root
    tutorial_project(root, db_url)
    config_before = (root / "migplan.yaml").read_bytes()

    code, out, err = migplan(root, "db", "init")
    assert code == 0, err
    assert (root / "migrations" / "env.py").read_text() == ENV_PY
    assert (root / "migplan.yaml").read_bytes() == config_before
    assert "Wrote migplan.yaml" not in out
    assert state(db_url) == (set(), None, [])

    code, out, err = migplan(root, "db", "migrate", "-m", "Initial migration")
    assert code == 0, err
    (first_file,) = revision_files(root)
    first = rev_id(first_file)
    assert first_file.name == f"{first}_initial_migration.py"
    assert out == f"Generating {first_file} ...  done\n"
    assert "Detected added table 'user'" in err
    assert "op.create_table('user'" in first_file.read_text()
    # autogenerate may leave an empty version table, as with Flask-Migrate
    assert tables(db_url) <= {"alembic_version"}
    assert version_rows(db_url) == []

    code, out, err = migplan(root, "db", "upgrade")
    assert code == 0, err
    assert f"Running upgrade  -> {first}, Initial migration" in err
    assert state(db_url) == ({"alembic_version", "user"}, {"id", "name"}, [first])

    write_app(root, "tutorial", f"sqlite:///{own_database(root)}", NAME, EMAIL)
    code, out, err = migplan(root, "db", "migrate", "-m", "Add email")
    assert code == 0, err
    second_file = only_new([first_file], revision_files(root))
    second = rev_id(second_file)
    text = second_file.read_text()
    assert f"down_revision = {first!r}" in text
    assert "sa.Column('email', sa.String(length=120), nullable=True)" in text
    # SQLite alters a table by copying it: autogenerate renders batch operations
    assert ("batch_alter_table" in text) == db_url.startswith("sqlite")
    assert state(db_url) == ({"alembic_version", "user"}, {"id", "name"}, [first])

    code, out, err = migplan(root, "db", "upgrade")
    assert code == 0, err
    assert f"Running upgrade {first} -> {second}, Add email" in err
    assert state(db_url) == (
        {"alembic_version", "user"},
        {"id", "name", "email"},
        [second],
    )

    code, out, err = migplan(root, "db", "history")
    assert code == 0, err
    assert out == (
        f"{first} -> {second} (head), Add email\n<base> -> {first}, Initial migration\n"
    )
    assert state(db_url) == (
        {"alembic_version", "user"},
        {"id", "name", "email"},
        [second],
    )

    code, out, err = migplan(root, "db", "downgrade", first)
    assert code == 0, err
    assert f"Running downgrade {second} -> {first}, Add email" in err
    assert state(db_url) == ({"alembic_version", "user"}, {"id", "name"}, [first])

    code, out, err = migplan(root, "db", "current")
    assert code == 0, err
    assert out == f"{first}\n"
    assert state(db_url) == ({"alembic_version", "user"}, {"id", "name"}, [first])

    code, out, err = migplan(root, "db", "stamp", "head")
    assert code == 0, err
    assert f"Running stamp_revision {first} -> {second}" in err
    assert state(db_url) == ({"alembic_version", "user"}, {"id", "name"}, [second])

    # each migrating command was recorded, under the lock, as apply is
    assert audit_actions(db_url) == [
        ("db upgrade", "", first),
        ("db upgrade", first, second),
        ("db downgrade", second, first),
        ("db stamp", first, second),
    ]

    code, out, err = migplan(root, "db", "upgrade", "--sql")
    assert code == 0, err
    assert "CREATE TABLE alembic_version" in out
    assert f"-- Running upgrade  -> {first}" in out
    assert f"-- Running upgrade {first} -> {second}" in out
    assert "ADD COLUMN email VARCHAR(120)" in out
    assert state(db_url) == ({"alembic_version", "user"}, {"id", "name"}, [second])

    # the app's SQLALCHEMY_DATABASE_URI was never used, not even to create a file
    assert not own_database(root).exists()
    assert not (root / "instance").exists()


def test_sqlite_migrate_adds_and_drops_columns_in_batch(flask_root, sqlite_url):
    root = flask_root
    tutorial_project(root, sqlite_url)
    assert migplan(root, "db", "init")[0] == 0
    assert migplan(root, "db", "migrate", "-m", "users")[0] == 0
    assert migplan(root, "db", "upgrade")[0] == 0
    (first_file,) = revision_files(root)
    assert state(sqlite_url) == (
        {"alembic_version", "user"},
        {"id", "name"},
        [rev_id(first_file)],
    )

    write_app(root, "tutorial", f"sqlite:///{own_database(root)}", EMAIL, AGE)
    code, out, err = migplan(root, "db", "migrate", "-m", "email and age, no name")
    assert code == 0, err
    second_file = only_new([first_file], revision_files(root))
    text = second_file.read_text()
    assert "with op.batch_alter_table('user', schema=None) as batch_op:" in text
    assert "batch_op.add_column(sa.Column('email'" in text
    assert "batch_op.add_column(sa.Column('age'" in text
    assert "batch_op.drop_column('name')" in text

    code, out, err = migplan(root, "db", "upgrade")
    assert code == 0, err
    assert state(sqlite_url) == (
        {"alembic_version", "user"},
        {"id", "email", "age"},
        [rev_id(second_file)],
    )

    code, out, err = migplan(root, "db", "downgrade")
    assert code == 0, err
    assert state(sqlite_url) == (
        {"alembic_version", "user"},
        {"id", "name"},
        [rev_id(first_file)],
    )

    code, out, err = migplan(root, "db", "upgrade")
    assert code == 0, err
    code, out, err = migplan(root, "db", "migrate", "-m", "nothing")
    assert code == 0, err
    assert "No changes in schema detected." in err
    assert revision_files(root) == sorted([first_file, second_file])
    assert not own_database(root).exists()


# -- check: a Flask app imported in-process, under a name of its own ---------------


def test_check_fails_while_models_differ_and_passes_in_sync(project, db_url):
    module = f"check_app_{uuid.uuid4().hex[:8]}"
    own = project.root.parent / "check_own.db"
    write_app(project.root, module, f"sqlite:///{own}", NAME)
    project.add_revision(
        "a1",
        None,
        "op.create_table('user', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('user')",
    )
    project.write_config(
        f"""
        app: {module}:create_app
        environments:
          dev:
            url: {db_url}
        """
    )
    assert run(project.root, "db", "upgrade").exit_code == 0

    result = run(project.root, "db", "check")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: New upgrade operations detected: [('add_column', None, 'user', "
        "Column('name', String(length=128), table=<user>))]\n"
    )
    assert state(db_url) == ({"alembic_version", "user"}, {"id"}, ["a1"])

    project.add_revision(
        "b2",
        "a1",
        "op.add_column('user', sa.Column('name', sa.String(128)))",
        "op.drop_column('user', 'name')",
    )
    # Alembic compares only once the database is at head
    result = run(project.root, "db", "check")
    assert result.exit_code == 1
    assert result.stderr == "Error: Target database is not up to date.\n"

    assert run(project.root, "db", "upgrade").exit_code == 0
    result = run(project.root, "db", "check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "No new upgrade operations detected.\n"
    assert state(db_url) == ({"alembic_version", "user"}, {"id", "name"}, ["b2"])
    assert not own.exists()


def test_autogenerate_leaves_migplans_audit_table_alone(project, db_url):
    module = f"audit_app_{uuid.uuid4().hex[:8]}"
    write_app(project.root, module, f"sqlite:///{project.root / 'own.db'}", NAME)
    project.add_revision(
        "a1",
        None,
        "op.create_table('user', sa.Column('id', sa.Integer, primary_key=True),"
        " sa.Column('name', sa.String(128)))",
        "op.drop_table('user')",
    )
    project.write_config(
        f"""
        app: {module}:create_app
        environments:
          dev:
            url: {db_url}
        """
    )
    assert run(project.root, "apply").exit_code == 0
    assert tables(db_url) == {
        "alembic_version",
        "migplan_audit",
        "migplan_audit_steps",
        "user",
    }

    result = run(project.root, "db", "check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "No new upgrade operations detected.\n"

    result = run(project.root, "db", "migrate", "-m", "nothing")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert [p.name for p in project.versions.glob("*.py")] == ["a1_a1.py"]


# -- the revision graph: no app, in-process -------------------------------------------


def graph_project(project, url):
    project.add_revision(
        "a1",
        None,
        "op.create_table('base_t', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('base_t')",
        message="base",
    )
    project.write_config(
        f"""
        environments:
          dev:
            url: {url}
        """
    )
    return project


def test_two_heads_then_merge(project, db_url):
    graph_project(project, db_url)
    root = project.root

    result = run(root, "db", "revision", "-m", "left", "--rev-id", "b1")
    assert result.exit_code == 0, result.stderr
    result = run(root, "db", "revision", "--head", "a1", "-m", "right")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Revision a1 is not a head revision; please specify --splice to "
        "create a new branch from this revision\n"
    )
    result = run(
        root,
        "db",
        "revision",
        "--head",
        "a1",
        "--splice",
        "-m",
        "right",
        "--rev-id",
        "c1",
    )
    assert result.exit_code == 0, result.stderr

    result = run(root, "db", "heads")
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["b1 (head)", "c1 (head)"]

    result = run(root, "db", "branches")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "a1 (branchpoint)"
    assert sorted(lines[1:]) == ["", "   -> b1 (head)", "   -> c1 (head)"]

    result = run(root, "db", "show", "b1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        f"Rev: b1 (head)\nParent: a1\nPath: {project.versions / 'b1_left.py'}\n"
    )

    result = run(root, "db", "upgrade", "heads")
    assert result.exit_code == 0, result.stderr
    assert version_rows(db_url) == ["b1", "c1"]

    result = run(root, "db", "merge", "-m", "merge heads", "--rev-id", "m1")
    assert result.exit_code == 0, result.stderr
    merge_text = (project.versions / "m1_merge_heads.py").read_text()
    assert "down_revision = ('b1', 'c1')\n" in merge_text
    result = run(root, "db", "heads")
    assert result.stdout == "m1 (head)\n"

    result = run(root, "db", "upgrade")
    assert result.exit_code == 0, result.stderr
    assert version_rows(db_url) == ["m1"]
    assert tables(db_url) == {
        "alembic_version",
        "base_t",
        "migplan_audit",
        "migplan_audit_steps",
    }


def test_revision_with_rev_id_branch_label_and_depends_on(project, sqlite_url):
    graph_project(project, sqlite_url)
    root = project.root

    result = run(
        root,
        "db",
        "revision",
        "-m",
        "feature root",
        "--rev-id",
        "f1",
        "--head",
        "base",
        "--branch-label",
        "feature",
        "--depends-on",
        "a1",
    )

    assert result.exit_code == 0, result.stderr
    path = project.versions / "f1_feature_root.py"
    assert result.stdout == f"Generating {path} ...  done\n"
    text = path.read_text()
    assert "revision = 'f1'\n" in text
    assert "down_revision = None\n" in text
    assert "branch_labels = ('feature',)\n" in text
    assert "depends_on = 'a1'\n" in text
    assert sorted(run(root, "db", "heads").stdout.splitlines()) == [
        "a1 (effective head)",
        "f1 (feature) (head)",
    ]

    # the dependency runs first, though it is on another branch; Alembic then
    # records only f1, which implies a1
    result = run(root, "db", "upgrade", "feature@head")
    assert result.exit_code == 0, result.stderr
    assert version_rows(sqlite_url) == ["f1"]
    assert tables(sqlite_url) == {
        "alembic_version",
        "base_t",
        "migplan_audit",
        "migplan_audit_steps",
    }


def test_list_templates(tmp_path):
    result = run(tmp_path, "db", "list-templates")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "Available templates:",
        "",
        "migplan - Single-database configuration for migplan "
        "(Flask-SQLAlchemy or plain SQLAlchemy).",
    ]
    assert "generic - Generic single-database configuration." in lines
    assert "multidb - Rudimentary multi-database configuration." in lines


def test_init_with_an_alembic_template(tmp_path):
    result = run(tmp_path, "db", "init", "-t", "generic", "-d", "alembic")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "alembic" / "env.py").is_file()
    assert "migrations: alembic\n" in (tmp_path / "migplan.yaml").read_text()


def test_init_with_an_unknown_template(tmp_path):
    result = run(tmp_path, "db", "init", "-t", "nope")
    assert result.exit_code == 1
    known = ", ".join(name for name, _ in list_templates())
    assert known.startswith("migplan, ")
    assert result.stderr == f"Error: unknown template 'nope' (known: {known})\n"
    assert list(tmp_path.iterdir()) == []


MULTIDB_APP = """\
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)


class Event(db.Model):
    __bind_key__ = "events"
    id = db.Column(db.Integer, primary_key=True)


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///{own}"
    app.config["SQLALCHEMY_BINDS"] = {{"events": "sqlite:///{events}"}}
    db.init_app(app)
    return app
"""


def test_init_multidb_migrates_every_bind(tmp_path):
    root = tmp_path / "multi"
    root.mkdir()
    main, events, own = (
        tmp_path / "main.db",
        tmp_path / "events.db",
        tmp_path / "own.db",
    )
    (root / "multiapp.py").write_text(MULTIDB_APP.format(own=own, events=events))
    write_config(
        root,
        f"""
        app: multiapp:create_app
        environments:
          dev:
            url: sqlite:///{main}
        """,
    )

    assert run_process(root, "db", "init", "--multidb").returncode == 0
    migrated = run_process(root, "db", "migrate", "-m", "both databases")
    assert migrated.returncode == 0, migrated.stderr
    upgraded = run_process(root, "db", "upgrade")

    assert upgraded.returncode == 0, upgraded.stderr
    assert "user" in tables(f"sqlite:///{main}")
    assert "event" not in tables(f"sqlite:///{main}")
    assert "event" in tables(f"sqlite:///{events}")
    assert not own.exists()  # the env's URL replaced the app's default database
    listed = run(tmp_path, "db", "list-templates").stdout
    assert "\nmigplan-multidb - " in listed


def test_binds_in_migplan_yaml_win_over_the_apps(tmp_path):
    root = tmp_path / "multi"
    root.mkdir()
    main, apps_events, events, own = (
        tmp_path / "main.db",
        tmp_path / "events.db",
        tmp_path / "env-events.db",
        tmp_path / "own.db",
    )
    (root / "multiapp.py").write_text(MULTIDB_APP.format(own=own, events=apps_events))
    write_config(
        root,
        f"""
        app: multiapp:create_app
        environments:
          dev:
            url: sqlite:///{main}
            binds: {{events: "sqlite:///{events}"}}
        """,
    )
    assert run_process(root, "db", "init", "--multidb").returncode == 0
    assert run_process(root, "db", "migrate", "-m", "both").returncode == 0
    upgraded = run_process(root, "db", "upgrade")

    assert upgraded.returncode == 0, upgraded.stderr
    assert "user" in tables(f"sqlite:///{main}")
    assert "event" in tables(f"sqlite:///{events}")
    # neither of the app's own databases was touched
    assert not apps_events.exists()
    assert not own.exists()
    # the environment's main database has the audit trail of the run
    assert [a for a, _, _ in audit_actions(f"sqlite:///{main}")] == ["db upgrade"]
    # apply and plan work on one database: they say so, and point at db upgrade
    planned = run_process(root, "plan", "dev")
    assert planned.returncode == 0, planned.stderr
    assert (
        "Note: apply will refuse: env.py configures more than one database"
        in planned.stdout
    )


# -- options of the db group ---------------------------------------------------------


def test_env_option_selects_another_environments_database(project, db_url, tmp_path):
    dev_url = f"sqlite:///{tmp_path / 'dev.db'}"
    project.add_revision(
        "a1",
        None,
        "op.create_table('t_a1', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('t_a1')",
    )
    project.add_revision(
        "b2",
        "a1",
        "op.create_table('t_b2', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('t_b2')",
    )
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {dev_url}
          staging:
            url: {db_url}
        """
    )

    result = run(project.root, "db", "-e", "staging", "upgrade", "a1")
    assert result.exit_code == 0, result.stderr
    assert version_rows(db_url) == ["a1"]
    assert tables(db_url) == {
        "alembic_version",
        "migplan_audit",
        "migplan_audit_steps",
        "t_a1",
    }

    result = run(project.root, "db", "upgrade", "--env", "staging")
    assert result.exit_code == 0, result.stderr
    assert version_rows(db_url) == ["b2"]
    assert tables(db_url) == {
        "alembic_version",
        "migplan_audit",
        "migplan_audit_steps",
        "t_a1",
        "t_b2",
    }

    # the subcommand's -e wins over the group's
    result = run(project.root, "db", "-e", "dev", "current", "-e", "staging")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "b2 (head)\n"
    result = run(project.root, "db", "current")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert tables(dev_url) == set()

    result = run(project.root, "db", "-e", "prod", "current")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unknown environment 'prod' (known: dev, staging)\n"
    )


X_ENV_PY = ENV_PY.replace(
    "target_metadata = config.attributes.get",
    'print("x:", context.get_x_argument(as_dictionary=True))\n\n'
    "target_metadata = config.attributes.get",
)


def test_x_arguments_reach_env_py(project, sqlite_url):
    assert X_ENV_PY != ENV_PY
    (project.root / "migrations" / "env.py").write_text(X_ENV_PY)
    graph_project(project, sqlite_url)

    result = run(project.root, "db", "-x", "tenant=acme", "upgrade", "-x", "dry=no")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "x: {'tenant': 'acme', 'dry': 'no'}\n"
    assert version_rows(sqlite_url) == ["a1"]

    result = run(project.root, "db", "downgrade", "base", "-x", "only=this")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "x: {'only': 'this'}\n"
    assert version_rows(sqlite_url) == []
