"""Promotion: `requires:` refuses what the required environment has not applied,
and `migplan promote` changes one target in migplan.yaml, nothing else."""

from __future__ import annotations

from conftest import create_table
from conftest import run
from conftest import version_rows

CONFIG = """\
# environments of the shop
default_env: staging
environments:
  staging:
    url: sqlite:///staging.db   # the rehearsal
    target: head
  prod:
    url: sqlite:///prod.db
    requires: staging
    target: a1    # promoted by hand
    protected: true
"""


def shop(project):
    for rev, down in (("a1", None), ("b2", "a1"), ("c3", "b2")):
        project.add_revision(rev, down, *create_table(f"t_{rev}"))
    return project.write_config(CONFIG)


def test_requires_refuses_revisions_the_required_environment_lacks(project):
    shop(project)
    prod = f"sqlite:///{project.root / 'prod.db'}"

    result = run(project.root, "apply", "prod", "--yes")

    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: apply refused: a1 not applied in 'staging' yet ('prod' requires it)\n"
    )
    assert "Note: apply will refuse: a1 not applied in 'staging' yet" in result.stdout
    assert version_rows(prod) == []


def test_promote_sets_the_target_and_keeps_the_rest_of_the_file(project):
    config = shop(project)
    assert run(project.root, "apply", "staging").exit_code == 0

    result = run(project.root, "promote", "staging", "prod")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("migplan.yaml: prod.target: a1 -> c3\n")
    assert "Plan: 3 steps (3 upgrades)." in result.stdout
    assert config.read_text() == CONFIG.replace(
        "target: a1    # promoted", "target: 'c3'    # promoted"
    )
    applied = run(project.root, "apply", "prod", "--yes")
    assert applied.exit_code == 0, applied.stderr
    assert version_rows(f"sqlite:///{project.root / 'prod.db'}") == ["c3"]


def test_promote_adds_a_missing_target_under_the_first_key(project):
    config = shop(project)
    config.write_text(CONFIG.replace("    target: a1    # promoted by hand\n", ""))
    run(project.root, "apply", "staging")

    assert run(project.root, "promote", "staging", "prod").exit_code == 0

    assert (
        "  prod:\n    url: sqlite:///prod.db\n    target: 'c3'\n    requires: staging\n"
        in config.read_text()
    )


def test_promote_from_base_is_refused(project):
    config = shop(project)
    before = config.read_text()
    result = run(project.root, "promote", "staging", "prod")
    assert result.exit_code == 1
    assert result.stderr == "Error: 'staging' is at base: there is nothing to promote\n"
    assert config.read_text() == before
