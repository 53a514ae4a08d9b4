"""The migration lock, with real `migplan apply` processes: several started at once,
a holder that is named, a lock timeout, and an apply killed half-way (SIGKILL).

Every revision creates its table and logs itself in `steplog` with the pid of the
process that ran it, so "ran exactly once" is a query. Inside its migration, before
any statement, a revision waits while the environment says so:
GATE_<rev>=<path> until that file exists (the test decides when it goes on), and
SLOW_<rev>=<seconds> in a server-side sleep (pg_sleep, SLEEP; SQLite sleeps in
Python). SLOW_AFTER_DDL_<rev> sleeps after its CREATE TABLE instead.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Project
from conftest import display_url
from conftest import driver_url
from conftest import query
from conftest import run_process
from conftest import tables
from conftest import version_rows

REVS = ("r1", "r2", "r3", "r4", "r5")
PROCESSES = 4
ACTOR = "locking-test"

# the holder as locking.py names it: the application_name of the lock's session on
# PostgreSQL, the lock file on SQLite, the lock's connection on MariaDB
_HOLDER_PROCESS = (
    rf"migplan pid (?P<pid>\d+) on {re.escape(socket.gethostname())}, "
    r"since (?P<since>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC"
)
HOLDER = {
    "postgresql": _HOLDER_PROCESS,
    "sqlite": _HOLDER_PROCESS,
    "mysql": r"connection \d+ from 127\.0\.0\.1:\d+, for \d+s",
}
WAITING = "waiting for the migration lock, held by "


def dialect(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def _sleep(variable: str) -> list[str]:
    return [
        f"seconds = os.environ.get({variable!r})",
        "if seconds:",
        "    dialect = op.get_bind().dialect.name",
        "    if dialect == 'postgresql':",
        "        op.execute(f'SELECT pg_sleep({seconds})')",
        "    elif dialect == 'mysql':",
        "        op.execute(f'SELECT SLEEP({seconds})')",
        "    else:",
        "        time.sleep(float(seconds))",
    ]


def steplog_project(project: Project, url: str, revs: tuple[str, ...] = REVS) -> None:
    """Revisions revs[0] -> revs[1] -> ..., each creating t_<rev> and logging itself
    in steplog (made by the first); env `dev` on `url`, target head."""
    down = None
    for rev in revs:
        lines = [
            "import os",
            "import time",
            "",
            f"gate = os.environ.get('GATE_{rev}')",
            "while gate and not os.path.exists(gate):",
            "    time.sleep(0.05)",
            *_sleep(f"SLOW_{rev}"),
        ]
        if down is None:
            lines.append(
                "op.create_table('steplog', "
                "sa.Column('id', sa.Integer, primary_key=True), "
                "sa.Column('revision', sa.String(32), nullable=False), "
                "sa.Column('pid', sa.Integer, nullable=False))"
            )
        lines += [
            f"op.create_table('t_{rev}', sa.Column('id', sa.Integer, primary_key=True))",
            *_sleep(f"SLOW_AFTER_DDL_{rev}"),
            "op.execute(",
            "    sa.text('INSERT INTO steplog (revision, pid) VALUES (:rev, :pid)')",
            f"    .bindparams(rev={rev!r}, pid=os.getpid())",
            ")",
        ]
        project.add_revision(rev, down, "\n".join(lines), f"op.drop_table('t_{rev}')")
        down = rev
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {url}
            target: head
        """
    )


@dataclass
class Background:
    """A `migplan apply` running in the background, its output going to files."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.err.read_text()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Wait for the process; return its exit code, stdout and stderr."""
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.out.read_text(), self.err.read_text()


StartApply = Callable[..., Background]


@pytest.fixture
def start_apply(project: Project) -> Iterator[StartApply]:
    """Start `migplan apply ARGS` (with extra environment variables) from the
    project; any still running at the end of the test are killed."""
    started: list[Background] = []

    def start(*args: str, **env: str) -> Background:
        full_env = {**os.environ, "MIGPLAN_ACTOR": ACTOR, **env}
        full_env.pop("MIGPLAN_CONFIG", None)
        name = project.root.parent / f"apply{len(started)}"
        out, err = name.with_suffix(".out"), name.with_suffix(".err")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "migplan", "apply", *args],
                cwd=project.root,
                env=full_env,
                stdout=stdout,
                stderr=stderr,
            )
        started.append(Background(proc, out, err))
        return started[-1]

    yield start
    for background in started:
        if background.proc.poll() is None:
            background.proc.kill()
            background.proc.wait()


