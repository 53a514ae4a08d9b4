"""Saved plans: `plan -o FILE` writes one, `apply --plan FILE` runs exactly it.

A saved plan is a promise, checked twice before anything runs: the file carries a
digest of its content (an edit by hand, or a truncated copy, is refused), and the
plan is made again from the current revisions and target it records - it runs
only if that is, step for step (revision, direction, order, file checksum), the
plan in the file. The steps that run are the ones migplan computed, never the
file's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import cast

from migplan import __version__
from migplan.core import planner
from migplan.core.results import heads_text
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
    data: dict[str, object] = {
        "kind": KIND,
        "migplan_version": __version__,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "database": database_fingerprint(url),
        **plan.to_dict(),
    }
    data["digest"] = _digest(data)
    return json.dumps(data, indent=2) + "\n"


def _digest(data: dict[str, object]) -> str:
    """The sha256 of a saved plan's content, its own digest left out."""
    content = {key: value for key, value in data.items() if key != "digest"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
    if data.get("digest") != _digest(data):
        raise MigplanError(
            f"{path} was changed after it was saved (its digest does not match); "
            "make a new plan with 'migplan plan ENV -o FILE'"
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
        saved = [
            planner.Step.from_dict(s)
            for s in cast(list[dict[str, object]], data["steps"])
        ]
        current = tuple(str(r) for r in cast(list[str], data["current"]))
        target = tuple(str(r) for r in cast(list[str], data["target"]))
        after = tuple(str(r) for r in cast(list[str], data["after"]))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise MigplanError(f"{path}: malformed plan: {err}") from err
    for step in saved:
        if step.is_checkpoint:
            continue  # its file's checksum is checked against the fresh plan's
        if step.revision not in graph:
            raise StalePlan(f"revision {step.revision} of {path} no longer exists")
        if graph.checksum(step.revision) != step.checksum:
            raise StalePlan(
                f"{graph.relative_path(step.revision)} changed since {path} was made; "
                "make a new plan"
            )
    # made again to the revisions the plan reached (its target may name others
    # by now: `head` moves when a revision is added)
    try:
        route = planner.route(graph, current, after or ("base",))
        fresh = planning.describe_from(
            project,
            planner.Route(route.current, target, route.moves),
            env.name,
            url,
            checkpoint=any(s.is_checkpoint for s in saved),
        )
    except MigplanError as err:
        raise StalePlan(f"{path}: its plan cannot be made again: {err}") from err
    if _shape(fresh.steps) != _shape(saved) or fresh.after != after:
        raise StalePlan(
            f"{path} is not the plan migplan makes from {heads_text(current)} to "
            f"{heads_text(after)}; make a new plan"
        )
    return fresh


def _shape(steps: Sequence[planner.Step]) -> list[tuple[str, str, str]]:
    return [(s.revision, s.direction, s.checksum) for s in steps]
