"""An environment of migplan.yaml as values: its database, target and policies."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Literal

from migplan.core.url import DatabaseURL
from migplan.errors import ConfigError

Target = tuple[str, ...]
"""A declared target: one revision expression, or one per branch."""

OnFailure = Literal["stop", "rollback"]
Level = Literal["allow", "warn", "refuse"]


@dataclass(frozen=True)
class Location:
    """Where a value sits in migplan.yaml, for error messages."""

    file: Path
    line: int
    path: str

    def error(self, message: str) -> ConfigError:
        """Return a ConfigError that names the file, line and key path."""
        where = f"{self.path}: " if self.path else ""
        return ConfigError(f"{self.file.name}:{self.line}: {where}{message}")


@dataclass(frozen=True)
class Tables:
    """The tables migplan reads and writes in a database: Alembic's version table
    and migplan's audit trail, in the version table's schema."""

    version_table: str = "alembic_version"
    schema: str | None = None
    audit_table: str = "migplan_audit"

    @property
    def steps_table(self) -> str:
        """The audit trail's steps, a row each (beside the audit table)."""
        return f"{self.audit_table}_steps"

    @property
    def own(self) -> tuple[str, ...]:
        """migplan's own tables: never the models', never dumped or compared."""
        return (self.audit_table, self.steps_table)


@dataclass(frozen=True)
class RollbackPolicy:
    """How far `migplan rollback` may go in one environment."""

    allowed: bool = True
    max_steps: int | None = None
    allow_destructive: bool = True


@dataclass(frozen=True)
class LintPolicy:
    """What apply does with flagged steps."""

    destructive: Level = "warn"
    locking: Level = "warn"


@dataclass(frozen=True)
class DdlPolicy:
    """How each migration takes its locks: GitLab's with_lock_retries, per
    environment. Seconds; None: the server's own setting."""

    lock_timeout: float | None = None
    retries: int = 0
    statement_timeout: float | None = None

    def wait(self, attempt: int, jitter: float) -> float:
        """Seconds to wait before retry `attempt` (1-based): doubling from half a
        second up to 30 s, times `jitter` (0.5 to 1.5, from the caller)."""
        return float(min(0.5 * 2.0 ** (attempt - 1), 30.0) * jitter)


def seconds(value: object) -> float:
    """Read a duration of migplan.yaml: a number of seconds, or "500ms", "2s",
    "1.5m" (the schema has checked the spelling)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


@dataclass(frozen=True)
class Rollout:
    """How apply goes through a fleet of databases."""

    canary: int = 1
    concurrency: int = 4
    max_failures: int = 0


@dataclass(frozen=True)
class DatabasesFrom:
    """A fleet whose URLs a query on a catalog database returns."""

    url_template: str
    query: str
    location: Location | None = field(default=None, compare=False)


UrlResolver = Callable[[str, "Location | None"], DatabaseURL]
"""Turns a URL as written in migplan.yaml (``${VAR}``, a relative SQLite path)
into the URL to use; the project layer provides it."""


@dataclass(frozen=True)
class Environment:
    """One deployment environment: a database (or a fleet), its target, its policies."""

    name: str
    url_template: str | None
    target: Target
    protected: bool = False
    on_failure: OnFailure = "stop"
    rollback: RollbackPolicy = RollbackPolicy()
    lock_timeout: float = 300.0
    on_modified: Literal["warn", "refuse"] = "warn"
    lint: LintPolicy = LintPolicy()
    requires: str | None = None
    databases: tuple[str, ...] = ()
    databases_from: DatabasesFrom | None = None
    schemas: tuple[str, ...] = ()
    rollout: Rollout = Rollout()
    ddl: DdlPolicy = DdlPolicy()
    binds: tuple[tuple[str, str], ...] = ()
    """(bind name, URL as written) of the Flask-SQLAlchemy binds given here."""
    location: Location | None = field(default=None, compare=False)
    url_location: Location | None = field(default=None, compare=False)
    resolver: UrlResolver | None = field(default=None, compare=False, repr=False)

    @property
    def is_fleet(self) -> bool:
        """Whether the environment names many databases (or schemas)."""
        return bool(self.databases or self.databases_from or self.schemas)

    @functools.cached_property
    def url(self) -> DatabaseURL:
        """The database URL, ${VAR} expanded and a relative SQLite path resolved
        (on first use: other environments' variables need not be set)."""
        if self.url_template is None or self.is_fleet:
            raise ConfigError(
                f"environment {self.name!r} is a fleet of databases and this command "
                "works on one (plan, apply, rollback, log, drift and resolve take "
                "--database NAME)"
            )
        return self.resolve_url(self.url_template, self.url_location)

    def resolve_url(
        self, template: str, location: Location | None = None
    ) -> DatabaseURL:
        """Return a URL of this environment as written in migplan.yaml, resolved."""
        if self.resolver is None:
            return DatabaseURL.parse(template)
        return self.resolver(template, location)

    def bind_urls(self) -> dict[str, DatabaseURL]:
        """The URL of each bind this environment names, resolved."""
        return {
            name: self.resolve_url(text, self.url_location) for name, text in self.binds
        }

    @property
    def target_text(self) -> str:
        """The target as written in migplan.yaml."""
        return " ".join(self.target)
