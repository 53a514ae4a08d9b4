"""Promotion between environments: what a `requires:` environment has applied,
and setting one environment's target to another's current revision in
migplan.yaml, changing only that value (comments and layout stay)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migplan.db import database
from migplan.errors import MigplanError

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.revisions import Heads
    from migplan.project.config import Project


def applied_everywhere(project: Project, env: Environment) -> set[str] | None:
    """The revisions applied in every database of `env` (None: none could be read)."""
    from migplan.service import membership

    common: set[str] | None = None
    for member in membership.members(env):
        current = database.read_heads(member.url, project.tables)
        applied = project.graph.ancestors(current)
        common = applied if common is None else common & applied
    return common


def missing(project: Project, env: Environment, after: Heads) -> list[str]:
    """The revisions `after` needs that `env.requires` has not applied, in order."""
    if env.requires is None:
        return []
    required = project.environment(env.requires)
    applied = applied_everywhere(project, required) or set()
    needed = project.graph.ancestors(after)
    depth = project.graph.depth
    return sorted(needed - applied, key=lambda rev: (depth[rev], rev))


def current_target(project: Project, source: Environment) -> Heads:
    """The revisions to promote from `source`: its database's current heads."""
    from migplan.service import membership

    found: set[Heads] = set()
    for member in membership.members(source):
        found.add(database.read_heads(member.url, project.tables))
    if len(found) != 1:
        raise MigplanError(
            f"the databases of {source.name!r} are not all at the same revision; "
            "promote from one environment whose databases agree"
        )
    (heads,) = found
    if not heads:
        raise MigplanError(f"{source.name!r} is at base: there is nothing to promote")
    return heads
