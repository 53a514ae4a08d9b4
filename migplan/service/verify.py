"""Prove downgrades on a scratch database: for every revision, upgrade, downgrade
and upgrade again, comparing the reflected schema after each round trip."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migplan.core import planner
from migplan.core.drift import Difference
from migplan.core.url import DatabaseURL
from migplan.core.verify import Report
from migplan.core.verify import RevisionCheck
from migplan.core.verify import difference
from migplan.db import drift
from migplan.db import executor
from migplan.db import reflect
from migplan.db import session as sessions
from migplan.service import checkpoints

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.planner import Step
    from migplan.db.session import Session
    from migplan.project.config import Project


def verify(
    project: Project,
    env: Environment,
    *,
    url: DatabaseURL | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Round-trip every revision on a scratch database (a temporary SQLite file,
    or `url`, which must be an empty throwaway database)."""
    graph = project.graph
    problems: list[str] = []
    heads = graph.heads
    if len(heads) > 1:
        problems.append(
            f"the graph has {len(heads)} heads ({', '.join(heads)}); merge them with: "
            f'migplan db merge -m "merge heads" {" ".join(heads)}'
        )
    with tempfile.TemporaryDirectory(prefix="migplan-verify-") as folder:
        scratch = url or DatabaseURL.parse(f"sqlite:///{Path(folder) / 'verify.db'}")
        reflect.require_empty(scratch)
        ignore = {project.version_table}
        plan = planner.make_plan(graph, (), ["heads"], environment="verify")
        checks = []
        current: tuple[str, ...] = ()
        with sessions.open_session(
            scratch, project.tables, timeout=env.lock_timeout
        ) as session:
            for step in plan.steps:
                if progress:
                    progress(f"{step.revision} ({step.message})")
                expected = graph.heads_after(current, [(step.revision, True)])
                check, current = _round_trip(project, session, step, current, ignore)
                checks.append(check)
                if check.problem:
                    problems.append(f"{step.revision}: {check.problem}")
                left = len(plan.steps) - len(checks)
                if current != expected and left:
                    problems.append(
                        f"stopped at {step.revision}: {left} later revision(s) not "
                        "checked"
                    )
                    break
        differences: tuple[Difference, ...] | None = None
        if project.app or project.metadata:
            differences = tuple(drift.environment_drift(project, scratch))
            if differences:
                problems.append(
                    "the models do not match the schema at head: "
                    + "; ".join(str(d) for d in differences)
                )
        if url is not None:
            reflect.empty(scratch)
    proven = checkpoints.prove(project, env, url, progress)
    problems += proven.problems
    return Report(
        tuple(checks), heads, differences, tuple(problems), proven.checkpoints
    )


def _round_trip(
    project: Project,
    session: Session,
    step: Step,
    current: tuple[str, ...],
    ignore: set[str],
) -> tuple[RevisionCheck, tuple[str, ...]]:
    graph = project.graph
    before = reflect.schema(session.connection, ignore)

    def run(
        steps: list[Step], start: tuple[str, ...]
    ) -> tuple[str | None, tuple[str, ...]]:
        result = executor.run_steps(project, graph, start, steps, session=session)
        return (result.failed.error if result.failed else None), session.read_heads()

    error, after_up = run([step], current)
    if error:
        return RevisionCheck(
            step.revision, step.message, f"upgrade failed: {error}"
        ), after_up
    upgraded = reflect.schema(session.connection, ignore)
    error, after_down = run([step.inverse()], after_up)
    if error:
        return RevisionCheck(
            step.revision, step.message, f"downgrade failed: {error}"
        ), after_down
    downgraded = reflect.schema(session.connection, ignore)
    problem = None
    if downgraded != before:
        problem = (
            f"downgrade does not restore the schema ({difference(before, downgraded)})"
        )
    error, after_again = run([step], after_down)
    if error:
        return (
            RevisionCheck(
                step.revision,
                step.message,
                problem or f"upgrade after downgrade failed: {error}",
            ),
            after_again,
        )
    again = reflect.schema(session.connection, ignore)
    if problem is None and again != upgraded:
        problem = f"upgrade after downgrade differs ({difference(upgraded, again)})"
    return RevisionCheck(step.revision, step.message, problem), after_again
