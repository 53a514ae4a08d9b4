"""Migrations that never stall production traffic: each one's lock waits and
statements bounded by the environment's `ddl:` policy, the sessions that block it
named, and what it changed counted, so that a migration that timed out on a lock
is retried only when it changed nothing.

PostgreSQL: `SET LOCAL lock_timeout` and `statement_timeout` inside each
migration's own transaction (no other session is touched). MariaDB/MySQL: the
session's `lock_wait_timeout` (metadata locks) and `innodb_lock_wait_timeout`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from migplan.db import database

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migplan.core.environment import DdlPolicy
    from migplan.db.session import Session


@dataclass(frozen=True)
class Blocker:
    """A session holding a lock a migration waits for."""

    pid: int
    query: str
    seconds: int
    relation: str

    def __str__(self) -> str:
        query = f"`{self.query}`, " if self.query else ""
        return f"pid {self.pid} ({query}{self.seconds} s old)"


_PG_BLOCKERS = """
SELECT COALESCE(w.relation::regclass::text, w.locktype), a.pid,
       left(regexp_replace(COALESCE(a.query, ''), '\\s+', ' ', 'g'), 120),
       COALESCE(extract(epoch FROM now() - COALESCE(a.xact_start, a.query_start)),
                0)::int
FROM pg_locks w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
JOIN pg_stat_activity a ON a.pid = b.pid
WHERE w.pid = %(pid)s AND NOT w.granted
ORDER BY 4 DESC
"""

_MYSQL_BLOCKERS = """
SELECT t.trx_mysql_thread_id, COALESCE(t.trx_query, ''),
       TIMESTAMPDIFF(SECOND, t.trx_started, NOW())
