"""A fleet's plan, progress and summary, as text. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migplan.core.fleet import FleetPlan
    from migplan.core.fleet import FleetResult
    from migplan.core.fleet import MemberResult


from migplan.render.style import Style
from migplan.render.style import plain
from migplan.render.text import heads
from migplan.render.text import steps_table
from migplan.render.text import table


def fleet_plan_text(plan: FleetPlan, *, style: Style = plain) -> str:
    """Return a fleet's plan: its databases grouped by where they are (flags
    through `style`)."""
    target = " ".join(plan.target)
    lines = [
        f"Environment: {plan.environment} ({plan.size} database"
        f"{'s' if plan.size != 1 else ''})",
        f"Target:      {target}",
        "",
    ]
    summary = []
    for group in plan.groups:
        steps = group.plan.steps if group.plan else ()
        n = len(group.members)
        work = (
            f"{len(steps)} step{'s' if len(steps) != 1 else ''} each"
            if steps
            else "up to date"
        )
        summary.append(f"{n} at {heads(group.current)}: {work}")
    if plan.errors:
        summary.append(f"{len(plan.errors)} could not be planned")
    # an empty shard (or catalog) has no group: say so rather than print "."
    lines.append("; ".join(summary) + "." if summary else "No databases.")
    for group in plan.groups:
        if group.plan is None or group.plan.up_to_date:
            continue
        names = [m.member.name for m in group.members]
        shown = ", ".join(names[:5]) + (
            f" and {len(names) - 5} more" if len(names) > 5 else ""
        )
        lines += ["", f"From {heads(group.current)} ({shown}):"]
        lines.append(steps_table(group.plan.steps, style))
    for error in plan.errors:
        lines += [
            "",
            f"{error.member.name}: {_unprefixed(error.error or '', error.member.name)}",
        ]
    return "\n".join(lines)


def fleet_progress(result: MemberResult, done: int, total: int) -> str:
    """Return the fleet's progress line after one database finished."""
    what: str = result.outcome
    if result.outcome == "applied":
        what = f"applied, now at {heads(result.after or ())}"
    return f"[{done}/{total}] {result.name}: {what} ({result.seconds:.1f}s)"


def fleet_summary(result: FleetResult) -> str:
    """Return the table that ends a fleet's apply."""
    rows = [
        [
            r.name,
            "?" if r.before is None else heads(r.before),
            "?" if r.after is None else heads(r.after),
            r.outcome + (f": {_unprefixed(r.error, r.name)}" if r.error else ""),
            f"{r.seconds:.1f}s",
        ]
        for r in result.results
    ]
    counts = ", ".join(
        f"{result.count(o)} {o}"
        for o in ("applied", "up to date", "failed", "not started")
        if result.count(o)
    )
    lines = [
        table(["Database", "From", "To", "Outcome", "Took"], rows, indent=""),
        "",
        f"Fleet: {counts}.",
    ]
    if result.stopped:
        lines.append(f"Stopped starting databases: {result.stopped}.")
    return "\n".join(lines)


def _unprefixed(error: str, name: str) -> str:
    """An error without the database's name in front, where a row already shows it."""
    return error.removeprefix(f"{name}: ")
