"""Faults, with real `migplan` processes on the real servers: a session whose backend
is terminated (the lock lost with it), server timeouts, SIGKILL, Ctrl-C and SIGTERM
half-way through a migration, a migration that calls sys.exit, secrets in URL query
parameters, `validate` against `apply`, `migplan db` beside `migplan apply`, saved
plans edited by hand and cache files of the wrong shape.

Every revision r<N> creates table t_r<N> and logs itself in `steplog` (made by the
first) with the pid of the process that ran it, so "ran exactly once" and "ran in
one process" are queries. Each revision says where it is, and does what the test
asks there, at two points: `before` (before any statement) and `after_ddl` (after
its CREATE TABLE, before its INSERT into steplog). With FAULTS=<folder> in its
environment, it leaves the file `<rev>-<point>-<pid>` in that folder at each point,
and then:

- HOLD_<rev>=<point>: waits, in Python, until the file `<rev>-go` exists;
- SLEEP_<rev>=<point>:<seconds>: sleeps in the server (pg_sleep, SLEEP; SQLite sleeps
  in Python);
- PYSLEEP_<rev>=<seconds>: sleeps in Python at `before`;
- EXIT_<rev>=<point>: calls sys.exit(0).

IMPORT_SLEEP_<rev>=<seconds> makes the module sleep while it is imported.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ENV_PY
from conftest import Project
from conftest import query
from conftest import run
from conftest import run_process
from conftest import tables
from conftest import version_rows
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import given
from hypothesis import note
from hypothesis import settings
from hypothesis import strategies as st

REVS = ("r1", "r2", "r3", "r4")
ACTOR = "faults-test"
HOST = socket.gethostname()
WAITING = "waiting for the migration lock, held by "

REVISION = '''\
"""{rev}

Revision ID: {rev}
"""
import os
import sys
import time

import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None

if os.environ.get("IMPORT_SLEEP_" + revision):
    time.sleep(float(os.environ["IMPORT_SLEEP_" + revision]))


def at(point):
    """The migration reached `point`: leave a mark, then do what the test asks."""
    faults = os.environ.get("FAULTS")
    if not faults:
        return
    mark = os.path.join(faults, revision + "-" + point + "-" + str(os.getpid()))
    open(mark, "w").close()
    if os.environ.get("HOLD_" + revision) == point:
        go = os.path.join(faults, revision + "-go")
        while not os.path.exists(go):
            time.sleep(0.05)
    sleep_point, _, seconds = os.environ.get("SLEEP_" + revision, "").partition(":")
    if sleep_point == point:
        dialect = op.get_bind().dialect.name
        if dialect == "postgresql":
            op.execute("SELECT pg_sleep(" + seconds + ")")
        elif dialect == "mysql":
            op.execute("SELECT SLEEP(" + seconds + ")")
        else:
            time.sleep(float(seconds))
    if point == "before" and os.environ.get("PYSLEEP_" + revision):
        time.sleep(float(os.environ["PYSLEEP_" + revision]))
    if os.environ.get("EXIT_" + revision) == point:
        sys.exit(0)


def upgrade():
    at("before")
{create_steplog}    op.create_table("t_{rev}", sa.Column("id", sa.Integer, primary_key=True))
    at("after_ddl")
    op.execute(
        sa.text("INSERT INTO steplog (revision, pid) VALUES (:rev, :pid)")
        .bindparams(rev=revision, pid=os.getpid())
    )


def downgrade():
    op.drop_table("t_{rev}")
{drop_steplog}'''

CREATE_STEPLOG = """\
    op.create_table(
        "steplog",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.String(32), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )
"""


def revision_path(project: Project, rev: str) -> Path:
    return project.versions / f"{rev}_{rev}.py"


def write_revision(project: Project, rev: str, down: str | None) -> Path:
    first = down is None
    path = revision_path(project, rev)
    path.write_text(
        REVISION.format(
            rev=rev,
            down=down,
            create_steplog=CREATE_STEPLOG if first else "",
            drop_steplog='    op.drop_table("steplog")\n' if first else "",
        )
    )
    return path


def fault_project(
    project: Project, url: str, revs: tuple[str, ...] = REVS, **env: str
) -> Project:
    """Revisions revs[0] -> revs[1] -> ... (see the module docstring); environment
    `dev` on `url`, target head, with the given extra settings."""
    down = None
    for rev in revs:
        write_revision(project, rev, down)
        down = rev
    lines = ["default_env: dev", "environments:", "  dev:", f"    url: {url}"]
    lines += [
        "    target: head",
        *(f"    {key}: {value}" for key, value in env.items()),
    ]
    project.write_config("\n".join(lines) + "\n")
    return project


def dialect(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


# -- processes ---------------------------------------------------------------------


@dataclass
class Migplan:
    """A `migplan` process running in the background, its output going to files."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.err.read_text()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Wait for the process; return its exit code, stdout and stderr (a
        process still running after `timeout` is killed, and its output told)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"migplan still ran after {timeout} s; its stdout ended with "
                f"{self.out.read_text()[-2000:]!r}, its stderr with "
                f"{self.err.read_text()[-2000:]!r}"
            ) from None
        return self.proc.returncode, self.out.read_text(), self.err.read_text()


Start = Callable[..., Migplan]


@pytest.fixture
def faults(project: Project) -> Path:
    """The folder where revisions leave their marks (FAULTS)."""
    folder = project.root.parent / "faults"
    folder.mkdir()
    return folder


