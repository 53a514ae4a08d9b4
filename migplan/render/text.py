"""Plans, steps and the result of an apply, as text and JSON. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migplan.core.policy import REFUSAL
from migplan.render.style import Style
from migplan.render.style import plain

if TYPE_CHECKING:
    from migplan.core.planner import Plan
    from migplan.core.planner import Step
    from migplan.core.results import ApplyResult
    from migplan.core.results import Progress
    from migplan.core.results import Rehearsal


def heads(revisions: Sequence[str]) -> str:
    """Return revisions for display: comma-separated, or ``base``."""
    return ", ".join(revisions) if revisions else "base"


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    indent: str = "  ",
    *,
    painted: Sequence[Sequence[str]] | None = None,
) -> str:
    """Return rows as aligned columns under a header. `painted`: the same rows
    with styled cells, aligned by the width of the plain ones."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row, shown in [(header, header), *zip(rows, painted or rows, strict=True)]:
        cells = [
            cell + " " * (w - len(text))
            for text, cell, w in zip(row, shown, widths, strict=True)
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def steps_table(steps: Sequence[Step], style: Style = plain) -> str:
    """Return the steps in columns: number, revision, direction, message, flags."""
    rows = [
        [str(i), s.revision, s.direction, s.message, ", ".join(s.flags)]
        for i, s in enumerate(steps, start=1)
    ]
    painted = [
        [*row[:-1], ", ".join(style(flag, flag) for flag in s.flags)]
        for row, s in zip(rows, steps, strict=True)
    ]
    header = ["#", "Revision", "Direction", "Message", "Flags"]
    return table(header, rows, painted=painted)


def note_line(note: str, style: Style = plain) -> str:
    """Return ``Note: ...``, a note that apply refuses the plan styled as one."""
    return "Note: " + (style(note, "refusal") if note.startswith(REFUSAL) else note)


def step_label(step: Step) -> str:
    """Return ``upgrade 1a2b3c (message)``; a checkpoint's, with its file."""
    if step.is_checkpoint:
        return f"checkpoint {step.revision} ({step.message}: {step.path})"
    message = f" ({step.message})" if step.message else ""
    return f"{step.direction} {step.revision}{message}"


def plan_text(plan: Plan, url: str = "", *, style: Style = plain) -> str:
    """Return the plan as a readable table (flags and refusals through `style`)."""
    where = f" ({url})" if url else ""
    target = " ".join(plan.target)
    lines = [
        f"Environment: {plan.environment}{where}",
        f"Current:     {heads(plan.current)}",
        f"Target:      {target}"
        + (f" -> {heads(plan.after)}" if heads(plan.after) != target else ""),
        "",
    ]
    lines += [note_line(note, style) for note in plan.notes]
    lines += [""] if plan.notes else []
    if plan.up_to_date:
        lines.append(f"{plan.environment} is up to date.")
        return "\n".join(lines)
    lines.append(steps_table(plan.steps, style))
    details = [
        f"  {i}. {style(f.kind, f.kind)}: {f.operation}"
        + (f" ({s.path}:{f.line})" if f.line else f" ({s.path})")
        for i, s in enumerate(plan.steps, start=1)
        for f in s.findings
    ]
    if details:
        lines += ["", "Flagged:", *details]
    lines += ["", f"Plan: {summary(plan)}."]
    return "\n".join(lines)


def plan_lines(plan: Plan, url: str = "", *, style: Style = plain) -> str:
    """Return the plan as plain lines, one per step and no columns: for logs and
    chat, where a wide table wraps."""
    where = f" ({url})" if url else ""
    lines = [
        f"{plan.environment}{where}: {heads(plan.current)} -> {heads(plan.after)}"
        f" (target {' '.join(plan.target)})"
    ]
    for i, step in enumerate(plan.steps, start=1):
        flags = ", ".join(style(flag, flag) for flag in step.flags)
        flags = f" [{flags}]" if flags else ""
        lines.append(f"{i}. {step_label(step)}{flags}")
        lines += [
            f"   {step.path}{f':{f.line}' if f.line else ''}: "
            f"{style(f.kind, f.kind)}: {f.operation}"
            for f in step.findings
        ]
    lines += [note_line(note, style) for note in plan.notes]
    lines.append(
        f"{plan.environment} is up to date."
        if plan.up_to_date
        else f"Plan: {summary(plan)}."
    )
    return "\n".join(lines)


def summary(plan: Plan) -> str:
    """Return ``3 steps (2 upgrades, 1 downgrade)``."""
    n = len(plan.steps)
    parts = []
    for direction in ("checkpoint", "upgrade", "downgrade"):
        count = plan.count(direction)
        if count:
            parts.append(f"{count} {direction}{'s' if count != 1 else ''}")
    return f"{n} step{'s' if n != 1 else ''} ({', '.join(parts)})"


def plan_sql(plan: Plan, chunks: Sequence[str]) -> str:
    """Return the SQL of each step, headed by a comment naming the step."""
    if plan.up_to_date:
        return f"-- {plan.environment} is up to date: no SQL to run\n"
    out = []
    total = len(plan.steps)
    for i, (step, sql) in enumerate(zip(plan.steps, chunks, strict=True), start=1):
        out.append(f"-- Step {i}/{total}: {step_label(step)}\n{sql.strip()}\n")
    return "\n".join(out)


def progress_line(event: Progress, *, short: bool = False, style: Style = plain) -> str:
    """Return one line for a step starting, ending or failing; `short` ends name
    only the step's number, for logs where its start line stands just above."""
    prefix = "revert " if event.phase == "revert" else ""
    counter = f"[{event.index}/{event.total}]"
    head = counter if short else f"{counter} {prefix}{step_label(event.step)}"
    if event.event == "start":
        return f"{counter} {prefix}{step_label(event.step)} ..."
    if event.event == "done":
        return f"{head} done in {event.seconds:.2f}s"
    return f"{head} {style('FAILED', 'failed')} after {event.seconds:.2f}s"


def apply_outcome(result: ApplyResult) -> str:
    """Return the closing line of a successful apply."""
    n = len(result.done)
    env = result.plan.environment
    if not n:
        return f"Nothing left to do (another process applied it); {env} is at {heads(result.heads)}."
    down = result.plan.count("downgrade") == len(result.plan.steps)
    verb = "Rolled back" if down else "Applied"
    return f"{verb} {n} step{'s' if n != 1 else ''}; {env} is at {heads(result.heads)}."


def rehearsal_text(result: Rehearsal) -> str:
    """Return a rehearsal's report: each step's time and the locks it took, then
    the failure or the all-clear, and that nothing changed."""
    lines = []
    for r in result.done:
        lines.append(f"{step_label(r.step)}: {r.seconds:.2f}s")
        for relation, mode in r.locks:
            lines.append(f"    {mode} on {relation}")
    env = result.plan.environment
    at = heads(result.plan.current)
    if result.failed is not None:
        failed = result.failed
        lines.append(f"{step_label(failed.step)}: FAILED after {failed.seconds:.2f}s")
        return "\n".join(lines)
    n = len(result.done)
    lines.append(
        f"Rehearsal passed: {n} step{'s ran and were' if n != 1 else ' ran and was'}"
        f" rolled back; {env} is still at {at}."
    )
    return "\n".join(lines)


def rehearsal_failure(result: Rehearsal) -> str:
    """Return the one-line error of a failed rehearsal."""
    assert result.failed is not None
    return (
        f"rehearsal failed at {step_label(result.failed.step)}: "
        f"{result.failed.error}; everything was rolled back, "
        f"{result.plan.environment} is still at {heads(result.plan.current)}"
    )
