"""plan / apply / rollback end to end through the CLI, on SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

import json

from conftest import linear_project
from conftest import run
from conftest import tables
from conftest import version_rows


def test_apply_runs_the_plan_and_reaches_the_target(project, db_url):
    linear_project(project, db_url, "a1", "b2", "c3")
    planned = json.loads(run(project.root, "plan", "dev", "--json").stdout)
    assert [s["revision"] for s in planned["steps"]] == ["a1", "b2", "c3"]

    result = run(project.root, "apply", "dev")

    assert result.exit_code == 0, result.stderr
    assert "[3/3] upgrade c3" in result.stdout
    assert version_rows(db_url) == ["c3"]
    assert {"t_a1", "t_b2", "t_c3"} <= tables(db_url)
    again = run(project.root, "plan", "dev", "--detailed-exitcode")
    assert again.exit_code == 0
    assert "dev is up to date." in again.stdout


def test_detailed_exitcode_says_changes_are_pending(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    result = run(project.root, "plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert version_rows(sqlite_url) == []


def test_failed_step_stops_at_the_last_good_revision(project, db_url):
    linear_project(project, db_url, "a1", "b2")
    project.add_revision(
        "c3",
        "b2",
        "op.create_table('half', sa.Column('id', sa.Integer, primary_key=True))\n"
        "op.execute('SELECT * FROM no_such_table')",
        "op.drop_table('half')",
    )
    result = run(project.root, "apply", "dev")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: upgrade c3 failed: ")
    assert version_rows(db_url) == ["b2"]
    if not db_url.startswith("mysql"):
        assert "half" not in tables(db_url)  # the failed migration left nothing behind


def test_on_failure_rollback_returns_to_the_start(project, db_url):
    # c3 fails before changing anything: on every database, even where DDL is
    # not transactional, the steps before it are reverted
    linear_project(project, db_url, "a1", on_failure="rollback")
    run(project.root, "apply", "dev")
    project.add_revision("b2", "a1", *_table("t_b2"))
    project.add_revision(
        "c3", "b2", "op.execute('SELECT * FROM no_such_table')", "pass"
    )
    result = run(project.root, "apply", "dev")
    assert result.exit_code == 1
    assert "rolled back 1 step(s); the database is back at a1" in result.stderr
    assert version_rows(db_url) == ["a1"]
    assert "t_b2" not in tables(db_url)


def test_on_failure_rollback_stops_at_a_half_applied_step_on_mariadb(
    project, mysql_url
):
    # c3 fails after its first DDL statement: MariaDB committed that part, so the
    # database is dirty and nothing is reverted on top of it
    linear_project(project, mysql_url, "a1", on_failure="rollback")
    run(project.root, "apply", "dev")
    project.add_revision("b2", "a1", *_table("t_b2"))
    project.add_revision(
        "c3",
        "b2",
        "op.create_table('half', sa.Column('id', sa.Integer, primary_key=True))\n"
        "op.execute('SELECT * FROM no_such_table')",
        "op.drop_table('half')",
    )
    result = run(project.root, "apply", "dev")
    assert result.exit_code == 1
    assert "not transactional" in result.stderr
    assert version_rows(mysql_url) == ["b2"]
    assert {"t_b2", "half"} <= tables(mysql_url)


def _table(name):
    return (
        f"op.create_table({name!r}, sa.Column('id', sa.Integer, primary_key=True))",
        f"op.drop_table({name!r})",
    )


def test_rollback_steps_downgrades(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2", "c3")
    run(project.root, "apply")
    result = run(project.root, "rollback", "--steps", "2")
    assert result.exit_code == 0, result.stderr
    assert version_rows(sqlite_url) == ["a1"]
    assert "t_b2" not in tables(sqlite_url)


def test_protected_environment_needs_yes_without_a_terminal(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", protected="true")
    result = run(project.root, "apply", "dev")
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: environment 'dev' is protected; pass --yes to apply\n"
    )
    assert version_rows(sqlite_url) == []
    assert run(project.root, "apply", "dev", "--yes").exit_code == 0
    assert version_rows(sqlite_url) == ["a1"]


def test_plan_sql_leaves_the_database_untouched(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    result = run(project.root, "plan", "--sql")
    assert result.exit_code == 0, result.stderr
    assert "-- Step 1/2: upgrade a1" in result.stdout
    assert "CREATE TABLE t_a1" in result.stdout
    assert "CREATE TABLE t_b2" in result.stdout
    assert version_rows(sqlite_url) == []


def test_a_saved_plan_is_applied_exactly(project, db_url):
    linear_project(project, db_url, "a1", "b2")
    saved = project.root / "plan.json"
    made = run(project.root, "plan", "-o", str(saved))
    assert made.exit_code == 0, made.stderr
    project.add_revision("c3", "b2")  # written after the plan: not in it

    result = run(project.root, "apply", "--plan", str(saved))

    assert result.exit_code == 0, result.stderr
    assert version_rows(db_url) == ["b2"]


def test_a_saved_plan_is_refused_when_the_database_moved(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    saved = project.root / "plan.json"
    run(project.root, "plan", "-o", str(saved))
    run(project.root, "apply")  # someone else applied meanwhile

    result = run(project.root, "apply", "--plan", str(saved))

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the database moved from base to b2 since the plan was made; "
        "make a new plan\n"
    )
    assert version_rows(sqlite_url) == ["b2"]


def test_a_saved_plan_is_refused_when_a_revision_file_changed(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    saved = project.root / "plan.json"
    run(project.root, "plan", "-o", str(saved))
    b2 = next(project.versions.glob("b2_*.py"))
    b2.write_text(b2.read_text() + "\n# edited\n")

    result = run(project.root, "apply", "--plan", str(saved))

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: migrations/versions/{b2.name} changed since {saved} was made; "
        "make a new plan\n"
    )
    assert version_rows(sqlite_url) == []


def test_a_saved_plan_for_another_environment_is_refused(project, sqlite_url, tmp_path):
    linear_project(project, sqlite_url, "a1")
    config = project.root / "migplan.yaml"
    config.write_text(
        config.read_text() + f"  qa:\n    url: sqlite:///{tmp_path / 'qa.db'}\n"
    )
    saved = project.root / "plan.json"
    run(project.root, "plan", "dev", "-o", str(saved))

    result = run(project.root, "apply", "qa", "--plan", str(saved))

    assert result.exit_code == 1
    assert result.stderr == f"Error: {saved} was made for environment 'dev', not 'qa'\n"
    assert not (tmp_path / "qa.db").exists()


def test_status_shows_every_environment_and_an_unreachable_one_in_its_row(
    project, sqlite_url, tmp_path
):
    linear_project(project, sqlite_url, "a1", "b2")
    run(project.root, "apply")
    config = project.root / "migplan.yaml"
    config.write_text(
        config.read_text()
        + f"  qa:\n    url: sqlite:///{tmp_path / 'qa.db'}\n    target: a1\n"
        + "  prod:\n    url: postgresql://app:s3cr3t@127.0.0.1:1/prod\n"
    )

    result = run(project.root, "status")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "Environment",
        "URL",
        "Current",
        "Target",
        "Pending",
        "State",
    ]
    assert lines[1].split()[2:] == ["b2", "head", "0", "up", "to", "date"]
    assert lines[2].split()[2:] == ["base", "a1", "1", "up", "pending"]
    assert lines[3].split()[:3] == [
        "prod",
        "postgresql://app:***@127.0.0.1:1/prod",
        "?",
    ]
    assert "error: postgresql://app:***@127.0.0.1:1/prod: cannot connect:" in lines[3]
    assert "s3cr3t" not in result.stdout + result.stderr