@pytest.fixture
def start(project: Project, faults: Path) -> Iterator[Start]:
    """Start `migplan ARGS` (with extra environment variables) from the project;
    any still running at the end of the test are killed."""
    started: list[Migplan] = []

    def begin(*args: str, **env: str) -> Migplan:
        full_env = {**os.environ, "MIGPLAN_ACTOR": ACTOR, "FAULTS": str(faults)}
        full_env.update(env)
        full_env.pop("MIGPLAN_CONFIG", None)
        name = project.root.parent / f"migplan{len(started)}"
        out, err = name.with_suffix(".out"), name.with_suffix(".err")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "migplan", *args],
                cwd=project.root,
                env=full_env,
                stdout=stdout,
                stderr=stderr,
            )
        started.append(Migplan(proc, out, err))
        return started[-1]

    yield begin
    for background in started:
        if background.proc.poll() is None:
            background.proc.kill()
            background.proc.wait()


def migplan(
    project: Project, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run migplan to the end, as a user would."""
    return run_process(project.root, *args, env={"MIGPLAN_ACTOR": ACTOR, **env})


def wait_for(
    what: str, condition: Callable[[], object], *running: Migplan, timeout: float = 60
) -> None:
    """Poll `condition`; fail when it takes too long or a `running` process exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        for background in running:
            if background.proc.poll() is not None:
                pytest.fail(
                    f"migplan {background.pid} exited with "
                    f"{background.proc.returncode} before {what}: {background.stderr()}"
                )
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout}s waiting until {what}")
        time.sleep(0.05)


def reached(faults: Path, rev: str, point: str, pid: int | None = None) -> bool:
    """Whether revision `rev` (in process `pid`, else in any) reached `point`."""
    pattern = f"{rev}-{point}-{pid if pid is not None else '*'}"
    return any(faults.glob(pattern))


def wait_until_reached(
    faults: Path, rev: str, point: str, background: Migplan, url: str | None = None
) -> None:
    """Wait until the background migplan is at `point` of `rev`; with `url`, until
    its server-side sleep there runs too."""
    wait_for(
        f"{rev} reaches {point}",
        lambda: reached(faults, rev, point, background.pid),
        background,
    )
    if url is not None and dialect(url) in SLEEPING:
        wait_for(
            f"{rev} sleeps in the server",
            lambda: rows(url, SLEEPING[dialect(url)]),
            background,
        )


def go(faults: Path, rev: str) -> None:
    """Let a revision held at its point go on."""
    (faults / f"{rev}-go").touch()


# evidence, from the server, that a migration sleeps there
SLEEPING = {
    "postgresql": "SELECT pid FROM pg_stat_activity WHERE state = 'active' "
    "AND query LIKE 'SELECT pg_sleep(%%' AND datname = current_database()",
    "mysql": "SELECT id FROM information_schema.processlist "
    "WHERE info LIKE 'SELECT SLEEP(%%' AND db = DATABASE()",
}


def apply_again(project: Project) -> subprocess.CompletedProcess[str]:
    """Run apply; it must find the lock free at once (a migplan that waits says so
    on stderr at its first try, before it waits at all)."""
    result = migplan(project, "apply", "dev", "--lock-timeout", "5")
    assert WAITING not in result.stderr, result.stderr
    return result


# -- what is in the database -------------------------------------------------------


def rows(url: str, sql: str) -> list[tuple[object, ...]] | None:
    """The rows of `sql`, or None while its table does not exist (yet)."""
    try:
        return query(url, sql)
    except Exception:  # the table is created by the process being watched
        return None


def steplog(url: str) -> Counter[str]:
    """How many times each revision ran."""
    return Counter(str(r[0]) for r in query(url, "SELECT revision FROM steplog"))


def steplog_pids(url: str) -> list[tuple[str, int]]:
    """(revision, pid of the process that ran it), in the order they ran."""
    return [
        (str(rev), int(pid))  # type: ignore[call-overload]
        for rev, pid in query(url, "SELECT revision, pid FROM steplog ORDER BY id")
    ]


@dataclass(frozen=True)
class AuditRow:
    id: int
    action: str
    outcome: str
    pid: int
    from_heads: str
    to_heads: str | None
    steps: list[dict[str, object]]
    error: str | None
    dirty_revision: str | None
    dirty_direction: str | None
    started_at: str
    finished_at: str | None

    def done(self) -> list[str]:
        """The revisions whose step is recorded as done."""
        return [str(s["revision"]) for s in self.steps if s["outcome"] == "done"]


def step_rows(url: str) -> dict[int, list[dict[str, object]]]:
    """migplan_audit_steps: each run's steps, one row each, in order."""
    found = rows(
        url, "SELECT run, seq, step FROM migplan_audit_steps ORDER BY run, seq"
    )
    steps: dict[int, list[dict[str, object]]] = {}
    for run_id, _, step in found or []:
        steps.setdefault(int(run_id), []).append(json.loads(str(step)))  # type: ignore[call-overload]
    return steps


def longer(
    listed: list[dict[str, object]], recorded: list[dict[str, object]]
) -> list[dict[str, object]]:
    return recorded if len(recorded) > len(listed) else listed