def rows(url: str, sql: str) -> list[tuple[object, ...]] | None:
    """The rows of `sql`, or None while its table does not exist (yet)."""
    try:
        return query(url, sql)
    except Exception:  # the table is created by the process being watched
        return None


def wait_for(
    what: str,
    condition: Callable[[], object],
    *running: Background,
    timeout: float = 60,
) -> None:
    """Poll `condition`; fail when it takes too long or a `running` apply exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        for background in running:
            if background.proc.poll() is not None:
                pytest.fail(
                    f"apply {background.pid} exited with {background.proc.returncode} "
                    f"before {what}: {background.stderr()}"
                )
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout}s waiting until {what}")
        time.sleep(0.05)


def steplog(url: str) -> Counter[str]:
    """How many times each revision ran."""
    return Counter(str(r[0]) for r in query(url, "SELECT revision FROM steplog"))


def outcomes(url: str) -> list[str] | None:
    """The outcome of every run in the audit trail, oldest first (None: no table)."""
    found = rows(url, "SELECT outcome FROM migplan_audit ORDER BY id")
    return None if found is None else [str(r[0]) for r in found]


def utc(text: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> dt.datetime:
    return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.timezone.utc)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def apply_again_quickly(project: Project) -> subprocess.CompletedProcess[str]:
    """Run apply; a stale lock would make it give up after 5 s. It may wait a
    moment, while the server ends the killed session (README, "Safety"); the
    time is not asserted: a loaded machine is slow, not wrong."""
    result = run_process(project.root, "apply", "dev", "--lock-timeout", "5")
    assert "another migration holds the lock" not in result.stderr, result
    return result


# -- N applies at once ------------------------------------------------------------


def concurrent_applies(project: Project, url: str, start_apply: StartApply) -> None:
    """Start PROCESSES applies together: one runs every revision, the others wait for
    it, re-read the revision under the lock and find nothing left to do."""
    steplog_project(project, url)
    gate = project.root.parent / "open-r1"
    began = now().replace(microsecond=0)
    applies = [start_apply("dev", GATE_r1=str(gate)) for _ in range(PROCESSES)]
    # whoever takes the lock first stays in r1 until all the others wait for it
    wait_for(
        f"{PROCESSES - 1} applies wait for the lock",
        lambda: sum(a.stderr().startswith(WAITING) for a in applies) == PROCESSES - 1,
        *applies,
    )
    gate.touch()
    results = {a.pid: a.finish() for a in applies}

    assert [code for code, _, _ in results.values()] == [0] * PROCESSES, results
    assert steplog(url) == dict.fromkeys(REVS, 1)
    assert version_rows(url) == ["r5"]
    assert outcomes(url) == ["success"]
    [(runner,)] = query(url, "SELECT DISTINCT pid FROM steplog")
    for pid, (_, stdout, stderr) in results.items():
        if pid == runner:
            assert stdout.splitlines()[-1] == "Applied 5 steps; dev is at r5."
            assert stderr == ""
            continue
        assert "[1/5]" not in stdout
        assert (
            stdout.splitlines()[-1]
            == "Nothing left to do (another process applied it); dev is at r5."
        )
        holder = re.fullmatch(re.escape(WAITING) + HOLDER[dialect(url)] + "\n", stderr)
        assert holder, stderr
        if "pid" in holder.groupdict():
            assert int(holder["pid"]) == runner
            assert began <= utc(holder["since"]) <= now()


def test_concurrent_applies_run_every_revision_once(project, db_url, start_apply):
    concurrent_applies(project, db_url, start_apply)


# -- a lock held for longer than --lock-timeout ------------------------------------


def test_lock_timeout_names_the_holder_and_changes_nothing(
    project, db_url, start_apply
):
    steplog_project(project, db_url)
    gate = project.root.parent / "open-r1"
    holder = start_apply("dev", GATE_r1=str(gate))
    wait_for(
        "the first apply holds the lock",
        lambda: outcomes(db_url) == ["running"],
        holder,
    )

    started = time.monotonic()
    result = run_process(project.root, "apply", "dev", "--lock-timeout", "1")
    seconds = time.monotonic() - started

    assert holder.proc.poll() is None  # it held the lock all along
    assert result.returncode == 1
    assert seconds >= 1
    pattern = HOLDER[dialect(db_url)]
    waiting, error = result.stderr.splitlines()
    assert re.fullmatch(re.escape(WAITING) + pattern, waiting), result.stderr
    message = re.fullmatch(
        rf"Error: {re.escape(display_url(db_url))}: another migration holds the lock "
        rf"\({pattern}\); gave up after 1s \(raise --lock-timeout to wait longer\)",
        error,
    )
    assert message, result.stderr
    if "pid" in message.groupdict():
        assert int(message["pid"]) == holder.pid
    # the timed-out process wrote nothing: no revision, no run in the audit trail
    assert version_rows(db_url) == []
    assert outcomes(db_url) == ["running"]

    gate.touch()
    code, stdout, stderr = holder.finish()
    assert code == 0, stderr
    assert stdout.splitlines()[-1] == "Applied 5 steps; dev is at r5."
    assert steplog(db_url) == dict.fromkeys(REVS, 1)
    assert outcomes(db_url) == ["success"]


def test_a_holder_that_waited_is_named_since_it_took_the_lock(
    project, pg_url, start_apply
):
    """`since` is when the holder took the lock, not when it began to wait for it.

    (PostgreSQL only: on SQLite the holder writes the time it took the lock into
    the lock file, on MariaDB the processlist time restarts with every GET_LOCK.)
    """
    steplog_project(project, pg_url)
    project.write_config(
        f"""
        environments:
          first:
            url: {pg_url}
            target: r1
          dev:
            url: {pg_url}
            target: head
        """
    )
    open_r1, open_r2 = project.root.parent / "open-r1", project.root.parent / "open-r2"
    first = start_apply("first", GATE_r1=str(open_r1))
    wait_for("first holds the lock", lambda: outcomes(pg_url) == ["running"], first)
    second = start_apply("dev", GATE_r2=str(open_r2))
    wait_for("second waits", lambda: second.stderr().startswith(WAITING), second)
    time.sleep(1.1)  # so that when it waited and when it took the lock differ
    open_r1.touch()
    wait_for(
        "second holds the lock",
        lambda: outcomes(pg_url) == ["success", "running"],
        second,
    )
    [(first_done,), _] = query(
        pg_url, "SELECT finished_at FROM migplan_audit ORDER BY id"
    )

    third = run_process(project.root, "apply", "dev", "--lock-timeout", "0")

    assert third.returncode == 1
    holder = re.fullmatch(
        rf"Error: {re.escape(display_url(pg_url))}: another migration holds the lock "
        rf"\({HOLDER['postgresql']}\); gave up after 0s "
        r"\(raise --lock-timeout to wait longer\)\n",
        third.stderr,
    )
    assert holder, third.stderr
    assert int(holder["pid"]) == second.pid
    # first wrote finished_at under the lock: second took it after that
    assert utc(holder["since"]) >= utc(first_done, "%Y-%m-%dT%H:%M:%SZ")
    open_r2.touch()
    for background in (first, second):
        code, _, stderr = background.finish()
        assert code == 0, stderr
    assert steplog(pg_url) == dict.fromkeys(REVS, 1)
    assert version_rows(pg_url) == ["r5"]


def test_plan_during_an_apply_on_mariadb_does_not_call_it_dirty(
    project, mysql_url, start_apply
):
    steplog_project(project, mysql_url)
    gate = project.root.parent / "open-r1"
    background = start_apply("dev", GATE_r1=str(gate))
    wait_for(
        "the apply holds the lock",
        lambda: outcomes(mysql_url) == ["running"],
        background,
    )

    result = run_process(project.root, "plan", "dev")

    gate.touch()
    assert background.finish()[0] == 0
    assert result.returncode == 0, result.stderr
    assert "dirty" not in result.stdout


# -- SIGKILL half-way ---------------------------------------------------------------

KILL_REVS = ("r1", "r2", "r3", "r4")

# evidence, from the server, that revision 2 sleeps (SQLite sleeps in Python)
SLEEPING = {
    "postgresql": "SELECT pid FROM pg_stat_activity WHERE state = 'active' "
    "AND query LIKE 'SELECT pg_sleep(%%' AND datname = current_database()",
    "mysql": "SELECT id FROM information_schema.processlist "
    "WHERE info LIKE 'SELECT SLEEP(%%' AND db = DATABASE()",
}


def kill_during_revision_2(url: str, start_apply: StartApply, **env: str) -> int:
    """Start an apply whose revision 2 sleeps (as `env` says); SIGKILL it while
    it sleeps. Return the killed process's pid."""
    background = start_apply("dev", **env)
    wait_for(
        "r1 is committed", lambda: rows(url, "SELECT revision FROM steplog"), background
    )
    if dialect(url) in SLEEPING:
        wait_for("r2 sleeps", lambda: rows(url, SLEEPING[dialect(url)]), background)
    else:
        time.sleep(0.5)
    assert background.proc.poll() is None
    os.kill(background.pid, signal.SIGKILL)
    code, _, _ = background.finish()
    assert code == -signal.SIGKILL
    return background.pid


