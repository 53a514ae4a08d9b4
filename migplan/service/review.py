"""The plans of several environments, for one report (a pull request's comment):
an environment that cannot be planned gives its error, and the others go on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migplan.core.review import EnvironmentPlan
from migplan.errors import MigplanError
from migplan.service import fleet
from migplan.service import membership
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.fleet import Shard
    from migplan.project.config import Project


def plan_environments(
    project: Project,
    envs: Sequence[Environment],
    *,
    shard: Shard | None = None,
    database: str | None = None,
) -> list[EnvironmentPlan]:
    """Return the plan of each environment, in order: a fleet's (sharded by
    `shard`), or the one `database` of it names. One that cannot be planned (its
    URL unset, its database out of reach, its target unknown) gives its error."""
    return [_one(project, env, shard, database) for env in envs]


def _one(
    project: Project, env: Environment, shard: Shard | None, database: str | None
) -> EnvironmentPlan:
    url = ""
    try:
        if env.is_fleet and database is None:
            return EnvironmentPlan(
                env.name, fleet=fleet.plan(project, env, shard=shard)
            )
        if database is None:
            url = env.url.display
            return EnvironmentPlan(env.name, url, plan=planning.plan(project, env))
        member = membership.select(env, database)
        url = member.name
        return EnvironmentPlan(
            env.name, url, plan=planning.plan(project, env, url=member.url)
        )
    except MigplanError as err:
        return EnvironmentPlan(env.name, url, error=str(err))