def audit_rows(url: str) -> list[AuditRow]:
    """The audit trail, oldest first ([] when there is none). A run's steps are
    its row's list once it ended; until then (a run killed half-way) the rows of
    migplan_audit_steps, written one per step inside its transaction, say them."""
    per_step = step_rows(url)
    found = rows(
        url,
        "SELECT id, action, outcome, pid, from_heads, to_heads, steps, error, "
        "dirty_revision, dirty_direction, started_at, finished_at "
        "FROM migplan_audit ORDER BY id",
    )
    return [
        AuditRow(
            int(r[0]),  # type: ignore[call-overload]
            str(r[1]),
            str(r[2]),
            int(r[3]),  # type: ignore[call-overload]
            str(r[4]),
            None if r[5] is None else str(r[5]),
            longer(json.loads(str(r[6])), per_step.get(int(r[0]), [])),  # type: ignore[call-overload]
            None if r[7] is None else str(r[7]),
            None if r[8] is None else str(r[8]),
            None if r[9] is None else str(r[9]),
            str(r[10]),
            None if r[11] is None else str(r[11]),
        )
        for r in found or []
    ]


def outcomes(url: str) -> list[str]:
    return [row.outcome for row in audit_rows(url)]


def planned_checksums(project: Project) -> dict[str, str]:
    """Each pending revision's checksum, as `plan --json` gives it."""
    result = migplan(project, "plan", "dev", "--json")
    assert result.returncode == 0, result.stderr
    return {s["revision"]: s["checksum"] for s in json.loads(result.stdout)["steps"]}


def edit(path: Path) -> None:
    """Change a revision file the way a careless hand does."""
    path.write_text(path.read_text() + "\n# edited after it was applied\n")


def relative(project: Project, path: Path) -> str:
    return path.relative_to(project.root).as_posix()


def one_error_line(stderr: str) -> str:
    """The one line of stderr, which must be a clean `Error:` line."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert not lines[0].startswith("Error: internal error"), stderr
    for noise in ("Traceback", "site-packages", "Warning", "KeyError"):
        assert noise not in stderr, stderr
    return lines[0]


# -- 1. the session's backend terminated: the lock is lost with it --------------------


def pg_backend(url: str, pid: int) -> int | None:
    """The PostgreSQL backend of migplan process `pid`'s session, by its name."""
    name = f"migplan pid {pid} on {HOST}"[:63]
    found = rows(
        url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        f"AND application_name = '{name}'",
    )
    return int(found[0][0]) if found else None  # type: ignore[call-overload]


def terminate(url: str, backend: int) -> None:
    """End one PostgreSQL session as an administrator (or a failover) would."""
    [(done,)] = query(url, f"SELECT pg_terminate_backend({backend}, 10000)")
    assert done is True


def test_terminated_session_fails_the_run_where_it_is(project, pg_url, start, faults):
    fault_project(project, pg_url)
    first = start("apply", "dev", SLEEP_r2="before:30")
    wait_until_reached(faults, "r2", "before", first, pg_url)
    backend = pg_backend(pg_url, first.pid)
    assert backend is not None

    terminate(pg_url, backend)
    code, _, stderr = first.finish()

    assert code == 1, stderr
    message = one_error_line(stderr)
    assert re.fullmatch(
        r"Error: upgrade r2 failed: .+; the database is at r1, the last migration "
        r"that succeeded",
        message,
    ), stderr
    assert version_rows(pg_url) == ["r1"]
    assert steplog(pg_url) == {"r1": 1}
    assert "t_r2" not in tables(pg_url)

    second = apply_again(project)
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""
    assert second.stdout.splitlines()[-1] == "Applied 3 steps; dev is at r4."
    assert steplog(pg_url) == dict.fromkeys(REVS, 1)
    assert version_rows(pg_url) == ["r4"]
    lost, done = audit_rows(pg_url)
    assert lost.pid == first.pid
    assert lost.done() == ["r1"]
    assert lost.outcome in ("failed", "interrupted")
    assert done.outcome == "success"
    assert done.done() == ["r2", "r3", "r4"]


def lost_lock_with_a_second_migrator(
    project: Project, url: str, start: Start, faults: Path
) -> None:
    """The first apply's session is terminated while r2 waits in Python after its
    CREATE TABLE; a second apply takes the free lock and runs r2..r4 while the
    first is still alive; then the first goes on. It must commit nothing more."""
    fault_project(project, url)
    first = start("apply", "dev", HOLD_r2="after_ddl")
    wait_until_reached(faults, "r2", "after_ddl", first)
    backend = pg_backend(url, first.pid)
    assert backend is not None
    terminate(url, backend)

    second = apply_again(project)

    assert second.returncode == 0, second.stderr
    assert second.stderr == ""  # the lock went with the terminated session
    assert second.stdout.splitlines()[-1] == "Applied 3 steps; dev is at r4."
    assert first.proc.poll() is None  # still in r2, unaware
    go(faults, "r2")
    code, _, stderr = first.finish()
    assert code == 1, stderr
    assert one_error_line(stderr).startswith("Error: upgrade r2 failed: "), stderr
    assert version_rows(url) == ["r4"]
    lost, done = audit_rows(url)
    assert lost.pid == first.pid != done.pid
    assert lost.done() == ["r1"]
    assert lost.outcome in ("failed", "interrupted")
    assert done.outcome == "success"
    assert done.done() == ["r2", "r3", "r4"]
    # each revision ran once, in one process: r1 in the first, the rest in the second
    assert steplog_pids(url) == [
        ("r1", first.pid),
        ("r2", done.pid),
        ("r3", done.pid),
        ("r4", done.pid),
    ]


def test_lost_lock_never_lets_two_migrators_run(project, pg_url, start, faults):
    lost_lock_with_a_second_migrator(project, pg_url, start, faults)


@pytest.fixture
def idle_session_timeout(pg_url: str, pg_admin: sa.Engine) -> str:
    """The test database, where every new session gets idle_session_timeout = 1s."""
    name = sa.make_url(pg_url).database
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET idle_session_timeout = 1000')
    return pg_url


