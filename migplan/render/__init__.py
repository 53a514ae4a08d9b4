"""Plans, results and tables -> text and JSON strings. Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migplan.core.fleet import FleetPlan
    from migplan.core.fleet import FleetResult
    from migplan.core.fleet import MemberResult
    from migplan.core.planner import Plan
    from migplan.core.planner import Step
    from migplan.core.results import ApplyResult
    from migplan.core.results import Progress
    from migplan.core.runs import Run
    from migplan.core.status import EnvironmentStatus
    from migplan.core.verify import Report


def heads(revisions: Sequence[str]) -> str:
    """Return revisions for display: comma-separated, or ``base``."""
    return ", ".join(revisions) if revisions else "base"


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  "
) -> str:
    """Return rows as aligned columns under a header."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def step_label(step: Step) -> str:
    """Return ``upgrade 1a2b3c (message)``."""
    message = f" ({step.message})" if step.message else ""
    return f"{step.direction} {step.revision}{message}"


def plan_text(plan: Plan, url: str = "") -> str:
    """Return the plan as a readable table."""
    where = f" ({url})" if url else ""
    target = " ".join(plan.target)
    lines = [
        f"Environment: {plan.environment}{where}",
        f"Current:     {heads(plan.current)}",
        f"Target:      {target}"
        + (f" -> {heads(plan.after)}" if heads(plan.after) != target else ""),
        "",
    ]
    lines += [f"Note: {note}" for note in plan.notes]
    lines += [""] if plan.notes else []
    if plan.up_to_date:
        lines.append(f"{plan.environment} is up to date.")
        return "\n".join(lines)
    rows = [
        [str(i), s.revision, s.direction, s.message, ", ".join(s.flags)]
        for i, s in enumerate(plan.steps, start=1)
    ]
    lines.append(table(["#", "Revision", "Direction", "Message", "Flags"], rows))
    details = [
        f"  {i}. {f.kind}: {f.operation}"
        + (f" ({s.path}:{f.line})" if f.line else f" ({s.path})")
        for i, s in enumerate(plan.steps, start=1)
        for f in s.findings
    ]
    if details:
        lines += ["", "Flagged:", *details]
    lines += ["", f"Plan: {summary(plan)}."]
    return "\n".join(lines)


def summary(plan: Plan) -> str:
    """Return ``3 steps (2 upgrades, 1 downgrade)``."""
    n = len(plan.steps)
    parts = []
    for direction in ("upgrade", "downgrade"):
        count = plan.count(direction)
        if count:
            parts.append(f"{count} {direction}{'s' if count != 1 else ''}")
    return f"{n} step{'s' if n != 1 else ''} ({', '.join(parts)})"


def plan_json(plan: Plan) -> str:
    """Return the plan as the stable JSON object of `plan --json`."""
    return json.dumps(plan.to_dict(), indent=2)


def plan_sql(plan: Plan, chunks: Sequence[str]) -> str:
    """Return the SQL of each step, headed by a comment naming the step."""
    if plan.up_to_date:
        return f"-- {plan.environment} is up to date: no SQL to run\n"
    out = []
    total = len(plan.steps)
    for i, (step, sql) in enumerate(zip(plan.steps, chunks, strict=True), start=1):
        out.append(f"-- Step {i}/{total}: {step_label(step)}\n{sql.strip()}\n")
    return "\n".join(out)


def progress_line(event: Progress, *, short: bool = False) -> str:
    """Return one line for a step starting, ending or failing; `short` ends name
    only the step's number, for logs where its start line stands just above."""
    prefix = "revert " if event.phase == "revert" else ""
    counter = f"[{event.index}/{event.total}]"
    head = counter if short else f"{counter} {prefix}{step_label(event.step)}"
    if event.event == "start":
        return f"{counter} {prefix}{step_label(event.step)} ..."
    if event.event == "done":
        return f"{head} done in {event.seconds:.2f}s"
    return f"{head} FAILED after {event.seconds:.2f}s"


def apply_outcome(result: ApplyResult) -> str:
    """Return the closing line of a successful apply."""
    n = len(result.done)
    env = result.plan.environment
    if not n:
        return f"Nothing left to do (another process applied it); {env} is at {heads(result.heads)}."
    verb = "Rolled back" if result.plan.count("upgrade") == 0 else "Applied"
    return f"{verb} {n} step{'s' if n != 1 else ''}; {env} is at {heads(result.heads)}."


def status_text(rows: Sequence[EnvironmentStatus]) -> str:
    """Return the status of every environment as a table (a Drift column when
    the rows were compared with the models)."""
    with_drift = any(row.drift is not None for row in rows)
    body = []
    for row in rows:
        if row.error is not None:
            pending = "-"
        else:
            parts = [f"{row.upgrades} up"] if row.upgrades else []
            parts += [f"{row.downgrades} down"] if row.downgrades else []
            pending = ", ".join(parts) or "0"
        state = (
            f"error: {row.error}"
            if row.error is not None
            else f"dirty ({row.dirty})"
            if row.dirty is not None
            else row.state
        )
        cells = [
            row.environment,
            row.url,
            "?" if row.current is None else heads(row.current),
            " ".join(row.target),
            pending,
        ]
        if with_drift:
            drift = (
                "-"
                if row.drift is None
                else f"{row.drift} differences"
                if row.drift
                else "none"
            )
            cells.append(drift)
        body.append([*cells, state])
    header = ["Environment", "URL", "Current", "Target", "Pending"]
    header += ["Drift"] if with_drift else []
    return table([*header, "State"], body, indent="")


def log_text(runs: Sequence[Run]) -> str:
    """Return the audit trail as a table, newest first."""
    if not runs:
        return "No runs recorded."
    body = []
    for run in runs:
        steps = [s for s in run.steps if s.get("phase", "apply") == "apply"]
        outcome = run.outcome + (" (dirty)" if run.is_dirty else "")
        body.append(
            [
                str(run.id),
                run.started_at,
                f"{run.actor}@{run.host}",
                run.action,
                f"{heads(run.from_heads)} -> {heads(run.to_heads) if run.to_heads is not None else '?'}",
                str(len(steps)),
                outcome,
            ]
        )
    return table(
        ["#", "Started (UTC)", "Who", "Action", "From -> To", "Steps", "Outcome"],
        body,
        indent="",
    )


def verify_text(report: Report) -> str:
    """Return what verify checked and found."""
    rows = [[c.revision, c.message, c.problem or "ok"] for c in report.checks]
    lines = [table(["Revision", "Message", "Round trip"], rows, indent="")]
    if report.drift is not None:
        lines.append("")
        lines.append(
            "Models vs schema at head: " + ("match" if not report.drift else "differ")
        )
    if report.problems:
        lines += ["", "Problems:", *(f"  - {p}" for p in report.problems)]
    else:
        lines += [
            "",
            f"All {len(report.checks)} revisions round-trip; one head ({heads(report.heads)}).",
        ]
    return "\n".join(lines)


def fleet_plan_text(plan: FleetPlan) -> str:
    """Return a fleet's plan: its databases grouped by where they are."""
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
        rows = [
            [str(i), s.revision, s.direction, s.message, ", ".join(s.flags)]
            for i, s in enumerate(group.plan.steps, start=1)
        ]
        lines.append(table(["#", "Revision", "Direction", "Message", "Flags"], rows))
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
