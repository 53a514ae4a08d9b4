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

from migplan.core.fleet import FleetPlan
from migplan.core.fleet import FleetResult
from migplan.core.fleet import Group
from migplan.core.fleet import Member
from migplan.core.fleet import MemberPlan
from migplan.core.fleet import MemberResult
from migplan.core.fleet import Outcome
from migplan.core.fleet import ResultFn
from migplan.core.fleet import Shard
from migplan.core.fleet import in_shard
from migplan.core.url import DatabaseURL
from migplan.db import database
from migplan.errors import ConfigError
from migplan.errors import DatabaseError
from migplan.errors import MigplanError

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.revisions import Heads
    from migplan.project.config import Project


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
    catalog = env.resolve_url(source.url_template, source.location)
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    with database.connect(catalog) as connection:
        try:
            rows = connection.execute(sa.text(source.query)).all()
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"environment {env.name!r}: databases_from query failed: "
                f"{database.reason(err)}"
            ) from err
    # each URL is parsed, so its password is masked, before anything can show it
    return [_catalog_url(str(row[0])) for row in rows if row and row[0]]


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


# -- plan -------------------------------------------------------------------------


def plan(
    project: Project, env: Environment, *, shard: Shard | None = None, workers: int = 16
) -> FleetPlan:
    """Plan every member of a fleet (reading them concurrently) and group them."""
    from migplan.service import api

    graph = project.graph
    graph.heads  # noqa: B018 - resolve the graph once, before the threads share it

    def one(member: Member) -> MemberPlan:
        try:
            return MemberPlan(member, api.plan(project, env, url=member.url))
        except MigplanError as err:
            return MemberPlan(member, error=str(err))

    everyone = members(env, shard)
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
) -> FleetResult:
    """Bring every member of a fleet to the target: canaries first, then the rest
    `rollout.concurrency` at a time, stopping once more than `max_failures` fail."""
    everyone = members(env, shard)
    rollout = env.rollout
    canaries, rest = everyone[: rollout.canary], everyone[rollout.canary :]
    results: list[MemberResult] = []
    total = len(everyone)
    failures = 0
    stopped: str | None = None
    context = multiprocessing.get_context("spawn")
    workers = max(1, min(rollout.concurrency, total))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:

        def run(batch: Sequence[Member], stop_on_failure: bool) -> None:
            nonlocal failures, stopped
            queue = list(batch)
            running: dict[Future[MemberResult], Member] = {}
            while queue or running:
                while queue and len(running) < workers and stopped is None:
                    member = queue.pop(0)
                    future = pool.submit(
                        apply_member, str(project.path), env.name, member, lock_timeout
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
    config_path: str, env_name: str, member: Member, lock_timeout: float | None = None
) -> MemberResult:
    """Plan and apply one member (in a worker process): under its own lock, as a
    single database would be; a refusal or a failure is its result, not raised."""
    from migplan.db import executor
    from migplan.project import config
    from migplan.service import api

    started = time.perf_counter()
    before: Heads | None = None
    try:
        project = config.load_config(config_path)
        env = project.environment(env_name)
        if member.schema is not None:
            ensure_schema(member)
        plan = api.plan(project, env, url=member.url)
        before = plan.current
        result = executor.apply(
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


def ensure_schema(member: Member) -> None:
    """Create a tenant's schema if it does not exist yet."""
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    with database.connect(member.url) as connection:
        try:
            name = connection.dialect.identifier_preparer.quote_schema(
                member.schema or ""
            )
            connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {name}"))
            connection.commit()
        except sa_exc.SQLAlchemyError as err:
            raise DatabaseError(
                f"cannot create schema {member.schema}: {database.reason(err)}"
            ) from err