def test_idle_session_timeout_does_not_end_a_long_run(
    project, idle_session_timeout, faults
):
    """Three revisions each working 1.5s in Python at the start of their migration,
    before its first statement: the driver has not sent BEGIN yet, so the session is
    idle (not idle in a transaction) while they work."""
    url = idle_session_timeout
    fault_project(project, url, REVS[:3])

    result = migplan(
        project,
        "apply",
        "dev",
        FAULTS=str(faults),
        PYSLEEP_r1="1.5",
        PYSLEEP_r2="1.5",
        PYSLEEP_r3="1.5",
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == "Applied 3 steps; dev is at r3."
    assert steplog(url) == dict.fromkeys(REVS[:3], 1)
    assert outcomes(url) == ["success"]


def test_idle_session_timeout_does_not_end_the_session_while_files_load(
    project, idle_session_timeout, faults
):
    """A revision module that takes 1.5s to import (a heavy import, say): the
    session sits idle, with the lock, between two statements of migplan's own."""
    url = idle_session_timeout
    fault_project(project, url, REVS[:3])

    result = migplan(project, "apply", "dev", IMPORT_SLEEP_r2="1.5")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == "Applied 3 steps; dev is at r3."
    assert steplog(url) == dict.fromkeys(REVS[:3], 1)
    assert outcomes(url) == ["success"]


# -- 2. the audit trail of a run that finished ---------------------------------------


def test_a_finished_run_is_recorded_with_every_step_and_checksum(project, db_url):
    fault_project(project, db_url, REVS[:3])
    checksums = planned_checksums(project)

    result = migplan(project, "apply", "dev")

    assert result.returncode == 0, result.stderr
    [row] = audit_rows(db_url)
    assert (row.action, row.outcome, row.from_heads, row.to_heads) == (
        "apply",
        "success",
        "",
        "r3",
    )
    assert row.error is None
    assert row.dirty_revision is None and row.dirty_direction is None
    assert row.finished_at is not None and row.finished_at >= row.started_at
    assert [
        (s["revision"], s["direction"], s["phase"], s["checksum"], s["outcome"])
        for s in row.steps
    ] == [(rev, "upgrade", "apply", checksums[rev], "done") for rev in REVS[:3]]
    assert all(float(s["seconds"]) >= 0 for s in row.steps)  # type: ignore[arg-type]
    assert len(set(checksums.values())) == 3
    assert all(re.fullmatch("[0-9a-f]{64}", c) for c in checksums.values())


# -- 3. SIGKILL: what committed is recorded, so an edit of it is noticed ---------------


def killed_then_edited(project: Project, url: str, start: Start, faults: Path) -> None:
    fault_project(project, url, REVS[:3], on_modified="refuse")
    checksums = planned_checksums(project)
    background = start("apply", "dev", HOLD_r2="before")
    wait_until_reached(faults, "r2", "before", background)
    os.kill(background.pid, signal.SIGKILL)
    assert background.finish()[0] == -signal.SIGKILL

    [row] = audit_rows(url)
    assert row.outcome == "running"  # nobody could close it
    assert [
        (s["revision"], s["checksum"]) for s in row.steps if s["outcome"] == "done"
    ] == [("r1", checksums["r1"])]
    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}
    path = revision_path(project, "r1")
    edit(path)
    message = (
        f"{relative(project, path)} (revision r1) has changed since it was applied to "
        "this database"
    )

    plan = migplan(project, "plan", "dev")
    assert plan.returncode == 0, plan.stderr
    notes = [line for line in plan.stdout.splitlines() if line.startswith("Note: ")]
    assert [n for n in notes if n.endswith(f"{message}; on_modified: refuse")], (
        plan.stdout
    )

    refused = migplan(project, "apply", "dev", "--lock-timeout", "5")
    assert refused.returncode == 1
    # the killed session's lock ends when the server notices (within a second)
    *waited, refusal = refused.stderr.splitlines()
    assert all(line.startswith(WAITING) for line in waited), refused.stderr
    assert refusal == f"Error: apply refused: {message}; on_modified: refuse"
    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}
    assert "t_r2" not in tables(url)


def test_a_step_committed_before_sigkill_is_recorded(project, db_url, start, faults):
    killed_then_edited(project, db_url, start, faults)


# -- 4, 5. Ctrl-C and SIGTERM half-way through a migration ---------------------------

SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}


def hold_env(rev: str, how: str) -> dict[str, str]:
    """Keep `rev` busy after its CREATE TABLE: in Python, or sleeping in the server."""
    if how == "python":
        return {f"HOLD_{rev}": "after_ddl"}
    return {f"SLEEP_{rev}": "after_ddl:30"}


def interrupt_during_r2(
    url: str, start: Start, faults: Path, name: str, how: str
) -> tuple[Migplan, int, str, str]:
    """Start an apply, stop it with signal `name` while r2 is busy after its
    CREATE TABLE; return the process, its exit code, stdout and stderr."""
    background = start("apply", "dev", **hold_env("r2", how))
    wait_until_reached(
        faults, "r2", "after_ddl", background, url if how == "server" else None
    )
    os.kill(background.pid, SIGNALS[name][0])
    return (background, *background.finish(timeout=30))


