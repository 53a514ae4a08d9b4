"""The hooks of .pre-commit-hooks.yaml, run by the real `pre-commit` tool as a
project would run them: `pre-commit try-repo` installs migplan from this
repository (its working tree, committed into a copy) into pre-commit's own
virtualenv, then runs the hook in a project's git repository.

The install takes a while (pip, every dependency), so the test is a soak test,
run once in CI (`pytest -m soak`). Where pip cannot install migplan (no index
reachable) it skips, except under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ENV_PY
from conftest import IN_CI
from conftest import Project
from conftest import create_table

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.soak

GIT_ENV = {
    "GIT_AUTHOR_NAME": "migplan tests",
    "GIT_AUTHOR_EMAIL": "tests@migplan.invalid",
    "GIT_COMMITTER_NAME": "migplan tests",
    "GIT_COMMITTER_EMAIL": "tests@migplan.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This repository's working tree as it is (tracked and new files, ignored
    ones left out), committed into a fresh repository: what try-repo installs."""
    pytest.importorskip("pre_commit")
    copy = tmp_path_factory.mktemp("hook-repo") / "migplan"
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the tree is left out
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "migplan as it is")
    yield copy


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache, shared by the module's tests: migplan installed once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def make_project(root: Path) -> Project:
    """A git repository holding a project: one good revision, committed."""
    project = Project(root)
    project.versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    project.add_revision("a", None, *create_table("t_a"), message="create t_a")
    project.write_config(
        "environments:\n  dev:\n    url: sqlite:///dev.db\n    target: head\n"
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a project")
    return project


def try_repo(
    hook_repo: Path, home: Path, cwd: Path, hook: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run one hook of the repository with `pre-commit try-repo`; skip when pre-commit
    could not install migplan at all (outside CI)."""
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home)}
    env.pop("MIGPLAN_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), hook, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    ran = "Passed" in output or "Failed" in output
    if not ran:
        log = home / "pre-commit.log"
        detail = log.read_text() if log.exists() else output
        if IN_CI:
            pytest.fail(f"pre-commit could not run {hook} under CI:\n{detail}")
        pytest.skip(f"pre-commit could not install migplan (pip, no index?): {output}")
    return result


def test_lint_hook_fails_on_a_destructive_revision(
    hook_repo: Path, pre_commit_home: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    good = try_repo(
        hook_repo, pre_commit_home, project.root, "migplan-lint", "--all-files"
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "migplan lint" in good.stdout and "Passed" in good.stdout
    bad = project.add_revision("b", "a", "op.drop_table('t_a')", message="drop t_a")
    git(project.root, "add", "-A")
    line = next(
        n
        for n, text in enumerate(bad.read_text().splitlines(), 1)
        if "drop_table" in text
    )
    relative = f"migrations/versions/{bad.name}"
    failed = try_repo(
        hook_repo, pre_commit_home, project.root, "migplan-lint", "--files", relative
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout
    assert f"{relative}:{line}: destructive: drop table t_a" in failed.stdout
    assert (
        "Error: lint: 1 finding fails (destructive); --fail-on chooses the kinds "
        "that fail" in failed.stdout
    )
    # only the files of a change: the good one alone still passes
    alone = try_repo(
        hook_repo,
        pre_commit_home,
        project.root,
        "migplan-lint",
        "--files",
        f"migrations/versions/{next(project.versions.glob('a_*.py')).name}",
    )
    assert alone.returncode == 0, alone.stdout + alone.stderr


def test_validate_hook_wants_one_head_or_the_merge_command(
    hook_repo: Path, pre_commit_home: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    good = try_repo(
        hook_repo, pre_commit_home, project.root, "migplan-validate", "--all-files"
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    project.add_revision("b", "a", message="one way")
    project.add_revision("c", "a", message="another")
    git(project.root, "add", "-A")
    split = try_repo(
        hook_repo, pre_commit_home, project.root, "migplan-validate", "--all-files"
    )
    assert split.returncode == 1, split.stdout + split.stderr
    assert (
        "Error: migplan.yaml:4: environments.dev.target: target 'head' is ambiguous: "
        "there are several heads (b, c); use 'heads', a list of revisions or "
        "'branchname@head', or merge them: migplan db merge -m \"merge heads\" b c"
    ) in split.stdout