def killed_apply_transactional(
    project: Project, url: str, start_apply: StartApply
) -> None:
    """PostgreSQL, SQLite: the killed migration is rolled back, the lock is gone, and
    apply goes on from the last committed revision."""
    steplog_project(project, url, KILL_REVS)
    killed = kill_during_revision_2(url, start_apply, SLOW_r2="30")

    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}
    assert "t_r2" not in tables(url)
    result = apply_again_quickly(project)
    assert result.returncode == 0, result.stderr
    # the lock is the killed migration's own session: it ends when the server
    # notices the client is gone (within client_connection_check_interval, 1s),
    # so the next apply may wait that long for the killed one, never run beside it
    for line in result.stderr.splitlines():
        assert line.startswith(WAITING + f"migplan pid {killed} on "), line
    assert result.stdout.splitlines()[-1] == "Applied 3 steps; dev is at r4."
    assert steplog(url) == dict.fromkeys(KILL_REVS, 1)
    assert version_rows(url) == ["r4"]
    assert outcomes(url) == ["interrupted", "success"]


def killed_apply_mariadb(project: Project, url: str, start_apply: StartApply) -> None:
    """MariaDB: DDL is not transactional, so the killed migration leaves the database
    dirty; apply refuses (at once: the lock died with the process) until `resolve`."""
    steplog_project(project, url, KILL_REVS)
    pid = kill_during_revision_2(url, start_apply, SLOW_AFTER_DDL_r2="30")

    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}
    [(started_at,)] = query(url, "SELECT started_at FROM migplan_audit")
    refused = apply_again_quickly(project)
    assert refused.returncode == 1
    # the lock is on the killed migration's own connection: it lasts until the
    # server ends that session (its SLEEP notices the client is gone), so the
    # next apply may wait a moment for it, but never runs beside it
    *waited, refusal = refused.stderr.splitlines()
    assert all(re.fullmatch(rf"{WAITING}connection \d+ .*", line) for line in waited)
    assert refusal == (
        "Error: apply refused: the database is dirty: upgrade r2 did not finish "
        f"(the process stopped), since {started_at} by {ACTOR}@{socket.gethostname()} "
        f"pid {pid}; fix the schema by hand, then run 'migplan resolve dev --as "
        "applied' or '--as reverted'"
    )
    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}

    # r2 was killed after its CREATE TABLE (committed at once): undo it by hand
    assert "t_r2" in tables(url)
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE t_r2")
    engine.dispose()
    resolved = run_process(project.root, "resolve", "dev", "--as", "reverted")
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout == "Resolved upgrade r2 as reverted; dev is at r1.\n"

    result = apply_again_quickly(project)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == "Applied 3 steps; dev is at r4."
    assert steplog(url) == dict.fromkeys(KILL_REVS, 1)
    assert version_rows(url) == ["r4"]
    assert outcomes(url) == ["interrupted", "success"]