def interrupted_transactional(
    project: Project, url: str, start: Start, faults: Path, name: str, how: str
) -> None:
    fault_project(project, url)
    background, code, _, stderr = interrupt_during_r2(url, start, faults, name, how)

    assert code == SIGNALS[name][1], stderr
    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}
    assert "t_r2" not in tables(url)  # the half-made table was rolled back
    [row] = audit_rows(url)
    assert (row.outcome, row.to_heads, row.pid) == ("interrupted", "r1", background.pid)
    assert row.done() == ["r1"]
    assert row.finished_at is not None

    again = apply_again(project)  # the lock was released
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert again.stdout.splitlines()[-1] == "Applied 3 steps; dev is at r4."
    assert steplog(url) == dict.fromkeys(REVS, 1)
    assert version_rows(url) == ["r4"]
    assert outcomes(url) == ["interrupted", "success"]
    assert stderr == (
        f"Error: interrupted by {name} during upgrade r2, which was rolled back; "
        "dev is at r1\n"
    )


TRANSACTIONAL_CASES = [
    ("SIGINT", "postgresql", "python"),
    ("SIGINT", "postgresql", "server"),
    ("SIGTERM", "postgresql", "server"),
    ("SIGTERM", "sqlite", "python"),
]
URL_FIXTURE = {"postgresql": "pg_url", "sqlite": "sqlite_url", "mysql": "mysql_url"}


@pytest.mark.parametrize(("name", "database", "how"), TRANSACTIONAL_CASES)
def test_interrupted_migration_is_rolled_back(
    project, start, faults, request, name, database, how
):
    url = request.getfixturevalue(URL_FIXTURE[database])
    interrupted_transactional(project, url, start, faults, name, how)


def interrupted_mariadb(
    project: Project, url: str, start: Start, faults: Path, name: str, how: str
) -> None:
    fault_project(project, url)
    background, code, _, stderr = interrupt_during_r2(url, start, faults, name, how)

    assert code == SIGNALS[name][1], stderr
    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}
    assert "t_r2" in tables(url)  # CREATE TABLE committed itself
    [row] = audit_rows(url)
    assert (row.outcome, row.dirty_revision, row.dirty_direction) == (
        "interrupted",
        "r2",
        "upgrade",
    )
    assert row.pid == background.pid

    status = migplan(project, "status")
    assert status.returncode == 0, status.stderr
    [dev] = [line for line in status.stdout.splitlines() if line.startswith("dev ")]
    assert dev.endswith("dirty (upgrade r2)"), status.stdout

    refused = migplan(project, "apply", "dev", "--lock-timeout", "5")
    assert refused.returncode == 1
    *waited, refusal = refused.stderr.splitlines()
    assert all(line.startswith(WAITING) for line in waited), refused.stderr
    assert refusal == (
        f"Error: apply refused: the database is dirty: upgrade r2 did not finish "
        f"(interrupted by {name}), since {row.started_at} by {ACTOR}@{HOST} pid "
        f"{background.pid}; fix the schema by hand, then run 'migplan resolve dev "
        "--as applied' or '--as reverted'"
    )
    assert version_rows(url) == ["r1"]
    assert steplog(url) == {"r1": 1}  # r2 did not run again
    assert outcomes(url) == ["interrupted"]
    assert stderr == (
        f"Error: interrupted by {name} during upgrade r2; the database may be left "
        "half-way through upgrade r2 (its DDL is not transactional) and the version "
        "table says r1: fix the schema, then run 'migplan resolve dev --as applied' "
        "or '--as reverted'\n"
    )


MARIADB_CASES = [("SIGINT", "python"), ("SIGINT", "server")]


@pytest.mark.parametrize(("name", "how"), MARIADB_CASES)
def test_interrupted_migration_leaves_mariadb_dirty(
    project, mysql_url, start, faults, name, how
):
    interrupted_mariadb(project, mysql_url, start, faults, name, how)


# -- 6. a migration that calls sys.exit ----------------------------------------------


@pytest.mark.parametrize("point", ["before", "after_ddl"])
def test_sys_exit_in_a_migration_is_a_failed_step(project, db_url, faults, point):
    fault_project(project, db_url, REVS[:3])

    result = migplan(project, "apply", "dev", FAULTS=str(faults), EXIT_r2=point)

    assert result.returncode == 1, result.stderr
    dirty = dialect(db_url) == "mysql" and point == "after_ddl"
    if dirty:
        expected = (
            "Error: upgrade r2 failed: SystemExit: 0; the database may be left "
            "half-way through r2 (its DDL is not transactional) and the version "
            "table says r1: fix the schema, then run 'migplan resolve dev --as "
            "applied' or '--as reverted'\n"
        )
    else:
        expected = (
            "Error: upgrade r2 failed: SystemExit: 0; the database is at r1, the last "
            "migration that succeeded\n"
        )
    assert result.stderr == expected
    assert version_rows(db_url) == ["r1"]
    assert steplog(db_url) == {"r1": 1}
    assert ("t_r2" in tables(db_url)) == dirty
    [row] = audit_rows(db_url)
    assert (row.outcome, row.to_heads) == ("failed", "r1")
    assert row.done() == ["r1"]
    assert row.dirty_revision == ("r2" if dirty else None)
    if not dirty:
        # nothing of it is left: the next apply runs it as if for the first time
        again = migplan(project, "apply", "dev")
        assert again.returncode == 0, again.stderr
        assert steplog(db_url) == dict.fromkeys(REVS[:3], 1)


# -- 7. a password in a URL's query parameters -----------------------------------------


@pytest.fixture
def secret_url(pg_url: str, pg_admin: sa.Engine) -> Iterator[tuple[str, str, str]]:
    """(url, url of a missing database, password): a role with a password owning the
    test database, the password given as a query parameter."""
    name = sa.make_url(pg_url).database
    role = f"migplan_faults_{uuid.uuid4().hex[:8]}"
    secret = f"Secret{uuid.uuid4().hex}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" OWNER TO {role}')
    base = f"postgresql://{role}@127.0.0.1:5432"
    yield (
        f"{base}/{name}?password={secret}",
        f"{base}/{name}_missing?password={secret}",
        secret,
    )
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