FROM information_schema.innodb_trx t
WHERE t.trx_mysql_thread_id <> %(pid)s
ORDER BY t.trx_started
"""


_PG_HELD = """
SELECT DISTINCT l.relation::regclass::text, l.mode
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND c.relkind IN ('r', 'p', 'm', 'v', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2
"""


class LockWatch:
    """The table locks a transaction holds (tables and views, not the catalogs'
    nor indexes), each (relation, mode) reported once:
    called after each step of a rehearsal (locks accumulate in its one
    transaction, so a step's are the new ones). PostgreSQL only (`pg_locks`)."""

    def __init__(self, dialect: str) -> None:
        self._dialect = dialect
        self._seen: set[tuple[str, str]] = set()

    def __call__(self, connection: Connection) -> tuple[tuple[str, str], ...]:
        if self._dialect != "postgresql":
            return ()
        rows = connection.exec_driver_sql(_PG_HELD).all()
        found = [
            (str(r), str(m)) for r, m in rows if (str(r), str(m)) not in self._seen
        ]
        self._seen.update(found)
        return tuple(found)


class DdlGuard:
    """Applies a `ddl:` policy to the migrations run in one session."""

    def __init__(self, session: Session, policy: DdlPolicy) -> None:
        self.session = session
        self.policy = policy
        self.dialect = session.url.dialect
        self.changed = 0
        """Statements of the running migration that completed."""
        self.committed = 0
        """...of them outside a transaction (autocommit: not rolled back)."""
        self.blockers: tuple[Blocker, ...] = ()
        """Who blocked the running migration's statement, when it waited."""
        self._active = False
        self._due: float | None = None
        """When the running statement has waited long enough to ask who blocks it."""
        self._wake = threading.Condition()
        self._watcher: threading.Thread | None = None
        self._closed = False
        self._sleeping_until: float | None = None
        """When the watcher wakes by itself (None: it waits to be woken)."""
        self._pid = 0
        self._set_local = _set_local(policy)
        self._listen()

    def _listen(self) -> None:
        from sqlalchemy import event

        engine = self.session.engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def close(self) -> None:
        """Stop watching the session's statements."""
        from sqlalchemy import event

        with self._wake:
            self._closed = True
            self._due = None
            self._wake.notify()
        engine = self.session.engine
        event.remove(engine, "before_cursor_execute", self._before)
        event.remove(engine, "after_cursor_execute", self._after)

    def prepare(self) -> None:
        """Set the session's own timeouts (MariaDB/MySQL: they are per session)."""
        connection = self.session.connection
        if self.dialect == "postgresql":
            self._pid = int(
                connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0
            )
        elif self.dialect == "mysql":
            self._pid = int(
                connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar() or 0
            )
            if self.policy.lock_timeout is not None:
                wait = max(1, round(self.policy.lock_timeout))
                connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {wait}")
                connection.exec_driver_sql(
                    f"SET SESSION innodb_lock_wait_timeout = {wait}"
                )
            if self.policy.statement_timeout is not None:
                # MariaDB's (seconds; 0: no limit)
                connection.exec_driver_sql(
                    "SET SESSION max_statement_time = "
                    f"{float(self.policy.statement_timeout)}"
                )
        connection.commit()

    def migration_started(self, connection: Connection) -> None:
        """A migration begins, in its transaction on `connection`."""
        if self.dialect == "postgresql" and self._set_local:
            # SET LOCAL, for this migration's transaction, in one round trip
            connection.exec_driver_sql(self._set_local).close()
        self.changed = self.committed = 0
        self.blockers = ()
        self._active = True

    def migration_ended(self) -> None:
        """The running migration is over, however it ended."""
        self._active = False
        self._cancel()

    @property
    def safe_to_retry(self) -> bool:
        """Whether the running migration can run again from the start: nothing it
        did is left (on MariaDB: it changed nothing; elsewhere: it committed
        nothing of its own, as an autocommit block would)."""
        if self.dialect == "mysql":
            return self.changed == 0
        return self.committed == 0

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self._active or self.policy.lock_timeout is None or not self._pid:
            return
        # a statement still waiting past half the lock timeout: ask who blocks it
        # (one watcher for the session: no thread started per statement)
        with self._wake:
            self._due = time.monotonic() + max(0.05, self.policy.lock_timeout * 0.5)
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="migplan-lock-watch", daemon=True
                )
                self._watcher.start()
            elif self._sleeping_until is None:
                # a watcher asleep until a time wakes by itself, before this
                # later due time, and sleeps on: a statement wakes no thread
                self._wake.notify()

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self._active:
            return
        self._cancel()
        self.changed += 1
        if (
            not conn.in_transaction()
            or conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        ):
            self.committed += 1

    def _cancel(self) -> None:
        # the watcher, woken at the old time, finds nothing due
        with self._wake:
            self._due = None

    def _watch(self) -> None:
        """Sleep until a statement has waited long enough, then ask who blocks it."""
        with self._wake:
            while not self._closed:
                if self._due is None:
                    self._sleeping_until = None
                    self._wake.wait()
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._sleeping_until = self._due
                    self._wake.wait(left)
                    continue
                self._due = None
                self._wake.release()
                try:
                    self._snapshot()
                finally:
                    self._wake.acquire()

    def _snapshot(self) -> None:
        """Who blocks the waiting statement, asked on a connection of its own."""
        try:
            with database.connect(self.session.url) as other:
                if self.dialect == "postgresql":
                    rows = other.exec_driver_sql(_PG_BLOCKERS, {"pid": self._pid}).all()
                    found = tuple(
                        Blocker(int(pid), str(query), int(age), str(relation))
                        for relation, pid, query, age in rows
                    )
                else:
                    rows = other.exec_driver_sql(
                        _MYSQL_BLOCKERS, {"pid": self._pid}
                    ).all()
                    found = tuple(
                        Blocker(int(pid), str(query), int(age or 0), "")
                        for pid, query, age in rows
                    )
        except Exception:  # noqa: BLE001 - a report only: the migration decides
            return
        if found:
            self.blockers = found


def _set_local(policy: DdlPolicy) -> str:
    """The statement that sets a migration's lock and statement timeouts for its
    own transaction (PostgreSQL), or "" when the policy sets neither."""
    settings = []
    if policy.lock_timeout is not None:
        settings.append(("lock_timeout", int(policy.lock_timeout * 1000)))
    if policy.statement_timeout is not None:
        settings.append(("statement_timeout", int(policy.statement_timeout * 1000)))
    if not settings:
        return ""
    calls = (f"set_config('{name}', '{ms}ms', true)" for name, ms in settings)
    return "SELECT " + ", ".join(calls)


def is_lock_timeout(err: BaseException) -> bool:
    """Whether a database error is a lock wait that timed out (PostgreSQL's
    lock_timeout, MariaDB/MySQL's lock wait timeouts)."""
    orig = getattr(err, "orig", None) or err
    if getattr(orig, "sqlstate", None) == "55P03":  # lock_not_available
        return True
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and args[0] == 1205  # ER_LOCK_WAIT_TIMEOUT
