"""The JSON documents of `--json`: one object per command, whatever the outcome. Pure.

Every document starts with ``ok`` and ``error``: ``ok`` is false exactly when the
command failed or refused (exit 1, 3, 130 or 143), and ``error`` then says why
(``{"type", "message", "exit_code"}``); the rest is the command's own body, as far
as the command got. The shapes are published in ``schemas/<command>.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING

from migplan.core.fleet import FleetPlan
from migplan.core.results import Rehearsal

if TYPE_CHECKING:
    from migplan.core.drift import Difference
    from migplan.core.fleet import FleetResult
    from migplan.core.graph import RevisionGraph
    from migplan.core.planner import Plan
    from migplan.core.results import ApplyResult
    from migplan.core.results import StepResult
    from migplan.core.revisions import Marker
    from migplan.core.runs import Run
    from migplan.core.status import EnvironmentStatus
    from migplan.core.verify import Report

Body = dict[str, object]

_COMPACT = frozenset({"steps", "done", "reverted", "runs", "nodes", "edges"})
"""Lists written one item per line by json's C encoder: a first deploy's
thousands of steps, a long history's nodes."""


def error_object(kind: str, message: str, exit_code: int) -> Body:
    """Return the ``error`` member of a failed command's document."""
    return {"type": kind, "message": message, "exit_code": exit_code}


def document(body: Mapping[str, object] | None, error: Body | None = None) -> str:
    """Return a command's JSON document: ``ok``, ``error``, then its body."""
    return text({"ok": error is None, "error": error, **(body or {})})


