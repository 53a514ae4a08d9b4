"""Exceptions raised by migplan, and the registry of secrets kept out of output."""

from __future__ import annotations

import re
import threading
import urllib.parse

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember a secret (a URL password) so that `mask` removes it from any text."""
    if not secret or len(secret) < 2:
        return
    with _secrets_lock:
        _secrets.add(secret)
        _secrets.add(urllib.parse.quote(secret, safe=""))
        _secrets.add(urllib.parse.quote_plus(secret))


def mask(text: str) -> str:
    """Return `text` with every registered secret replaced by ``***``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    # a URL that was never registered (typed on the command line, say)
    return _URL_PASSWORD.sub(r"\1***\3", text)


_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)", re.I)


class MigplanError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits 1."""

    exit_code = 1

    def __str__(self) -> str:
        return mask(" ".join(super().__str__().split("\n")))

    def lines(self) -> list[str]:
        """What the CLI prints, one ``Error:`` line each."""
        return [str(self)]


class Problems(MigplanError):
    """Several problems found at once (`migplan validate`), one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems

    def lines(self) -> list[str]:
        return [mask(" ".join(p.split("\n"))) for p in self.problems]


class ChangesPending(MigplanError):
    """Not a failure: changes are pending (`plan --detailed-exitcode`) or the
    database differs from the models (`drift`). Exit 2, nothing more printed."""

    exit_code = 2

    def lines(self) -> list[str]:
        return []


class ConfigError(MigplanError):
    """migplan.yaml is missing, malformed or invalid."""


class UnknownEnvironment(ConfigError):
    """The environment named on the command line is not in migplan.yaml."""


class RevisionGraphError(MigplanError):
    """The revision files cannot be read or do not form a valid graph."""


class TargetError(MigplanError):
    """A target does not resolve against the revision graph."""


class NotAncestor(TargetError):
    """The target lies neither above nor below the revisions it is measured from."""


class DatabaseError(MigplanError):
    """The database cannot be reached or answered with an error."""


class PolicyViolation(MigplanError):
    """The environment's policy refuses the plan."""


class StalePlan(MigplanError):
    """The database or the revision files changed since the plan was made."""


class LockTimeout(MigplanError):
    """Another migplan process held the migration lock for too long."""


class DirtyDatabase(MigplanError):
    """A migration was left half-applied; `migplan resolve` must settle it first."""


class MigrationFailed(MigplanError):
    """A migration raised while being applied."""


class AppLoadError(MigplanError):
    """The Flask app or the MetaData named in migplan.yaml cannot be loaded."""


class Refused(MigplanError):
    """The user declined, or confirmation was needed and could not be asked."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (migplan's handler in the CLI): an
    interruption like Ctrl-C, which a migration's `except Exception` cannot eat."""


class Interrupted(MigplanError):
    """A run stopped by Ctrl-C or SIGTERM; the message says where the database is."""

    def __init__(self, message: str, *, terminated: bool) -> None:
        super().__init__(message)
        self.exit_code = 143 if terminated else 130

    @staticmethod
    def signal_name(err: BaseException) -> str:
        """SIGTERM or SIGINT, by which interruption `err` is."""
        return "SIGTERM" if isinstance(err, Terminated) else "SIGINT"


_DRIVERS = ("sqlalchemy", "psycopg", "psycopg2", "pymysql", "MySQLdb", "sqlite3")


def describe(err: BaseException) -> str:
    """Say in one line, secrets masked, what another library's exception says: a
    database's own message for a driver's error, Alembic's for its refusals, else
    the exception's type and message."""
    orig = getattr(err, "orig", None)
    source = err if orig is None else orig
    root = type(source).__module__.partition(".")[0]
    if orig is not None or root in _DRIVERS:
        args = tuple(getattr(source, "args", ()))
        if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
            return mask(f"{args[1]} ({args[0]})")  # MySQL drivers: (code, message)
        lines = str(source).strip().splitlines()
        return mask(lines[0].strip() if lines else type(source).__name__)
    text = " ".join(str(err).split())
    if any(
        cls.__name__ == "CommandError" and cls.__module__.startswith("alembic")
        for cls in type(err).__mro__
    ):
        return mask(text)  # Alembic's refusals are sentences for the user
    return mask(f"{type(err).__name__}: {text}".rstrip(": "))


def foreign(err: BaseException, context: str = "") -> MigplanError:
    """Return another library's exception as a MigplanError (raise it `from err`);
    `context` says what was being done."""
    if isinstance(err, MigplanError):
        return err
    return MigplanError(f"{context}: {describe(err)}" if context else describe(err))
