"""The audit trail's runs as values, and what they say about a database: dirty,
or running revision files that changed since they were applied."""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from migplan.core.graph import RevisionGraph
from migplan.core.revisions import Heads


@dataclass(frozen=True)
class Run:
    """One recorded apply, rollback or resolve."""

    id: int
    run_id: str
    environment: str
    action: str
    actor: str
    host: str
    pid: int
    migplan_version: str
    started_at: str
    finished_at: str | None
    from_heads: Heads
    to_heads: Heads | None
    outcome: str
    steps: tuple[dict[str, object], ...]
    error: str | None
    dirty_revision: str | None
    dirty_direction: str | None
    resolved_at: str | None

    def dirty_message(self) -> str:
        """Say which migration left the database dirty, since when, and how to
        settle it."""
        error = f" ({self.error})" if self.error else " (the process stopped)"
        return (
            f"the database is dirty: {self.dirty_direction} {self.dirty_revision} did "
            f"not finish{error}, since {self.started_at} by {self.actor}@{self.host} "
            f"pid {self.pid}; fix the schema by hand, then run 'migplan resolve "
            f"{self.environment} --as applied' or '--as reverted'"
        )

    @property
    def is_dirty(self) -> bool:
        """Whether this run left a migration half-applied and nobody resolved it."""
        return self.dirty_revision is not None and self.resolved_at is None

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape of the run (`migplan log --json`)."""
        return {
            "id": self.id,
            "run_id": self.run_id,
            "environment": self.environment,
            "action": self.action,
            "actor": self.actor,
            "host": self.host,
            "pid": self.pid,
            "migplan_version": self.migplan_version,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "from": list(self.from_heads),
            "to": None if self.to_heads is None else list(self.to_heads),
            "outcome": self.outcome,
            "steps": list(self.steps),
            "error": self.error,
            "dirty": {
                "revision": self.dirty_revision,
                "direction": self.dirty_direction,
            }
            if self.is_dirty
            else None,
        }


def split_heads(heads: str | None) -> Heads | None:
    """Read the heads the audit table stores as comma-separated text."""
    if heads is None:
        return None
    return tuple(h for h in heads.split(",") if h)


def run_from_row(m: Mapping[str, Any]) -> Run:
    """Return the Run of one row of the audit table."""
    try:
        steps = tuple(json.loads(str(m["steps"])))
    except ValueError:
        steps = ()
    return Run(
        id=int(m["id"]),
        run_id=str(m["run_id"]),
        environment=str(m["environment"]),
        action=str(m["action"]),
        actor=str(m["actor"]),
        host=str(m["host"]),
        pid=int(m["pid"]),
        migplan_version=str(m["migplan_version"]),
        started_at=str(m["started_at"]),
        finished_at=m["finished_at"],
        from_heads=split_heads(m["from_heads"]) or (),
        to_heads=split_heads(m["to_heads"]),
        outcome=str(m["outcome"]),
        steps=steps,
        error=m["error"],
        dirty_revision=m["dirty_revision"],
        dirty_direction=m["dirty_direction"],
        resolved_at=m["resolved_at"],
    )


def dirty_run(
    runs: Sequence[Run], graph: RevisionGraph | None = None, current: Heads = ()
) -> Run | None:
    """Return the run that left the database dirty, if any.

    With the graph and the current heads, a run that stopped after its last
    migration's version update committed (the revision is where the step was
    taking it) is not dirty: that migration finished.
    """
    for run in runs:
        if not run.is_dirty:
            continue
        if graph is not None and run.dirty_revision in graph:
            applied = run.dirty_revision in graph.ancestors(current)
            # a checkpoint, like an upgrade, was taking it to its revision
            if applied == (run.dirty_direction != "downgrade"):
                continue
        return run
    return None


def applied_checksums(runs: Sequence[Run]) -> dict[str, str]:
    """Map each revision to the checksum of its file when it was last upgraded."""
    found: dict[str, str] = {}
    for run in reversed(runs):  # oldest first, so the latest upgrade wins
        for step in run.steps:
            covers = step.get("covers")
            if step.get("outcome") == "done" and isinstance(covers, dict):
                # a checkpoint stood for these files, as they were then
                found.update((str(r), str(c)) for r, c in covers.items())
            elif step.get("outcome") == "done" and step.get("direction") == "upgrade":
                checksum = step.get("checksum")
                if isinstance(checksum, str) and checksum:
                    found[str(step["revision"])] = checksum
    return found


def modified_revisions(
    graph: RevisionGraph, current: Heads, runs: Sequence[Run]
) -> list[str]:
    """Return the applied revisions whose file changed since migplan applied it."""
    applied = applied_checksums(runs)
    if not applied:
        return []
    below = graph.ancestors(current) & applied.keys()
    return sorted(
        rev for rev in below if rev in graph and graph.checksum(rev) != applied[rev]
    )


def modified_message(path: str, revision: str, refuse: bool) -> str:
    """Say that an applied revision's file has changed since it was applied."""
    end = "; on_modified: refuse" if refuse else ""
    return (
        f"{path} (revision {revision}) has changed since it was applied to this "
        f"database{end}"
    )