def text(data: object, indent: str = "", key: str | None = None) -> str:
    """Return `data` as json.dumps(indent=2) would, but with the items of the long
    lists (steps, runs, nodes...) each on one line."""
    inner = indent + "  "
    if isinstance(data, Mapping) and data:
        items = [
            f"{inner}{json.dumps(k)}: {text(v, inner, k)}" for k, v in data.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(data, list | tuple) and data:
        if key in _COMPACT:
            items = [inner + json.dumps(item) for item in data]
        else:
            items = [inner + text(item, inner) for item in data]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(data)


# -- plan, apply, rollback, resolve ---------------------------------------------------


def plan_body(plan: Plan) -> Body:
    """The body of `plan --json` for one database."""
    return plan.to_dict()


def step_result(result: StepResult) -> Body:
    """One step that ran (or failed): what, how long, the error, the locks."""
    step = result.step
    return {
        "revision": step.revision,
        "direction": step.direction,
        "message": step.message,
        "seconds": round(result.seconds, 6),
        "error": result.error,
        "retryable": result.retryable,
        "locks": [{"relation": r, "mode": m} for r, m in result.locks],
    }


def run_result(result: ApplyResult) -> Body:
    """What running a plan did, and where the database is now (``heads``)."""
    return {
        "outcome": result.outcome,
        "heads": list(result.heads),
        "done": [step_result(r) for r in result.done],
        "failed": None if result.failed is None else step_result(result.failed),
        "reverted": [step_result(r) for r in result.reverted],
        "revert_failed": None
        if result.revert_failed is None
        else step_result(result.revert_failed),
        "dirty": result.dirty,
        "audit_error": result.audit_error,
    }


def rehearsal_result(result: Rehearsal) -> Body:
    """A rehearsal as a run: everything rolled back, the heads as they were."""
    return {
        "outcome": "rehearsed" if result.ok else "failed",
        "heads": list(result.plan.current),
        "done": [step_result(r) for r in result.done],
        "failed": None if result.failed is None else step_result(result.failed),
        "reverted": [],
        "revert_failed": None,
        "dirty": False,
        "audit_error": None,
    }


def apply_body(
    environment: str,
    database: str,
    plan: Plan,
    result: ApplyResult | Rehearsal | None = None,
    *,
    rehearse: bool = False,
) -> Body:
    """The body of `apply --json` (and of `rollback --json`, with `dry_run`) on one
    database: the plan, then what running it did (None: it did not run)."""
    run: Body | None = None
    if result is not None:
        plan = result.plan
        if isinstance(result, Rehearsal):
            run = rehearsal_result(result)
        else:
            run = run_result(result)
    return {
        "environment": environment,
        "database": database,
        "fleet": False,
        "rehearse": rehearse,
        "plan": plan.to_dict(),
        "result": run,
    }


def rollback_body(
    environment: str,
    database: str,
    plan: Plan,
    result: ApplyResult | None = None,
    *,
    dry_run: bool = False,
) -> Body:
    """The body of `rollback --json`."""
    return {
        "environment": environment,
        "database": database,
        "dry_run": dry_run,
        "plan": (plan if result is None else result.plan).to_dict(),
        "result": None if result is None else run_result(result),
    }


def fleet_apply_body(plan: FleetPlan, result: FleetResult | None = None) -> Body:
    """The body of `apply --json` on a whole fleet (or a shard of it)."""
    outcome: Body | None = None
    if result is not None:
        outcome = {
            "databases": [
                {
                    "database": r.name,
                    "outcome": r.outcome,
                    "before": None if r.before is None else list(r.before),
                    "after": None if r.after is None else list(r.after),
                    "seconds": round(r.seconds, 6),
                    "error": r.error,
                }
                for r in result.results
            ],
            "stopped": result.stopped,
        }
    return {
        "environment": plan.environment,
        "database": None,
        "fleet": True,
        "rehearse": False,
        "plan": plan.to_dict(),
        "result": outcome,
    }


def resolve_body(
    environment: str,
    database: str,
    outcome: str,
    run: Run | None = None,
    heads: Sequence[str] | None = None,
) -> Body:
    """The body of `resolve --json`: the step settled, and the heads now."""
    return {
        "environment": environment,
        "database": database,
        "as": outcome,
        "revision": None if run is None else run.dirty_revision,
        "direction": None if run is None else run.dirty_direction,
        "heads": None if heads is None else list(heads),
    }


# -- status, log, drift, verify, validate, promote, graph -------------------------------


def status_body(rows: Sequence[EnvironmentStatus]) -> Body:
    """The body of `status --json`: a row per environment (per database of a fleet)."""
    return {"environments": [row.to_dict() for row in rows]}


def log_body(
    environment: str, runs: Mapping[str, Sequence[Run]], failed: Mapping[str, str]
) -> Body:
    """The body of `log --json`: each database's runs, newest first, or its error."""
    return {
        "environment": environment,
        "databases": [
            {"database": name, "runs": [r.to_dict() for r in found], "error": None}
            for name, found in runs.items()
        ]
        + [
            {"database": name, "runs": [], "error": error}
            for name, error in failed.items()
        ],
    }


def drift_body(
    environment: str,
    found: Mapping[str, Sequence[Difference]],
    failed: Mapping[str, str],
) -> Body:
    """The body of `drift --json`: each database's differences from the models."""
    return {
        "environment": environment,
        "differs": any(found.values()),
        "databases": [
            {
                "database": name,
                "differences": [d.to_dict() for d in diffs],
                "error": None,
            }
            for name, diffs in found.items()
        ]
        + [
            {"database": name, "differences": [], "error": error}
            for name, error in failed.items()
        ],
    }


def verify_body(report: Report) -> Body:
    """The body of `verify --json`: each revision's round trip, the heads, the
    drift at head (None: no models), every problem."""
    return {
        "checks": [
            {"revision": c.revision, "message": c.message, "problem": c.problem}
            for c in report.checks
        ],
        "heads": list(report.heads),
        "drift": None if report.drift is None else [d.to_dict() for d in report.drift],
        "problems": list(report.problems),
        "checkpoints": list(report.checkpoints),
    }


def validate_body(problems: Sequence[str]) -> Body:
    """The body of `validate --json`: every problem found, in file order."""
    return {"problems": list(problems)}


def promote_body(
    file: str,
    source: str,
    destination: str,
    before: Sequence[str],
    target: Sequence[str],
    plan: Plan | FleetPlan | None = None,
) -> Body:
    """The body of `promote --json`: the target changed, and the new plan."""
    return {
        "file": file,
        "source": source,
        "destination": destination,
        "before": list(before),
        "target": list(target),
        "fleet": isinstance(plan, FleetPlan),
        "plan": None if plan is None else plan.to_dict(),
    }


def graph_body(
    graph: RevisionGraph, markers: Sequence[Marker], warnings: Sequence[str]
) -> Body:
    """The body of `graph --json`: every revision (nothing collapsed), the edges
    (``down``: to a down revision; ``depends``: a depends_on), and each
    environment's current and target revisions (``[]`` is base)."""
    labels: dict[str, list[str]] = {}
    for label, rev in graph.labels.items():
        labels.setdefault(rev, []).append(label)
    heads = set(graph.heads)
    nodes = [
        {
            "revision": rev,
            "message": graph.message(rev),
            "path": graph.relative_path(rev),
            "down_revision": list(down),
            "depends_on": list(graph.depends.get(rev, ())),
            "branch_labels": sorted(labels.get(rev, ())),
            "head": rev in heads,
            "root": not down,
        }
        for rev, down in sorted(graph.down.items())
    ]
    edges = [
        {"from": rev, "to": parent, "kind": "down"}
        for rev, down in sorted(graph.down.items())
        for parent in down
    ] + [
        {"from": rev, "to": graph.labels.get(dep, dep), "kind": "depends"}
        for rev, deps in sorted(graph.depends.items())
        for dep in deps
    ]
    return {
        "heads": sorted(heads),
        "nodes": nodes,
        "edges": edges,
        "markers": [
            {
                "environment": m.environment,
                "kind": m.kind,
                "revisions": list(m.revisions),
            }
            for m in markers
        ],
        "warnings": list(warnings),
    }
