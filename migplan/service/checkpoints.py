"""Checkpoints: made by replaying the history on a scratch database and dumping
it; used by plans of empty databases at base; proven by verify against a replay.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migplan.core import checkpoint
from migplan.core import planner
from migplan.core.checkpoint import Checkpoint
from migplan.db import checkpoints as loading
from migplan.db import database
from migplan.errors import MigplanError
from migplan.errors import TargetError
from migplan.project import checkpoints as files

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project


@dataclass(frozen=True)
class Made:
    """A checkpoint just written."""

    path: str
    revision: str
    dialect: str
    revisions: int
    size: int
    seconds: float
    tool: str

    def to_dict(self) -> dict[str, object]:
        """The JSON shape (`checkpoint --json`)."""
        return dataclasses.asdict(self)


def make(
    project: Project,
    env: Environment,
    *,
    revision: str | None = None,
    url: DatabaseURL | None = None,
) -> Made:
    """Replay the history to `revision` (default: the single head) on a scratch
    database of `env`'s dialect (SQLite: a temporary file; else `url`), dump it
    and write it to the checkpoints folder."""
    started = time.perf_counter()
    graph = project.graph
    dialect = url.dialect if url is not None else _dialect(env)
    if url is None and dialect != "sqlite":
        raise MigplanError(
            f"{env.name} is {dialect}: make its checkpoint on a scratch database "
            "of the same kind, with --url (an empty database)"
        )
    from migplan.db import dump  # SQLAlchemy, Alembic: not on plan's path

    rev = _revision(project, revision)
    covers = {r: graph.checksum(r) for r in graph.ancestors([rev])}
    with dump.scratch(url, dialect) as (scratch, name):
        _replay(project, env, scratch, rev)
        relations = dump.relations(scratch, name) if dialect == "postgresql" else 0
        body, tool = dump.dump(scratch, name, project.tables)
    text = checkpoint.render(
        rev, dialect, covers, body, schema=name or None, tool=tool, relations=relations
    )
    path = files.write(project, rev, dialect, text)
    return Made(
        path,
        rev,
        dialect,
        len(covers),
        len(text.encode()),
        round(time.perf_counter() - started, 3),
        tool,
    )


def _dialect(env: Environment) -> str:
    """The dialect of an environment's databases, from its URL as written."""
    if env.schemas:
        return "postgresql"
    template = env.url_template or (env.databases or ("",))[0]
    if not template and env.databases_from is not None:
        template = env.databases_from.url_template
    return env.resolve_url(template, env.url_location).dialect


def _revision(project: Project, revision: str | None) -> str:
    graph = project.graph
    if revision is None:
        heads = graph.heads
        if len(heads) != 1:
            raise TargetError(
                f"the graph has {len(heads)} heads ({', '.join(heads)}): name the "
                "revision with --rev"
            )
        return heads[0]
    resolved = graph.resolve([revision])
    if len(resolved) != 1:
        raise TargetError(f"{revision!r} is not one revision")
    return resolved[0]


def _replay(
    project: Project, env: Environment, scratch: DatabaseURL, revision: str
) -> None:
    """Run the history to `revision` on the scratch database."""
    from migplan.db import executor
    from migplan.db import session as sessions

    plan = planner.make_plan(project.graph, (), [revision], environment=env.name)
    with sessions.open_session(
        scratch, project.tables, timeout=env.lock_timeout
    ) as session:
        run = executor.run_steps(
            project, project.graph, (), plan.steps, session=session
        )
        if run.failed is not None:
            raise MigplanError(
                f"replaying to {revision} failed at {run.failed.step.revision}: "
                f"{run.failed.error}"
            )


