"""`migplan validate`: every problem of migplan.yaml and its targets, in file order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migplan.core.revisions import RELATIVE
from migplan.errors import MigplanError
from migplan.project import config
from migplan.project.document import read_document
from migplan.project.schema import check_document
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.graph import RevisionGraph
    from migplan.project.config import Project


def check(config_path: str | None, env_name: str | None = None) -> list[str]:
    """Return every problem found, as one-line messages.

    No database is touched, except ENV's with `env_name`, which is only read.
    """
    file = config.find_config(config_path)
    document = read_document(file)
    errors = check_document(document)
    if errors:
        return [str(e) for e in errors]
    project = config.load_config(file)
    env = None if env_name is None else project.environment(env_name)
    try:
        graph = project.graph
    except MigplanError as err:
        return [str(err)]
    problems = []
    for each in project.environments.values():
        path: list[str | int] = ["environments", each.name, "target"]
        found = False
        for index, expr in enumerate(each.target):
            message = _target_problem(graph, expr)
            if message:
                found = True
                at = [*path, index] if len(each.target) > 1 else path
                problems.append(str(document.locate(at).error(message)))
        if not found and len(each.target) > 1:
            message = _list_problem(graph, each.target)
            if message:
                problems.append(str(document.locate(path).error(message)))
    if env is not None and not problems:
        problems += _database_problems(project, env)
    return problems


def _list_problem(graph: RevisionGraph, target: tuple[str, ...]) -> str | None:
    """A list target whose revisions resolve one by one may still clash as a whole."""
    if any(RELATIVE.match(expr) for expr in target):
        return None  # relative to the database: checked at plan time
    try:
        graph.upgrade_revisions(target, ())
    except MigplanError as err:
        return str(err)
    return None


def _database_problems(project: Project, env: Environment) -> list[str]:
    """Read ENV's current revisions, plan its target from them, and report what
    apply would refuse or warn about (a dirty database, an applied revision file
    edited since)."""
    try:
        url = env.url
    except MigplanError as err:
        return [str(err)]
    try:
        # a SQLite file that does not exist is at base, and is not created
        plan = planning.plan(project, env, url=url, imports=True)
    except MigplanError as err:
        return [f"environment {env.name!r}: {err}"]
    return [f"environment {env.name!r}: {note}" for note in plan.notes]


def _target_problem(graph: RevisionGraph, expr: str) -> str | None:
    relative = RELATIVE.match(expr)
    if relative:
        anchor = relative.group("anchor")
        branch = relative.group("branch")
        if not anchor and not branch:
            return None  # +N / -N: relative to the database, checked at plan time
        expr = f"{branch}@{anchor or 'head'}" if branch else anchor
    try:
        graph.resolve((expr,))
    except MigplanError as err:
        return str(err)
    return None
