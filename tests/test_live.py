"""Live databases: a migration that needs an exclusive lock on a busy table, behind
a long transaction, with readers timing every query - with and without
`ddl: {lock_timeout, retries}`.

Without it (as plain Alembic does), the ALTER waits behind the long transaction
and every reader queues behind the ALTER: the readers stall for as long as the
long transaction lasts. With it, the ALTER gives up after lock_timeout, is rolled
back and retried, so no reader waits much longer than lock_timeout; it succeeds
once the long transaction ends, or fails cleanly naming it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field

import pytest
import sqlalchemy as sa
from conftest import Project
from conftest import columns
from conftest import driver_url
from conftest import query
from conftest import run_process
from conftest import version_rows

INVOICE = (
    "op.create_table('invoice', sa.Column('id', sa.Integer, primary_key=True), "
    "sa.Column('amount', sa.Integer))\n"
    "op.execute('INSERT INTO invoice (amount) SELECT g FROM generate_series(1, 100) g')"
)
ALTER = "op.add_column('invoice', sa.Column('note', sa.Text))"


def invoice_project(project: Project, url: str, ddl: str = "") -> None:
    project.add_revision("r1", None, INVOICE, "op.drop_table('invoice')")
    project.add_revision("r2", "r1", ALTER, "op.drop_column('invoice', 'note')")
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {url}
            target: r1
        """
    )
    assert run_process(project.root, "apply", "dev").returncode == 0
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {url}
            target: head
        {ddl}
        """
    )


@dataclass
class Readers:
    """Sessions reading the table in a loop, each query timed."""

    url: str
    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)


@contextmanager
def readers(url: str, count: int = 3) -> Iterator[Readers]:
    found = Readers(url)
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)

    def read() -> None:
        with engine.connect() as conn:
            while not found.stop.is_set():
                started = time.perf_counter()
                conn.exec_driver_sql("SELECT count(*) FROM invoice").scalar()
                conn.commit()
                found.latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

    threads = [threading.Thread(target=read, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield found
    finally:
        found.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        engine.dispose()


@contextmanager
def long_transaction(url: str) -> Iterator[LongTransaction]:
    """A session that read the table in a transaction it keeps open (a report, a
    stuck worker): it holds ACCESS SHARE on the table until `end()`."""
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    conn = engine.connect()
    pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
    conn.exec_driver_sql("SELECT count(*) FROM invoice").scalar()
    try:
        yield LongTransaction(pid, conn)
    finally:
        conn.close()
        engine.dispose()


@dataclass
class LongTransaction:
    pid: int
    conn: sa.Connection

    def end(self) -> None:
        self.conn.commit()


def apply_behind(project: Project, url: str, held: float) -> tuple[int, str]:
    """Run apply behind a long transaction: once apply's ALTER waits for the lock,
    the long transaction lasts `held` seconds more. Return apply's code, stderr."""
    with long_transaction(url) as blocker:
        apply = subprocess.Popen(
            [sys.executable, "-m", "migplan", "apply", "dev"],
            cwd=project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not query(url, WAITING_FOR_A_LOCK) and apply.poll() is None:
            assert time.monotonic() < deadline, "apply never waited for the lock"
            time.sleep(0.05)
        time.sleep(held)
        blocker.end()
        _, stderr = apply.communicate(timeout=120)
    return apply.returncode, stderr.replace(f"pid {blocker.pid} ", "pid BLOCKER ")


WAITING_FOR_A_LOCK = (
    "SELECT pid FROM pg_locks WHERE NOT granted AND locktype = 'relation' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def test_without_ddl_readers_stall_behind_the_waiting_alter(project, pg_url):
    # the baseline: what Alembic, and migplan without ddl:, do
    invoice_project(project, pg_url)
    with readers(pg_url) as timed:
        code, stderr = apply_behind(project, pg_url, held=2.5)
    assert code == 0, stderr
    assert version_rows(pg_url) == ["r2"]
    # every reader queued behind the ALTER until the long transaction ended
    assert timed.worst > 2.0, timed.worst


def test_with_a_lock_timeout_no_reader_waits_and_the_alter_goes_through(
    project, pg_url
):
    invoice_project(project, pg_url, "    ddl: {lock_timeout: 500ms, retries: 10}")
    with readers(pg_url) as timed:
        code, stderr = apply_behind(project, pg_url, held=2.5)
    assert code == 0, stderr
    assert version_rows(pg_url) == ["r2"]
    assert "note" in columns(pg_url, "invoice")
    # no reader waited much longer than the lock timeout
    assert timed.worst < 1.2, timed.worst
    # it said who it was waiting for, and that it would try again
    waits = [line for line in stderr.splitlines() if line.startswith("r2: ")]
    assert waits, stderr
    assert "held by pid BLOCKER (`SELECT count(*) FROM invoice`" in waits[0]
    assert "; retry 1/10 in " in waits[0]
    # the audit trail records each attempt
    [(steps,)] = query(
        pg_url,
        "SELECT steps FROM migplan_audit WHERE outcome = 'success' "
        "ORDER BY id DESC LIMIT 1",
    )
    outcomes = [s["outcome"] for s in json.loads(str(steps)) if s["revision"] == "r2"]
    assert outcomes[-1] == "done"
    assert set(outcomes[:-1]) == {"lock timeout"} and len(outcomes) >= 2


def test_when_the_retries_are_spent_apply_fails_cleanly_naming_the_blocker(
    project, pg_url
):
    invoice_project(project, pg_url, "    ddl: {lock_timeout: 0.3, retries: 1}")
    code, stderr = apply_behind(project, pg_url, held=3.0)
    assert code == 1
    error = stderr.splitlines()[-1]
    assert error.startswith(
        "Error: upgrade r2 failed: canceling statement due to lock timeout"
    ), error
    assert "held by pid BLOCKER (`SELECT count(*) FROM invoice`" in error
    assert error.endswith("the database is at r1, the last migration that succeeded")
    assert version_rows(pg_url) == ["r1"]
    assert "note" not in columns(pg_url, "invoice")
    [(outcome,)] = query(
        pg_url, "SELECT outcome FROM migplan_audit ORDER BY id DESC LIMIT 1"
    )
    assert outcome == "failed"


def test_each_migration_runs_under_the_policys_timeouts(project, pg_url):
    # every migration's transaction gets the ddl: timeouts, even after one that
    # set its own for the session (SET LOCAL: one round trip, each migration)
    log = (
        "op.execute(\"INSERT INTO seen SELECT '{rev}', "
        "current_setting('lock_timeout'), current_setting('statement_timeout')\")"
    )
    project.add_revision(
        "r1", None, "op.execute('CREATE TABLE seen (rev text, lock text, stmt text)')"
    )
    project.add_revision(
        "r2",
        "r1",
        log.format(rev="r2")
        + "\nop.execute(\"SET lock_timeout = '7s'\")"
        + "\nop.execute(\"SET statement_timeout = '9s'\")",
    )
    project.add_revision("r3", "r2", log.format(rev="r3"))
    project.write_config(
        f"""
        environments:
          dev:
            url: {pg_url}
            target: head
            ddl: {{lock_timeout: 2, statement_timeout: 1.5m}}
        """
    )
    done = run_process(project.root, "apply", "dev", "--yes")
    assert done.returncode == 0, done.stderr
    assert query(pg_url, "SELECT * FROM seen ORDER BY rev") == [
        ("r2", "2s", "90s"),
        ("r3", "2s", "90s"),
    ]
    assert version_rows(pg_url) == ["r3"]


def test_mariadb_sets_its_lock_waits_per_session_and_retries_a_clean_timeout(
    project, mysql_url
):
    project.add_revision(
        "r1",
        None,
        "op.create_table('invoice', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('invoice')",
    )
    project.add_revision("r2", "r1", ALTER, "op.drop_column('invoice', 'note')")
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {mysql_url}
            target: r1
        """
    )
    assert run_process(project.root, "apply", "dev").returncode == 0
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {mysql_url}
            target: head
            ddl: {{lock_timeout: 1, retries: 10}}
        """
    )
    engine = sa.create_engine(driver_url(mysql_url), poolclass=sa.pool.NullPool)
    conn = engine.connect()
    conn.exec_driver_sql("SELECT * FROM invoice").all()  # a metadata lock, kept
    err = project.root.parent / "apply.err"
    try:
        with err.open("w") as stderr:
            apply = subprocess.Popen(
                [sys.executable, "-m", "migplan", "apply", "dev"],
                cwd=project.root,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
            )
        # the lock is kept until apply has timed out on it once, and says so
        deadline = time.monotonic() + 60
        while "; retry 1/10 in " not in err.read_text() and apply.poll() is None:
            assert time.monotonic() < deadline, "apply never retried"
            time.sleep(0.05)
        conn.commit()
        code = apply.wait(timeout=120)
    finally:
        conn.close()
        engine.dispose()
    assert code == 0, err.read_text()
    assert "; retry 1/10 in " in err.read_text()
    assert version_rows(mysql_url) == ["r2"]
    assert "note" in columns(mysql_url, "invoice")
    # the timed-out attempts changed nothing, so nothing was left dirty
    assert "dirty" not in run_process(project.root, "status").stdout


@pytest.mark.parametrize("spelling", ["2", "2s", "2000ms", "0.5m"])
def test_a_duration_is_seconds_or_a_unit(project, sqlite_url, spelling):
    from migplan.project.config import load_config

    project.write_config(
        f"""
        environments:
          dev:
            url: {sqlite_url}
            ddl: {{lock_timeout: {spelling}, statement_timeout: 0}}
        """
    )
    env = load_config(project.root / "migplan.yaml").environment("dev")
    assert env.ddl.lock_timeout == (30.0 if spelling == "0.5m" else 2.0)
    assert env.ddl.statement_timeout == 0.0
