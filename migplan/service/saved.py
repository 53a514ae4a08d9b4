"""Saved plans: `plan -o FILE` writes one, `apply --plan FILE` runs exactly it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING
from typing import cast

from migplan import __version__
from migplan.core import planner
from migplan.errors import MigplanError
from migplan.errors import StalePlan
from migplan.service import planning

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.planner import Plan
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project

KIND = "migplan-plan"


def database_fingerprint(url: DatabaseURL) -> str:
    """Return a short digest naming the database (never the password)."""
    return hashlib.sha256(url.display.encode()).hexdigest()[:16]


def dumps(plan: Plan, url: DatabaseURL) -> str:
    """Return the saved form of a plan: its JSON, plus what apply must re-check."""
    data = {
        "kind": KIND,
        "migplan_version": __version__,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "database": database_fingerprint(url),
        **plan.to_dict(),
    }
    return json.dumps(data, indent=2) + "\n"


def load(path: Path, project: Project, env: Environment, url: DatabaseURL) -> Plan:
    """Read a saved plan; refuse it if a revision file it runs has changed since."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise MigplanError(f"cannot read {path}: {err.strerror}") from err
    except ValueError as err:
        raise MigplanError(f"{path}: not a saved plan: {err}") from err
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise MigplanError(
            f"{path}: not a saved plan (make one with 'migplan plan ENV -o FILE')"
        )
    if data.get("format") != planner.PLAN_FORMAT:
        raise MigplanError(
            f"{path}: plan format {data.get('format')!r} is not supported"
        )
    if data.get("environment") != env.name:
        raise MigplanError(
            f"{path} was made for environment {data.get('environment')!r}, not {env.name!r}"
        )
    if data.get("database") != database_fingerprint(url):
        raise StalePlan(
            f"{path} was made for another database than {env.name!r} uses now"
        )
    graph = project.graph
    try:
        steps = [
            planner.Step.from_dict(s)
            for s in cast(list[dict[str, object]], data["steps"])
        ]
        current = tuple(str(r) for r in cast(list[str], data["current"]))
        target = tuple(str(r) for r in cast(list[str], data["target"]))
    except (KeyError, TypeError, ValueError) as err:
        raise MigplanError(f"{path}: malformed plan: {err}") from err
    for step in steps:
        if step.revision not in graph:
            raise StalePlan(f"revision {step.revision} of {path} no longer exists")
        if graph.checksum(step.revision) != step.checksum:
            raise StalePlan(
                f"{graph.relative_path(step.revision)} changed since {path} was made; "
                "make a new plan"
            )
    return planning.describe(
        project, planner.steps_route(current, target, steps), env.name, url
    )
