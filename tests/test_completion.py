"""Shell completion, click's own: the completion entry point run as the shells run
it (`_MIGPLAN_COMPLETE=bash_complete`, COMP_WORDS, COMP_CWORD), in a project."""

from __future__ import annotations

from pathlib import Path

from conftest import linear_project
from conftest import run_process


def complete(root: Path, line: str, shell: str = "bash") -> list[str]:
    """What completing the last word of `line` offers (bash: the values)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {
        "_MIGPLAN_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": line,
        # fish passes the word being completed itself
        "COMP_CWORD": ("" if line.endswith(" ") else words[-1])
        if shell == "fish"
        else str(cword),
    }
    done = run_process(root, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rows = [row for row in done.stdout.splitlines() if row]
    if shell != "bash":
        return rows
    values = []
    for row in rows:
        kind, _, value = row.partition(",")
        assert kind in ("plain", "file", "dir"), row
        values.append(value)
    return values


def three_envs(project, sqlite_url, tmp_path):
    linear_project(project, sqlite_url, "a1", "b2", "c3")
    config = project.root / "migplan.yaml"
    config.write_text(
        config.read_text()
        + f"  staging:\n    url: sqlite:///{tmp_path / 's.db'}\n    target: b2\n"
        + f"  prod:\n    url: sqlite:///{tmp_path / 'p.db'}\n    target: b2\n"
    )
    return project


def test_commands_are_completed(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    offered = complete(project.root, "migplan ")
    assert {"plan", "apply", "rollback", "graph", "db", "status"} <= set(offered)
    assert complete(project.root, "migplan ro") == ["rollback"]
    assert {"upgrade", "downgrade", "stamp"} <= set(
        complete(project.root, "migplan db ")
    )


def test_environment_names(project, sqlite_url, tmp_path):
    three_envs(project, sqlite_url, tmp_path)
    root = project.root

    for line in (
        "migplan plan ",
        "migplan plan dev ",
        "migplan apply ",
        "migplan rollback ",
        "migplan log ",
        "migplan drift ",
        "migplan resolve ",
        "migplan promote ",
        "migplan promote staging ",
        "migplan verify -e ",
        "migplan validate --env ",
        "migplan db -e ",
        "migplan db upgrade --env ",
        "migplan -q apply ",
    ):
        assert set(complete(root, line)) == {"dev", "staging", "prod"}, line
    assert complete(root, "migplan apply st") == ["staging"]
    assert complete(root, "migplan apply x") == []


def test_environment_help_is_its_target_for_zsh(project, sqlite_url, tmp_path):
    three_envs(project, sqlite_url, tmp_path)
    # zsh gets three lines an item: type, value, help
    assert complete(project.root, "migplan apply pr", shell="zsh") == [
        "plain",
        "prod",
        "target b2",
    ]


def test_config_option_is_followed(project, sqlite_url, tmp_path):
    linear_project(project, sqlite_url, "a1")
    other = tmp_path / "other.yaml"
    other.write_text(
        (project.root / "migplan.yaml")
        .read_text()
        .replace("  dev:", "  elsewhere:")
        .replace("default_env: dev", "default_env: elsewhere")
    )
    assert complete(project.root, f"migplan -c {other} plan ") == ["elsewhere"]
    assert complete(project.root, "migplan plan ") == ["dev"]


def test_revisions(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    project.add_revision("c3", "b2", message="add orders", branch_labels=("orders",))
    root = project.root
    revs = {"a1", "b2", "c3", "orders"}

    assert set(complete(root, "migplan rollback dev --to ")) == {"base", *revs}
    assert set(complete(root, "migplan db upgrade ")) == {"head", "heads", *revs}
    assert set(complete(root, "migplan db downgrade ")) == {"base", *revs}
    assert set(complete(root, "migplan db stamp ")) == {
        "head",
        "heads",
        "base",
        *revs,
    }
    assert set(complete(root, "migplan db show ")) == {"head", "base", *revs}
    assert set(complete(root, "migplan db merge ")) == {"heads", *revs}
    assert set(complete(root, "migplan checkpoint --rev ")) == {"head", *revs}
    assert complete(root, "migplan db upgrade b") == ["b2"]
    assert complete(root, "migplan db stamp h") == ["head", "heads"]
    assert complete(root, "migplan db -e dev upgrade --sql c") == ["c3"]


def test_revision_help_is_its_message_for_fish(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    project.add_revision("c3", "a1", message="add orders")
    # fish gets a line an item: type, value and help after a tab
    assert complete(project.root, "migplan db upgrade c", shell="fish") == [
        "plain,c3\tadd orders"
    ]


def test_no_project_no_completions_and_no_noise(tmp_path):
    assert complete(tmp_path, "migplan plan ") == []
    assert complete(tmp_path, "migplan db upgrade ") == ["head", "heads"]


def test_a_broken_project_gives_no_completions(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    (project.root / "migplan.yaml").write_text("environments: [not, a, mapping\n")
    assert complete(project.root, "migplan apply ") == []
    assert complete(project.root, "migplan rollback --to ") == ["base"]


def test_a_broken_revision_file_gives_only_the_keywords(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    (project.versions / "zz_broken.py").write_text("revision = (\n")
    assert set(complete(project.root, "migplan apply ")) == {"dev"}
    assert set(complete(project.root, "migplan db upgrade ")) <= {
        "head",
        "heads",
        "a1",
    }


def test_the_shells_scripts(tmp_path):
    for shell in ("bash", "zsh", "fish"):
        done = run_process(tmp_path, env={"_MIGPLAN_COMPLETE": f"{shell}_source"})
        assert done.returncode == 0, done.stderr
        assert "_MIGPLAN_COMPLETE" in done.stdout
