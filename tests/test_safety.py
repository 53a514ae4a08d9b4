"""Production safety: audit trail, dirty databases, edited revisions, lint, drift, verify."""

from __future__ import annotations

import json
import textwrap

import pytest
import sqlalchemy as sa
from conftest import create_table
from conftest import driver_url
from conftest import linear_project
from conftest import run
from conftest import tables
from conftest import version_rows


def execute(url, sql):
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


HALF = (
    "op.create_table('half', sa.Column('id', sa.Integer, primary_key=True))\n"
    "op.execute('SELECT * FROM no_such_table')"
)


def test_every_apply_and_rollback_is_recorded(project, db_url, monkeypatch):
    monkeypatch.setenv("MIGPLAN_ACTOR", "deploy-bot")
    linear_project(project, db_url, "a1", "b2")
    assert run(project.root, "apply").exit_code == 0
    assert run(project.root, "rollback", "--steps", "1").exit_code == 0

    (trail,) = json.loads(run(project.root, "log", "--json").stdout)["databases"]
    runs = trail["runs"]

    assert [(r["action"], r["from"], r["to"], r["outcome"]) for r in runs] == [
        ("rollback", ["b2"], ["a1"], "success"),
        ("apply", [], ["b2"], "success"),
    ]
    assert {r["actor"] for r in runs} == {"deploy-bot"}
    applied = runs[1]["steps"]
    assert [(s["revision"], s["direction"], s["outcome"]) for s in applied] == [
        ("a1", "upgrade", "done"),
        ("b2", "upgrade", "done"),
    ]
    assert all(len(s["checksum"]) == 64 and s["seconds"] >= 0 for s in applied)
    # recording never changes what Alembic sees
    assert version_rows(db_url) == ["a1"]
    assert "migplan_audit" in tables(db_url)


def test_log_on_a_database_never_applied(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    result = run(project.root, "log")
    assert result.exit_code == 0
    assert result.stdout == "No runs recorded.\n"


def test_half_applied_migration_leaves_mariadb_dirty_until_resolved(project, mysql_url):
    linear_project(project, mysql_url, "a1")
    project.add_revision("b2", "a1", HALF, "op.drop_table('half')")

    failed = run(project.root, "apply")

    assert failed.exit_code == 1
    assert "the database may be left half-way through b2" in failed.stderr
    assert version_rows(mysql_url) == ["a1"]
    assert "half" in tables(mysql_url)  # MariaDB committed the first statement

    plan = run(project.root, "plan")
    assert (
        "Note: apply will refuse: the database is dirty: upgrade b2 did not finish"
        in plan.stdout
    )
    status = run(project.root, "status")
    assert "dirty (upgrade b2)" in status.stdout
    refused = run(project.root, "apply")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: apply refused: the database is dirty: upgrade b2"
    )
    assert version_rows(mysql_url) == ["a1"]

    # the user drops the half-made table by hand and says so
    execute(mysql_url, "DROP TABLE half")
    resolved = run(project.root, "resolve", "--as", "reverted")
    assert resolved.exit_code == 0, resolved.stderr
    assert resolved.stdout == "Resolved upgrade b2 as reverted; dev is at a1.\n"

    project.add_revision("b2", "a1", *create_table("whole"))
    applied = run(project.root, "apply")
    assert applied.exit_code == 0, applied.stderr
    assert version_rows(mysql_url) == ["b2"]
    assert "whole" in tables(mysql_url)


def test_resolve_as_applied_moves_the_version_table(project, mysql_url):
    linear_project(project, mysql_url, "a1")
    project.add_revision("b2", "a1", HALF, "op.drop_table('half')")
    run(project.root, "apply")

    resolved = run(project.root, "resolve", "--as", "applied")

    assert resolved.exit_code == 0, resolved.stderr
    assert version_rows(mysql_url) == ["b2"]
    assert run(project.root, "plan", "--detailed-exitcode").exit_code == 0


def test_resolve_refuses_a_clean_database(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    run(project.root, "apply")
    result = run(project.root, "resolve", "--as", "applied")
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: dev: the database is not dirty; nothing to resolve\n"
    )


def test_a_transactional_database_is_never_dirty(project, pg_url):
    linear_project(project, pg_url, "a1")
    project.add_revision("b2", "a1", HALF, "op.drop_table('half')")
    assert run(project.root, "apply").exit_code == 1
    assert "half" not in tables(pg_url)
    assert "dirty" not in run(project.root, "status").stdout