def test_a_password_in_a_query_parameter_is_never_shown(project, secret_url):
    url, missing, secret = secret_url
    fault_project(project, url, REVS[:2])
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: {url}
            target: head
          missing:
            url: {missing}
            target: head
        """
    )
    plan_file = project.root / "plan.json"
    commands = [
        ("plan", "dev", "-o", str(plan_file)),
        ("apply", "dev", "--plan", str(plan_file)),
        ("status",),
        ("status", "--json"),
        ("log", "dev", "--json"),
        ("plan", "missing"),
        ("apply", "missing"),
        ("db", "upgrade", "-e", "missing"),
    ]
    results = {args: migplan(project, *args) for args in commands}

    for args, result in results.items():
        assert secret not in result.stdout + result.stderr, (args, result)
    assert {args for args, result in results.items() if result.returncode} == {
        ("plan", "missing"),
        ("apply", "missing"),
        ("db", "upgrade", "-e", "missing"),
    }, results
    assert "does not exist" in results[("plan", "missing")].stderr
    assert version_rows(url) == ["r2"]  # the plan file was applied
    assert secret not in plan_file.read_text()
    audit = query(url, "SELECT * FROM migplan_audit")
    assert audit
    assert secret not in repr(audit)


# -- 8. validate says what apply would refuse -----------------------------------------


def test_validate_and_apply_refuse_a_pending_file_with_a_syntax_error(
    project, sqlite_url
):
    fault_project(project, sqlite_url, REVS[:2])
    assert migplan(project, "apply", "dev").returncode == 0
    path = write_revision(project, "r3", "r2")
    source = path.read_text().replace(
        '    at("after_ddl")\n', '    at("after_ddl") at("again")\n', 1
    )
    path.write_text(source)
    with pytest.raises(SyntaxError) as syntax:
        compile(source, str(path), "exec")
    line = syntax.value.lineno
    name = path.name  # migrations/versions/r3_r3.py, or the file's name alone
    before = (version_rows(sqlite_url), tables(sqlite_url), audit_rows(sqlite_url))

    validate = migplan(project, "validate", "-e", "dev")
    apply = migplan(project, "apply", "dev")

    assert validate.returncode == 1, validate.stdout
    reason = one_error_line(validate.stderr)
    assert re.search(rf"{re.escape(name)}(:{line}\b|.*\bline {line}\b)", reason), reason
    assert apply.returncode == 1, apply.stdout
    refusal = one_error_line(apply.stderr)
    # the same reason, from the file's name on
    assert refusal[refusal.index(name) :] == reason[reason.index(name) :]
    assert (version_rows(sqlite_url), tables(sqlite_url), audit_rows(sqlite_url)) == (
        before
    )
    assert steplog(sqlite_url) == {"r1": 1, "r2": 1}


# -- 9. migplan db beside migplan apply ------------------------------------------------


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(URL_FIXTURE[request.param]))


def db_upgrade_racing_apply(
    project: Project, url: str, start: Start, faults: Path
) -> None:
    """apply holds the lock, held in r1; then `db upgrade` starts. Whichever way
    db upgrade waits (for the lock, or in r1 itself), r1 opens after both started."""
    fault_project(project, url, REVS[:3])
    applying = start("apply", "dev", HOLD_r1="before")
    wait_until_reached(faults, "r1", "before", applying)
    upgrading = start("db", "upgrade", "-e", "dev", HOLD_r1="before")
    # (a db upgrade that took no lock and is blocked in the server shows neither)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        WAITING in upgrading.stderr() or reached(faults, "r1", "before", upgrading.pid)
    ):
        if upgrading.proc.poll() is not None:
            break
        time.sleep(0.05)
    go(faults, "r1")

    results = {"apply": applying.finish(), "db upgrade": upgrading.finish()}

    assert {k: r[0] for k, r in results.items()} == {"apply": 0, "db upgrade": 0}, (
        results
    )
    assert steplog(url) == dict.fromkeys(REVS[:3], 1)
    assert len({pid for _, pid in steplog_pids(url)}) == 1
    assert version_rows(url) == ["r3"]


def test_db_upgrade_racing_apply_runs_every_revision_once(
    project, server_url, start, faults
):
    db_upgrade_racing_apply(project, server_url, start, faults)


def test_db_upgrade_refuses_a_dirty_mariadb_database(project, mysql_url, start, faults):
    fault_project(project, mysql_url, REVS[:3])
    background = start("apply", "dev", HOLD_r2="after_ddl")
    wait_until_reached(faults, "r2", "after_ddl", background)
    os.kill(background.pid, signal.SIGKILL)
    background.finish()
    assert [(r.outcome, r.dirty_revision) for r in audit_rows(mysql_url)] == [
        ("running", "r2")
    ]

    result = migplan(project, "db", "upgrade", "-e", "dev")

    assert result.returncode == 1, result.stderr
    assert "resolve" in one_error_line(result.stderr), result.stderr
    assert version_rows(mysql_url) == ["r1"]
    assert steplog(mysql_url) == {"r1": 1}


def test_db_upgrade_downgrade_and_stamp_are_recorded(project, sqlite_url):
    fault_project(project, sqlite_url, REVS[:3])
    for args in (("upgrade",), ("downgrade",), ("stamp", "r1")):
        result = migplan(project, "db", *args, "-e", "dev")
        assert result.returncode == 0, (args, result.stderr)

    assert version_rows(sqlite_url) == ["r1"]
    audit = audit_rows(sqlite_url)
    assert [(r.action, r.from_heads, r.to_heads, r.outcome) for r in audit] == [
        ("db upgrade", "", "r3", "success"),
        ("db downgrade", "r3", "r2", "success"),
        ("db stamp", "r2", "r1", "success"),
    ]
    assert [(s["revision"], s["direction"], s["outcome"]) for s in audit[0].steps] == [
        (rev, "upgrade", "done") for rev in REVS[:3]
    ]
    assert [(s["revision"], s["direction"], s["outcome"]) for s in audit[1].steps] == [
        ("r3", "downgrade", "done")
    ]


def duplicate_revision(project: Project) -> list[str]:
    """Two files declare r2; return their names."""
    path = write_revision(project, "r2", "r1")
    copy_path = project.versions / "r2_again.py"
    copy_path.write_text(path.read_text())
    return [path.name, copy_path.name]


def dangling_down_revision(project: Project) -> list[str]:
    """r2's down_revision is a revision no file declares; return its file's name."""
    return [write_revision(project, "r2", "r9").name]


@pytest.mark.parametrize("command", [("db", "upgrade", "-e", "dev"), ("plan", "dev")])
@pytest.mark.parametrize("broken", [duplicate_revision, dangling_down_revision])
def test_a_broken_revision_graph_is_one_error_line_naming_the_file(
    project, sqlite_url, command, broken
):
    fault_project(project, sqlite_url, REVS[:1])
    files = broken(project)

    result = migplan(project, *command)

    assert result.returncode == 1, result.stderr
    message = one_error_line(result.stderr)
    assert any(name in message for name in files), (files, message)
    assert version_rows(sqlite_url) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_db_upgrade_with_an_unreadable_versions_folder(project, sqlite_url):
    fault_project(project, sqlite_url, REVS[:2])
    project.versions.chmod(0)
    try:
        result = migplan(project, "db", "upgrade", "-e", "dev")
    finally:
        project.versions.chmod(0o755)

    assert result.returncode == 1, result.stderr
    assert "migrations/versions" in one_error_line(result.stderr)
    assert version_rows(sqlite_url) == []


def test_db_upgrade_with_a_versions_path_that_is_a_file(project, sqlite_url):
    fault_project(project, sqlite_url, REVS[:2])
    for path in project.versions.iterdir():
        path.unlink()
    project.versions.rmdir()
    project.versions.write_text("not a folder\n")

    result = migplan(project, "db", "upgrade", "-e", "dev")

    assert result.returncode == 1, result.stderr
    assert "migrations/versions" in one_error_line(result.stderr)
    assert version_rows(sqlite_url) == []


# -- 10. a saved plan edited by hand ---------------------------------------------------


def _drop_middle(plan: dict) -> None:
    del plan["steps"][1]


def _drop_last(plan: dict) -> None:
    del plan["steps"][-1]


def _swap(plan: dict) -> None:
    steps = plan["steps"]
    steps[0], steps[1] = steps[1], steps[0]


def _repeat(plan: dict) -> None:
    plan["steps"].insert(1, copy.deepcopy(plan["steps"][0]))


def _direction(plan: dict) -> None:
    plan["steps"][1]["direction"] = "downgrade"


def _current_base(plan: dict) -> None:
    plan["current"] = []


def _current_later(plan: dict) -> None:
    plan["current"] = ["r2"]


EDITS = [
    _drop_middle,
    _drop_last,
    _swap,
    _repeat,
    _direction,
    _current_base,
    _current_later,
]


@dataclass(frozen=True)
class SavedPlan:
    project: Project
    url: str
    plan_file: Path
    pristine: dict[Path, bytes]

    def restore(self) -> None:
        """Put the database and the plan file back as they were saved."""
        for path, content in self.pristine.items():
            path.write_bytes(content)


@pytest.fixture(scope="module")
def saved_plan_once(tmp_path_factory: pytest.TempPathFactory) -> SavedPlan:
    """A SQLite database at r1 (by environment `first`) and dev's plan r2, r3, r4
    saved; made once per worker, each test gets it back as it was."""
    root = tmp_path_factory.mktemp("saved-plan") / "proj"
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    template = Path(__file__).parent.parent / "migplan/templates/migplan"
    (root / "migrations" / "script.py.mako").write_text(
        (template / "script.py.mako").read_text()
    )
    project = Project(root)
    database = root.parent / "test.db"
    url = f"sqlite:///{database}"
    fault_project(project, url)
    project.write_config(
        f"""
        default_env: dev
        environments:
          first:
            url: {url}
            target: r1
          dev:
            url: {url}
            target: head
        """
    )
    assert migplan(project, "apply", "first").returncode == 0
    plan_file = root / "plan.json"
    saved = migplan(project, "plan", "dev", "-o", str(plan_file))
    assert saved.returncode == 0, saved.stderr
    steps = [s["revision"] for s in json.loads(plan_file.read_text())["steps"]]
    assert steps == ["r2", "r3", "r4"]
    files = (database, plan_file)
    return SavedPlan(project, url, plan_file, {f: f.read_bytes() for f in files})


@pytest.fixture
def saved_plan(saved_plan_once: SavedPlan) -> SavedPlan:
    saved_plan_once.restore()
    return saved_plan_once


def resign(plan: dict) -> None:
    """Give an edited plan the digest of its new content, as a tool rewriting the
    file might: the plan itself must still be checked."""
    from migplan.service import saved

    if "digest" in plan:
        plan["digest"] = saved._digest(plan)


@pytest.mark.parametrize("resigned", [False, True], ids=["as-edited", "re-digested"])
@pytest.mark.parametrize("change", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_a_saved_plan_edited_by_hand_is_refused(saved_plan, change, resigned):
    project, url, plan_file = saved_plan.project, saved_plan.url, saved_plan.plan_file
    plan = json.loads(plan_file.read_text())
    change(plan)
    if resigned:
        resign(plan)
    plan_file.write_text(json.dumps(plan, indent=2))
    before = (version_rows(url), tables(url), audit_rows(url))

    result = migplan(project, "apply", "dev", "--plan", str(plan_file))

    assert result.returncode == 1, (result.stdout, result.stderr)
    one_error_line(result.stderr)
    assert (version_rows(url), tables(url), audit_rows(url)) == before
    assert steplog(url) == {"r1": 1}


def test_a_saved_plan_as_written_applies(saved_plan):
    project, url, plan_file = saved_plan.project, saved_plan.url, saved_plan.plan_file

    result = migplan(project, "apply", "dev", "--plan", str(plan_file))

    assert result.returncode == 0, result.stderr
    assert steplog(url) == dict.fromkeys(REVS, 1)
    assert version_rows(url) == ["r4"]


# -- 11. cache files of the right version and the wrong shape --------------------------

JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def kind(value: object) -> type:
    return type(value)  # bool, int, float, str, list, dict or NoneType


def spoil(data: st.DataObject, value: object, depth: int = 0) -> object:
    """The cached value with some of its parts, at any depth, replaced by values
    of another type (a number for a string, a list for a dict, null...)."""
    if depth and data.draw(st.integers(0, 5), label="replace") == 0:
        return data.draw(JUNK.filter(lambda junk: kind(junk) is not kind(value)))
    if isinstance(value, dict):
        return {k: spoil(data, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [spoil(data, v, depth + 1) for v in value]
    return value


@pytest.fixture
def cached_project(project, sqlite_url, tmp_path, monkeypatch):
    """A project planned once, so that its cache is full; its cache files' text."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MIGPLAN_CACHE_DIR", str(cache))
    fault_project(project, sqlite_url, REVS[:3])
    applied = run(project.root, "apply", "dev")
    assert applied.exit_code == 0, applied.stderr
    write_revision(project, "r4", "r3")
    first = run(project.root, "plan", "dev")
    assert first.exit_code == 0, first.stderr
    files = {path: path.read_text() for path in sorted(cache.glob("*.json"))}
    kinds = {path.name.rsplit("-", 1)[0] for path in files}
    assert {"graph", "revision-files"} <= kinds, kinds
    return project, first.stdout, files


