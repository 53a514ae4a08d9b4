"""Benchmark a fleet apply: one PostgreSQL schema per tenant, spread over 1, 2 and 4
runners (`migplan apply tenants --shard auto`, one process per shard, started
together as the pods of a Kubernetes Indexed Job are), next to what teams do
without migplan: a shell loop of `alembic -x schema=T upgrade head`, one tenant
after the other.

    python bench/fleet.py                       # 100 schemas x 20 revisions
    python bench/fleet.py --schemas 20 --revisions 5 --runners 1,2 --repeat 3

Every figure is the wall time from starting the runners (or the loop) to the end
of the last one, on a database of its own made before the clock starts, checked
afterwards (every schema's version table at head). Each runner works
`--concurrency` tenants at a time (`rollout.concurrency`); the first row, one
runner at concurrency 1, does the same work in the same order as the loop. The
machine's cores bound what more runners can gain: the figures say how many
there were. The server is the one the tests use (MIGPLAN_TEST_PG, else
postgresql://postgres@127.0.0.1:5432/test).

The project is written here: migplan.yaml, alembic.ini, revisions that each
create a table with an index and alter the previous one, and an env.py that
serves both tools: on migplan's connection (which migplan has pointed at the
tenant's schema) as it is; from Alembic's command line, `-x schema=T` creates
the schema, sets the connection's search_path to it and keeps the version table
there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

BIN = Path(sys.executable).parent
MIGPLAN = [sys.executable, "-m", "migplan"]
ALEMBIC = [str(BIN / "alembic")]
ADMIN_URL = os.environ.get(
    "MIGPLAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"
)

ENV_PY = '''\
"""Alembic environment of the fleet benchmark (bench/fleet.py).

Under migplan: its connection, already in the tenant's schema. Under Alembic:
the URL of alembic.ini, and the tenant's schema from `-x schema=NAME`.
"""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy import pool
from sqlalchemy import text

config = context.config


def migrate(connection, schema=None):
    if schema is not None:
        quoted = '"' + schema.replace('"', '""') + '"'
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS " + quoted))
        connection.execute(text("SET search_path TO " + quoted))
        connection.commit()
    context.configure(connection=connection, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


lent = config.attributes.get("connection")
if lent is not None:
    migrate(lent)
else:
    schema = context.get_x_argument(as_dictionary=True).get("schema")
    engine = create_engine(
        config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        migrate(connection, schema)
'''

REVISION = '''\
"""tenant revision {k}

Revision ID: {rev}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "t{k:02d}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now()),
    )
    op.create_index("ix_t{k:02d}_name", "t{k:02d}", ["name"])
{alter}


def downgrade():
{unalter}
    op.drop_index("ix_t{k:02d}_name", table_name="t{k:02d}")
    op.drop_table("t{k:02d}")
