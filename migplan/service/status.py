"""Every environment at a glance, queried concurrently; one failure stays in its row."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from migplan.core import planner
from migplan.core.runs import dirty_run
from migplan.core.status import EnvironmentStatus
from migplan.db import audit
from migplan.db import database
from migplan.errors import MigplanError
from migplan.service import membership

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.graph import RevisionGraph
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project


def collect(
    project: Project, max_workers: int = 16, *, drift: bool = False
) -> list[EnvironmentStatus]:
    """Return the status of every environment (every database of a fleet), in
    migplan.yaml's order; all are read concurrently. With `drift`, each is also
    compared with the models (one at a time: that loads the app)."""
    graph = project.graph
    graph.heads  # noqa: B018 - resolve the graph once, before the threads share it
    rows: list[
        EnvironmentStatus | tuple[Environment, str | None, DatabaseURL | None]
    ] = []
    for env in project.environments.values():
        if not env.is_fleet:
            rows.append((env, None, None))
            continue
        try:
            rows += [(env, m.name, m.url) for m in membership.members(env)]
        except MigplanError as err:
            rows.append(EnvironmentStatus(env.name, "?", env.target, error=str(err)))

    def one(
        row: EnvironmentStatus | tuple[Environment, str | None, DatabaseURL | None],
    ) -> EnvironmentStatus:
        if isinstance(row, EnvironmentStatus):
            return row
        return environment_status(project, graph, *row)

    with ThreadPoolExecutor(max_workers=min(max_workers, max(1, len(rows)))) as pool:
        found = list(pool.map(one, rows))
    if drift:
        found = [
            _with_drift(project, row, status)
            for row, status in zip(rows, found, strict=True)
        ]
    return found


def _with_drift(
    project: Project,
    row: EnvironmentStatus | tuple[Environment, str | None, DatabaseURL | None],
    status: EnvironmentStatus,
) -> EnvironmentStatus:
    from dataclasses import replace

    from migplan.db import drift

    if status.error is not None or isinstance(row, EnvironmentStatus):
        return status
    env, _, url = row
    try:
        differences = drift.environment_drift(project, url or env.url)
    except MigplanError as err:
        return replace(status, error=str(err))
    return replace(status, drift=len(differences))


def environment_status(
    project: Project,
    graph: RevisionGraph,
    env: Environment,
    name: str | None = None,
    url: DatabaseURL | None = None,
) -> EnvironmentStatus:
    """Return the status of one database (`env`'s, or `url`, called `name`); an
    error becomes part of the row."""
    try:
        url = url or env.url
    except MigplanError as err:
        return EnvironmentStatus(env.name, "?", env.target, error=str(err))
    shown = name or url.display
    try:
        current = database.read_heads(url, project.tables)
        moves = planner.route(graph, current, env.target).moves
        runs = audit.read_runs(url, project.tables)
        dirty = dirty_run(runs, graph, current)
    except MigplanError as err:
        return EnvironmentStatus(env.name, shown, env.target, error=str(err))
    return EnvironmentStatus(
        env.name,
        shown,
        env.target,
        current,
        sum(1 for _, up in moves if up),
        sum(1 for _, up in moves if not up),
        dirty=f"{dirty.dirty_direction} {dirty.dirty_revision}" if dirty else None,
    )
