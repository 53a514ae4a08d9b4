"""rollback: within the environment's policy, every refusal with its reason and
the database untouched; and branched graphs applied end to end."""

from __future__ import annotations

import pytest
from conftest import create_table
from conftest import linear_project
from conftest import run
from conftest import tables
from conftest import version_rows


def _applied(project, url, **env):
    linear_project(project, url, "a1", "b2", "c3", **env)
    assert run(project.root, "apply", "--yes").exit_code == 0
    assert version_rows(url) == ["c3"]


def test_rollback_to_a_revision(project, db_url):
    _applied(project, db_url)
    result = run(project.root, "rollback", "--to", "a1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("Rolled back 2 steps; dev is at a1.\n")
    assert version_rows(db_url) == ["a1"]
    assert "t_b2" not in tables(db_url) and "t_a1" in tables(db_url)


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"rollback": "{allowed: false}"},
            ["--steps", "1"],
            "rollback refused: rollback is not allowed in 'dev'",
        ),
        (
            {"rollback": "{max_steps: 1}"},
            ["--to", "a1"],
            "rollback refused: rollback of 2 steps exceeds max_steps (1) in 'dev'",
        ),
        (
            {"rollback": "{allow_destructive: false}"},
            ["--steps", "1"],
            "rollback refused: rolling back c3 is destructive (drop table t_c3) and "
            "'dev' does not allow it",
        ),
        (
            {"protected": "true"},
            ["--steps", "1", "--yes"],
            "rollback refused: rolling back c3 is destructive (drop table t_c3) and "
            "'dev' does not allow it",
        ),
    ],
    ids=["not-allowed", "max-steps", "destructive", "destructive-in-protected"],
)
def test_policy_refusals_leave_the_database_as_it_was(
    project, sqlite_url, env, args, message
):
    _applied(project, sqlite_url, **env)
    result = run(project.root, "rollback", *args)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {message}\n"
    assert version_rows(sqlite_url) == ["c3"]
    assert "t_c3" in tables(sqlite_url)


def test_irreversible_step_is_refused(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    project.add_revision(
        "b2", "a1", *create_table("t_b2")[:1], "raise NotImplementedError"
    )
    run(project.root, "apply")
    result = run(project.root, "rollback", "--steps", "1")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: rollback refused: b2 cannot be rolled back: downgrade() raises\n"
    )
    assert version_rows(sqlite_url) == ["b2"]


def test_rollback_target_above_the_database_is_refused(project, sqlite_url):
    _applied(project, sqlite_url)
    project.add_revision("d4", "c3")
    result = run(project.root, "rollback", "--to", "d4")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 'd4' is not an ancestor of the current revision (c3); rollback only goes down\n"
    )
    assert version_rows(sqlite_url) == ["c3"]


def test_rollback_of_more_steps_than_exist(project, sqlite_url):
    _applied(project, sqlite_url)
    result = run(project.root, "rollback", "--steps", "5")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: cannot roll back 5 step(s) from c3: there are not that many below it\n"
    )
    assert version_rows(sqlite_url) == ["c3"]


def test_rollback_needs_to_or_steps(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    result = run(project.root, "rollback")
    assert result.exit_code == 2
    assert "give exactly one of --to REV, --steps N and --last" in result.stderr


def test_branches_and_a_merge_end_to_end(project, db_url):
    # a1 -> x1 (branch label xs) and a1 -> y1; m merges them
    project.add_revision("a1", None, *create_table("t_a1"))
    project.add_revision("x1", "a1", *create_table("t_x1"), branch_labels="xs")
    project.add_revision("y1", "a1", *create_table("t_y1"))
    project.write_config(
        f"default_env: dev\nenvironments:\n  dev:\n    url: {db_url}\n    target: heads\n"
    )
    assert run(project.root, "apply").exit_code == 0
    assert version_rows(db_url) == ["x1", "y1"]

    project.add_revision("m2", ("x1", "y1"), message="merge")
    plan = run(project.root, "plan", "--json")
    assert '"revision": "m2"' in plan.stdout
    assert run(project.root, "apply").exit_code == 0
    assert version_rows(db_url) == ["m2"]

    # back down one branch only: the merge goes, y1 stays
    result = run(project.root, "rollback", "--to", "xs@a1")
    assert result.exit_code == 0, result.stderr
    assert version_rows(db_url) == ["y1"]
    assert "t_x1" not in tables(db_url) and "t_y1" in tables(db_url)
