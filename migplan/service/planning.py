"""Planning a database's steps, with everything apply would refuse or warn about.

`migplan.cli` is a thin layer over these and over `execution.apply`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from migplan.core import checkpoint as core_checkpoint
from migplan.core import planner
from migplan.core import policy
from migplan.core.results import heads_text
from migplan.core.revisions import Marker
from migplan.core.runs import Run
from migplan.core.runs import dirty_run
from migplan.core.runs import modified_message
from migplan.core.runs import modified_revisions
from migplan.db import audit
from migplan.db import database
from migplan.errors import MigplanError
from migplan.project import findings
from migplan.service import checkpoints
from migplan.service import membership
from migplan.service import promote

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.planner import Plan
    from migplan.core.policy import Verdict
    from migplan.core.revisions import Heads
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project


def plan(
    project: Project,
    env: Environment,
    *,
    url: DatabaseURL | None = None,
    imports: bool = False,
    checkpoint: bool = True,
) -> Plan:
    """Return the plan that brings `env`'s database (or `url`) to its target; an
    empty database at base starts from a checkpoint where one applies (unless
    `checkpoint` is False).

    Its notes say what apply would refuse (a dirty database, a step the lint
    policy refuses, a changed applied file with on_modified: refuse, a revision
    file that cannot run; with `imports`, one that cannot even be imported) or
    warn about.
    """
    url = url or env.url
    current = database.read_heads(url, project.tables)
    made = describe_from(
        project,
        planner.route(project.graph, current, env.target),
        env.name,
        url,
        checkpoint=checkpoint,
    )
    notes = preflight(project, env, made, url, imports=imports).notes()
    return dataclasses.replace(made, notes=made.notes + notes)


def rollback_plan(
    project: Project,
    env: Environment,
    *,
    to: str | None = None,
    steps: int | None = None,
    last: bool = False,
    url: DatabaseURL | None = None,
) -> Plan:
    """Return the plan of a rollback to `to` (a revision or ``base``), by `steps`,
    or undoing the `last` successful apply the audit trail records.

    `policy.check_rollback` says whether the environment allows it;
    `execution.apply` refuses it if not.

    :raises TargetError: `to` is not below the current revision.
    :raises MigplanError: with `last`, no apply to undo, or the database moved
        since it.
    """
    if [to is not None, steps is not None, last].count(True) != 1:
        raise ValueError("give exactly one of `to`, `steps` and `last`")
    url = url or env.url
    current = database.read_heads(url, project.tables)
    notes: tuple[str, ...] = ()
    if last:
        route, undone = _undo_last(project, env, url, current)
        notes = (
            f"undoes apply #{undone.id} of {undone.started_at} by "
            f"{undone.actor}@{undone.host}, from {heads_text(undone.from_heads)} to "
            f"{heads_text(undone.to_heads or ())}",
        )
    else:
        route = planner.route_down(
            project.graph, current, to if to is not None else f"-{steps}"
        )
    made = describe(project, route, env.name, url)
    notes += preflight(project, env, made, url, action="rollback").notes()
    return dataclasses.replace(made, notes=made.notes + notes)


def _undo_last(
    project: Project, env: Environment, url: DatabaseURL, current: Heads
) -> tuple[planner.Route, Run]:
    """The route back to where the last successful apply found the database."""
    runs = audit.read_runs(url, project.tables, environment=env.name)
    applies = (r for r in runs if r.action in ("apply", "db upgrade"))
    undone = next((r for r in applies if r.outcome == "success" and r.steps), None)
    if undone is None:
        raise MigplanError(
            f"{env.name}: the audit trail records no successful apply to undo"
        )
    if tuple(sorted(undone.to_heads or ())) != tuple(sorted(current)):
        raise MigplanError(
            f"{env.name}: the database moved since apply #{undone.id} of "
            f"{undone.started_at}: that apply left it at "
            f"{heads_text(undone.to_heads or ())}, it is at {heads_text(current)} "
            "now; roll back with --to REV"
        )
    route = planner.route(project.graph, current, undone.from_heads or ("base",))
    if any(up for _, up in route.moves):
        raise MigplanError(
            f"{env.name}: going back to {heads_text(undone.from_heads)} is not only "
            "downgrades; roll back with --to REV"
        )
    return planner.Route(route.current, ("last",), route.moves), undone


def describe(
    project: Project, route: planner.Route, environment: str, url: DatabaseURL
) -> Plan:
    """The plan of a route on the database at `url`: each step with its file's
    message, path, checksum and lint findings."""
    graph = project.graph
    return planner.plan_route(
        graph,
        route,
        environment=environment,
        dialect=url.dialect,
        analyses=findings.analyses(graph, route.revisions),
    )


def describe_from(
    project: Project,
    route: planner.Route,
    environment: str,
    url: DatabaseURL,
    *,
    checkpoint: bool = True,
) -> Plan:
    """`describe`, with a checkpoint first where the database at `url` may load
    one (see checkpoints.choose): the revisions it covers are neither steps nor
    linted. Why a checkpoint is not used is in the notes."""
    if route.current:
        return describe(project, route, environment, url)
    best, notes = checkpoints.choose(project, route, url, enabled=checkpoint)
    if best is None:
        made = describe(project, route, environment, url)
    else:
        rest = describe(project, core_checkpoint.rest(route, best), environment, url)
        made = core_checkpoint.start_from(rest, best)
    return dataclasses.replace(made, notes=made.notes + tuple(notes))


def positions(project: Project) -> tuple[list[Marker], list[str]]:
    """Each environment's current and target revisions, for `migplan graph`, read
    concurrently; an environment that cannot be read gives an error instead."""
    from concurrent.futures import ThreadPoolExecutor

    graph = project.graph
    graph.heads  # noqa: B018 - resolve the graph once, before the threads share it

    def one(env: Environment) -> tuple[list[Marker], str | None]:
        try:
            plans = [plan(project, env, url=m.url) for m in membership.members(env)]
        except MigplanError as err:
            return [], f"{env.name}: {err}"
        current = tuple(sorted({rev for p in plans for rev in p.current}))
        after = tuple(sorted({rev for p in plans for rev in p.after}))
        return [
            Marker(env.name, "current", current),
            Marker(env.name, "target", after),
        ], None

    envs = list(project.environments.values())
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(envs)))) as pool:
        results = list(pool.map(one, envs))
    markers = [m for found, _ in results for m in found]
    return markers, [error for _, error in results if error]


def preflight(
    project: Project,
    env: Environment,
    plan: Plan,
    url: DatabaseURL,
    *,
    action: str = "apply",
    locked: bool = False,
    runs: Sequence[Run] | None = None,
    imports: bool = False,
) -> Verdict:
    """Return what refuses or warns about running `plan` on the database at `url`:
    the environment's policy, a dirty database, applied files changed since,
    revision files that cannot run (with `imports`: that cannot be imported).

    This is the one place that decides: plan shows it, validate --env reports it,
    apply refuses by it. Without the lock (`locked`), a run still going on is in
    progress, not dirty. `runs` are the audit trail's runs when the caller has
    read them already.
    """
    if runs is None:
        runs = audit.read_runs(url, project.tables) if database.exists(url) else []
    graph = project.graph
    dirty = dirty_run(runs, graph, plan.current)
    if dirty is not None and dirty.outcome == "running" and not locked:
        from migplan.db import locking  # SQLAlchemy: only when a run is going on

        busy = locking.holder(url, project.tables)
        if busy is not None:
            return policy.Verdict(
                warnings=(
                    policy.Violation(
                        "in progress",
                        f"another migplan is applying {dirty.dirty_revision} right now "
                        f"({busy}); apply will wait for it",
                    ),
                )
            )
    refuse = env.on_modified == "refuse"
    modified = [
        modified_message(graph.relative_path(rev), rev, refuse)
        for rev in modified_revisions(graph, plan.current, runs)
    ]
    unpromoted: list[str] = []
    if env.requires is not None and action not in policy.ROLLBACKS and plan.steps:
        unpromoted = promote.missing(project, env, plan.after)
    unimportable = []
    if (
        imports
        and not all(step.is_checkpoint for step in plan.steps)
        and not any(f.kind == "broken" for step in plan.steps for f in step.findings)
    ):
        from migplan.db import executor  # imports Alembic: not on plan's fast path

        try:
            executor.load_modules(graph, plan.steps)
        except MigplanError as err:
            unimportable.append(str(err))
    return policy.preflight(
        plan,
        env,
        action=action,
        dirty=dirty.dirty_message() if dirty else None,
        modified=modified,
        unpromoted=unpromoted,
        unimportable=unimportable,
        multidb=project.multidb,
    )
