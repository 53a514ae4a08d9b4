"""One migrator at a time: a database-level lock held for a whole run.

PostgreSQL: a session advisory lock; MySQL/MariaDB: GET_LOCK; both taken on the
very connection that runs the migrations (see db.session), so that whatever ends
that session (a terminated backend, a server timeout, a network drop) ends the
lock and the ability to commit together. SQLite: an OS lock on a file beside the
database. Each dies with the process: a killed migplan never leaves a stale lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from migplan.core.environment import Tables
from migplan.core.url import DatabaseURL
from migplan.db import database
from migplan.errors import DatabaseError
from migplan.errors import LockTimeout
from migplan.errors import describe

WaitFn = Callable[[str], None]
_POLL = 0.25
_NAMESPACE = 0x6D706C6E  # "mpln": first key of migplan's advisory locks


def holder_name() -> str:
    """Who this process is, as other migplan processes will be told."""
    return f"migplan pid {os.getpid()} on {socket.gethostname()}"


def lock_key(version_table: str, schema: str | None) -> int:
    """Return a stable 31-bit key for the lock of one version table."""
    digest = hashlib.sha256(f"{schema or ''}.{version_table}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _key(url: DatabaseURL, tables: Tables) -> int:
    # one lock per version table: per schema, for a fleet of tenant schemas
    return lock_key(tables.version_table, tables.schema or url.schema)


@contextmanager
def hold(
    connection: sa.Connection,
    url: DatabaseURL,
    tables: Tables,
    *,
    timeout: float = 300.0,
    on_wait: WaitFn | None = None,
) -> Iterator[None]:
    """Hold the database's migration lock, on `connection` where the database has
    session locks; wait up to `timeout` seconds for it."""
    key = _key(url, tables)
    if url.dialect == "sqlite":
        lock = _sqlite_lock(url, timeout, on_wait)
    elif url.dialect == "postgresql":
        lock = _postgresql_lock(connection, url, key, timeout, on_wait)
    elif url.dialect == "mysql":
        lock = _mysql_lock(connection, url, key, timeout, on_wait)
    else:
        raise DatabaseError(f"migplan cannot lock a {url.dialect} database")
    with lock:
        yield


def _wait_for(
    url: DatabaseURL,
    timeout: float,
    on_wait: WaitFn | None,
    attempt: Callable[[float], bool],
    holder: Callable[[], str | None],
) -> None:
    """Take a lock with `attempt(wait)` (try, waiting up to `wait` seconds), again
    and again until `timeout`; say once who holds it, and name them on giving up.

    The first attempt does not wait, so that the holder is named at once."""
    deadline = time.monotonic() + timeout
    told = False
    unseen = 0
    wait = 0.0
    while not attempt(wait):
        found = holder()
        if found is None and unseen == 0:
            # no holder to be seen: it let go between the attempt and the look
            # (a finished or killed migrator): try again at once before saying so
            unseen, wait = 1, 0.0
            continue
        who = found or "another session"
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{url}: another migration holds the lock ({who}); gave up after "
                f"{timeout:g}s (raise --lock-timeout to wait longer)"
            )
        if on_wait and not told:
            on_wait(f"waiting for the migration lock, held by {who}")
            told = True
        wait = max(0.0, min(1.0, deadline - time.monotonic()))


def _pause(wait: float) -> None:
    """Between two attempts of a lock that cannot wait by itself."""
    if wait:
        time.sleep(min(wait, _POLL))


@contextmanager
def _postgresql_lock(
    connection: sa.Connection,
    url: DatabaseURL,
    key: int,
    timeout: float,
    on_wait: WaitFn | None,
) -> Iterator[None]:
    # who holds the lock, as pg_stat_activity tells other migplan processes
    connection.exec_driver_sql(
        "SELECT set_config('application_name', %(name)s, false)",
        {"name": holder_name()[:63]},
    )
    connection.commit()

    def attempt(wait: float) -> bool:
        _pause(wait)
        got = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:ns, :key)"),
            {"ns": _NAMESPACE, "key": key},
        ).scalar()
        connection.commit()
        return bool(got)

    def holder() -> str | None:
        found = _postgresql_find(connection, key)
        connection.commit()
        return found

    _wait_for(url, timeout, on_wait, attempt, holder)
    try:
        yield
    finally:
        _release(
            connection,
            "SELECT pg_advisory_unlock(:ns, :key)",
            {"ns": _NAMESPACE, "key": key},
        )


def _postgresql_find(connection: sa.Connection, key: int) -> str | None:
    row = connection.execute(
        sa.text(
            # state_change, not backend_start: the lock's session is idle from the
            # moment it took the lock, but it may have been waiting long before that
            "SELECT a.application_name, a.client_addr, a.state_change, a.pid "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :ns "
            "AND l.objid = :key AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"ns": _NAMESPACE, "key": key},
    ).first()
    if row is None:
        return None
    name, addr, since, pid = row
    who = name or f"backend pid {pid}"
    where = f" from {addr}" if addr and name and "on " not in name else ""
    # a role that may not see the holder's session gets no time
    return f"{who}{where}" + (f", since {_when(since)}" if since else "")


@contextmanager
def _mysql_lock(
    connection: sa.Connection,
    url: DatabaseURL,
    key: int,
    timeout: float,
    on_wait: WaitFn | None,
) -> Iterator[None]:
    database_name = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
    name = _mysql_name(key, database_name)

    def attempt(wait: float) -> bool:
        # later tries wait inside GET_LOCK
        got = connection.execute(
            sa.text("SELECT GET_LOCK(:name, :wait)"),
            {"name": name, "wait": wait},
        ).scalar()
        connection.commit()
        return bool(got == 1)

    def holder() -> str | None:
        found = _mysql_find(connection, name)
        connection.commit()
        return found

    _wait_for(url, timeout, on_wait, attempt, holder)
    try:
        yield
    finally:
        _release(connection, "SELECT RELEASE_LOCK(:name)", {"name": name})


def _mysql_name(key: int, database_name: str) -> str:
    # GET_LOCK names are server-wide: qualify by database, stay within 64
    return f"migplan:{key:08x}:{database_name}"[:64]


def _mysql_find(connection: sa.Connection, name: str) -> str | None:
    row = connection.execute(
        sa.text(
            "SELECT p.id, p.host, p.time FROM information_schema.processlist p "
            "WHERE p.id = IS_USED_LOCK(:name)"
        ),
        {"name": name},
    ).first()
    if row is None:
        return None
    ident, host, seconds = row
    return f"connection {ident} from {host}, for {seconds}s"


@contextmanager
def _lock_connection(engine: sa.Engine, url: DatabaseURL) -> Iterator[sa.Connection]:
    try:
        connection = engine.connect()
    except sa_exc.SQLAlchemyError as err:
        raise DatabaseError(f"{url}: cannot connect: {describe(err)}") from err
    with connection:
        yield connection


def _release(connection: sa.Connection, sql: str, params: dict[str, object]) -> None:
    try:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(sa.text(sql), params)
        connection.commit()
    except sa_exc.SQLAlchemyError:
        pass  # the connection closes next, which releases the lock anyway


@contextmanager
def _sqlite_lock(
    url: DatabaseURL, timeout: float, on_wait: WaitFn | None
) -> Iterator[None]:
    database_path = url.sqlite_file
    if database_path is None:
        yield  # a private database: nobody else can migrate it
        return
    import fcntl

    path = Path(database_path + ".migplan-lock")
    try:
        handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
    except OSError as err:
        raise DatabaseError(f"cannot open lock file {path}: {err}") from err
    try:

        def attempt(wait: float) -> bool:
            _pause(wait)
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        def holder() -> str:
            handle.seek(0)
            return handle.read().strip() or "another process"

        _wait_for(url, timeout, on_wait, attempt, holder)
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"{holder_name()}, since {_when(dt.datetime.now(dt.timezone.utc))}\n"
        )
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _when(moment: object) -> str:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(moment)


def holder(url: DatabaseURL, tables: Tables) -> str | None:
    """Who holds the database's migration lock now (None: nobody), without taking it."""
    dialect = url.dialect
    key = _key(url, tables)
    if dialect == "sqlite":
        return _sqlite_find(url)
    if dialect not in ("postgresql", "mysql"):
        return None
    engine = database.shared_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with _lock_connection(engine, url) as connection:
        if dialect == "postgresql":
            return _postgresql_find(connection, key)
        name = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
        return _mysql_find(connection, _mysql_name(key, str(name)))


def _sqlite_find(url: DatabaseURL) -> str | None:
    path = url.sqlite_file
    if not path or not os.path.exists(path + ".migplan-lock"):
        return None
    import fcntl

    with open(path + ".migplan-lock") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
