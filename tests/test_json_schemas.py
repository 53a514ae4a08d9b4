"""`--json`: every command that reports a result prints exactly one JSON document on
stdout, whatever the outcome, valid against its schema in schemas/; `ok` is false
exactly when the exit code says failure, and the error is still on stderr.

Each command is run for real, on real projects and databases, in each outcome it
has: success, refusal (policy, protection, a dirty database) and failure (a
migration that raises, an unreadable database).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click
import jsonschema
from conftest import Project
from conftest import create_table
from conftest import linear_project
from conftest import run
from conftest import run_process
from conftest import version_rows

from migplan.cli import cli

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
CONFIG_SCHEMA = "migplan"


def schema(command: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def document(
    stdout: str, stderr: str, exit_code: int, command: str, *, code: int
) -> dict[str, Any]:
    """The one document on stdout, checked against the command's schema and
    against the exit code; json.loads refuses a second document or any other line."""
    assert exit_code == code, (stdout, stderr)
    data: dict[str, Any] = json.loads(stdout)
    jsonschema.Draft202012Validator(schema(command)).validate(data)
    failed = code not in (0, 2)
    assert data["ok"] is not failed
    if failed:
        assert data["error"]["exit_code"] == code
        lines = [line.removeprefix("Error: ") for line in stderr.splitlines()]
        assert data["error"]["message"] in ("; ".join(lines), lines[-1])
    else:
        assert data["error"] is None
    return data


def migplan(root: Path, command: str, *args: str, code: int = 0) -> dict[str, Any]:
    result = run(root, command, *args, "--json")
    return document(result.stdout, result.stderr, result.exit_code, command, code=code)


def commands_with_json(group: click.Group, prefix: str = "") -> set[str]:
    found = set()
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            found |= commands_with_json(command, f"{prefix}{name} ")
        elif any("--json" in p.opts for p in command.params):
            found.add(prefix + name)
    return found


def test_every_command_with_json_has_a_schema_and_every_schema_a_command():
    schemas = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.json")}
    assert commands_with_json(cli) == schemas - {CONFIG_SCHEMA}
    expected = {"plan", "apply", "rollback", "resolve", "status", "log", "drift"}
    expected |= {"verify", "validate", "promote", "graph", "checkpoint"}
    assert commands_with_json(cli) == expected
    for name in schemas:
        assert schema(name)["$id"].endswith(f"/{name}.schema.json")


# -- plan, apply, rollback --------------------------------------------------------------


def test_plan(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1", "b2")
    data = migplan(project.root, "plan", "dev")
    assert [s["revision"] for s in data["steps"]] == ["a1", "b2"]
    data = migplan(project.root, "plan", "dev", "--detailed-exitcode", code=2)
    assert data["up_to_date"] is False
    data = migplan(project.root, "plan", "nosuch", code=1)
    assert data["error"]["type"] == "UnknownEnvironment"


def test_apply_success_then_up_to_date(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1", "b2")
    data = migplan(project.root, "apply", "dev")
    assert data["result"]["outcome"] == "success"
    assert data["result"]["heads"] == ["b2"]
    assert [s["revision"] for s in data["result"]["done"]] == ["a1", "b2"]
    data = migplan(project.root, "apply", "dev")
    assert data["plan"]["up_to_date"] is True
    assert data["result"] is None


def test_a_failed_apply_says_where_the_database_is(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1", "b2")
    project.add_revision("c3", "b2", "raise RuntimeError('boom')")
    data = migplan(project.root, "apply", "dev", code=1)
    assert data["error"]["type"] == "MigrationFailed"
    result = data["result"]
    assert result["outcome"] == "failed"
    assert result["heads"] == ["b2"] == version_rows(sqlite_url)
    assert [s["revision"] for s in result["done"]] == ["a1", "b2"]
    assert result["failed"]["revision"] == "c3"
    assert "boom" in result["failed"]["error"]


def test_a_failed_apply_rolled_back_on_postgresql(project: Project, pg_url: str):
    linear_project(project, pg_url, "a1", "b2", on_failure="rollback")
    project.add_revision("c3", "b2", "raise RuntimeError('boom')")
    data = migplan(project.root, "apply", "dev", code=1)
    result = data["result"]
    assert result["outcome"] == "reverted"
    assert result["heads"] == [] == version_rows(pg_url)
    assert [s["revision"] for s in result["reverted"]] == ["b2", "a1"]


def test_apply_refused_by_protection_and_by_lint(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1", protected="true")
    data = migplan(project.root, "apply", "dev", code=1)
    assert data["error"]["type"] == "Refused"
    assert data["plan"]["steps"][0]["revision"] == "a1"
    assert data["result"] is None
    project.add_revision("b2", "a1", "op.drop_table('t_a1')", "pass")
    project.write_config(
        (project.root / "migplan.yaml").read_text()
        + "    lint: {destructive: refuse}\n"
    )
    data = migplan(project.root, "apply", "dev", "--yes", code=1)
    assert data["error"]["type"] == "PolicyViolation"
    assert version_rows(sqlite_url) == []


def test_apply_rehearse(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1", "b2")
    data = migplan(project.root, "apply", "dev", "--rehearse")
    assert data["rehearse"] is True
    assert data["result"]["outcome"] == "rehearsed"
    assert data["result"]["heads"] == [] == version_rows(sqlite_url)


def test_dirty_mariadb_refused_then_resolved(project: Project, mysql_url: str):
    up, _ = create_table("t_half")
    linear_project(project, mysql_url, "a1")
    project.add_revision("b2", "a1", f"{up}\nraise RuntimeError('half')")
    data = migplan(project.root, "apply", "dev", code=1)
    assert data["result"]["dirty"] is True
    assert data["result"]["heads"] == ["a1"]
    data = migplan(project.root, "apply", "dev", code=1)
    assert data["error"]["type"] == "DirtyDatabase"
    data = migplan(project.root, "resolve", "dev", "--as", "applied")
    assert (data["as"], data["revision"], data["direction"]) == (
        "applied",
        "b2",
        "upgrade",
    )
    assert data["heads"] == ["b2"] == version_rows(mysql_url)
    data = migplan(project.root, "resolve", "dev", "--as", "applied", code=1)
    assert "not dirty" in data["error"]["message"]


def test_rollback(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1", "b2")
    migplan(project.root, "apply", "dev")
    data = migplan(project.root, "rollback", "dev", "--steps", "1", "--dry-run")
    assert data["dry_run"] is True
    assert data["result"] is None
    data = migplan(project.root, "rollback", "dev", "--steps", "1")
    assert data["result"]["heads"] == ["a1"] == version_rows(sqlite_url)
    project.write_config(
        (project.root / "migplan.yaml").read_text() + "    rollback: {allowed: false}\n"
    )
    data = migplan(project.root, "rollback", "dev", "--steps", "1", code=1)
    assert data["error"]["type"] == "PolicyViolation"
    assert data["plan"]["steps"][0]["revision"] == "a1"


def test_a_fleet_apply(project: Project, tmp_path: Path):
    urls = [f"sqlite:///{tmp_path / f't{i}.db'}" for i in range(3)]
    linear_project(project, urls[0], "a1", "b2")
    members = "".join(f"      - {url}\n" for url in urls)
    project.write_config(
        f"default_env: fleet\nenvironments:\n  fleet:\n    databases:\n{members}"
        "    target: head\n"
    )
    result = run_process(project.root, "apply", "--json")
    data = document(result.stdout, result.stderr, result.returncode, "apply", code=0)
    assert data["fleet"] is True
    assert [d["outcome"] for d in data["result"]["databases"]] == ["applied"] * 3


def test_a_fleet_plan_with_a_database_that_cannot_be_read(
    project: Project, tmp_path: Path
):
    good = f"sqlite:///{tmp_path / 'good.db'}"
    linear_project(project, good, "a1")
    project.write_config(
        "default_env: fleet\nenvironments:\n  fleet:\n    databases:\n"
        f"      - {good}\n      - postgresql://nobody@127.0.0.1:1/none\n"
        "    target: head\n"
    )
    data = migplan(project.root, "plan", "fleet", code=1)
    assert data["databases"] == 2


# -- status, log, drift, graph ------------------------------------------------------------


def test_status_log_and_graph(project: Project, sqlite_url: str, tmp_path: Path):
    linear_project(project, sqlite_url, "a1", "b2")
    migplan(project.root, "apply", "dev")
    project.write_config(
        (project.root / "migplan.yaml").read_text()
        + "  gone:\n    url: postgresql://nobody@127.0.0.1:1/none\n    target: head\n"
    )
    data = migplan(project.root, "status")
    assert [r["state"] for r in data["environments"]] == ["up to date", "error"]
    data = migplan(project.root, "log", "dev")
    assert [r["action"] for r in data["databases"][0]["runs"]] == ["apply"]
    data = migplan(project.root, "log", "gone", code=1)
    assert data["databases"][0]["error"]
    data = migplan(project.root, "graph")
    assert {(e["from"], e["to"]) for e in data["edges"]} == {("b2", "a1")}
    assert {"environment": "dev", "kind": "current", "revisions": ["b2"]} in data[
        "markers"
    ]
    assert data["warnings"] and data["warnings"][0].startswith("gone: ")
    data = migplan(project.root, "graph", "--no-databases")
    assert data["markers"] == [] and data["heads"] == ["b2"]


def test_drift(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1")
    module = f"json_models_{uuid.uuid4().hex[:8]}"
    (project.root / f"{module}.py").write_text(
        "import sqlalchemy as sa\n"
        "metadata = sa.MetaData()\n"
        "for name in ('t_a1', 't_b2'):\n"
        "    sa.Table(name, metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
    )
    config = project.root / "migplan.yaml"
    config.write_text(f"metadata: {module}:metadata\n" + config.read_text())
    migplan(project.root, "apply", "dev")
    data = migplan(project.root, "drift", "dev", code=2)
    assert data["differs"] is True
    assert [d["subject"] for d in data["databases"][0]["differences"]] == ["t_b2"]
    project.add_revision("b2", "a1", *create_table("t_b2"))
    migplan(project.root, "apply", "dev")
    data = migplan(project.root, "drift", "dev")
    assert data["differs"] is False


# -- verify, validate, promote -------------------------------------------------------------


def test_verify(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1")
    data = migplan(project.root, "verify")
    assert [c["revision"] for c in data["checks"]] == ["a1"]
    assert data["problems"] == []
    project.add_revision("b2", "a1", create_table("t_b2")[0], "pass")
    data = migplan(project.root, "verify", code=1)
    assert data["problems"]
    assert data["checks"][1]["problem"]


def test_validate(project: Project, sqlite_url: str):
    linear_project(project, sqlite_url, "a1")
    assert migplan(project.root, "validate")["problems"] == []
    config = project.root / "migplan.yaml"
    config.write_text(config.read_text().replace("target: head", "target: zz9"))
    data = migplan(project.root, "validate", code=1)
    assert len(data["problems"]) == 1 and "zz9" in data["problems"][0]
    config.write_text("environments: [\n")  # not YAML: an error, no problems list
    data = migplan(project.root, "validate", code=1)
    assert data["error"]["type"] == "ConfigError" and "problems" not in data


def test_promote(project: Project, tmp_path: Path):
    linear_project(project, f"sqlite:///{tmp_path / 'dev.db'}", "a1", "b2")
    project.write_config(
        (project.root / "migplan.yaml").read_text()
        + f"  prod:\n    url: sqlite:///{tmp_path / 'prod.db'}\n    target: base\n"
    )
    data = migplan(project.root, "promote", "dev", "prod", code=1)
    assert "nothing to promote" in data["error"]["message"]
    migplan(project.root, "apply", "dev")
    data = migplan(project.root, "promote", "dev", "prod")
    assert (data["before"], data["target"]) == (["base"], ["b2"])
    assert [s["revision"] for s in data["plan"]["steps"]] == ["a1", "b2"]
