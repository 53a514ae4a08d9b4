"""The operations other tools import: read a database, plan, with every warning.

`migplan.cli` is a thin layer over these and over `executor.apply`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from migplan.core import planner
from migplan.db import audit
from migplan.db import database
from migplan.errors import MigplanError
from migplan.render import graphview

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.planner import Plan
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project


def plan(project: Project, env: Environment, *, url: DatabaseURL | None = None) -> Plan:
    """Return the plan that brings `env`'s database (or `url`) to its target.

    Its notes say what apply would refuse (a dirty database, a step the lint
    policy refuses, a changed applied file with on_modified: refuse) or warn about.
    """
    url = url or env.url
    current = database.read_heads(url, project.tables)
    made = planner.make_plan(
        project.graph,
        current,
        env.target,
        environment=env.name,
        dialect=url.dialect,
    )
    notes = audit.verdict(project, env, made, url).notes()
    return dataclasses.replace(made, notes=made.notes + notes)


def rollback_plan(
    project: Project,
    env: Environment,
    *,
    to: str | None = None,
    steps: int | None = None,
    url: DatabaseURL | None = None,
) -> Plan:
    """Return the plan of a rollback to `to` (a revision or ``base``) or by `steps`.

    `policy.check_rollback` says whether the environment allows it; `executor.apply`
    refuses it if not.

    :raises TargetError: `to` is not below the current revision.
    """
    if (to is None) == (steps is None):
        raise ValueError("give exactly one of `to` and `steps`")
    url = url or env.url
    current = database.read_heads(url, project.tables)
    made = planner.make_downgrade_plan(
        project.graph,
        current,
        to if to is not None else f"-{steps}",
        environment=env.name,
        dialect=url.dialect,
    )
    notes = audit.verdict(project, env, made, url, action="rollback").notes()
    return dataclasses.replace(made, notes=made.notes + notes)


def positions(project: Project) -> tuple[list[graphview.Marker], list[str]]:
    """Each environment's current and target revisions, for `migplan graph`, read
    concurrently; an environment that cannot be read gives an error instead."""
    from concurrent.futures import ThreadPoolExecutor

    from migplan.service import fleet

    graph = project.graph
    graph.heads  # noqa: B018 - resolve the graph once, before the threads share it

    def one(env: Environment) -> tuple[list[graphview.Marker], str | None]:
        try:
            plans = [plan(project, env, url=m.url) for m in fleet.members(env)]
        except MigplanError as err:
            return [], f"{env.name}: {err}"
        current = tuple(sorted({rev for p in plans for rev in p.current}))
        after = tuple(sorted({rev for p in plans for rev in p.after}))
        return [
            graphview.Marker(env.name, "current", current),
            graphview.Marker(env.name, "target", after),
        ], None

    envs = list(project.environments.values())
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(envs)))) as pool:
        results = list(pool.map(one, envs))
    markers = [m for found, _ in results for m in found]
    return markers, [error for _, error in results if error]
