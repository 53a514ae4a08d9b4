"""`migplan validate`: every problem of migplan.yaml and its targets, in file order."""

from __future__ import annotations

import re

from migplan import config
from migplan.errors import MigplanError

_RELATIVE = re.compile(r"^(?:(?P<branch>.+?)@)?(?P<anchor>\w+)?(?P<offset>[+-]\d+)$")


def check(config_path: str | None, env_name: str | None = None) -> list[str]:
    """Return every problem found, as one-line messages; no database is touched."""
    file = config.find_config(config_path)
    document = config.read_document(file)
    errors = config.check_document(document)
    if errors:
        return [str(e) for e in errors]
    project = config.load_config(file)
    if env_name is not None:
        project.environment(env_name)  # an unknown name is an error of its own
    try:
        graph = project.graph
    except MigplanError as err:
        return [str(err)]
    problems = []
    for env in project.environments.values():
        for index, expr in enumerate(env.target):
            message = _target_problem(graph, expr)
            if message:
                path: list[str | int] = ["environments", env.name, "target"]
                if len(env.target) > 1:
                    path.append(index)
                problems.append(str(document.locate(path).error(message)))
    return problems


def _target_problem(graph: object, expr: str) -> str | None:
    from migplan.revisions import RevisionGraph

    assert isinstance(graph, RevisionGraph)
    relative = _RELATIVE.match(expr)
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
