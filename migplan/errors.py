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

    def __str__(self) -> str:
        return mask(" ".join(super().__str__().split("\n")))


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
