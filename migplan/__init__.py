"""migplan: declarative, YAML-driven migration planning for Alembic projects.

The library behind the `migplan` command::

    from migplan import load_config, plan, apply

    project = load_config("migplan.yaml")
    env = project.environment("staging")
    the_plan = plan(project, env)          # a frozen Plan: steps, current, after
    if not the_plan.up_to_date:
        result = apply(project, env, project.graph, the_plan)

A plan can also be made without any database, from the current revisions (pure:
nothing is read, and the steps carry no lint flags, which `plan` adds)::

    from migplan import make_plan
    make_plan(project.graph, current=("3f2a",), target=["head"])

Names are imported on first use, so that `import migplan` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "migplan.project.config",
    "Project": "migplan.project.config",
    "Environment": "migplan.core.environment",
    "RevisionGraph": "migplan.core.revisions",
    "make_plan": "migplan.core.planner",
    "make_downgrade_plan": "migplan.core.planner",
    "Plan": "migplan.core.planner",
    "Step": "migplan.core.planner",
    "plan": "migplan.service.planning",
    "rollback_plan": "migplan.service.planning",
    "apply": "migplan.service.execution",
    "ApplyResult": "migplan.core.results",
    "collect_status": "migplan.service.status",
    "check_rollback": "migplan.core.policy",
    "MigplanError": "migplan.errors",
}
_RENAMED = {"collect_status": "collect"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'migplan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value
