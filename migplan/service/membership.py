"""The databases of an environment: one, a list, a catalog's, or one schema per
tenant; and the one `--database NAME` picks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migplan.core.fleet import Member
from migplan.core.fleet import Shard
from migplan.core.fleet import in_shard
from migplan.core.url import DatabaseURL
from migplan.db import catalog
from migplan.errors import ConfigError
from migplan.errors import DatabaseError

if TYPE_CHECKING:
    from migplan.core.environment import Environment


def members(env: Environment, shard: Shard | None = None) -> list[Member]:
    """Return the databases of an environment (one, for a plain environment)."""
    found: list[Member]
    if env.schemas:
        assert env.url_template is not None
        base = env.resolve_url(env.url_template, env.url_location)
        if base.dialect != "postgresql":
            raise ConfigError(
                f"environment {env.name!r}: schemas need a PostgreSQL url"
            )
        found = [
            Member(f"schema {s}", base.with_search_path(s), s) for s in env.schemas
        ]
    elif env.databases:
        urls = [
            env.resolve_url(template, env.url_location) for template in env.databases
        ]
        found = [Member(url.display, url) for url in urls]
    elif env.databases_from is not None:
        found = [Member(url.display, url) for url in _catalog(env)]
    else:
        found = [Member(env.name, env.url)]
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"environment {env.name!r} lists a database twice")
    return sorted((m for m in found if in_shard(m, shard)), key=lambda m: m.name)


def _catalog(env: Environment) -> list[DatabaseURL]:
    source = env.databases_from
    assert source is not None
    url = env.resolve_url(source.url_template, source.location)
    try:
        found = catalog.query_column(url, source.query)
    except DatabaseError as err:
        raise DatabaseError(
            f"environment {env.name!r}: databases_from query failed: {err}"
        ) from err
    # each URL is parsed, so its password is masked, before anything can show it
    return [_catalog_url(text) for text in found]


def _catalog_url(text: str) -> DatabaseURL:
    try:
        return DatabaseURL.parse(text)
    except ConfigError:
        raise ConfigError(
            "databases_from: the catalog returned a value that is not a valid "
            "database URL"
        ) from None


def select(env: Environment, pattern: str) -> Member:
    """Return the one member whose name is `pattern`, or contains it."""
    everyone = members(env)
    exact = [m for m in everyone if m.name == pattern]
    found = exact or [m for m in everyone if pattern in m.name]
    if len(found) != 1:
        names = ", ".join(m.name for m in (found or everyone)[:10])
        what = "matches several databases" if found else "matches no database"
        raise ConfigError(f"--database {pattern!r} {what} of {env.name!r} ({names})")
    return found[0]
