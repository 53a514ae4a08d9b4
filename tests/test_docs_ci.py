"""The example CI pipelines of docs/ci/: each parses, asks for what a pipeline
needs (validate, verify, the plan as Markdown on a pull request, apply on deploy),
and every `migplan ...` command line in it, run in order against a copy of the
examples/ project, exits 0."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import run_process
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parent.parent
CI = REPO / "docs" / "ci"


def scripts(name: str) -> list[str]:
    """Every shell line of a pipeline, in the order of its jobs and steps."""
    document = yaml.safe_load((CI / name).read_text())
    found: list[str] = []
    if name == "github-actions.yml":
        for job in document["jobs"].values():
            for step in job["steps"]:
                found += step.get("run", "").splitlines()
    else:
        for key, job in document.items():
            if key in ("stages", "variables", "default", "include", "workflow"):
                continue
            for part in ("before_script", "script", "after_script"):
                found += job.get(part, [])
    return [line.strip() for line in found if line.strip()]


def migplan_commands(name: str) -> list[tuple[list[str], str | None]]:
    """Each `migplan` command line: its arguments, and the file its stdout goes
    to (`> FILE`), if any."""
    commands = []
    for line in scripts(name):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        if not words or words[0] != "migplan":
            continue
        ops = [i for i, w in enumerate(words) if set(w) <= set("();<>|&")]
        end = ops[0] if ops else len(words)
        out = None
        if ops:
            assert words[end] == ">" and end + 2 == len(words), line
            out = words[end + 1]
        commands.append((words[1:end], out))
    return commands


def example_copy(root: Path) -> Path:
    """migplan.yaml and examples/ as the repository holds them, no database."""
    shutil.copy(REPO / "migplan.yaml", root / "migplan.yaml")
    shutil.copytree(
        REPO / "examples",
        root / "examples",
        ignore=shutil.ignore_patterns("*.db", "__pycache__"),
    )
    return root


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_pipeline_commands_run_against_the_example(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as in a pipeline whose secrets are unset: the example's SQLite defaults
    for var in ("STAGING_DATABASE_URL", "PROD_DATABASE_URL", "MIGPLAN_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    commands = migplan_commands(name)
    verbs = [
        (args[0], "--format" in args and args[args.index("--format") + 1])
        for args, _ in commands
    ]
    assert ("validate", False) in verbs
    assert ("verify", False) in verbs
    assert ("plan", "markdown") in verbs
    assert verbs[-1][0] == "apply"
    root = example_copy(tmp_path)
    for args, out in commands:
        result = run_process(root, *args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        if out is not None:
            (root / out).write_text(result.stdout)
    plan = (root / "plan.md").read_text()
    tokens = MarkdownIt("commonmark").enable("table").parse(plan)
    headings = [
        tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"
    ]
    assert headings == ["dev", "staging", "prod"]
    assert sum(1 for t in tokens if t.type == "table_open") == 3
    # deploy applied what the plan showed: staging at head, prod at its target
    status = run_process(root, "status")
    assert status.returncode == 0, status.stderr
    current = {
        words[0]: words[2] for words in map(str.split, status.stdout.splitlines()[1:])
    }
    assert current == {
        "dev": "base",
        "staging": "38810fa506df",
        "prod": "c1b7b099f249",
    }


def test_the_github_workflow_posts_the_plan_file() -> None:
    lines = scripts("github-actions.yml")
    assert any(
        line.startswith("gh pr comment") and "--body-file plan.md" in line
        for line in lines
    )