def choose(
    project: Project, route: planner.Route, url: DatabaseURL, *, enabled: bool = True
) -> tuple[Checkpoint | None, list[str]]:
    """The checkpoint a route from base starts from, where one applies: the
    database is at base and empty, and a fresh checkpoint of its dialect lies
    below the target; and why others are not used (stale ones are named)."""
    if route.current or not route.moves:
        return None, []
    found = files.read_all(project, url.dialect)
    if not found:
        return None, []
    upgrading = {revision for revision, up in route.moves if up}
    best, notes = checkpoint.choose(upgrading, found, project.graph, url.dialect)
    if best is not None and not enabled:
        notes.append(f"--no-checkpoint: replaying instead of {best.path}")
        best = None
    if best is not None:
        unusable = _unusable(project, url, best)
        if unusable:
            notes.append(f"{best.path} is not used: {unusable}")
            best = None
    return best, notes


def _unusable(project: Project, url: DatabaseURL, found: Checkpoint) -> str | None:
    """Why the database at `url` cannot load `found` now, if it cannot: it is
    not empty, or (PostgreSQL) one transaction cannot lock all it creates."""
    if not database.exists(url):
        return None
    with database.connect(url) as connection:
        if not loading.is_empty(connection, project.tables):
            return "the database is at base but not empty"
        room = loading.lock_room(connection)
    if room is not None and found.relations > room:
        return (
            f"loading it creates {found.relations} relations in one transaction, "
            f"more than PostgreSQL's lock table holds for one ({room}: raise "
            "max_locks_per_transaction to load it); replaying instead"
        )
    return None


def statements_for(
    project: Project, shown: str, checksum: str, target: str | None
) -> tuple[Checkpoint, list[str]]:
    """The statements of the checkpoint a plan's step names, for `target`."""
    from migplan.core.sqlscript import ScriptError

    found, text = files.read_step(project, shown, checksum)
    try:
        return found, checkpoint.statements(text, found, target)
    except ScriptError as err:
        raise MigplanError(f"{shown}: {err}; make it again") from err


ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Proof:
    """What verify found of the checkpoints."""

    checkpoints: tuple[str, ...]
    """Those loaded and compared with a replay."""
    problems: tuple[str, ...]


def prove(
    project: Project,
    env: Environment,
    url: DatabaseURL | None,
    progress: ProgressFn | None = None,
) -> Proof:
    """Load each checkpoint of the scratch dialect on a scratch database and
    compare it with a replay to its revision (schema and rows); say what
    differs, and which are stale."""
    from migplan.db import dump
    from migplan.db import reflect

    dialect = url.dialect if url is not None else "sqlite"
    problems: list[str] = []
    proven: list[str] = []
    graph = project.graph
    for found in files.read_all(project, dialect):
        stale = found.problems(graph)
        if stale:
            problems += stale
            continue
        proven.append(found.path)
        if progress:
            progress(f"checkpoint {found.path}")
        with dump.scratch(url, dialect) as (replayed, _):
            _replay(project, env, replayed, found.revision)
            with database.connect(replayed) as connection:
                expected = reflect.snapshot(connection, project.tables)
        with dump.scratch(url, dialect) as (loaded, _):
            _load(project, env, loaded, found)
            with database.connect(loaded) as connection:
                got = reflect.snapshot(connection, project.tables)
        differences = reflect.compare(expected, got)
        if differences:
            problems.append(
                f"{found.path} does not match a replay to {found.revision}: "
                + "; ".join(differences[:5])
                + (
                    f" (and {len(differences) - 5} more)"
                    if len(differences) > 5
                    else ""
                )
            )
    return Proof(tuple(proven), tuple(problems))


def _load(
    project: Project, env: Environment, url: DatabaseURL, found: Checkpoint
) -> None:
    from migplan.db import session as sessions

    with sessions.open_session(
        url, project.tables, timeout=env.lock_timeout
    ) as session:
        target = loading.target_schema(session.connection)
        _, statements = statements_for(project, found.path, found.checksum, target)
        result = loading.load(
            session, found.step(), statements, None, dict(found.covers)
        )
        if result.error is not None:
            raise MigplanError(f"{found.path} does not load: {result.error}")
