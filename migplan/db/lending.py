"""While env.py runs under migplan, an engine it made for a database migplan was
not asked to migrate lends migplan's session connection instead of connecting.

env.py files that build their engine from their own URL (`os.environ
["DATABASE_URL"]`, a settings object, the app's engine module) would connect to
the app's own database - perhaps another environment's - before `configure`
swaps in migplan's connection. With the lending in place they never do: the
migrations run where migplan says, and the app's own database is never opened.

The databases that are not lent for: the environment's own (env.py's engine for
migplan's URL is a plain second connection, as ever), and, for a multi-database
env.py, the bind URLs the app is configured with and the databases alembic.ini
names in sections of their own.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

Key = tuple[str, str | None, int | None, str | None]


def key(url: URL) -> Key:
    """Which database a URL reaches, whatever its driver or password."""
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        database = os.path.realpath(database)
    return (url.get_backend_name(), url.host, url.port, database)


class Borrowed:
    """The session's connection, as env.py sees it: closing it, leaving its
    `with` block, beginning and committing a transaction on it are migplan's
    business, and do nothing here (migplan commits each migration itself)."""

    def __init__(self, connection: Connection) -> None:
        self.lent = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lent, name)

    def __enter__(self) -> Borrowed:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None

    def begin(self) -> _NoTransaction:
        return _NoTransaction()


class _NoTransaction:
    is_active = False

    def __enter__(self) -> _NoTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None

    def close(self) -> None:
        return None


def unwrap(connection: Any) -> Any:
    """The real connection behind a Borrowed one (else `connection` itself)."""
    return connection.lent if isinstance(connection, Borrowed) else connection


def known_databases(environment: URL, config: Any) -> set[Key]:
    """The databases env.py may connect to itself: the environment's, the app's
    binds (already migplan's `binds:` where it names them), alembic.ini's
    database sections (Alembic's multidb template)."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    urls: list[Any] = [environment]
    flask = sys.modules.get("flask")
    if flask is not None and flask.has_app_context():
        binds = flask.current_app.config.get("SQLALCHEMY_BINDS") or {}
        for value in binds.values():
            urls.append(value.get("url") if isinstance(value, dict) else value)
    parser = getattr(config, "file_config", None)
    if parser is not None:
        for section in parser.sections():
            if parser.has_option(section, "sqlalchemy.url"):
                urls.append(parser.get(section, "sqlalchemy.url", raw=True))
    found = set()
    for url in urls:
        try:
            found.add(key(make_url(url) if isinstance(url, str) else url))
        except (ArgumentError, TypeError, ValueError, AttributeError):
            continue
    return found


_lock = threading.Lock()


@contextmanager
def lend(connection: Connection, known: Iterable[Key]) -> Iterator[None]:
    """While the block runs, `Engine.connect()` of an engine for a database not
    in `known` returns `connection`, borrowed, in the thread that opened it
    (migplan's other threads connect as they always do)."""
    from sqlalchemy.engine import Engine

    allowed = set(known)
    thread = threading.get_ident()
    original = Engine.connect

    def connect(engine: Engine) -> Any:
        if threading.get_ident() == thread and key(engine.url) not in allowed:
            return Borrowed(connection)
        return original(engine)

    with _lock:
        Engine.connect = connect  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        with _lock:
            Engine.connect = original  # type: ignore[method-assign]
