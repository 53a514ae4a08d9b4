"""Fleets: one environment, many databases (or PostgreSQL schemas, one per tenant).

Each database is planned and applied as a single one would be, under its own
lock: that lock is all the coordination there is, so any number of migplan
processes, on any number of machines, may work through the same fleet at once
(`--shard i/n` only spares them waiting on each other). Apply runs the canaries
first, then the rest in parallel worker processes (Alembic's `context` is global
to a process, so one migration at a time runs in each).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from typing import TYPE_CHECKING

from migplan import compat
from migplan.core.fleet import FleetPlan
from migplan.core.fleet import FleetResult
from migplan.core.fleet import Group
from migplan.core.fleet import Member
from migplan.core.fleet import MemberPlan
from migplan.core.fleet import MemberResult
from migplan.core.fleet import Outcome
from migplan.core.fleet import ResultFn
from migplan.core.fleet import Shard
from migplan.db import catalog
from migplan.errors import MigplanError
from migplan.service import execution
from migplan.service import membership
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.revisions import Heads
    from migplan.project.config import Project


# -- plan -------------------------------------------------------------------------


def plan(
    project: Project,
    env: Environment,
    *,
    shard: Shard | None = None,
    workers: int = 16,
    checkpoint: bool = True,
) -> FleetPlan:
    """Plan every member of a fleet (reading them concurrently) and group them."""

    graph = project.graph
    graph.heads  # noqa: B018 - resolve the graph once, before the threads share it

    def one(member: Member) -> MemberPlan:
        try:
            return MemberPlan(
                member,
                planning.plan(project, env, url=member.url, checkpoint=checkpoint),
            )
        except MigplanError as err:
            return MemberPlan(member, error=str(err))

    everyone = membership.members(env, shard)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(everyone)))) as pool:
        planned = list(pool.map(one, everyone))
    groups: dict[Heads, list[MemberPlan]] = {}
    for item in planned:
        if item.plan is not None:
            groups.setdefault(item.plan.current, []).append(item)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return FleetPlan(
        env.name,
        env.target,
        tuple(Group(current, tuple(items)) for current, items in ordered),
        tuple(item for item in planned if item.error is not None),
    )


# -- apply ------------------------------------------------------------------------


def apply(
    project: Project,
    env: Environment,
    *,
    shard: Shard | None = None,
    on_result: ResultFn | None = None,
    lock_timeout: float | None = None,
    checkpoint: bool = True,
) -> FleetResult:
    """Bring every member of a fleet to the target: canaries first, then the rest
    `rollout.concurrency` at a time, stopping once more than `max_failures` fail."""
    everyone = membership.members(env, shard)
    rollout = env.rollout
    canaries, rest = everyone[: rollout.canary], everyone[rollout.canary :]
    results: list[MemberResult] = []
    total = len(everyone)
    failures = 0
    stopped: str | None = None
    context = multiprocessing.get_context("spawn")
    workers = max(1, min(rollout.concurrency, total))
    # each worker is a migplan process of its own: Pygments kept out, as in the CLI
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=compat.lean_mako
    ) as pool:

        def run(batch: Sequence[Member], stop_on_failure: bool) -> None:
            nonlocal failures, stopped
            queue = list(batch)
            running: dict[Future[MemberResult], Member] = {}
            while queue or running:
                while queue and len(running) < workers and stopped is None:
                    member = queue.pop(0)
                    future = pool.submit(
                        apply_member,
                        str(project.path),
                        env.name,
                        member,
                        lock_timeout,
                        checkpoint,
                    )
                    running[future] = member
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    member = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as err:  # the worker process itself died
                        result = MemberResult(
                            member.name, "failed", error=f"{type(err).__name__}: {err}"
                        )
                    results.append(result)
                    if result.outcome == "failed":
                        failures += 1
                        if stop_on_failure:
                            stopped = f"canary {member.name} failed"
                        elif failures > rollout.max_failures:
                            stopped = f"more than max_failures ({rollout.max_failures}) failed"
                    if on_result:
                        on_result(result, len(results), total)
            for member in queue:
                results.append(MemberResult(member.name, "not started"))

        run(canaries, stop_on_failure=True)
        run(rest, stop_on_failure=False)
    order = {m.name: i for i, m in enumerate(everyone)}
    results.sort(key=lambda r: order[r.name])
    return FleetResult(tuple(results), stopped)


def apply_member(
    config_path: str,
    env_name: str,
    member: Member,
    lock_timeout: float | None = None,
    checkpoint: bool = True,
) -> MemberResult:
    """Plan and apply one member (in a worker process): under its own lock, as a
    single database would be; a refusal or a failure is its result, not raised."""
    from migplan.project import config

    started = time.perf_counter()
    before: Heads | None = None
    try:
        project = config.load_config(config_path)
        env = project.environment(env_name)
        if member.schema is not None:
            catalog.ensure_schema(member.url, member.schema)
        plan = planning.plan(project, env, url=member.url, checkpoint=checkpoint)
        before = plan.current
        result = execution.apply(
            project, env, project.graph, plan, url=member.url, lock_timeout=lock_timeout
        )
    except MigplanError as err:
        return MemberResult(
            member.name, "failed", before, None, time.perf_counter() - started, str(err)
        )
    seconds = time.perf_counter() - started
    if not result.ok:
        return MemberResult(
            member.name,
            "failed",
            before,
            result.heads,
            seconds,
            result.failure_message(),
        )
    outcome: Outcome = "applied" if result.done else "up to date"
    return MemberResult(member.name, outcome, before, result.heads, seconds)