KILLED_APPLY = {
    "postgresql": killed_apply_transactional,
    "sqlite": killed_apply_transactional,
    "mysql": killed_apply_mariadb,
}


def test_killed_apply_leaves_no_lock_and_nothing_runs_twice(
    project, db_url, start_apply
):
    KILLED_APPLY[dialect(db_url)](project, db_url, start_apply)


def test_killed_apply_after_ddl_does_not_hold_up_the_next_on_postgresql(
    project, pg_url, start_apply
):
    steplog_project(project, pg_url, KILL_REVS)
    kill_during_revision_2(pg_url, start_apply, SLOW_AFTER_DDL_r2="10")

    # the lock is free at once, but r2's CREATE TABLE t_r2 waits for the orphan
    result = apply_again_quickly(project)

    assert result.returncode == 0, result.stderr
    assert steplog(pg_url) == dict.fromkeys(KILL_REVS, 1)


# -- soak: the same, 20 times each (pytest -m soak) ------------------------------------


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    fixture = {"postgresql": "pg_url", "mysql": "mysql_url"}[request.param]
    return str(request.getfixturevalue(fixture))


@pytest.mark.soak
@pytest.mark.parametrize("attempt", range(20))
def test_concurrent_applies_soak(project, server_url, start_apply, attempt):
    concurrent_applies(project, server_url, start_apply)


@pytest.mark.soak
@pytest.mark.parametrize("attempt", range(20))
def test_killed_apply_soak(project, server_url, start_apply, attempt):
    KILLED_APPLY[dialect(server_url)](project, server_url, start_apply)