'''


def write_project(root: Path, revisions: int) -> None:
    """The migrations folder: env.py and `revisions` revisions in a line."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    down = None
    for k in range(1, revisions + 1):
        rev = f"{k:04d}aaaa{k:04d}"
        alter = unalter = ""
        if k > 1:
            alter = f'    op.add_column("t{k - 1:02d}", sa.Column("note", sa.Text))'
            unalter = f'    op.drop_column("t{k - 1:02d}", "note")'
        text = REVISION.format(k=k, rev=rev, down=down, alter=alter, unalter=unalter)
        (versions / f"{rev}_tenant_{k}.py").write_text(text)
        down = rev


def write_config(root: Path, schemas: list[str], concurrency: int) -> None:
    """migplan.yaml: environment `tenants`, its URL from $TENANTS_DATABASE_URL."""
    tenants = "".join(f"      - {s}\n" for s in schemas)
    (root / "migplan.yaml").write_text(
        "default_env: tenants\n"
        "environments:\n"
        "  tenants:\n"
        "    url: ${TENANTS_DATABASE_URL}\n"
        "    schemas:\n"
        f"{tenants}"
        "    target: head\n"
        f"    rollout: {{canary: 1, concurrency: {concurrency}, max_failures: 0}}\n"
    )


def alembic_ini(root: Path, url: str) -> Path:
    path = root / "alembic.ini"
    path.write_text(
        textwrap.dedent(
            f"""\
            [alembic]
            script_location = {root / "migrations"}
            sqlalchemy.url = {url.replace("%", "%%")}
            """
        )
    )
    return path


class Server:
    """The PostgreSQL server: a fresh database for each measurement."""

    def __init__(self, admin_url: str) -> None:
        self.url = sa.make_url(admin_url).set(drivername="postgresql+psycopg")
        self.admin = sa.create_engine(
            self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        self.made: list[str] = []

    def fresh(self) -> sa.URL:
        name = f"migplan_bench_fleet_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self.url.set(database=name)

    def at_head(self, url: sa.URL, schemas: list[str], head: str) -> list[str]:
        """The schemas whose version table is not exactly [head]."""
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            found = {
                str(s): str(v)
                for s, v in conn.exec_driver_sql(
                    " UNION ALL ".join(
                        f"SELECT '{s}', version_num FROM \"{s}\".alembic_version"
                        for s in schemas
                    )
                )
            }
        engine.dispose()
        return [s for s in schemas if found.get(s) != head]

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migplan_runners(
    root: Path, url: sa.URL, schemas: list[str], runners: int, concurrency: int
) -> Callable[[], None]:
    """`runners` processes of `migplan apply --shard auto`, as the pods of an
    Indexed Job: JOB_COMPLETION_INDEX 0 .. runners-1, MIGPLAN_SHARDS=runners."""
    write_config(root, schemas, concurrency)
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MIGPLAN_SHARD", "MIGPLAN_SHARDS", "JOB_COMPLETION_INDEX")
    }
    base["TENANTS_DATABASE_URL"] = url.set(drivername="postgresql").render_as_string(
        hide_password=False
    )

    def go() -> None:
        processes = [
            subprocess.Popen(
                [*MIGPLAN, "apply", "tenants", "--shard", "auto", "--yes"],
                cwd=root,
                env={
                    **base,
                    "JOB_COMPLETION_INDEX": str(k),
                    "MIGPLAN_SHARDS": str(runners),
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(runners)
        ]
        for process in processes:
            out, err = process.communicate()
            if process.returncode:
                sys.exit(f"migplan runner failed:\n{out[-2000:]}\n{err}")

    return go


def alembic_loop(root: Path, url: sa.URL, schemas: list[str]) -> Callable[[], None]:
    """for t in $TENANTS; do alembic -x schema=$t upgrade head; done"""
    ini = alembic_ini(root, url.render_as_string(hide_password=False))

    def go() -> None:
        for schema in schemas:
            done = subprocess.run(
                [*ALEMBIC, "-c", str(ini), "-x", f"schema={schema}", "upgrade", "head"],
                cwd=root,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                sys.exit(f"alembic failed on {schema}:\n{done.stderr[-2000:]}")

    return go


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemas", type=int, default=100)
    parser.add_argument("--revisions", type=int, default=20)
    parser.add_argument("--runners", default="1,2,4", help="e.g. 1,2,4")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="rollout.concurrency of each runner"
    )
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runner_counts = [int(n) for n in args.runners.split(",")]

    server = Server(ADMIN_URL)
    schemas = [f"tenant_{i:03d}" for i in range(args.schemas)]
    head = f"{args.revisions:04d}aaaa{args.revisions:04d}"
    setups: list[tuple[str, Callable[[Path, sa.URL], Callable[[], None]]]] = [
        (
            "migplan, 1 runner, concurrency 1",
            lambda root, url: migplan_runners(root, url, schemas, 1, 1),
        ),
        *(
            (
                f"migplan, {n} runner{'s' * (n > 1)} x concurrency {args.concurrency}",
                lambda root, url, n=n: migplan_runners(
                    root, url, schemas, n, args.concurrency
                ),
            )
            for n in runner_counts
        ),
        (
            "shell loop of `alembic -x schema=T upgrade head`",
            lambda root, url: alembic_loop(root, url, schemas),
        ),
    ]
    print(
        f"{args.schemas} schemas x {args.revisions} revisions, PostgreSQL "
        f"{sa.make_url(ADMIN_URL).host}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; median of {args.repeat}",
        flush=True,
    )
    rows: list[tuple[str, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="migplan-bench-fleet-") as tmp:
            root = Path(tmp)
            write_project(root, args.revisions)
            for label, make in setups:
                times = []
                for _ in range(args.repeat):
                    url = server.fresh()
                    go = make(root, url)
                    started = time.perf_counter()
                    go()
                    times.append(time.perf_counter() - started)
                    wrong = server.at_head(url, schemas, head)
                    if wrong:
                        sys.exit(f"{label}: not at head: {', '.join(wrong[:5])}")
                rows.append((label, statistics.median(times)))
                print(f"  {label}: {rows[-1][1]:.1f} s", file=sys.stderr, flush=True)
    finally:
        server.drop_all()
    loop = rows[-1][1]
    width = max(len(label) for label, _ in rows)
    print(f"\n{'':{width}}  {'wall':>7}  {'/schema':>8}  {'vs loop':>7}")
    for label, seconds in rows:
        print(
            f"{label:{width}}  {seconds:6.1f}s  {seconds / args.schemas * 1000:6.0f}ms"
            f"  {seconds / loop:6.2f}x"
        )


if __name__ == "__main__":
    main()