def plan_with(project: Project, files: dict[Path, str], value_of) -> None:
    for path, text in files.items():
        entry = json.loads(text)
        entry["value"] = value_of(path, entry["value"])
        path.write_text(json.dumps(entry))


@pytest.mark.parametrize(
    "shape",
    [
        lambda value: [],
        lambda value: {key: [] for key in value},
        lambda value: {key: 1 for key in value},
        lambda value: {key: None for key in value},
        lambda value: {key: "x" for key in value},
        lambda value: {key: {"x": None} for key in value},
        lambda value: {key: [None, 1, "x"] for key in value},
    ],
    ids=["list", "lists", "numbers", "nulls", "strings", "dicts", "mixed"],
)
def test_a_cache_entry_of_the_wrong_shape_is_ignored(cached_project, shape):
    project, expected, files = cached_project
    plan_with(project, files, lambda path, value: shape(value))

    result = run(project.root, "plan", "dev")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
    assert result.stderr == ""


@settings(
    max_examples=40,
    deadline=None,
    # each example runs `migplan plan`: finding a failure matters, shrinking it
    # takes minutes (the spoilt files are in the report)
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_cache_spoilt_anywhere_is_ignored(cached_project, data):
    project, expected, files = cached_project
    plan_with(project, files, lambda path, value: spoil(data, value))
    for path in files:
        note(f"{path.name}: {path.read_text()}")

    result = run(project.root, "plan", "dev")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


# -- soak: the same, 20 times each (pytest -m soak) ------------------------------------


@pytest.mark.soak
@pytest.mark.parametrize("attempt", range(20))
def test_lost_lock_soak(project, pg_url, start, faults, attempt):
    lost_lock_with_a_second_migrator(project, pg_url, start, faults)


SOAK_SIGNALS = [
    ("SIGINT", "postgresql", "server"),
    ("SIGTERM", "sqlite", "python"),
    ("SIGTERM", "mysql", "python"),
]


@pytest.mark.soak
@pytest.mark.parametrize("attempt", range(20))
@pytest.mark.parametrize(("name", "database", "how"), SOAK_SIGNALS)
def test_interrupted_soak(
    project, start, faults, request, name, database, how, attempt
):
    url = request.getfixturevalue(URL_FIXTURE[database])
    if database == "mysql":
        interrupted_mariadb(project, url, start, faults, name, how)
    else:
        interrupted_transactional(project, url, start, faults, name, how)


@pytest.mark.soak
@pytest.mark.parametrize("attempt", range(20))
def test_killed_then_edited_soak(project, server_url, start, faults, attempt):
    killed_then_edited(project, server_url, start, faults)


@pytest.mark.soak
@pytest.mark.parametrize("attempt", range(20))
def test_db_upgrade_racing_apply_soak(project, server_url, start, faults, attempt):
    db_upgrade_racing_apply(project, server_url, start, faults)
