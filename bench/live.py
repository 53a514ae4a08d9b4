"""A migration on a busy table, behind a long transaction, on the real PostgreSQL
server: how long the table's readers wait, with and without `ddl:`.

    python bench/live.py                  # PostgreSQL at 127.0.0.1:5432, user postgres
    python bench/live.py --hold 6 --readers 4
    MIGPLAN_BENCH_PG=postgresql://u@host/db python bench/live.py

One session reads the table `invoice` in a transaction it keeps open (a report, a
stuck worker) for `--hold` seconds after the ALTER starts waiting; `--readers` sessions read the table in a loop
and time each query; `migplan apply` runs a revision that adds a column to it.

- plain: no `ddl:` (what Alembic does): the ALTER waits for the long transaction
  and every reader queues behind the ALTER, for as long as the transaction lasts.
- ddl: `lock_timeout: 1, retries: 10`: the ALTER gives up after a second, is
  rolled back and retried; readers wait at most about the lock timeout.
- ddl, spent: `lock_timeout: 0.5, retries: 1`, the transaction outlasting the
  retries: apply fails cleanly, naming the blocker; the database is unchanged.

A scratch database is made for each scenario and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

SERVER = os.environ.get("MIGPLAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

REVISION = '''\
"""{rev}"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{up}


def downgrade():
    pass
'''

CREATE = (
    "    op.create_table('invoice', sa.Column('id', sa.Integer, primary_key=True),"
    " sa.Column('amount', sa.Integer))\n"
    "    op.execute('INSERT INTO invoice (amount) SELECT g FROM generate_series(1, 1000) g')"
)
ALTER = "    op.add_column('invoice', sa.Column('note', sa.Text))"

WAITING = (
    "SELECT pid FROM pg_locks WHERE NOT granted AND locktype = 'relation' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

ENV_PY = """\
from alembic import context

config = context.config


def run_migrations_online():
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
"""


def driver(url: str) -> str:
    return re.sub(r"^postgresql(\+\w+)?://", "postgresql+psycopg://", url)


def project(root: Path, url: str, ddl: str) -> None:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text("")
    (versions / "r1.py").write_text(REVISION.format(rev="r1", down=None, up=CREATE))
    (versions / "r2.py").write_text(REVISION.format(rev="r2", down="r1", up=ALTER))
    config = f"""\
    default_env: dev
    environments:
      dev:
        url: {url}
        target: TARGET
    {ddl}
    """
    (root / "migplan.yaml").write_text(textwrap.dedent(config).replace("TARGET", "r1"))
    migplan(root, "apply", "dev").check_returncode()
    (root / "migplan.yaml").write_text(
        textwrap.dedent(config).replace("TARGET", "head")
    )


def migplan(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migplan", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def scenario(name: str, ddl: str, hold: float, readers: int) -> dict[str, object]:
    admin = sa.create_engine(driver(SERVER), isolation_level="AUTOCOMMIT")
    database = f"migplan_bench_live_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
    url = sa.make_url(driver(SERVER)).set(database=database)
    plain_url = url.render_as_string(hide_password=False).replace(
        "postgresql+psycopg://", "postgresql://"
    )
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            project(root, plain_url, ddl)
            latencies: list[float] = []
            stop = threading.Event()

            def read() -> None:
                with engine.connect() as conn:
                    while not stop.is_set():
                        started = time.perf_counter()
                        conn.exec_driver_sql("SELECT count(*) FROM invoice").scalar()
                        conn.commit()
                        latencies.append(time.perf_counter() - started)
                        time.sleep(0.02)

            blocker = engine.connect()
            blocker.exec_driver_sql("SELECT count(*) FROM invoice").scalar()
            threads = [
                threading.Thread(target=read, daemon=True) for _ in range(readers)
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            started = time.perf_counter()
            apply = subprocess.Popen(
                [sys.executable, "-m", "migplan", "apply", "dev"],
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            # the long transaction lasts `hold` seconds from when the ALTER waits
            with engine.connect() as watch:
                deadline = time.monotonic() + 60
                while apply.poll() is None and time.monotonic() < deadline:
                    if watch.exec_driver_sql(WAITING).first():
                        break
                    watch.commit()
                    time.sleep(0.02)
            timer = threading.Timer(hold, blocker.commit)
            timer.start()
            _, stderr = apply.communicate(timeout=300)
            elapsed = time.perf_counter() - started
            timer.join()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            blocker.close()
            with engine.connect() as conn:
                version = conn.exec_driver_sql(
                    "SELECT version_num FROM alembic_version"
                ).scalar()
            return {
                "scenario": name,
                "worst": max(latencies, default=0.0),
                "queries": len(latencies),
                "retries": len(re.findall(r"; retry \d+/\d+ in ", stderr)),
                "code": apply.returncode,
                "apply": elapsed,
                "version": version,
                "error": (stderr.strip().splitlines() or [""])[-1][:100],
            }
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=4.0, help="seconds (default 4)")
    parser.add_argument("--readers", type=int, default=3)
    options = parser.parse_args()
    hold = options.hold
    rows = [
        scenario("plain (no ddl:)", "", hold, options.readers),
        scenario(
            "ddl: lock_timeout 1, retries 10",
            "    ddl: {lock_timeout: 1, retries: 10}",
            hold,
            options.readers,
        ),
        scenario(
            "ddl: lock_timeout 0.5, retries 1",
            "    ddl: {lock_timeout: 0.5, retries: 1}",
            hold,
            options.readers,
        ),
    ]
    print(f"long transaction held {hold:g} s; {options.readers} readers of invoice\n")
    head = f"{'scenario':34} {'worst read':>10} {'reads':>6} {'retries':>7} {'exit':>4} {'apply':>7}  at"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['scenario']:34} {r['worst']:>9.2f}s {r['queries']:>6} "
            f"{r['retries']:>7} {r['code']:>4} {r['apply']:>6.1f}s  {r['version']}"
        )
    for r in rows:
        if r["code"]:
            print(f"\n{r['scenario']}: {r['error']}")
    plain, bounded = rows[0]["worst"], rows[1]["worst"]
    assert isinstance(plain, float) and isinstance(bounded, float)
    print(f"\nworst read, ddl / plain: {bounded / plain:.2f}x")


if __name__ == "__main__":
    main()