def _edit_applied_file(project, sqlite_url, on_modified):
    linear_project(project, sqlite_url, "a1", on_modified=on_modified)
    run(project.root, "apply")
    path = next(project.versions.glob("a1_*.py"))
    path.write_text(
        path.read_text().replace("def downgrade():", "# edited\ndef downgrade():")
    )
    project.add_revision("b2", "a1", *create_table("t_b2"))
    return path


def test_an_applied_file_edited_afterwards_is_reported(project, sqlite_url):
    path = _edit_applied_file(project, sqlite_url, "warn")
    message = f"migrations/versions/{path.name} (revision a1) has changed since it was applied to this database"

    plan = run(project.root, "plan")
    assert f"Note: {message}\n" in plan.stdout
    assert run(project.root, "apply").exit_code == 0
    assert version_rows(sqlite_url) == ["b2"]


def test_on_modified_refuse_blocks_apply(project, sqlite_url):
    path = _edit_applied_file(project, sqlite_url, "refuse")

    result = run(project.root, "apply")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: apply refused: migrations/versions/{path.name} (revision a1) has changed "
        "since it was applied to this database; on_modified: refuse\n"
    )
    assert version_rows(sqlite_url) == ["a1"]


def test_lint_refuse_blocks_a_destructive_apply(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", lint="{destructive: refuse}")
    run(project.root, "apply")
    project.add_revision("b2", "a1", "op.drop_table('t_a1')", *create_table("t_a1")[:1])

    result = run(project.root, "apply")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: apply refused: b2 is destructive (drop table t_a1) and 'dev' refuses it "
        "(lint.destructive: refuse)\n"
    )
    assert "t_a1" in tables(sqlite_url)
    assert version_rows(sqlite_url) == ["a1"]


def test_locking_flags_only_on_postgresql(project, pg_url, sqlite_url):
    body = (
        "op.create_index('ix_t_name', 't_a1', ['id'])\n"
        "op.alter_column('t_a1', 'id', nullable=False)",
        "op.drop_index('ix_t_name', table_name='t_a1')",
    )
    linear_project(project, pg_url, "a1")
    run(project.root, "apply")
    project.add_revision("b2", "a1", *body)
    plan = json.loads(run(project.root, "plan", "--json").stdout)
    assert plan["steps"][0]["flags"] == ["locking"]
    assert [f["operation"] for f in plan["steps"][0]["findings"]] == [
        "create index ix_t_name without postgresql_concurrently=True blocks writes",
        "set t_a1.id NOT NULL scans the table under an exclusive lock",
    ]


