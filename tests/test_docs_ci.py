"""The example CI pipelines of docs/ci/: each parses, asks for what a pipeline
needs (validate, verify, the plan as Markdown on a pull request, apply on deploy),
and every `migplan ...` command line in it, run in order against a copy of the
examples/ project, exits 0.

The fleet runners (docs/ci/github-actions-fleet.yml's matrix, the Indexed Job of
docs/kubernetes/): each parses, its shard count is the same everywhere it is
spelled, and its commands, run by as many processes at once with the variables
each runner gets, migrate a fleet of PostgreSQL schemas exactly once."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import Project
from conftest import run_process
from markdown_it import MarkdownIt
from shardfleet import URL_VAR
from shardfleet import fleet_state
from shardfleet import log_fleet
from shardfleet import revision_ids
from shardfleet import run_together
from shardfleet import schema_names

REPO = Path(__file__).resolve().parent.parent
CI = REPO / "docs" / "ci"
KUBERNETES = REPO / "docs" / "kubernetes"


def scripts(name: str) -> list[str]:
    """Every shell line of a pipeline, in the order of its jobs and steps."""
    document = yaml.safe_load((CI / name).read_text())
    found: list[str] = []
    if name.startswith("github-actions"):
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


# -- the fleet runners -----------------------------------------------------------------


def applied_count(stdout: str) -> int:
    """How many databases a runner applied (0 for an empty shard)."""
    found = re.search(r"^Fleet: (\d+) applied", stdout, re.M)
    return int(found.group(1)) if found else 0


def migrated_once(
    results: list[subprocess.CompletedProcess[str]],
    pg_url: str,
    schemas: list[str],
    revisions: int,
) -> None:
    """Every runner succeeded, and together they migrated each schema once."""
    for result in results:
        assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    assert sum(applied_count(r.stdout) for r in results) == len(schemas)
    done = ([revision_ids(revisions)[-1]], revision_ids(revisions))
    assert fleet_state(pg_url, schemas) == dict.fromkeys(schemas, done)


def test_the_indexed_job_applies_a_shard_per_pod(project: Project, pg_url: str) -> None:
    documents = [
        d
        for d in yaml.safe_load_all((KUBERNETES / "indexed-job.yaml").read_text())
        if d
    ]
    [job] = documents
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # a failed pod is retried as a new one
    [container] = pod["containers"]
    command = [*container.get("command", []), *container.get("args", [])]
    assert command[:3] == ["migplan", "apply", "tenants"]
    assert command[command.index("--shard") + 1] == "auto"
    assert "--yes" in command
    n = int(command[command.index("--shards") + 1])
    assert spec["completions"] == spec["parallelism"] == n
    # the URL from a Secret; the other variables as they are
    env = {e["name"]: e for e in container["env"]}
    assert env[URL_VAR]["valueFrom"]["secretKeyRef"].keys() == {"name", "key"}
    plain = {name: e["value"] for name, e in env.items() if "value" in e}

    schemas = schema_names(12)
    log_fleet(project, schemas, revisions=3)
    # each pod: its index, given by Kubernetes, and the Secret's URL
    pods = [
        {**plain, URL_VAR: pg_url, "JOB_COMPLETION_INDEX": str(k)} for k in range(n)
    ]
    results = run_together(project.root, command[1:], pods)
    migrated_once(results, pg_url, schemas, 3)


def test_the_fleet_matrix_applies_a_shard_per_job(
    project: Project, pg_url: str
) -> None:
    name = "github-actions-fleet.yml"
    document = yaml.safe_load((CI / name).read_text())
    assert document["env"][URL_VAR] == f"${{{{ secrets.{URL_VAR} }}}}"
    [job] = document["jobs"].values()
    shards = job["strategy"]["matrix"]["shard"]
    n = len(shards)
    assert shards == list(range(1, n + 1))  # 1-based, as --shard i/n
    assert job["strategy"]["fail-fast"] is False
    spelled = job["env"]["MIGPLAN_SHARD"]
    assert spelled == f"${{{{ matrix.shard }}}}/{n}"
    commands = migplan_commands(name)
    assert (["apply", "tenants", "--shard", "auto", "--yes"], None) in commands

    schemas = schema_names(12)
    log_fleet(project, schemas, revisions=3)
    runners = [
        {
            URL_VAR: pg_url,
            "MIGPLAN_SHARD": spelled.replace("${{ matrix.shard }}", str(k)),
        }
        for k in shards
    ]
    # the matrix's jobs run each step at about the same time
    for args, out in commands:
        assert out is None
        results = run_together(project.root, args, runners)
        if args[0] == "apply":
            migrated_once(results, pg_url, schemas, 3)
        else:
            for result in results:
                assert result.returncode == 0, (args, result.stdout, result.stderr)
