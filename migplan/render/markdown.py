"""Plans as Markdown (CommonMark with GFM tables): a comment ready to post on a
pull request, one section per environment. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from migplan.core.policy import REFUSAL
from migplan.render.text import heads
from migplan.render.text import summary

if TYPE_CHECKING:
    from migplan.core.fleet import FleetPlan
    from migplan.core.planner import Plan
    from migplan.core.review import EnvironmentPlan

MARKER = "<!-- migplan plan -->"
"""Ends every document: a CI job finds its earlier comment by it, to update it."""

# what could start markup inside a line; `$` is GitHub's math, `&` an entity
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&$])")
_STEP_HEADER = ("#", "Revision", "Direction", "Message", "Flags")


def plan_markdown(review: Sequence[EnvironmentPlan]) -> str:
    """Return the plans of one or more environments as one Markdown document: a
    one-line summary, then a section for each environment (or its error)."""
    parts = [_summary(review)]
    for item in review:
        parts.append(_section(item))
    parts.append(MARKER)
    return "\n\n".join(parts) + "\n"


def _summary(review: Sequence[EnvironmentPlan]) -> str:
    if len(review) == 1:
        item = review[0]
        return f"**migplan plan {_text(item.environment)}**: {_outcome(item)}."
    shown = "; ".join(f"{_text(i.environment)}: {_outcome(i)}" for i in review)
    return f"**migplan plan** ({len(review)} environments): {shown}."


def _outcome(item: EnvironmentPlan) -> str:
    """A few words on one environment, for the summary line."""
    if item.error is not None:
        return "could not be planned"
    if item.fleet is not None:
        return _fleet_outcome(item.fleet)
    assert item.plan is not None
    plan = item.plan
    words = ["up to date" if plan.up_to_date else summary(plan)]
    flagged = sum(1 for s in plan.steps if s.flags)
    if flagged:
        words.append(f"{flagged} flagged")
    if _refusals(plan):
        words.append("apply will refuse")
    return ", ".join(words)


def _fleet_outcome(fleet: FleetPlan) -> str:
    pending = sum(
        len(g.members) for g in fleet.groups if g.plan and not g.plan.up_to_date
    )
    words = [f"{fleet.size} database{'s' if fleet.size != 1 else ''}"]
    words.append(f"{pending} to migrate" if pending else "up to date")
    if fleet.errors:
        words.append(f"{len(fleet.errors)} could not be planned")
    if any(g.plan and _refusals(g.plan) for g in fleet.groups):
        words.append("apply will refuse")
    return ", ".join(words)


def _section(item: EnvironmentPlan) -> str:
    title = f"### {_text(item.environment)}"
    if item.error is not None:
        facts = [f"- Database: {_code(item.url)}"] if item.url else []
        return "\n\n".join(
            [title, *(["\n".join(facts)] if facts else []), _error(item.error)]
        )
    if item.fleet is not None:
        return "\n\n".join([title, _fleet(item.fleet)])
    assert item.plan is not None
    return "\n\n".join([title, _plan(item.plan, item.url)])


def _error(message: str) -> str:
    return f"**Could not be planned:** {_text(message)}"


def _plan(plan: Plan, url: str) -> str:
    target = " ".join(plan.target)
    after = heads(plan.after)
    facts = [f"- Database: {_code(url)}"] if url else []
    facts += [
        f"- Current: {_code(heads(plan.current))}",
        f"- Target: {_code(target)}"
        + (f" \N{RIGHTWARDS ARROW} {_code(after)}" if after != target else ""),
    ]
    blocks = ["\n".join(facts)]
    if plan.up_to_date:
        blocks.append(f"{_text(plan.environment)} is up to date.")
    else:
        blocks.append(_steps_table(plan))
    blocks += _findings(plan)
    blocks += _notes(plan)
    return "\n\n".join(blocks)


def _fleet(fleet: FleetPlan) -> str:
    facts = [
        f"- Databases: {fleet.size}",
        f"- Target: {_code(' '.join(fleet.target))}",
    ]
    blocks = ["\n".join(facts)]
    for group in fleet.groups:
        names = [m.member.name for m in group.members]
        shown = ", ".join(_text(n) for n in names[:5]) + (
            f" and {len(names) - 5} more" if len(names) > 5 else ""
        )
        n = len(names)
        where = f"{n} database{'s' if n != 1 else ''} at {_code(heads(group.current))}"
        plan = group.plan
        if plan is None or plan.up_to_date:
            blocks.append(f"{where} ({shown}): up to date.")
            continue
        blocks.append(f"{where} ({shown}): {summary(plan)} each.")
        blocks.append(_steps_table(plan))
        blocks += _findings(plan)
        blocks += _notes(plan)
    if fleet.errors:
        rows = [
            f"- {_text(e.member.name)}: "
            f"{_text((e.error or '').removeprefix(e.member.name + ': '))}"
            for e in fleet.errors
        ]
        blocks += ["**Could not be planned:**", "\n".join(rows)]
    return "\n\n".join(blocks)


def _steps_table(plan: Plan) -> str:
    rows = [
        [
            str(i),
            _code(s.revision, cell=True),
            s.direction,
            _text(s.message),
            _text(", ".join(s.flags)),
        ]
        for i, s in enumerate(plan.steps, start=1)
    ]
    lines = [
        _row(_STEP_HEADER),
        _row(["--:", "---", "---", "---", "---"]),
        *(_row(r) for r in rows),
    ]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _findings(plan: Plan) -> list[str]:
    """The lint findings, each with the file and line it is at."""
    items = [
        f"- {_code(s.path + (f':{f.line}' if f.line else ''))}: "
        f"{f.kind}: {_text(f.operation)} (step {i}, {s.direction} "
        f"{_code(s.revision)})"
        for i, s in enumerate(plan.steps, start=1)
        for f in s.findings
    ]
    return ["**Lint findings**", "\n".join(items)] if items else []


def _notes(plan: Plan) -> list[str]:
    """The policy's notes: what apply will refuse first, then the warnings."""
    notes = sorted(plan.notes, key=lambda n: not n.startswith(REFUSAL))
    items = [
        f"- **{REFUSAL.rstrip(': ')}:** {_text(n.removeprefix(REFUSAL))}"
        if n.startswith(REFUSAL)
        else f"- {_text(n)}"
        for n in notes
    ]
    return ["**Policy notes**", "\n".join(items)] if items else []


def _refusals(plan: Plan) -> list[str]:
    return [n for n in plan.notes if n.startswith(REFUSAL)]


def _text(text: str) -> str:
    """Text on one line, every character that could start markup escaped."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code(text: str, *, cell: bool = False) -> str:
    """A code span that holds `text` whatever backticks it has; in a table `cell`,
    `|` escaped, as GFM requires even inside a code span."""
    text = " ".join(text.split())
    if cell:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
