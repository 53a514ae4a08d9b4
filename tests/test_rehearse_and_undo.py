"""`apply --rehearse` (the plan run in one transaction, then rolled back) and
`rollback --last` (undo the last successful apply), on the real databases.

Each revision writes a row to a log table, so a step that ran (or was undone) is
seen in the data, not only in migplan's word for it.
"""

from __future__ import annotations

import pytest
from conftest import Project
from conftest import columns
from conftest import query
from conftest import run_process
from conftest import version_rows

LOG = (
    "op.create_table('log', sa.Column('rev', sa.String(8)))\n"
    "op.execute(\"INSERT INTO log (rev) VALUES ('r1')\")"
)


def logged(rev: str, body: str = "pass") -> str:
    return f"{body}\nop.execute(\"INSERT INTO log (rev) VALUES ('{rev}')\")"


def unlogged(rev: str, body: str = "pass") -> str:
    return f"{body}\nop.execute(\"DELETE FROM log WHERE rev = '{rev}'\")"


def three_revisions(project: Project, url: str, *, target: str = "head") -> None:
    """r1 makes the log and the table `invoice`; r2 adds a column; r3 a table."""
    project.add_revision(
        "r1",
        None,
        LOG + "\nop.create_table('invoice', "
        "sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('invoice')\nop.drop_table('log')",
    )
    project.add_revision(
        "r2",
        "r1",
        logged("r2", "op.add_column('invoice', sa.Column('note', sa.Text))"),
        unlogged("r2", "op.drop_column('invoice', 'note')"),
    )
    project.add_revision(
        "r3",
        "r2",
        logged(
            "r3",
            "op.create_table('refund', sa.Column('id', sa.Integer, primary_key=True))",
        ),
        unlogged("r3", "op.drop_table('refund')"),
    )
    configure(project, url, target)


def configure(project: Project, url: str, target: str) -> None:
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {url}
            target: {target}
        """
    )


def log(url: str) -> list[str]:
    return [str(r) for (r,) in query(url, "SELECT rev FROM log ORDER BY rev")]


def last_audit(url: str) -> tuple[object, ...]:
    [row] = query(
        url, "SELECT action, outcome FROM migplan_audit ORDER BY id DESC LIMIT 1"
    )
    return row


def at_r1(project: Project, url: str) -> None:
    configure(project, url, "r1")
    result = run_process(project.root, "apply", "dev")
    assert result.returncode == 0, result.stderr
    configure(project, url, "head")


# -- rehearsal -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
def test_rehearsal_runs_every_step_then_leaves_the_database_as_it_was(
    project, request, backend
):
    url = str(request.getfixturevalue(backend))
    three_revisions(project, url)
    at_r1(project, url)

    result = run_process(project.root, "apply", "dev", "--rehearse")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("upgrade r2 (r2): ") for line in lines), result.stdout
    assert any(line.startswith("upgrade r3 (r3): ") for line in lines), result.stdout
    assert lines[-1] == (
        "Rehearsal passed: 2 steps ran and were rolled back; dev is still at r1."
    )
    if backend == "pg_url":
        # the ALTER of r2 takes the lock a deploy would queue traffic behind
        assert "    AccessExclusiveLock on invoice" in lines, result.stdout
        assert not [line for line in lines if " on pg_" in line], result.stdout
    # nothing changed: version table, schema, rows
    assert version_rows(url) == ["r1"]
    assert "note" not in columns(url, "invoice")
    assert log(url) == ["r1"]
    assert last_audit(url) == ("rehearse", "rehearsed")
    assert "pending" in run_process(project.root, "status").stdout

    # and the real apply afterwards runs each revision once
    result = run_process(project.root, "apply", "dev")
    assert result.returncode == 0, result.stderr
    assert log(url) == ["r1", "r2", "r3"]
    assert version_rows(url) == ["r3"]


def test_a_failing_rehearsal_names_the_step_and_changes_nothing(project, pg_url):
    three_revisions(project, pg_url)
    project.add_revision("r4", "r3", logged("r4", "op.execute('SELECT 1/0')"))
    at_r1(project, pg_url)

    result = run_process(project.root, "apply", "dev", "--rehearse")

    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: rehearsal failed at upgrade r4 (r4): "), error
    assert "division by zero" in error
    assert error.endswith("everything was rolled back, dev is still at r1"), error
    assert version_rows(pg_url) == ["r1"]
    assert log(pg_url) == ["r1"]
    assert "refund" not in {
        str(r) for (r,) in query(pg_url, "SELECT tablename FROM pg_tables")
    }
    assert last_audit(pg_url) == ("rehearse", "rehearsal failed")


def test_rehearsal_is_refused_where_ddl_commits(project, mysql_url):
    three_revisions(project, mysql_url)
    at_r1(project, mysql_url)

    result = run_process(project.root, "apply", "dev", "--rehearse")

    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: a rehearsal needs transactional DDL (PostgreSQL, SQLite)")
    ), result.stderr
    assert version_rows(mysql_url) == ["r1"]
    assert "note" not in columns(mysql_url, "invoice")
    assert log(mysql_url) == ["r1"]


# -- rollback --last -------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pg_url", "mysql_url", "sqlite_url"])
def test_rollback_last_undoes_exactly_the_last_apply(project, request, backend):
    url = str(request.getfixturevalue(backend))
    three_revisions(project, url)
    at_r1(project, url)
    assert run_process(project.root, "apply", "dev").returncode == 0
    assert log(url) == ["r1", "r2", "r3"]

    shown = run_process(project.root, "rollback", "dev", "--last", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "undoes apply #" in shown.stdout
    assert version_rows(url) == ["r3"]

    result = run_process(project.root, "rollback", "dev", "--last")

    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("Rolled back 2 steps; dev is at r1.\n")
    assert version_rows(url) == ["r1"]
    assert log(url) == ["r1"]
    assert "note" not in columns(url, "invoice")
    assert last_audit(url) == ("rollback", "success")

    # that apply is undone: a second --last refuses, and changes nothing
    again = run_process(project.root, "rollback", "dev", "--last")
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: dev: the database moved since apply #")
    ), again.stderr
    assert version_rows(url) == ["r1"]


def test_rollback_last_with_nothing_applied_is_a_clear_refusal(project, sqlite_url):
    three_revisions(project, sqlite_url)

    result = run_process(project.root, "rollback", "dev", "--last")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: dev: the audit trail records no successful apply to undo"
    ]
    assert version_rows(sqlite_url) == []


def test_rollback_takes_one_of_to_steps_last(project, sqlite_url):
    three_revisions(project, sqlite_url)
    result = run_process(project.root, "rollback", "dev", "--last", "--steps", "1")
    assert result.returncode == 2
    assert "give exactly one of --to REV, --steps N and --last" in result.stderr
