"""Status, the audit log and verify's findings, as tables. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migplan.core.runs import Run
    from migplan.core.status import EnvironmentStatus
    from migplan.core.verify import Report


from migplan.render.text import heads
from migplan.render.text import table


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
    if report.checkpoints:
        lines.append("")
        lines += [
            f"Checkpoint {path}: loaded and compared" for path in report.checkpoints
        ]
    if report.problems:
        lines += ["", "Problems:", *(f"  - {p}" for p in report.problems)]
    else:
        lines += [
            "",
            f"All {len(report.checks)} revisions round-trip; one head ({heads(report.heads)}).",
        ]
    return "\n".join(lines)
