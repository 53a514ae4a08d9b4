"""A database URL, parsed once where migplan.yaml is read.

`DatabaseURL.parse` reads a URL the way SQLAlchemy's `make_url` does (the same
pattern, the same unquoting), without importing SQLAlchemy, and keeps what the rest
of migplan asks of it: the dialect, a SQLite file, a PostgreSQL search_path schema,
and a form to show with every secret hidden. Parsing registers the secrets (the
password, and query parameters such as ``password=`` or ``sslpassword=``) with
`errors.mask`, so that no message can print them, whoever writes it.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from dataclasses import field

from migplan.errors import ConfigError
from migplan.errors import register_secret

# SQLAlchemy's own pattern (sqlalchemy/engine/url.py `_parse_url`): the same URL
# must mean the same thing to migplan and to the engine that connects with it
_PATTERN = re.compile(
    r"""
    (?P<name>[\w+]+)://
    (?:
        (?P<username>[^:/]*)
        (?::(?P<password>[^@]*))?
    @)?
    (?:
        (?:
            \[(?P<ipv6host>[^/?]+)\] |
            (?P<ipv4host>[^/:?]+)
        )?
        (?::(?P<port>[^/?]*))?
    )?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.X,
)

_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|credential", re.I)
"""Query parameters that carry a secret: password, passwd, pwd, sslpassword, ..."""

_SEARCH_PATH = re.compile(r"search_path\s*=\s*([^\s,]+)")

TRANSACTIONAL_DDL = frozenset({"postgresql", "sqlite", "mssql"})
"""Dialects whose DDL migplan runs inside one transaction per migration."""


@dataclass(frozen=True)
class DatabaseURL:
    """One database URL: what to connect with, and what may be shown of it.

    `str()` and `repr()` give the display form; only `text` has the secrets.
    """

    text: str = field(repr=False)
    """The URL to connect with, secrets included: never print it."""
    dialect: str
    """The backend: sqlite, postgresql, mysql (for MariaDB too), mssql, ..."""
    display: str
    """The URL with its password and secret parameters shown as ``***``."""
    sqlite_path: str | None = None
    """A SQLite URL's database: a path, ``""`` or ``:memory:`` (None: not SQLite)."""
    schema: str | None = None
    """The schema a PostgreSQL ``options=-csearch_path=...`` selects, if any."""

    @classmethod
    def parse(cls, text: str) -> DatabaseURL:
        """Read a URL; refuse one SQLAlchemy could not read, without echoing it."""
        match = _PATTERN.match(text)
        if match is None or match.end() != len(text):
            # never echo it: a password in a malformed URL is not recognisable
            raise ConfigError("not a valid database URL")
        name = match.group("name")
        backend = name.partition("+")[0].lower()
        dialect = {"mariadb": "mysql", "postgres": "postgresql"}.get(backend, backend)
        query = tuple(
            urllib.parse.parse_qsl(match.group("query") or "", keep_blank_values=True)
        )
        hidden: list[tuple[int, int]] = []  # spans of `text` shown as ***
        password = match.group("password")
        if password is not None:
            hidden.append(match.span("password"))
            register_secret(password)
            register_secret(urllib.parse.unquote(password))
        if match.group("query"):
            hidden += _secret_spans(text, match.start("query"))
            for key, value in query:
                if _SECRET_PARAMETER.search(key):
                    register_secret(value)
        display = text
        for start, end in sorted(hidden, reverse=True):
            display = display[:start] + "***" + display[end:]
        database = match.group("database")
        sqlite_path = None
        if dialect == "sqlite":
            sqlite_path = urllib.parse.unquote(database or "")
        schema = None
        for key, value in query:
            found = _SEARCH_PATH.search(value) if key == "options" else None
            if found:
                schema = found.group(1)
        return cls(text, dialect, display, sqlite_path, schema)

    def __str__(self) -> str:
        return self.display

    @property
    def sqlite_file(self) -> str | None:
        """The file of a SQLite database on disk; None in memory or for a server."""
        path = self.sqlite_path
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return path

    @property
    def is_private(self) -> bool:
        """Whether no other process can reach the database (SQLite in memory)."""
        return self.sqlite_path is not None and self.sqlite_file is None

    @property
    def transactional_ddl(self) -> bool:
        """Whether migplan runs each migration's DDL in one transaction here."""
        return self.dialect in TRANSACTIONAL_DDL

    def with_search_path(self, schema: str) -> DatabaseURL:
        """The URL of one tenant's schema: PostgreSQL's search_path set to it, so
        that its version table and every table a migration creates live there."""
        separator = "&" if "?" in self.text else "?"
        # quoted, as the schema is created: PostgreSQL folds a bare name to lower
        # case, and a tenant `Acme` would migrate into `acme` (or find no schema)
        quoted = '"' + schema.replace('"', '""') + '"'
        option = urllib.parse.quote(f"-csearch_path={quoted}", safe="")
        return DatabaseURL.parse(f"{self.text}{separator}options={option}")


def _secret_spans(text: str, start: int) -> list[tuple[int, int]]:
    """The spans of secret query parameters' values in `text[start:]`."""
    spans = []
    position = start
    for pair in text[start:].split("&"):
        key, equals, _ = pair.partition("=")
        if equals and _SECRET_PARAMETER.search(urllib.parse.unquote_plus(key)):
            value_start = position + len(key) + 1
            spans.append((value_start, position + len(pair)))
        position += len(pair) + 1
    return spans
