"""A fleet of PostgreSQL schemas that shows a revision run twice, and migplan
processes started together on its shards (tests/test_shard_auto.py, the
pipelines of docs/ in tests/test_docs_ci.py).

Every revision r01 .. rNN inserts its id into the tenant's `migration_log` (the
first one creates it, in the tenant's schema: migplan sets `search_path`), so a
schema whose log is not exactly r01 .. rNN, once each, was migrated twice or not
at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import Project
from conftest import query

URL_VAR = "TENANTS_DATABASE_URL"
"""What the Kubernetes manifest and the CI workflow take from their secrets."""

LOG_TABLE = """\
op.create_table(
    'migration_log',
    sa.Column('id', sa.Integer, sa.Identity(), primary_key=True),
    sa.Column('revision', sa.Text, nullable=False),
    sa.Column('backend', sa.Integer, server_default=sa.text('pg_backend_pid()')),
)"""


def revision_ids(count: int) -> list[str]:
    return [f"r{k:02d}" for k in range(1, count + 1)]


def schema_names(count: int) -> list[str]:
    """`count` schema names, not created (apply creates them)."""
    prefix = f"shard_{uuid.uuid4().hex[:8]}"
    return [f"{prefix}_{i:03d}" for i in range(count)]


def log_fleet(
    project: Project, schemas: list[str], *, revisions: int = 3, concurrency: int = 2
) -> None:
    """Environment `tenants`: `schemas` of the database ${TENANTS_DATABASE_URL},
    at head after `revisions` revisions that log themselves."""
    down = None
    for rev in revision_ids(revisions):
        insert = (
            f"op.execute(\"INSERT INTO migration_log (revision) VALUES ('{rev}')\")"
        )
        upgrade = f"{LOG_TABLE}\n{insert}" if down is None else insert
        project.add_revision(rev, down, upgrade)
        down = rev
    lines = [
        "default_env: tenants",
        "environments:",
        "  tenants:",
        f"    url: ${{{URL_VAR}}}",
        "    schemas:",
        *(f"      - {s}" for s in schemas),
        "    target: head",
        f"    rollout: {{canary: 1, concurrency: {concurrency}, max_failures: 0}}",
    ]
    project.write_config("\n".join(lines) + "\n")


def fleet_state(url: str, schemas: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Each schema's (version rows, logged revisions in order); ([], []) for one
    that does not exist. One query for the whole fleet."""
    found: dict[str, tuple[list[str], list[str]]] = {s: ([], []) for s in schemas}
    existing = {
        name
        for (name,) in query(
            url,
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'migration_log'",
        )
    }
    parts = []
    for s in schemas:
        if s not in existing:
            continue
        parts.append(f"SELECT '{s}', 'v', version_num, 0 FROM \"{s}\".alembic_version")
        parts.append(f"SELECT '{s}', 'l', revision, id FROM \"{s}\".migration_log")
    if parts:
        sql = " UNION ALL ".join(parts) + " ORDER BY 1, 2, 4"
        for schema, kind, value, _ in query(url, sql):
            found[str(schema)][0 if kind == "v" else 1].append(str(value))
    return found


def run_together(
    root: Path, args: list[str], envs: list[dict[str, str]], timeout: float = 600
) -> list[subprocess.CompletedProcess[str]]:
    """Start one migplan process per `envs` entry at once (as the pods of an
    Indexed Job or the jobs of a matrix start), each with `args` and its own
    variables on top of ours; wait for all of them."""
    base = {k: v for k, v in os.environ.items() if k not in _RUNNER_VARS}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "migplan", *args],
            cwd=root,
            env={**base, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in envs
    ]
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, out, err)
        )
    return results


_RUNNER_VARS = {
    "MIGPLAN_CONFIG",
    "MIGPLAN_SHARD",
    "MIGPLAN_SHARDS",
    "JOB_COMPLETION_INDEX",
}
"""Variables of the test's own environment no runner inherits."""