def _models(project, columns):
    # a module name of its own: the CLI runs in this process, which caches modules
    module = f"models_{project.root.parent.name}"
    (project.root / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            import sqlalchemy as sa

            metadata = sa.MetaData()
            t_a1 = sa.Table("t_a1", metadata, sa.Column("id", sa.Integer, primary_key=True){columns})
            """
        )
    )
    config = project.root / "migplan.yaml"
    config.write_text(f"metadata: {module}:metadata\n" + config.read_text())


def test_drift_lists_differences_and_exits_2(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    _models(project, ', sa.Column("name", sa.String(20))')
    run(project.root, "apply")

    result = run(project.root, "drift")

    assert result.exit_code == 2
    assert result.stdout == (
        "dev: the database differs from the models:\n"
        "  add column t_a1.name: in the models only\n"
    )


def test_no_drift_exits_0(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    _models(project, "")
    run(project.root, "apply")
    result = run(project.root, "drift")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "dev: the database matches the models.\n"


def test_verify_finds_a_downgrade_that_does_not_restore_the_schema(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    project.add_revision("b2", "a1", *create_table("t_b2")[:1], "pass")

    result = run(project.root, "verify")

    assert result.exit_code == 1
    assert (
        "b2: downgrade does not restore the schema (table t_b2 left behind)"
        in result.stdout
    )
    assert result.stderr.endswith("Error: verify found 1 problem(s)\n")
    assert version_rows(sqlite_url) == []  # the real database was never touched


def test_verify_passes_and_reports_several_heads(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    project.add_revision("b2", "a1", *create_table("t_b2"))
    project.add_revision("c3", "a1", *create_table("t_c3"))

    result = run(project.root, "verify")

    assert result.exit_code == 1
    assert (
        '  - the graph has 2 heads (b2, c3); merge them with: migplan db merge -m "merge heads" b2 c3'
        in result.stdout
    )
    assert result.stdout.startswith(
        "Revision  Message  Round trip\n"
        "a1        a1       ok\n"
        "c3        c3       ok\n"
        "b2        b2       ok\n"
    )


def test_a_run_killed_after_its_last_step_committed_is_not_dirty(project, mysql_url):
    # the process died between a migration's commit and the next step, and the
    # row still names that migration (as migplan before 0.2 could leave it): the
    # version table shows it finished
    from migplan.core.environment import Tables
    from migplan.core.graph import RevisionGraph
    from migplan.core.planner import make_plan
    from migplan.core.url import DatabaseURL
    from migplan.db import audit
    from migplan.db.session import open_session

    linear_project(project, mysql_url, "a1", "b2")
    assert run(project.root, "apply").exit_code == 0
    graph = RevisionGraph.from_pairs(("a1", None), ("b2", "a1"))
    plan = make_plan(graph, ("a1",), ["b2"])
    with open_session(DatabaseURL.parse(mysql_url), Tables(), timeout=5) as session:
        trail = audit.AuditTrail(session, environment="dev", action="apply")
        trail.prepare()
        trail.start(plan)
        trail.step_started(session.connection, plan.steps[0], "apply")
        session.connection.commit()

    assert "dirty" not in run(project.root, "status").stdout
    assert run(project.root, "plan", "--detailed-exitcode").exit_code == 0


def test_validate_env_reports_an_applied_file_edited_since(project, sqlite_url):
    path = _edit_applied_file(project, sqlite_url, "refuse")
    result = run(project.root, "validate", "-e", "dev")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: environment 'dev': apply will refuse: migrations/versions/{path.name} "
        "(revision a1) has changed since it was applied to this database; "
        "on_modified: refuse\n"
    )


def test_status_drift_column(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    _models(project, ', sa.Column("name", sa.String(20))')
    run(project.root, "apply")
    result = run(project.root, "status", "--drift")
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "Environment",
        "URL",
        "Current",
        "Target",
        "Pending",
        "Drift",
        "State",
    ]
    assert row.split()[2:] == [
        "a1",
        "head",
        "0",
        "1",
        "differences",
        "up",
        "to",
        "date",
    ]


def test_verify_on_a_throwaway_postgresql_database(project, sqlite_url, pg_url):
    linear_project(project, sqlite_url, "a1", "b2")
    result = run(project.root, "verify", "--url", pg_url)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "All 2 revisions round-trip; one head (b2)." in result.stdout
    assert tables(pg_url) == set()  # left as empty as it was found
    assert version_rows(sqlite_url) == []


@pytest.mark.parametrize(
    ("upgrade", "downgrade", "found"),
    [
        (
            "op.create_index('ix_name', 't_a1', ['name'])",
            "pass",
            "t_a1 indexes differ",
        ),
        (
            "op.alter_column('t_a1', 'name', nullable=False, server_default='x')",
            "op.alter_column('t_a1', 'name', server_default=None)",
            "t_a1 columns differ",
        ),
        (
            "op.create_check_constraint('ck_name', 't_a1', 'length(name) > 0')",
            "pass",
            "t_a1 constraints differ",
        ),
    ],
)
def test_verify_on_postgresql_finds_what_a_downgrade_leaves_behind(
    project, sqlite_url, pg_url, upgrade, downgrade, found
):
    project.add_revision(
        "a1",
        None,
        "op.create_table('t_a1', sa.Column('id', sa.Integer, primary_key=True), "
        "sa.Column('name', sa.String(20)))",
        "op.drop_table('t_a1')",
    )
    project.add_revision("b2", "a1", upgrade, downgrade)
    linear_project(project, sqlite_url)  # the config only
    result = run(project.root, "verify", "--url", pg_url)
    assert result.exit_code == 1
    assert f"b2: downgrade does not restore the schema ({found})" in result.stdout


def test_verify_refuses_a_database_that_is_not_empty(project, sqlite_url, pg_url):
    linear_project(project, sqlite_url, "a1")
    execute(pg_url, "CREATE TABLE precious (id integer)")
    result = run(project.root, "verify", "--url", pg_url)
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "is not empty (precious); verify needs a throwaway database\n"
    )
    assert tables(pg_url) == {"precious"}
